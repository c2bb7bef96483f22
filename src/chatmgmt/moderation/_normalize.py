"""Text normalization with an offset map back to the original text.

The pipeline has three stages:

1. a per-character fold (case, width, styled letters, lookalikes, traditional→simplified) that
   never changes the length of the text: every character maps to exactly one character, so
   offsets are unchanged;
2. noise skipping: runs of noise (punctuation, symbols, emoji, zero-width and other format
   characters, combining marks) between two word characters are deleted, as are spaces between
   single letters (``f u c k``) and a single digit or space between two CJK characters (``傻1逼``);
   a run of whitespace and noise between two words becomes one space (every whitespace
   character — tab, line break, ideographic space — folds to a space in stage 1, and the rest
   of the run is deleted), so the words of a listed phrase match across any such run;
3. optional collapsing of repeated characters (``fuuuck`` → ``fuck``).

Stages 2 and 3 delete characters; each records where, so a span of the normalized text maps
back to the span of the original text that produced it.
"""

from __future__ import annotations

import functools
import os
import re
import unicodedata
from array import array
from bisect import bisect_right
from importlib import resources
from itertools import accumulate, repeat
from operator import add
from typing import Any

import attrs

try:
    from . import _speedups as _speedups  # re-exported for _matcher
except ImportError:  # pragma: no cover - built at install time when a C compiler is there
    _speedups = None  # type: ignore[assignment]
if os.environ.get("CHATMGMT_NO_SPEEDUPS"):
    _speedups = None  # type: ignore[assignment]

__all__ = ["Normalization", "Normalized", "Normalizer", "has_speedups", "normalize"]

# Characters enumerated when the fold tables are built: the BMP, the supplementary planes that
# hold styled letters and emoji, and the tag / variation-selector block.
_RANGES = ((0, 0x30000), (0xE0000, 0xE0200))

# CJK and other scripts written without spaces: words in them need no word boundary.
_UNSPACED_RANGES = (
    (0x2E80, 0x2FDF), (0x3005, 0x3007), (0x3021, 0x3029), (0x3038, 0x303C), (0x3040, 0x30FF),
    (0x3100, 0x312F), (0x3190, 0x31FF), (0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xF900, 0xFAFF),
    (0x20000, 0x3134F), (0x0E00, 0x0E7F), (0x0E80, 0x0EFF), (0x1000, 0x109F), (0x1780, 0x17FF),
)  # fmt: skip
_CJK_RANGES = ((0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xF900, 0xFAFF), (0x20000, 0x3134F))
# Noise outside the BMP: emoji and other symbol blocks, tags, variation selectors. Kept to a few
# ranges: a character class with many astral ranges makes the regex engine slow.
_ASTRAL_NOISE_RANGES = ((0x1F000, 0x1FBFF), (0xE0000, 0xE0FFF), (0x1D000, 0x1D24F))


def _ranges_class(ranges: tuple[tuple[int, int], ...]) -> str:
    return "".join(f"{re.escape(chr(lo))}-{re.escape(chr(hi))}" for lo, hi in ranges)


_UNSPACED = _ranges_class(_UNSPACED_RANGES)
_CJK = _ranges_class(_CJK_RANGES)
_BOUNDARY_WORD = re.compile(f"[^\\W_{_UNSPACED}]")
"""A word character of a script written with spaces: Latin, Cyrillic, Greek, digits, ..."""

