"""The C speedups (``chatmgmt.moderation._speedups``) against the pure-Python reference.

The pure-Python normalizer in ``_normalize.py`` defines the results; the C normalizer must give
the same normalized text, the same offsets back into the original and the same word-boundary
flags, and a filter on the C path the same verdicts as one on the pure path.

The C extension is required here unless ``CHATMGMT_NO_SPEEDUPS`` is set: a test that needs it
fails with a clear message when it is missing, and passes without checking anything only when
the environment variable says the pure path is wanted. (This module is not doubled by the
``normalizer_path`` fixture of ``conftest.py``: it compares both paths itself.)
"""

from __future__ import annotations

import importlib
import os
import random
import string
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from itertools import accumulate
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from chatmgmt.model import MessageRole
from chatmgmt.moderation import Action, Normalization, SensitiveWordFilter, _normalize
from chatmgmt.moderation._normalize import Normalizer, is_boundary_word_char

C = MessageRole.CUSTOMER
A = MessageRole.AGENT

NO_SPEEDUPS = bool(os.environ.get("CHATMGMT_NO_SPEEDUPS"))
"""The pure path was asked for: tests that need the C extension pass without checking."""


def _need_c() -> bool:
    """Whether the C path is there to test; fails when it is missing and was not switched off
    on purpose (``CHATMGMT_NO_SPEEDUPS``)."""
    if _normalize._speedups is not None:
        return True
    assert NO_SPEEDUPS, (
        "the C extension chatmgmt.moderation._speedups is missing: build it with "
        "`python setup.py build_ext --inplace`, or set CHATMGMT_NO_SPEEDUPS=1 to test the "
        "pure-Python path only"
    )
    return False


@contextmanager
def _pure_path() -> Iterator[None]:
    """Filters built inside use the pure-Python normalizer (as without the extension)."""
    saved = _normalize._speedups
    _normalize._speedups = None  # type: ignore[assignment]
    _normalize._normalizer.cache_clear()
    try:
        yield
    finally:
        _normalize._speedups = saved
        _normalize._normalizer.cache_clear()


PRESETS = [
    Normalization(),
    Normalization.all(),
    Normalization.none(),
    Normalization(skip_noise=False, collapse_repeats=True),
    Normalization(fold_case=False, collapse_repeats=True),
    Normalization(fold_styles=False, fold_width=False),
]
PRESET_IDS = ["default", "all", "none", "collapse-only", "no-case-collapse", "no-styles-width"]

# letters, spaces, punctuation, digits, CJK, astral noise that is alphanumeric (U+1F100), emoji,
# zero-width space, a combining accent, styled letters, Greek capitals that are lookalikes,
# characters whose lower case is longer or context-dependent, a lone surrogate, astral CJK, ...
ALPHABET = [
    *"abcfkuAB ..,-_!?1234 \t\n",
    *"傻逼法轮功三黄片，。",
    "\U0001f100",
    "\U0001f600",
    "\u200b",
    "\u0301",
    "Ⓕ",
    "ｆ",
    "𝐟",
    "🄰",
    "Ζ",
    "Η",
    "Σ",
    "ς",
    "Α",
    "İ",
    "ß",
    "ﬁ",
    "\ud800",
    "\udfff",
    "\U00020001",
    "К",
    "é",
    "１",
    "²",
    "\u3000",
    "\U000e0041",
    "✨",
    "＊",
]
chars = st.one_of(
    st.sampled_from(ALPHABET),
    st.characters(codec=None, exclude_categories=()),  # any code point, surrogates included
)
texts = st.text(chars, max_size=40)


def _utf8_len(c: str) -> int:
    return len(c.encode("utf-8", "surrogatepass"))


