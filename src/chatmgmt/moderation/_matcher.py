"""Multi-pattern matcher backends: all occurrences of many literal strings in one pass.

A backend compiles a sequence of distinct, non-empty patterns (normalized words) into a
:class:`CompiledMatcher`, whose ``scan(text)`` returns every occurrence, overlapping ones
included, as ``(end, index)`` pairs: ``end`` is the exclusive end offset in ``text`` (in
characters) and ``index`` the pattern's position in the sequence; the list is sorted.

Both shipped backends work on UTF-8 bytes. pyahocorasick's unicode build looks a node's children
up by a linear scan, so a large CJK list (thousands of distinct first characters) makes every
step slow; fed UTF-8 bytes (as a latin-1 ``str``) no node has more than 256 children. Byte offsets
are mapped back to character offsets only for the hits.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from itertools import accumulate, repeat
from typing import Any, Protocol, runtime_checkable

import ahocorasick

from ..errors import ValidationError
from ._normalize import _speedups

__all__ = [
    "AhoCorasickBackend",
    "CompiledMatcher",
    "HyperscanBackend",
    "MatcherBackend",
    "resolve_backend",
]


@runtime_checkable
class CompiledMatcher(Protocol):
    """A compiled set of patterns; immutable and safe to share between threads."""

    def scan(self, text: str) -> list[tuple[int, int]]:
        """Every occurrence as sorted ``(end, pattern_index)``; ``end`` is exclusive."""
        ...


@runtime_checkable
class MatcherBackend(Protocol):
    """Compiles patterns into a :class:`CompiledMatcher`. Instances must be picklable."""

    name: str

    def compile(self, patterns: Sequence[str]) -> CompiledMatcher:
        """Compile distinct, non-empty ``patterns``."""
        ...


def _encode(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


def _byte_ends_to_chars(
    data: bytes, hits: list[tuple[int, int]], shift: int
) -> list[tuple[int, int]]:
    """Map sorted ``(byte_end - shift, index)`` (ends on character boundaries) to exclusive
    character ends, with C-level iteration: each end adds the length of the text decoded
    since the previous one."""
    if len(hits) < 4:
        out: list[tuple[int, int]] = []
        prev_b = chars = 0
        for end_b, idx in hits:
            end_b += shift
            chars += len(data[prev_b:end_b].decode("utf-8", "surrogatepass"))
            prev_b = end_b
            out.append((chars, idx))
        return out
    ends = [e + shift for e, _ in hits] if shift else [e for e, _ in hits]
    pieces = map(data.__getitem__, map(slice, [0, *ends], ends))
    cum = accumulate(map(len, map(bytes.decode, pieces, _UTF8, _SURROGATEPASS)))
    return list(zip(cum, [i for _, i in hits], strict=True))


_UTF8 = repeat("utf-8")
_SURROGATEPASS = repeat("surrogatepass")


def _no_matches(data: str) -> tuple[()]:
    return ()


class _AhoCorasickMatcher:
    __slots__ = ("_automaton", "_patterns", "scan_utf8")

    # what the C speedups feed scan_utf8: UTF-8 as a latin-1 str; ends are inclusive
    utf8_bytes = False
    utf8_end_shift = 1

    def __init__(self, patterns: Sequence[str]) -> None:
        self._patterns = tuple(patterns)
        automaton = ahocorasick.Automaton(ahocorasick.STORE_INTS)
        for i, p in enumerate(self._patterns):
            automaton.add_word(_encode(p).decode("latin-1"), i)
        if self._patterns:
            automaton.make_automaton()
        self._automaton = automaton
        # every occurrence in UTF-8 data given as a latin-1 str: (end - 1, index) in bytes,
        # in order of end (the automaton's own iterator: no Python frame per message)
        self.scan_utf8: Callable[[str], Iterable[tuple[int, int]]] = (
            automaton.iter if self._patterns else _no_matches
        )

    def scan(self, text: str) -> list[tuple[int, int]]:
        if not self._patterns:
            return []
        if text.isascii():
            hits = [(e + 1, i) for e, i in self._automaton.iter(text)]
            if len(hits) > 1:
                hits.sort()
            return hits
        data = text.encode("utf-8", "surrogatepass")
        # iter gives inclusive ends, in increasing order; sort only orders equal ends by index
        hits = list(self._automaton.iter(data.decode("latin-1")))
        if not hits:
            return hits
        if len(hits) > 1:
            hits.sort()
            return _byte_ends_to_chars(data, hits, 1)
        end, idx = hits[0]
        return [(len(data[: end + 1].decode("utf-8", "surrogatepass")), idx)]

    def __reduce__(self) -> tuple[Any, ...]:
        return (_AhoCorasickMatcher, (self._patterns,))


class AhoCorasickBackend:
    """The default backend: pyahocorasick fed UTF-8 bytes. ``iter_long`` is never used."""

    name = "ahocorasick"

    def compile(self, patterns: Sequence[str]) -> CompiledMatcher:
        """Compile ``patterns`` into one automaton."""
        return _AhoCorasickMatcher(patterns)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, AhoCorasickBackend)

    def __hash__(self) -> int:
        return hash(self.name)

    def __repr__(self) -> str:
        return "AhoCorasickBackend()"


class _HyperscanMatcher:
    __slots__ = ("_db", "_local", "_patterns")

    def __init__(self, patterns: Sequence[str]) -> None:
        import hyperscan

        self._patterns = tuple(patterns)
        self._db: Any = None
        if self._patterns:
            db = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
            exprs = [_encode(p) for p in self._patterns]
            db.compile(
                expressions=exprs,
                ids=list(range(len(exprs))),
                elements=len(exprs),
                flags=[0] * len(exprs),
                literal=True,
            )
            self._db = db
        # Hyperscan needs scratch space per concurrent scan: one per thread
        self._local = threading.local()

    def _scratch(self) -> Any:
        scratch = getattr(self._local, "scratch", None)
        if scratch is None:
            import hyperscan

            scratch = self._local.scratch = hyperscan.Scratch(self._db)
        return scratch

    def _scan_bytes(self, data: bytes) -> list[tuple[int, int]]:
        """Every occurrence in ``data`` as ``(end, index)`` in bytes, in Python."""
        hits: list[tuple[int, int]] = []
        append = hits.append

        def on_match(idx: int, _from: int, to: int, _flags: int, _ctx: object) -> None:
            append((to, idx))

        self._db.scan(data, match_event_handler=on_match, scratch=self._scratch())
        return hits

    def scan(self, text: str) -> list[tuple[int, int]]:
        if self._db is None or not text:
            return []
        data = _encode(text)
        hits = self._scan_bytes(data)
        if not hits:
            return hits
        hits.sort()
        if text.isascii():
            return hits
        return _byte_ends_to_chars(data, hits, 0)

    # what the C speedups feed scan_utf8: UTF-8 bytes; ends are exclusive
    utf8_bytes = True
    utf8_end_shift = 0

    def scan_utf8(self, data: bytes) -> list[tuple[int, int]]:
        """Every occurrence in UTF-8 ``data`` as ``(end, index)`` in bytes (``end``
        exclusive)."""
        if self._db is None or not data:
            return []
        if _speedups is not None:
            # records the matches in C: no Python frame and no tuple per match
            matches = _speedups.Matches()
            self._db.scan(data, match_event_handler=matches, scratch=self._scratch())
            return matches  # type: ignore[return-value]
        return self._scan_bytes(data)

    def __reduce__(self) -> tuple[Any, ...]:
        return (_HyperscanMatcher, (self._patterns,))


class HyperscanBackend:
    """Optional backend on Intel Hyperscan (``pip install chatmgmt[hyperscan]``): literal mode,
    several times faster on bulk text; gives the same hits as :class:`AhoCorasickBackend`."""

    name = "hyperscan"

    def __init__(self) -> None:
        try:
            import hyperscan  # noqa: F401
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ValidationError(
                "the hyperscan backend needs the hyperscan package: "
                "pip install 'chatmgmt[hyperscan]'"
            ) from exc

    def compile(self, patterns: Sequence[str]) -> CompiledMatcher:
        """Compile ``patterns`` into one Hyperscan block-mode database."""
        return _HyperscanMatcher(patterns)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, HyperscanBackend)

    def __hash__(self) -> int:
        return hash(self.name)

    def __repr__(self) -> str:
        return "HyperscanBackend()"


def resolve_backend(backend: str | MatcherBackend | None) -> MatcherBackend:
    """A backend from its name (``"ahocorasick"``, ``"hyperscan"``) or itself; None: default."""
    if backend is None or backend == "ahocorasick":
        return AhoCorasickBackend()
    if backend == "hyperscan":
        return HyperscanBackend()
    if isinstance(backend, str):
        raise ValidationError(
            f"unknown matcher backend {backend!r}: use 'ahocorasick' or 'hyperscan'"
        )
    if not isinstance(backend, MatcherBackend):
        raise ValidationError(f"not a matcher backend: {backend!r}")
    return backend