_LOOKALIKES = {
    # Cyrillic
    "а": "a", "в": "b", "е": "e", "ё": "e", "к": "k", "м": "m", "н": "h", "о": "o", "р": "p",
    "с": "c", "т": "t", "у": "y", "х": "x", "ѕ": "s", "і": "i", "ї": "i", "ј": "j", "ԁ": "d",
    "ԛ": "q", "ԝ": "w", "һ": "h", "ӏ": "l", "ο": "o",
    "А": "A", "В": "B", "Е": "E", "Ё": "E", "К": "K", "М": "M", "Н": "H", "О": "O", "Р": "P",
    "С": "C", "Т": "T", "У": "Y", "Х": "X", "Ѕ": "S", "І": "I", "Ї": "I", "Ј": "J", "Ԁ": "D",
    "Ԛ": "Q", "Ԝ": "W", "Һ": "H", "Ӏ": "I",
    # Greek
    "α": "a", "β": "b", "ε": "e", "ι": "i", "κ": "k", "ν": "v", "ρ": "p", "τ": "t",
    "υ": "u", "χ": "x", "ϲ": "c", "ϳ": "j",
    "Α": "A", "Β": "B", "Ε": "E", "Ζ": "Z", "Η": "H", "Ι": "I", "Κ": "K", "Μ": "M", "Ν": "N",
    "Ο": "O", "Ρ": "P", "Τ": "T", "Υ": "Y", "Χ": "X", "Ϲ": "C",
}  # fmt: skip

_STYLE_TAGS = ("<font>", "<circle>", "<super>", "<sub>", "<small>", "<square>", "<compat>")
_WIDTH_TAGS = ("<wide>", "<narrow>")
_NAME_LETTER = re.compile(
    r"^(?:NEGATIVE (?:CIRCLED|SQUARED) |REGIONAL INDICATOR SYMBOL |SQUARED )?"
    r"LATIN (?:CAPITAL |SMALL )?LETTER (?:SMALL CAPITAL )?([A-Z])$"
)


@attrs.frozen
class Normalization:
    """Which normalization steps run, each switchable; all on except t2s and repeat collapsing.

    - ``fold_case``: lower case (final sigma folded too);
    - ``fold_width``: full-width and half-width letters and digits to their plain forms;
    - ``fold_styles``: styled letters and digits (circled, parenthesized, mathematical
      alphanumerics, superscripts, small capitals, negative squared, ...) and Latin letters
      with accents to plain letters;
    - ``fold_lookalikes``: Cyrillic and Greek letters that look like Latin ones to Latin;
    - ``traditional_to_simplified``: traditional Chinese characters to simplified ones through
      the table shipped in the package (``t2s.txt``, one character for one character);
    - ``collapse_repeats``: runs of one repeated character to one (``fuuuck`` → ``fuck``; note
      that words are collapsed too, so ``ass`` is then matched as ``as``);
    - ``skip_noise``: delete noise between the characters of a word, and make any run of
      whitespace and noise between two words one space (see the module docs).

    The same normalization runs on the listed words and on the checked text.
    """

    fold_case: bool = True
    fold_width: bool = True
    fold_styles: bool = True
    fold_lookalikes: bool = True
    traditional_to_simplified: bool = False
    collapse_repeats: bool = False
    skip_noise: bool = True

    @classmethod
    def all(cls) -> Normalization:
        """Every step on."""
        return cls(True, True, True, True, True, True, True)

    @classmethod
    def none(cls) -> Normalization:
        """Every step off: text is matched as it is."""
        return cls(False, False, False, False, False, False, False)


@functools.cache
def _t2s_table() -> dict[str, str]:
    text = resources.files(__package__).joinpath("t2s.txt").read_text(encoding="utf-8")
    table: dict[str, str] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            trad, simp = line.split("\t")
            table[trad] = simp
    return table


def _all_chars() -> list[str]:
    return [chr(cp) for lo, hi in _RANGES for cp in range(lo, hi) if not 0xD800 <= cp < 0xE000]


def _style(c: str) -> str:
    decomp = unicodedata.decomposition(c)
    if decomp.startswith(_STYLE_TAGS):
        folded = unicodedata.normalize("NFKC", c)
        core = folded.strip("().").replace("(", "").replace(")", "")
        if len(core) == 1 and core.isalnum():
            return core
        return c
    if decomp and not decomp.startswith("<"):
        # canonical decomposition: a Latin letter with accents becomes the plain letter
        base = unicodedata.normalize("NFD", c)[0]
        if base.isascii() and base.isalpha():
            return base
        return c
    if not decomp and 0x1D00 <= ord(c) < 0x1F300:
        m = _NAME_LETTER.match(unicodedata.name(c, ""))
        if m:
            name = unicodedata.name(c)
            return (
                m.group(1)
                if "CAPITAL" in name and "SMALL CAPITAL" not in name
                else (m.group(1).lower())
            )
    return c


