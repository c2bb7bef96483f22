"""Private fast paths checked against their plain definitions."""

from __future__ import annotations

import random
import re
import sys

from chatmgmt.moderation._normalize import (
    _BOUNDARY_WORD,
    Normalization,
    Normalized,
    _noise_class,
    _noise_regex,
    _normalizer,
)


def test_boundary_fast_path_matches_the_regex() -> None:
    # the verdict tests c.isalnum() and, from U+0E00 on only, the regex
    for cp in range(sys.maxunicode + 1):
        c = chr(cp)
        fast = c.isalnum() and (c < "\u0e00" or _BOUNDARY_WORD.match(c) is not None)
        assert fast == (_BOUNDARY_WORD.match(c) is not None), hex(cp)


def test_noise_lead_class_is_a_superset() -> None:
    # every branch re-checks the consumed character, so the leading class may be wider
    lead = re.compile(_noise_regex().pattern[1 : _noise_regex().pattern.index("](?:") + 1])
    exact = re.compile(f"[{_noise_class()}\\s\\d]")
    for cp in range(sys.maxunicode + 1):
        c = chr(cp)
        if exact.match(c):
            assert lead.match(c), hex(cp)


def _positions(parts: list[str]) -> list[int]:
    """The input offset of every kept character of a ``re.split`` result, one by one."""
    out: list[int] = []
    pos = 0
    for i, part in enumerate(parts):
        if i % 2 == 0:
            out.extend(range(pos, pos + len(part)))
        pos += len(part)
    return out


def _reference_span(nt: Normalized, start: int, end: int) -> tuple[int, int]:
    """The span through per-character offset arrays (the first implementation), step by
    step from the last deleting step back."""
    last = end - 1
    for collapse, parts in reversed(nt._stages or []):
        pos = _positions(parts)
        src = "".join(parts)
        start, last = pos[start], pos[last]
        if collapse:
            while start > 0 and src[start - 1] == src[start]:
                start -= 1
    return start, last + 1


def test_spans_equal_the_per_character_reference() -> None:
    rng = random.Random(7)
    alphabet = "aab c.!，傻逼 1 ff  ✨\u200bxx㐀0:"
    for config in (
        Normalization.all(),
        Normalization(),
        Normalization(skip_noise=False, collapse_repeats=True),
    ):
        norm = _normalizer(config)
        for _ in range(300):
            text = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 60)))
            nt = norm.normalize(text)
            n = len(nt.text)
            if not n:
                continue
            starts = (rng.randrange(n) for _ in range(rng.randint(1, 9)))
            pairs = sorted((s, rng.randint(s + 1, n)) for s in starts)
            expected = [_reference_span(nt, s, e) for s, e in pairs]
            assert nt.spans(pairs) == expected  # bulk when 4 or more
            assert [nt.span(s, e) for s, e in pairs] == expected  # one by one
            for i in range(1, n):
                gap = _reference_span(nt, i - 1, i)[1] < _reference_span(nt, i, i + 1)[0]
                assert nt.gap_before(i) == gap