def _check_against_pure(fast: Normalizer, pure: Normalizer, text: str) -> None:
    """The C normalizer's text, offset maps and boundary flags equal the pure-Python ones."""
    nt = pure.normalize(text)
    norm = nt.text
    assert pure(text) == norm
    assert fast(text) == norm, (text, norm)
    data, maps, flags = fast.for_matcher(text)
    assert data.encode("latin-1").decode("utf-8", "surrogatepass") == norm
    nb = len(data)
    assert len(maps) == 8 * (nb + 1) and len(flags) == nb + 1
    m = memoryview(maps).cast("i")
    bpos = list(accumulate(map(_utf8_len, norm), initial=0))
    assert bpos[-1] == nb
    n = len(norm)
    for i in range(n):
        for j in range(i + 1, min(n, i + 4) + 1):
            assert (m[2 * bpos[i]], m[2 * bpos[j] + 1]) == nt.span(i, j), (text, i, j)
    if n:
        assert (m[0], m[2 * nb + 1]) == nt.span(0, n), text
    assert flags[0] == 0 and flags[nb] == 0, (text, bytes(flags))
    for i in range(1, n):
        joined = not nt.gap_before(i)
        left = is_boundary_word_char(norm[i - 1]) and joined
        right = is_boundary_word_char(norm[i]) and joined
        assert flags[bpos[i]] == left | (right << 1), (text, i, flags[bpos[i]])


# ---------------------------------------------------------------------------- the extension


def test_the_extension_is_built_where_it_must_be() -> None:
    assert Normalizer(Normalization(), speedups=False).fast is False
    assert Normalizer(Normalization()).fast == (_normalize._speedups is not None)
    assert _normalize._normalizer(Normalization()).fast == (_normalize._speedups is not None)
    if os.environ.get("CI"):
        # CI must never test the fallback alone without saying so
        importlib.import_module("chatmgmt.moderation._speedups")
        if not NO_SPEEDUPS:
            assert _normalize._speedups is not None
    if NO_SPEEDUPS:
        assert _normalize._speedups is None  # the switch is honoured
    _need_c()


# ---------------------------------------------------------------------------- the normalizer


@pytest.mark.parametrize("config", PRESETS, ids=PRESET_IDS)
@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=texts)
def test_normalizer_equals_the_pure_one(config: Normalization, text: str) -> None:
    if not _need_c():
        return
    _check_against_pure(Normalizer(config), Normalizer(config, speedups=False), text)