def _fold_char(c: str, norm: Normalization, t2s: dict[str, str]) -> str:
    r = c
    for _ in range(4):
        prev = r
        if norm.fold_width and unicodedata.decomposition(r).startswith(_WIDTH_TAGS):
            w = unicodedata.normalize("NFKC", r)
            if len(w) == 1 and w.isalnum():
                r = w
        if norm.fold_styles:
            r = _style(r)
        if norm.fold_lookalikes:
            r = _LOOKALIKES.get(r, r)
        if norm.traditional_to_simplified:
            r = t2s.get(r, r)
        if norm.fold_case:
            low = r.lower()
            if len(low) == 1:
                r = low
            if r == "ς":
                r = "σ"
        if r == prev:
            break
    return r


@functools.cache
def _fold_candidates() -> list[str]:
    """Every character some fold step may change (computed once; the rest map to themselves)."""
    extra = set(_LOOKALIKES) | set(_t2s_table()) | {"ς"}
    out = []
    for c in _all_chars():
        if (
            c in extra
            or c.lower() != c
            or unicodedata.decomposition(c)
            or (0x1D00 <= ord(c) < 0x1F300 and _NAME_LETTER.match(unicodedata.name(c, "")))
        ):
            out.append(c)
    return out


def _char_class(chars: list[str]) -> str:
    """A regex character class body for ``chars``, as ranges."""
    cps = sorted({ord(c) for c in chars})
    parts: list[str] = []
    i = 0
    while i < len(cps):
        j = i
        while j + 1 < len(cps) and cps[j + 1] == cps[j] + 1:
            j += 1
        lo, hi = cps[i], cps[j]
        parts.append(
            re.escape(chr(lo)) if lo == hi else f"{re.escape(chr(lo))}-{re.escape(chr(hi))}"
        )
        i = j + 1
    return "".join(parts)


_ASTRAL_NOISE = _ranges_class(_ASTRAL_NOISE_RANGES)


@functools.cache
def _whitespace() -> tuple[str, ...]:
    """Every whitespace character (what ``\\s`` matches) but the space itself."""
    return tuple(c for c in map(chr, range(0x10000)) if c != " " and re.match(r"\s", c))


_OTHER_SPACE = re.compile(r"[^\S ]")
"""A whitespace character other than the space: with ``skip_noise`` it folds to a space (one
more per-character fold, kept out of the fold table so that the common text with a line break
does not go through ``str.translate``)."""


@functools.cache
def _noise_class() -> str:
    noise = [
        c
        for c in map(chr, range(0x10000))
        if not 0xD800 <= ord(c) < 0xE000
        and not c.isspace()
        and (
            unicodedata.category(c)[0] in "PS"
            or unicodedata.category(c) in ("Cf", "Mn", "Me", "Cc")
        )
    ]
    return _char_class(noise) + _ASTRAL_NOISE


@functools.cache
def _fold_tables(norm: Normalization) -> tuple[dict[int, str], re.Pattern[str] | None]:
    """(table for str.translate, regex finding a character the table changes)."""
    t2s = _t2s_table() if norm.traditional_to_simplified else {}
    table: dict[int, str] = {}
    for c in _fold_candidates():
        r = _fold_char(c, norm, t2s)
        if r != c:
            table[ord(c)] = r
    if not table:
        return table, None
    # With fold_case, str.lower() folds the characters that only change case: the search regex
    # looks, in the ORIGINAL text, for the others (whose fold is not their lower case: 'Ζ' is
    # 'z', a lookalike, not 'ζ'); when it finds one, the whole text goes through the table.
    if norm.fold_case:
        rest = [chr(cp) for cp, r in table.items() if chr(cp).lower() != r]
        # str.lower() makes a word-final 'Σ' a 'ς' (its only context-dependent mapping)
        rest.append("Σ")
    else:
        rest = [chr(cp) for cp in table]
    if not rest:
        return table, None
    # Only BMP ranges in the class (the engine then uses a bitmap); any astral character is a
    # candidate, the table decides.
    bmp = _char_class([c for c in rest if ord(c) < 0x10000])
    astral = "\U00010000-\U0010ffff" if any(ord(c) >= 0x10000 for c in rest) else ""
    return table, re.compile(f"[{bmp}{astral}]")


