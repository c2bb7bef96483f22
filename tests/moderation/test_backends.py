"""The matcher backends: the hyperscan backend gives exactly the default backend's hits."""

from __future__ import annotations

import pickle

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chatmgmt.model import MessageRole
from chatmgmt.moderation import (
    AhoCorasickBackend,
    CompiledMatcher,
    HyperscanBackend,
    MatcherBackend,
    Normalization,
    SensitiveWordFilter,
)

try:
    import hyperscan  # noqa: F401
except ImportError:  # pragma: no cover - hyperscan is in the dev environment
    pytest.skip("hyperscan is not installed", allow_module_level=True)

ALPHABET = "abcxyz 傻逼黄片国家.😀\u200bAB"
words = st.lists(st.text(alphabet=ALPHABET, min_size=1, max_size=5), min_size=1, max_size=30)


def test_backends_satisfy_the_protocol() -> None:
    for backend in (AhoCorasickBackend(), HyperscanBackend()):
        assert isinstance(backend, MatcherBackend)
        matcher = backend.compile(["he", "she", "his", "hers", "傻逼"])
        assert isinstance(matcher, CompiledMatcher)
        assert matcher.scan("ushers 傻逼") == [(4, 0), (4, 1), (6, 3), (9, 4)]
        assert pickle.loads(pickle.dumps(matcher)).scan("she") == [(3, 0), (3, 1)]


def test_known_pyahocorasick_iter_long_case() -> None:
    # iter_long misses hits here; we select the longest ourselves over iter
    for backend in ("ahocorasick", "hyperscan"):
        f = SensitiveWordFilter(customer=["知识产权", "国家知识产权局"], backend=backend)
        assert f.check("国家知识产权", MessageRole.CUSTOMER).words == ("知识产权",)
        assert f.check("国家知识产权局", MessageRole.CUSTOMER).words == ("国家知识产权局",)


@settings(max_examples=150, deadline=None)
@given(words, st.text(alphabet=ALPHABET, max_size=60))
def test_raw_matches_are_identical(patterns: list[str], text: str) -> None:
    patterns = list(dict.fromkeys(patterns))
    default = AhoCorasickBackend().compile(patterns).scan(text)
    fast = HyperscanBackend().compile(patterns).scan(text)
    assert default == fast
    for end, idx in default:
        assert text[end - len(patterns[idx]) : end] == patterns[idx]


@settings(max_examples=100, deadline=None)
@given(words, st.text(alphabet=ALPHABET, max_size=60), st.booleans())
def test_filter_hits_are_identical(patterns: list[str], text: str, longest: bool) -> None:
    patterns = [p for p in patterns if p.strip()]
    kw = {"normalization": Normalization.all(), "longest_match": longest}
    default = SensitiveWordFilter(customer=patterns, **kw)  # type: ignore[arg-type]
    fast = SensitiveWordFilter(customer=patterns, backend="hyperscan", **kw)  # type: ignore[arg-type]
    assert default.check(text, MessageRole.CUSTOMER) == fast.check(text, MessageRole.CUSTOMER)


@pytest.mark.parametrize("backend", ["ahocorasick", "hyperscan"])
def test_threads_check_one_filter_at_once(backend: str) -> None:
    # Hyperscan needs scratch space per concurrent scan (one shared scratch raised
    # ScratchInUseError as soon as two threads scanned at once)
    import threading

    words = [f"w{i:04d}x" for i in range(300)] + ["傻逼", "法轮功"]
    flt = SensitiveWordFilter(customer=words, backend=backend)
    texts = [" ".join(words[j] + " filler 傻1逼 text" for j in range(i, i + 40)) for i in range(8)]
    expected = [flt.check(t, MessageRole.CUSTOMER) for t in texts]
    assert all(len(v.hits) == 80 for v in expected)
    errors: list[str] = []
    start = threading.Barrier(4)

    def work() -> None:
        start.wait()
        try:
            for _ in range(30):
                for t, e in zip(texts, expected, strict=True):
                    if flt.check(t, MessageRole.CUSTOMER) != e:
                        errors.append("a different verdict")
        except Exception as exc:
            errors.append(repr(exc))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