@pytest.mark.parametrize("config", PRESETS, ids=PRESET_IDS)
def test_texts_around_the_stack_buffer_size(config: Normalization) -> None:
    # the C code uses stack arrays below 256 characters and the heap from there
    if not _need_c():
        return
    fast, pure = Normalizer(config), Normalizer(config, speedups=False)
    rng = random.Random(256)
    for n in (*range(250, 262), 300, 511, 512, 513, 1000):
        for _ in range(3):
            _check_against_pure(fast, pure, "".join(rng.choice(ALPHABET) for _ in range(n)))
        _check_against_pure(fast, pure, "f.u" * (n // 3) + "x" * (n % 3))


def test_flags_at_the_ends_are_zero() -> None:
    # flags[len(data)] once came from an entry past the normalized text (first[len]), left
    # over from the call before on the stack buffer: after "ab", "a" got flags b"\x00\x01"
    if not _need_c():
        return
    n = Normalizer(Normalization())
    for text in ("a", "ab", "a.b", "f u c k", "傻逼a", "1", "a" * 255, "ab" * 200):
        for before in ("", text + "z", text + "zz", "z" + text):
            n.for_matcher(before)
            data, _, flags = n.for_matcher(text)
            assert flags[0] == 0 and flags[len(data)] == 0, (before, text, bytes(flags[-3:]))


def _code_points() -> list[int]:
    # All of the BMP, the supplementary planes the fold tables cover (styled letters, emoji,
    # CJK extensions, up to the end of CJK extension H) and the tag / variation-selector
    # block; the rest of the code space (mostly unassigned) only every 97th code point: all of
    # it would take about 20 s.
    return [
        *range(0x31400),
        *range(0xE0000, 0xE1000),
        *range(0x31400, 0xE0000, 97),
        *range(0xE1000, 0x110000, 97),
        0x10FFFF,
    ]


@pytest.mark.parametrize("config", [Normalization(), Normalization.all()], ids=["default", "all"])
def test_every_single_character_normalizes_the_same(config: Normalization) -> None:
    if not _need_c():
        return
    fast, pure = Normalizer(config), Normalizer(config, speedups=False)
    cs = list(map(chr, _code_points()))
    for wrap in ("{}", "a{}b", "傻{}逼"):
        batch = [wrap.format(c) for c in cs]
        want = list(map(pure, batch))
        got = list(map(fast, batch))
        # the matcher's UTF-8 too (one more C call per text, no Python-level work)
        got_data = [fast.for_matcher(t)[0] for t in batch]
        want_data = [w.encode("utf-8", "surrogatepass").decode("latin-1") for w in want]
        for name, g_all, w_all in (("text", got, want), ("data", got_data, want_data)):
            if g_all != w_all:
                bad = [(t, g, w) for t, g, w in zip(batch, g_all, w_all, strict=True) if g != w]
                pytest.fail(f"{len(bad)} {name} differences (text, C, pure), e.g. {bad[:10]!r}")
    # offsets and flags, checked in Python, on a sample: every 31st code point
    for c in cs[::31]:
        for wrap in ("a{}b", "a{}", "傻{}逼", "a {}", "{}{}b"):
            _check_against_pure(fast, pure, wrap.format(c, c))


@pytest.mark.parametrize("speedups", [True, False], ids=["speedups", "pure"])
@pytest.mark.parametrize("config", PRESETS, ids=PRESET_IDS)
def test_greek_capital_lookalikes_fold_the_same_in_any_text(
    config: Normalization, speedups: bool
) -> None:
    # the pure path once folded "ΖΗ" to "ζη" (lower case) but "İΖΗ" to "izh" (the table)
    if speedups and not _need_c():
        return
    n = Normalizer(config, speedups=speedups)
    for text in ("ΖΗ", "ΖΗΚ", "ΑΒΕΖΗΙΚΜΝΟΡΤΥΧ"):
        assert n("İ" + text) == n("İ") + n(text), text
        assert n("ß" + text) == n("ß") + n(text), text
        assert n(text) == "".join(map(n, text)), text
    if config.fold_case and config.fold_lookalikes:
        assert n("ΖΗ") == "zh"
        assert n("İΖΗ")[1:] == "zh"


@pytest.mark.parametrize("speedups", [True, False], ids=["speedups", "pure"])
@pytest.mark.parametrize("config", PRESETS, ids=PRESET_IDS)
def test_word_final_sigma_folds_like_any_sigma(config: Normalization, speedups: bool) -> None:
    # str.lower() makes a word-final "Σ" a "ς"; the per-character fold makes every one "σ"
    if speedups and not _need_c():
        return
    n = Normalizer(config, speedups=speedups)
    for text in ("ΑΣ", "ΣΑΣ", "ΛΟΓΟΣ", "ΑΣ ΑΣ", "ΑΣ."):
        assert n(text) == "".join(map(n, text)), text
        assert n(text) == n(text.replace("Σ", "ς")) or not config.fold_case, text
    if config.fold_case:
        assert n("ΑΣ") == n("Α") + "σ"
        assert n("Σ") == "σ" == n("ς")


# ---------------------------------------------------------------------------- the filter

CJK = "傻逼法轮功三黄片国家知识产权局"
SEPARATORS = [
    "",
    "",
    ".",
    " ",
    "  ",
    "\u200b",
    "😀",
    "✨",
    "1",
    "-",
    "\u0301",
    "＊",
    "🄀",
    "，",
    "\t",
]


def _valid_word(w: str) -> bool:
    return bool(w.strip()) and not any(c in w for c in "\t\r\n")


words = st.one_of(
    st.text(st.sampled_from(ALPHABET), min_size=1, max_size=6),
    st.text(st.sampled_from(string.ascii_letters), min_size=1, max_size=6),
    st.text(st.sampled_from(CJK), min_size=1, max_size=4),
).filter(_valid_word)
entries = st.tuples(
    words,
    st.sampled_from(["abuse", "politics", "porn"]),
    st.sampled_from(["block", "mask", "warn"]),
)
word_lists = st.fixed_dictionaries(
    {
        "customer": st.lists(entries, max_size=6),
        "agent": st.lists(entries, max_size=6),
        "both": st.lists(entries, max_size=6),
        "allow": st.lists(words, max_size=3),
        "allow_customer": st.lists(words, max_size=2),
        "allow_agent": st.lists(words, max_size=2),
    }
)


@st.composite
def decorated(draw: st.DrawFn, listed: Sequence[str]) -> str:
    """Listed words, disguised (separators inside, upper case, repeats), among random text and
    separators: most texts have hits, some overlapping."""
    parts: list[str] = []
    for _ in range(draw(st.integers(0, 8))):
        kind = draw(st.integers(0, 4))
        if kind <= 2 and listed:
            w = draw(st.sampled_from(listed))
            if draw(st.booleans()):
                w = w.upper()
            if draw(st.booleans()):
                times = draw(st.integers(2, 3))
                w = "".join(c * times if draw(st.booleans()) else c for c in w)
            parts.append(draw(st.sampled_from(SEPARATORS)).join(w))
        elif kind == 3:
            parts.append(draw(st.sampled_from(SEPARATORS)))
        else:
            parts.append(draw(st.text(chars, max_size=6)))
    return "".join(parts)


@st.composite
def filter_cases(draw: st.DrawFn) -> tuple[dict[str, Any], list[str]]:
    lists: dict[str, Any] = draw(word_lists)
    listed = [e[0] for key in ("customer", "agent", "both") for e in lists[key]]
    listed += [*lists["allow"], *lists["allow_customer"], *lists["allow_agent"]]
    return lists, draw(st.lists(decorated(listed), min_size=1, max_size=4))


@pytest.mark.parametrize("config", [Normalization(), Normalization.all()], ids=["default", "all"])
@pytest.mark.parametrize("longest", [True, False], ids=["longest", "every"])
@pytest.mark.parametrize("backend", ["ahocorasick", "hyperscan"])
@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=filter_cases())
def test_verdicts_equal_the_pure_path(
    backend: str, longest: bool, config: Normalization, case: tuple[dict[str, Any], list[str]]
) -> None:
    if not _need_c():
        return
    lists, checked = case
    options: dict[str, Any] = {
        "normalization": config,
        "longest_match": longest,
        "backend": backend,
    }
    fast = SensitiveWordFilter(**lists, **options)
    with _pure_path():
        pure = SensitiveWordFilter(**lists, **options)
    assert fast._fast is not None and pure._fast is None
    for text in checked:
        for role in (C, A):
            assert fast.check(text, role) == pure.check(text, role), (text, role)


def _robustness_texts() -> list[str]:
    rng = random.Random(20)
    mixed = [*ALPHABET, "fuck", "傻逼", "黄片", "FUCK", "f.u.c.k", "傻1逼"]
    big = "".join(rng.choice(mixed) for _ in range(1 << 18))
    return [
        big[: 1 << 20],
        "\ud800\udfff\udc00\ud83d" * 64 + "\ud800",
        "".join(rng.choice(".,!?😀✨\u200b\u0301＊-🄀\U000e0041") for _ in range(5000)),
        "",
        "".join(rng.choice(mixed) for _ in range(300)),
        "f.u.c.k " * 40,
        "傻" * 300,
    ]


@pytest.mark.parametrize("config", [Normalization(), Normalization.all()], ids=["default", "all"])
def test_c_path_robustness(config: Normalization) -> None:
    if not _need_c():
        return
    lists: dict[str, Any] = {
        "customer": [("fuck", "abuse", "mask"), ("傻逼", "abuse", "warn")],
        "agent": [("黄片", "porn", "mask")],
        "both": [("ck", "x", "warn")],
        "allow": ["三黄片"],
    }
    fast = SensitiveWordFilter(**lists, normalization=config)
    with _pure_path():
        pure = SensitiveWordFilter(**lists, normalization=config)
    assert fast._fast is not None and pure._fast is None
    for text in _robustness_texts():
        for role in MessageRole:
            v = fast.check(text, role)
            if v.action is not Action.BLOCK:
                assert len(v.text) == len(text)
            assert v == pure.check(text, role)
        assert fast.normalize(text) == pure.normalize(text)


def test_hits_from_the_c_path_are_not_tracked_by_the_cyclic_gc() -> None:
    # They hold only strings, ints and enum members; tracked, the hits of bulk text drove
    # full collections of the host's heap (docs/performance.md, "Moderation").
    import gc
    import pickle

    if not _need_c():
        return
    flt = SensitiveWordFilter(customer=["fuck", "傻逼"], normalization=Normalization.all())
    verdict = flt.check("f.u.c.k and 傻1逼", MessageRole.CUSTOMER)
    assert len(verdict.hits) == 2
    assert not any(gc.is_tracked(h) for h in verdict.hits)
    assert pickle.loads(pickle.dumps(verdict)) == verdict


# --------------------------------------------------------------------------- multi-word phrases

# what may stand between the words of a listed phrase: whitespace of every kind and noise
PHRASE_GAPS = [" ", "  ", "\t", "\u3000", "\u00a0", "\n", "-", " - ", "\u2014", ", ", "...", "_",
               " \u200b ", "\u2728", " \t- ", ""]  # fmt: skip
phrase_words = st.text(st.sampled_from(string.ascii_lowercase), min_size=2, max_size=6)


@st.composite
def phrase_cases(draw: st.DrawFn) -> tuple[str, str, list[tuple[int, int]]]:
    """A phrase of 2-3 words, and a text holding it with random gaps between its words, among
    other words; with the spans where the phrase was put."""
    # distinct words, none of the filler: occurrences of the phrase cannot overlap
    words = draw(st.lists(phrase_words, min_size=2, max_size=3, unique=True))
    assume(not {"hello", "xx"} & set(words))
    phrase = " ".join(words)
    parts: list[str] = []
    spans: list[tuple[int, int]] = []
    pos = 0
    for _ in range(draw(st.integers(1, 3))):
        filler = draw(st.sampled_from(["", "x ", "hello ", "!! ", "中文 "]))
        typed = words[0]
        for w in words[1:]:
            typed += draw(st.sampled_from(PHRASE_GAPS)) + w
        if draw(st.booleans()):
            typed = typed.upper()
        parts.append(filler)
        pos += len(filler)
        spans.append((pos, pos + len(typed)))
        parts.append(typed)
        pos += len(typed)
        parts.append(" ")
        pos += 1
    return phrase, "".join(parts), spans


@pytest.mark.parametrize("config", [Normalization(), Normalization.all()], ids=["default", "all"])
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=phrase_cases())
def test_phrases_match_across_any_gap_on_both_paths(
    config: Normalization, case: tuple[str, str, list[tuple[int, int]]]
) -> None:
    phrase, text, spans = case
    pure_normalizer = Normalizer(config, speedups=False)
    with _pure_path():
        pure = SensitiveWordFilter(customer=[phrase], normalization=config)
    verdicts = [pure.check(text, C)]
    if _need_c():
        fast = SensitiveWordFilter(customer=[phrase], normalization=config)
        assert fast._fast is not None
        verdicts.append(fast.check(text, C))
        assert verdicts[0] == verdicts[1], text
        _check_against_pure(Normalizer(config), pure_normalizer, text)
    for verdict in verdicts:
        got = [(h.start, h.end) for h in verdict.hits]
        if config.collapse_repeats:
            # repeat collapsing may merge letters across words ("aa a"): every placed phrase
            # is still found where it was put, or inside a longer hit
            assert all(any(s <= a and b <= e for s, e in got) for a, b in spans), (text, got)
        else:
            assert got == spans, (text, got)