# class bits of the C normalizer (the same as CLS_* in _speedups.c)
_CLS_NOISE = 1
_CLS_UNSPACED = 2
_CLS_CJK = 4
_CLS_W = 8
_CLS_LETTER = 16
_CLS_SPACE = 32
_CLS_DIGIT = 64
_CLS_BWORD = 128
_FOLD_ASTRAL = 0xFF  # no character has every class bit (spaces are not word characters)
_OPT_NOISE = 1
_OPT_COLLAPSE = 2
_OPT_TEXT = 4

_SpeedupArgs = tuple[bytes, dict[int, int] | None, bytes, tuple[tuple[int, int, int], ...], int]


# The C normalizer's tables cover the code points below this: the BMP and the planes of styled
# letters, emoji and CJK extensions (characters above it take a slower path there).
_TABLE_END = 0x30000


@functools.cache
def _speedup_classes() -> tuple[bytes, tuple[tuple[int, int, int], ...]]:
    """Class bits for the C normalizer: a byte per code point below ``_TABLE_END``, and the
    ranges above it."""
    classes = bytearray(_TABLE_END)
    chars = "".join(map(chr, range(_TABLE_END)))
    # the re module's own classes, as the regexes of the pure-Python normalizer use them
    for pattern, bit in (
        (f"[{_noise_class()}]", _CLS_NOISE),
        (r"[^\W_]", _CLS_W),
        (r"[^\W\d_]", _CLS_LETTER),
        (r"\s", _CLS_SPACE),
        (r"\d", _CLS_DIGIT),
        (_BOUNDARY_WORD.pattern, _CLS_BWORD),
    ):
        # runs of matching characters: a few thousand per class, not one match per character
        for m in re.finditer(f"(?:{pattern})+", chars):
            for cp in range(m.start(), m.end()):
                classes[cp] |= bit
    beyond: list[tuple[int, int, int]] = []
    for ranges, bit in (
        (_ASTRAL_NOISE_RANGES, _CLS_NOISE),
        (_UNSPACED_RANGES, _CLS_UNSPACED),
        (_CJK_RANGES, _CLS_CJK),
    ):
        for lo, hi in ranges:
            if lo < _TABLE_END and bit != _CLS_NOISE:  # noise: the regex class set it
                for cp in range(lo, min(hi, _TABLE_END - 1) + 1):
                    classes[cp] |= bit
            if hi >= _TABLE_END:
                beyond.append((max(lo, _TABLE_END), hi, bit))
    assert _FOLD_ASTRAL not in classes
    return bytes(classes), tuple(beyond)


@functools.cache
def _speedup_args(norm: Normalization) -> _SpeedupArgs:
    """The data arguments of ``_speedups.check`` for ``norm`` (built once per config)."""
    table, _ = _fold_tables(norm)
    if norm.skip_noise:
        # every whitespace character is a space (the pure path: _OTHER_SPACE in stages())
        table = {**table, **{ord(c): " " for c in _whitespace()}}
    classes, beyond = _speedup_classes()
    # per code point below _TABLE_END its fold << 8 | the fold's class bits (_FOLD_ASTRAL:
    # the fold lies beyond the table, the C code looks its bits up); folds of characters
    # beyond the table in a dict
    fold = array("I", (cp << 8 | bits for cp, bits in enumerate(classes)))
    fold_beyond: dict[int, int] = {}
    for cp, r in table.items():
        f = ord(r)
        if cp >= _TABLE_END:
            fold_beyond[cp] = f
        elif f < _TABLE_END:
            fold[cp] = f << 8 | classes[f]
        else:
            fold[cp] = f << 8 | _FOLD_ASTRAL
    options = (_OPT_NOISE if norm.skip_noise else 0) | (
        _OPT_COLLAPSE if norm.collapse_repeats else 0
    )
    return fold.tobytes(), fold_beyond or None, classes, beyond, options


