"""Hypothesis properties: masking, offsets, idempotent normalization, robustness."""

from __future__ import annotations

import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chatmgmt.model import MessageRole
from chatmgmt.moderation import Action, Normalization, SensitiveWordFilter, normalize

C = MessageRole.CUSTOMER
WORDS = [
    "fuck",
    "shit",
    "ass",
    "cunt",
    "傻逼",
    "黄片",
    "法轮功",
    "知识产权",
    "国家知识产权局",
    "a b",
]
MASKING = SensitiveWordFilter(
    customer=[(w, "c", "mask") for w in WORDS],
    allow=["Scunthorpe", "三黄片"],
    normalization=Normalization.all(),
)
BYPASS = ["", ".", " ", "\u200b", "😀", "✨", "1", "-", "\u0301", "＊"]


def _decorated(draw: st.DrawFn) -> str:
    """Listed words with noise around and inside, among random text."""
    parts: list[str] = []
    for _ in range(draw(st.integers(0, 6))):
        if draw(st.booleans()):
            w = draw(st.sampled_from(WORDS))
            sep = draw(st.sampled_from(BYPASS))
            if draw(st.booleans()):
                w = w.upper()
            parts.append(sep.join(w))
        else:
            parts.append(draw(st.text(max_size=8)))
    return "".join(parts)


texts = st.one_of(st.text(max_size=60), st.composite(_decorated)())
anything = st.text(
    alphabet=st.characters(min_codepoint=0, max_codepoint=0x10FFFF, exclude_categories=()),
    max_size=80,
)
configs = st.builds(
    Normalization,
    st.booleans(),
    st.booleans(),
    st.booleans(),
    st.booleans(),
    st.booleans(),
    st.booleans(),
    st.booleans(),
)


@settings(max_examples=300, deadline=None)
@given(texts)
def test_masking_keeps_length_and_everything_outside_hits(text: str) -> None:
    v = MASKING.check(text, C)
    assert len(v.text) == len(text)
    covered = set()
    for h in v.hits:
        covered.update(range(h.start, h.end))
    for i, (a, b) in enumerate(zip(text, v.text, strict=True)):
        if i in covered:
            assert b == "*"
        else:
            assert a == b


@settings(max_examples=300, deadline=None)
@given(texts)
def test_offsets_point_into_the_original(text: str) -> None:
    v = MASKING.check(text, C)
    assert v.action in (Action.NONE, Action.MASK)
    prev_end = 0
    for h in v.hits:
        assert 0 <= h.start < h.end <= len(text)
        assert h.start >= prev_end  # longest match: no overlaps, in order
        prev_end = h.end
        assert MASKING.normalize(text[h.start : h.end]) == MASKING.normalize(h.word)


@settings(max_examples=300, deadline=None)
@given(texts, configs)
def test_normalization_is_idempotent(text: str, config: Normalization) -> None:
    once = normalize(text, config)
    assert normalize(once, config) == once


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(anything)
def test_arbitrary_unicode_never_crashes(text: str) -> None:
    for role in MessageRole:
        v = MASKING.check(text, role)
        assert len(v.text) == len(text)


def test_lone_surrogates_and_combining_marks() -> None:
    for text in (
        "\ud800fuck\udfff",
        "f\u0301u\u0308c\u0327k",
        "\U0001f600" * 3 + "傻\ud83d逼",
        "\u0300" * 50,
    ):
        v = MASKING.check(text, C)
        assert len(v.text) == len(text)
    assert MASKING.check("f\u0332u\u0332c\u0332k", C).words == ("fuck",)


def test_one_megabyte_message() -> None:
    rng = random.Random(7)
    alphabet = "abcdefghijklmnopqrstuvwxyz .,!😀傻逼黄片三国家知识产权局FUCK\u200b\u0301"
    text = "".join(rng.choice(alphabet) for _ in range(1 << 20))
    v = MASKING.check(text, C)
    assert len(v.text) == len(text)
    assert v.hits  # random text over this alphabet holds some 傻逼 or 黄片
    for h in v.hits[:200]:
        assert MASKING.normalize(text[h.start : h.end]) == MASKING.normalize(h.word)