@functools.cache
def _noise_regex() -> re.Pattern[str]:
    noise = _noise_class()
    w = r"[^\W_]"
    letter = r"[^\W\d_]"
    # One alternation whose every branch starts by consuming one character of a small class,
    # so the engine can skip quickly to candidates; the context is checked by lookarounds.
    # Every branch's lookbehind checks the class of the consumed character again (noise,
    # space, digit or space), so the leading class may be any superset of
    # ``[noise\s\d]``: it is one BMP bitmap plus the whole astral range, which the engine
    # tests far faster than the exact class (a bitmap, astral ranges and two categories).
    exact = re.compile(f"[{noise}\\s\\d]")
    lead = _char_class([c for c in map(chr, range(0x10000)) if exact.match(c)])
    return re.compile(
        f"([{lead}\U00010000-\U0010ffff](?:"
        # noise between two word characters: f.u.c.k, 法✨轮功
        f"(?<={w}[{noise}])[{noise}]*(?={w})"
        # spaces (and noise) between single letters: f u c k
        f"|(?<=(?<!{w}){letter}\\s)[\\s{noise}]*(?={letter}(?!{w}))"
        # one digit or space between two CJK characters: 傻1逼
        f"|(?<=[{_CJK}][\\d\\s])(?=[{_CJK}])"
        # noise between a word and whitespace that leads to a word: "refund, guaranteed"
        f"|(?<={w}[{noise}])[{noise}]*(?=\\s[\\s{noise}]*{w})"
        # after a space, the rest of a run of spaces and noise before a word: "a  -  b"
        f"|(?<=\\s[\\s{noise}])[\\s{noise}]*(?={w})))"
    )


# A character equal to the next one: deleting every match keeps the last of each run.
_REPEAT = re.compile(r"(.)(?=\1)", re.DOTALL)


def _stage(parts: list[str], single: bool = False) -> tuple[list[int], list[int]]:
    """For a ``re.split`` result (kept pieces at even indices, deleted ones at odd indices),
    ``(out_starts, shifts)``: where each kept piece starts in the output, and for ``k =
    bisect_right(out_starts, i)`` (``i`` an output offset) ``i + shifts[k]`` is its input
    offset (``shifts[0] == 0`` maps ``-1`` to ``-1``). Built with C-level iteration, in time
    proportional to the number of pieces."""
    out_starts = list(accumulate(map(len, parts[0::2]), initial=0))
    out_starts.pop()
    if single:
        # every deleted piece is one character (repeat collapsing)
        return out_starts, [0, *range(len(parts) // 2 + 1)]
    return out_starts, [0, 0, *accumulate(map(len, parts[1::2]))]


def _map(xs: list[int], stage: tuple[list[int], list[int]]) -> list[int]:
    """Output offsets ``xs`` of a stage to its input offsets."""
    out_starts, shifts = stage
    if len(xs) < 4:
        return [x + shifts[bisect_right(out_starts, x)] for x in xs]
    return list(map(add, xs, map(shifts.__getitem__, map(bisect_right, repeat(out_starts), xs))))


_Stage = tuple[list[int], list[int]]


class Normalized:
    """A normalized ``text``, its ``original`` and the way back: ``span(start, end)``.

    ``stages`` lists the deleting steps in the order they ran, as ``(collapse, parts)``:
    ``parts`` the ``re.split`` result of a noise pass (``collapse`` false) or of repeat
    collapsing (true). The tables that map offsets back (where each kept piece starts, found by
    bisection) are built lazily, on the first :meth:`span`, so a text without hits never pays.
    In the collapse step the kept character is the last of its run; a span starting on it
    extends back over the repeats.
    """

    __slots__ = ("_maps", "_stages", "original", "text")

    def __init__(
        self, text: str, original: str, stages: list[tuple[bool, list[str]]] | None = None
    ) -> None:
        self.text = text
        self.original = original
        self._stages = stages
        self._maps: list[tuple[bool, _Stage]] | None = None

    @property
    def changed_length(self) -> bool:
        """Whether characters were deleted (offsets then differ from the original's)."""
        return self._stages is not None

    def _tables(self) -> list[tuple[bool, _Stage]]:
        maps = self._maps
        if maps is None:
            # the last step first: offsets go back through the steps in reverse
            stages = self._stages or []
            maps = self._maps = [(c, _stage(parts, c)) for c, parts in reversed(stages)]
        return maps

    def _start(self, x: int) -> int:
        """The original offset where normalized character ``x`` (its run) starts."""
        for collapse, (out, shifts) in self._tables():
            # the run of a kept character starts right after the previous kept one
            x += shifts[bisect_right(out, x - 1 if collapse else x)]
        return x

    def _last(self, x: int) -> int:
        """The original offset of the last character of normalized character ``x``'s run."""
        for _, (out, shifts) in self._tables():
            x += shifts[bisect_right(out, x)]
        return x

    def spans(self, pairs: list[tuple[int, int]]) -> list[tuple[int, int]]:
        """:meth:`span` of every ``(start, end)`` in ``pairs``; many are mapped in bulk."""
        if self._stages is None:
            return pairs
        if len(pairs) < 4:
            return [(self._start(s), self._last(e - 1) + 1) for s, e in pairs]
        starts = [s for s, _ in pairs]
        lasts = [e - 1 for _, e in pairs]
        for collapse, stage in self._tables():
            if collapse:
                starts = [x + 1 for x in _map([x - 1 for x in starts], stage)]
            else:
                starts = _map(starts, stage)
            lasts = _map(lasts, stage)
        return list(zip(starts, [x + 1 for x in lasts], strict=True))

    def span(self, start: int, end: int) -> tuple[int, int]:
        """The span of the original text that produced ``text[start:end]`` (``start < end``)."""
        return self.spans([(start, end)])[0]

    def gap_before(self, i: int) -> bool:
        """Whether characters other than repeats were deleted between normalized characters
        ``i - 1`` and ``i`` (``0 < i < len(text)``): the run of ``i`` does not start right
        after the run of ``i - 1`` in the original."""
        if self._stages is None:
            return False
        return self._start(i) != self._last(i - 1) + 1

    def __repr__(self) -> str:
        return f"Normalized({self.text!r})"


class Normalizer:
    """A compiled :class:`Normalization`: ``normalize(text)`` returns a :class:`Normalized`.

    With the C speedups built (``chatmgmt.moderation._speedups``) and ``speedups`` true,
    ``normalizer(text)`` and :meth:`for_matcher` run the whole pipeline in one C pass; the
    pure-Python stages give the same results (a differential test checks it) and run when the
    extension is missing.
    """

    __slots__ = ("_args", "_collapse", "_noise", "_search", "_table", "config")

    def __init__(self, config: Normalization, speedups: bool = True) -> None:
        self.config = config
        self._table, self._search = _fold_tables(config)
        self._noise = _noise_regex() if config.skip_noise else None
        self._collapse = config.collapse_repeats
        self._args = _speedup_args(config) if speedups and _speedups is not None else None

    @property
    def fast(self) -> bool:
        """Whether this normalizer runs the C speedups."""
        return self._args is not None

    def speedup_call(self) -> tuple[Any, ...]:
        """``(check, *data)`` for the filter's hot path: ``_speedups.check(text, *data, ...)``
        normalizes as this normalizer does (see ``_speedups.c``). Only when :attr:`fast`."""
        assert self._args is not None and _speedups is not None
        return (_speedups.check, *self._args)

    def speedup_patterns(self, meta: bytes, hit4s: tuple[Any, ...]) -> Any:
        """``_speedups.Patterns(meta, hit4s)``: what the hot path reads per pattern (see
        ``_speedups.c``). Only when :attr:`fast`."""
        assert _speedups is not None
        return _speedups.Patterns(meta, hit4s)

    def for_matcher(self, text: str) -> tuple[str, bytes, bytes]:
        """``(data, maps, flags)`` from the C speedups (only when :attr:`fast`): ``data`` the
        normalized text as UTF-8 in a latin-1 str; ``maps`` native int32, per byte position
        ``p`` of ``data`` the original start of the character starting there (``2p``) and the
        original end of the character ending there (``2p + 1``); ``flags`` per byte position,
        bit 0 when a word starting there fails its left boundary, bit 1 when one ending there
        fails its right boundary."""
        assert self._args is not None and _speedups is not None
        fold, fold_astral, classes, astral, options = self._args
        out = _speedups.normalize(text, fold, fold_astral, classes, astral, options)
        assert isinstance(out, tuple)
        return out

    def fold(self, text: str) -> str:
        """The per-character fold alone; never changes the length."""
        s = text
        if self.config.fold_case:
            s = text.lower()
            if len(s) != len(text) or (self._search is not None and self._search.search(text)):
                s = text.translate(self._table)
        elif self._search is not None and self._search.search(text):
            s = text.translate(self._table)
        if self._noise is not None and _OTHER_SPACE.search(s):
            s = _OTHER_SPACE.sub(" ", s)
        return s

    def stages(self, text: str) -> tuple[str, list[tuple[bool, list[str]]] | None]:
        """``(normalized, stages)``: the arguments of :class:`Normalized` after ``text``,
        without building it (most texts have no hit). Always the pure-Python pipeline."""
        # the fold, inlined (see fold)
        s = text
        if self.config.fold_case:
            s = text.lower()
            if len(s) != len(text) or (self._search is not None and self._search.search(text)):
                s = text.translate(self._table)
        elif self._search is not None and self._search.search(s):
            s = s.translate(self._table)
        if self._noise is not None and _OTHER_SPACE.search(s):
            s = _OTHER_SPACE.sub(" ", s)
        stages: list[tuple[bool, list[str]]] | None = None
        noise = self._noise.split if self._noise is not None else None
        # Noise passes until one deletes nothing (a deletion can put a digit between two CJK
        # characters, say), then repeat collapsing, and again while collapsing deleted
        # something (it can make single letters of "aa b"): normalizing is idempotent.
        while True:
            if noise is not None:
                parts = noise(s)
                while len(parts) > 1:
                    if stages is None:
                        stages = []
                    stages.append((False, parts))
                    s = "".join(parts[0::2])
                    parts = noise(s)
            if not self._collapse:
                break
            parts = _REPEAT.split(s)
            if len(parts) == 1:
                break
            if stages is None:
                stages = []
            stages.append((True, parts))
            s = "".join(parts[0::2])
            if noise is None:
                break
        return s, stages

    def normalize(self, text: str) -> Normalized:
        """Normalize ``text``, keeping what is needed to map spans back to it."""
        s, stages = self.stages(text)
        return Normalized(s, text, stages)

    def __call__(self, text: str) -> str:
        args = self._args
        if args is not None and _speedups is not None:
            fold, fold_astral, classes, astral, options = args
            out = _speedups.normalize(text, fold, fold_astral, classes, astral, options | _OPT_TEXT)
            assert isinstance(out, str)
            return out
        return self.stages(text)[0]


@functools.cache
def _normalizer(config: Normalization) -> Normalizer:
    return Normalizer(config)


def normalize(text: str, normalization: Normalization | None = None) -> str:
    """Normalize ``text`` the way a filter with ``normalization`` sees it (default steps)."""
    return _normalizer(normalization or Normalization())(text)


def has_speedups() -> bool:
    """Whether the optional C speedups are in use: built at install time when a C compiler is
    there, and not turned off by the environment variable ``CHATMGMT_NO_SPEEDUPS``. Without
    them the pure-Python code runs; it gives the same results, several times slower."""
    return _speedups is not None


def is_boundary_word_char(c: str) -> bool:
    """Whether ``c`` is a word character of a script written with spaces (needs boundaries)."""
    return _BOUNDARY_WORD.match(c) is not None
