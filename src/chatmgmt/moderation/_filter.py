"""The compiled filter, its hits and verdicts, and the holder that swaps filters atomically."""

from __future__ import annotations

from array import array
from bisect import bisect_right
from collections.abc import Callable, Iterable
from itertools import accumulate
from operator import gt
from typing import TYPE_CHECKING, Any, NamedTuple

from ..errors import SettingsError, ValidationError
from ..model import MessageRole
from ._matcher import CompiledMatcher, MatcherBackend, resolve_backend
from ._normalize import (
    _BOUNDARY_WORD,
    Normalization,
    Normalized,
    Normalizer,
    _normalizer,
)
from ._wordlist import Action, SensitiveWord, WordList, WordSource

if TYPE_CHECKING:
    from ..settings import SensitiveWordSettings

__all__ = ["DEFAULT_BLOCK_PROMPT", "FilterHolder", "Hit", "SensitiveWordFilter", "Verdict"]

DEFAULT_BLOCK_PROMPT = "Your message was not sent because it contains words that are not allowed."
"""The prompt a blocked sender gets unless the filter is given another."""

_CUSTOMER = 0
_AGENT = 1
# pattern bits for the C speedups' check() (M_* in _speedups.c)
_M_LEFT = 1
_M_RIGHT = 2
_M_ALLOWED = 4
_M_HIT = 8
_NONE = Action.NONE
_MASK = Action.MASK
_BLOCK = Action.BLOCK


class Hit(NamedTuple):
    """One matched word: the listed ``word`` with its ``category`` and ``action``, the ``role``
    whose list matched, and ``start``/``end`` offsets into the ORIGINAL text (``end``
    exclusive): ``text[start:end]`` is exactly what the sender typed, noise included.

    An immutable named tuple."""

    word: str
    category: str
    action: Action
    role: MessageRole
    start: int
    end: int


def _unique(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(values))


class Verdict(NamedTuple):
    """The result of :meth:`SensitiveWordFilter.check` (an immutable named tuple).

    - ``action``: the strongest action of the hits, ``Action.NONE`` when there is none;
    - ``hits``: the hits, ordered by ``start``;
    - ``text``: the text to deliver: the original for ``NONE`` and ``WARN``, the text with every
      ``MASK`` hit masked (same length) for ``MASK``, and ``""`` for ``BLOCK`` (a blocked
      message is not delivered at all: the original is deliberately not carried);
    - ``prompt``: for ``BLOCK``, the prompt to show the sender; otherwise ``None``.
    """

    action: Action
    hits: tuple[Hit, ...]
    text: str
    prompt: str | None = None

    @property
    def blocked(self) -> bool:
        """Whether the message must not be delivered."""
        return self.action is Action.BLOCK

    @property
    def clean(self) -> bool:
        """Whether there is no hit at all."""
        return not self.hits

    @property
    def words(self) -> tuple[str, ...]:
        """The listed words that matched, deduplicated, in order of first hit."""
        return _unique(h.word for h in self.hits)

    @property
    def categories(self) -> tuple[str, ...]:
        """The categories of the hits, deduplicated, in order of first hit."""
        return _unique(h.category for h in self.hits)


# per pattern and role: ((word, category, action, role) of the entry, the first four fields of
# its hits, or None; is_allowed; key length; left boundary; right boundary; key length in UTF-8)
_Hit4 = tuple[str, str, Action, MessageRole]
_Info = tuple[_Hit4 | None, bool, int, bool, bool, int]

_new = tuple.__new__
"""``_new(Hit, values)`` builds a named tuple without the Python-level ``__new__``."""

_bword = _BOUNDARY_WORD.match


def _needs_boundary(c: str) -> bool:
    return _BOUNDARY_WORD.match(c) is not None


def _mask(text: str, spans: list[tuple[int, int]], mask_char: str) -> str:
    spans.sort()
    pieces: list[str] = []
    pos = 0
    for s, e in spans:
        if e <= pos:
            continue
        s = max(s, pos)
        pieces.append(text[pos:s])
        pieces.append(mask_char * (e - s))
        pos = e
    pieces.append(text[pos:])
    return "".join(pieces)


_Deny = tuple[int, int, _Hit4]


def _longest(hits: list[_Deny]) -> list[_Deny]:
    """Where hits overlap, keep the longest (then the leftmost); ``hits`` sorted by start."""
    out: list[_Deny] = []
    i = 0
    n = len(hits)
    while i < n:
        j = i + 1
        cluster_end = hits[i][1]
        while j < n and hits[j][0] < cluster_end:
            cluster_end = max(cluster_end, hits[j][1])
            j += 1
        if j == i + 1:
            out.append(hits[i])
        else:
            chosen: list[_Deny] = []
            for h in sorted(hits[i:j], key=lambda h: (h[0] - h[1], h[0])):
                if all(h[1] <= c[0] or c[1] <= h[0] for c in chosen):
                    chosen.append(h)
            chosen.sort(key=lambda h: h[0])
            out.extend(chosen)
        i = j
    return out


_MAX_JOINED_GAPS = 5
"""A phrase with up to this many gaps between its words matches with any mix of gaps."""


def _joined_variants(key: str) -> list[str]:
    """The forms of a normalized phrase with some of its spaces removed.

    Noise skipping deletes a hyphen or other noise between two words ("refund-guaranteed" is
    "refundguaranteed"), and makes any run with whitespace one space: the phrase matches when
    its words are written with any mix of the two, which is every way of removing some of its
    spaces. Up to ``_MAX_JOINED_GAPS`` gaps every mix is listed (at most 31 more patterns);
    beyond, only the words all joined.
    """
    words = key.split(" ")
    gaps = len(words) - 1
    if gaps > _MAX_JOINED_GAPS:
        return ["".join(words)]
    out = []
    for mask in range(1, 1 << gaps):
        text = words[0]
        for i, word in enumerate(words[1:]):
            text += ("" if mask >> i & 1 else " ") + word
        out.append(text)
    return out


class SensitiveWordFilter:
    """A compiled, immutable, picklable sensitive-word filter.

    ``customer`` lists what customers may not send, ``agent`` what agents may not send, ``both``
    applies to both; ``allow``, ``allow_customer`` and ``allow_agent`` list strings whose
    occurrences cancel the hits they cover (``Scunthorpe`` allowed: no ``cunt`` hit inside it).
    Each list is a :data:`~chatmgmt.moderation.WordSource`; bare words get category
    ``"default"`` and action ``BLOCK``.

    ``check(text, MessageRole.CUSTOMER)`` runs the customer list and ``both``;
    ``MessageRole.AGENT`` the agent list and ``both``; ``SYSTEM`` and ``BOT`` messages are not
    checked (a clean verdict). When a normalized word appears in several lists for one role, the
    strongest action wins (the first listed entry among equals).

    Raises :class:`~chatmgmt.errors.ValidationError` on a bad word, action, mask character or
    backend.
    """

    __slots__ = (
        "_check",
        "_fast",
        "_infos",
        "_matcher",
        "_normalizer",
        "agent",
        "allow",
        "allow_agent",
        "allow_customer",
        "backend",
        "block_prompt",
        "both",
        "customer",
        "longest_match",
        "mask_char",
        "normalization",
    )

    customer: WordList
    agent: WordList
    both: WordList
    allow: tuple[str, ...]
    allow_customer: tuple[str, ...]
    allow_agent: tuple[str, ...]
    normalization: Normalization
    mask_char: str
    longest_match: bool
    block_prompt: str
    backend: MatcherBackend
    _matcher: CompiledMatcher
    _normalizer: Normalizer
    _infos: tuple[tuple[_Info, ...], tuple[_Info, ...]]
    _fast: tuple[tuple[Any, ...], ...] | None
    _check: Callable[..., Any]

    def __init__(
        self,
        customer: WordSource = None,
        agent: WordSource = None,
        both: WordSource = None,
        allow: Iterable[str] = (),
        allow_customer: Iterable[str] = (),
        allow_agent: Iterable[str] = (),
        *,
        normalization: Normalization | None = None,
        mask_char: str = "*",
        longest_match: bool = True,
        block_prompt: str = DEFAULT_BLOCK_PROMPT,
        backend: str | MatcherBackend | None = None,
    ) -> None:
        if not isinstance(mask_char, str) or len(mask_char) != 1:
            raise ValidationError(f"mask_char must be exactly one character, got {mask_char!r}")
        norm = normalization if normalization is not None else Normalization()
        if not isinstance(norm, Normalization):
            raise ValidationError(f"normalization must be a Normalization, got {norm!r}")
        setattr_ = object.__setattr__
        setattr_(self, "customer", WordList.of(customer))
        setattr_(self, "agent", WordList.of(agent))
        setattr_(self, "both", WordList.of(both))
        setattr_(self, "allow", _allow_tuple(allow, "allow"))
        setattr_(self, "allow_customer", _allow_tuple(allow_customer, "allow_customer"))
        setattr_(self, "allow_agent", _allow_tuple(allow_agent, "allow_agent"))
        setattr_(self, "normalization", norm)
        setattr_(self, "mask_char", mask_char)
        setattr_(self, "longest_match", bool(longest_match))
        setattr_(self, "block_prompt", str(block_prompt))
        setattr_(self, "backend", resolve_backend(backend))
        setattr_(self, "_normalizer", _normalizer(norm))
        self._compile()

    def _compile(self) -> None:
        normalize = self._normalizer
        keys: dict[str, int] = {}
        # per key: [customer entry, agent entry, customer allowed, agent allowed]
        slots: list[list[Any]] = []

        joined = self.normalization.skip_noise

        def slots_of(word: str) -> list[list[Any]]:
            key = normalize(word)
            if not key:
                return []
            variants = [key]
            if joined and " " in key:
                variants.extend(normalize(v) for v in _joined_variants(key))
            out = []
            for variant in dict.fromkeys(variants):
                idx = keys.get(variant)
                if idx is None:
                    idx = keys[variant] = len(slots)
                    slots.append([None, None, False, False])
                out.append(slots[idx])
            return out

        def put(entry: SensitiveWord, role: int) -> None:
            for s in slots_of(entry.word):
                if s[role] is None or entry.action > s[role].action:
                    s[role] = entry

        for e in self.customer:
            put(e, _CUSTOMER)
        for e in self.agent:
            put(e, _AGENT)
        for e in self.both:
            put(e, _CUSTOMER)
            put(e, _AGENT)
        for roles, words in (
            ((_CUSTOMER, _AGENT), self.allow),
            ((_CUSTOMER,), self.allow_customer),
            ((_AGENT,), self.allow_agent),
        ):
            for w in words:
                for s in slots_of(w):
                    for r in roles:
                        s[2 + r] = True
        patterns = list(keys)
        infos: list[list[_Info]] = [[], []]
        for key, s in zip(patterns, slots, strict=True):
            lb = _needs_boundary(key[0])
            rb = _needs_boundary(key[-1])
            for r, role in ((_CUSTOMER, MessageRole.CUSTOMER), (_AGENT, MessageRole.AGENT)):
                e = s[r]
                hit = None if e is None else (e.word, e.category, e.action, role)
                blen = len(key.encode("utf-8", "surrogatepass"))
                infos[r].append((hit, s[2 + r], len(key), lb, rb, blen))
        object.__setattr__(self, "_infos", (tuple(infos[0]), tuple(infos[1])))
        matcher = self.backend.compile(patterns)
        object.__setattr__(self, "_matcher", matcher)
        # the C speedups and a matcher that reads their UTF-8 output: normalization, matching
        # and hits in one call (a custom backend without scan_utf8 gets the pure-Python path)
        scan_utf8 = getattr(matcher, "scan_utf8", None)
        fast: tuple[tuple[Any, ...], ...] | None = None
        if normalize.fast and scan_utf8 is not None:
            check, *head = normalize.speedup_call()
            object.__setattr__(self, "_check", check)
            tail = (
                scan_utf8,
                bool(getattr(matcher, "utf8_bytes", False)),
                int(getattr(matcher, "utf8_end_shift", 0)),
            )
            per_role = []
            for r in (_CUSTOMER, _AGENT):
                meta = array("i")
                for hit, is_allowed, length, lb, rb, blen in infos[r]:
                    bits = (
                        (_M_LEFT if lb else 0)
                        | (_M_RIGHT if rb else 0)
                        | (_M_ALLOWED if is_allowed else 0)
                        | (_M_HIT if hit is not None else 0)
                    )
                    meta.extend((blen, length, bits))
                hit4s = tuple(info[0] for info in infos[r])
                patterns = normalize.speedup_patterns(meta.tobytes(), hit4s)
                per_role.append((*head, *tail, patterns, Hit, self.longest_match))
            fast = tuple(per_role)
        object.__setattr__(self, "_fast", fast)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"SensitiveWordFilter is immutable; cannot set {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"SensitiveWordFilter is immutable; cannot delete {name!r}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (
            _rebuild,
            (
                self.customer,
                self.agent,
                self.both,
                self.allow,
                self.allow_customer,
                self.allow_agent,
                self.normalization,
                self.mask_char,
                self.longest_match,
                self.block_prompt,
                self.backend,
            ),
        )

    def __repr__(self) -> str:
        return (
            f"SensitiveWordFilter(customer={len(self.customer)} words, agent={len(self.agent)} "
            f"words, both={len(self.both)} words, backend={self.backend.name!r})"
        )

    # ------------------------------------------------------------------ constructors

    @classmethod
    def from_settings(
        cls, settings: SensitiveWordSettings, *, backend: str | MatcherBackend | None = None
    ) -> SensitiveWordFilter:
        """A filter from the ``sensitive_words`` settings section; with ``enabled`` off, a filter
        with no words (every verdict clean). ``SettingsError`` on a bad entry."""
        norm = Normalization(
            fold_case=settings.fold_case,
            fold_width=settings.fold_width,
            fold_styles=settings.fold_styles,
            fold_lookalikes=settings.fold_lookalikes,
            traditional_to_simplified=settings.traditional_to_simplified,
            collapse_repeats=settings.collapse_repeats,
            skip_noise=settings.skip_noise,
        )
        common: dict[str, Any] = {
            "normalization": norm,
            "mask_char": settings.mask_char,
            "longest_match": settings.longest_match,
            "block_prompt": settings.block_prompt,
            "backend": backend,
        }
        if not settings.enabled:
            return cls(**common)
        try:
            return cls(
                customer=settings.customer,
                agent=settings.agent,
                both=settings.both,
                allow=settings.allow,
                allow_customer=settings.allow_customer,
                allow_agent=settings.allow_agent,
                **common,
            )
        except ValidationError as exc:
            raise SettingsError("sensitive_words", str(exc)) from None

    @classmethod
    def from_files(
        cls,
        customer: str | None = None,
        agent: str | None = None,
        both: str | None = None,
        allow: str | None = None,
        **options: Any,
    ) -> SensitiveWordFilter:
        """A filter from word-list files (see :meth:`WordList.from_file`); ``allow`` is a file of
        allowed strings, one a line. ``options`` go to the constructor."""
        allowed: tuple[str, ...] = ()
        if allow is not None:
            allowed = WordList.from_file(allow).words
        return cls(
            customer=WordList.from_file(customer) if customer else None,
            agent=WordList.from_file(agent) if agent else None,
            both=WordList.from_file(both) if both else None,
            allow=allowed,
            **options,
        )

    # ------------------------------------------------------------------ checking

    def normalize(self, text: str) -> str:
        """``text`` as this filter's matcher sees it."""
        return self._normalizer(text)

    def check(self, text: str, role: MessageRole) -> Verdict:
        """Check what a sender in ``role`` wrote; never raises on any ``str``."""
        if role is MessageRole.CUSTOMER:
            r = _CUSTOMER
        elif role is MessageRole.AGENT:
            r = _AGENT
        else:
            return _new(Verdict, (_NONE, (), text, None))
        if not text:
            return _new(Verdict, (_NONE, (), text, None))
        fast = self._fast
        if fast is not None:
            out = self._check(text, *fast[r])
            if out is None:
                return _new(Verdict, (_NONE, (), text, None))
            return self._decided(text, *out)
        norm, stages = self._normalizer.stages(text)
        raw = self._matcher.scan(norm)
        if not raw:
            return _new(Verdict, (_NONE, (), text, None))
        return self._verdict(
            Normalized(norm, text, stages),
            raw,
            self._infos[r],
        )

    def _verdict(
        self,
        nt: Normalized,
        raw: list[tuple[int, int]],
        infos: tuple[_Info, ...],
    ) -> Verdict:
        norm = nt.text
        n = len(norm)
        bword = _bword
        staged = nt.changed_length
        gap = nt.gap_before
        deny: list[_Deny] = []
        allowed: list[tuple[int, int]] = []
        for end, pid in raw:
            hit, is_allowed, length, lb, rb, _ = infos[pid]
            start = end - length
            if is_allowed:
                allowed.append((start, end))
            if hit is None:
                continue
            # a word character of a script written with spaces right before or after the hit
            # (the regex only for characters from Thai on), unless noise was deleted there
            if lb and start:
                c = norm[start - 1]
                if (
                    c.isalnum()
                    and (c < "\u0e00" or bword(c) is not None)
                    and (not staged or not gap(start))
                ):
                    continue
            if rb and end < n:
                c = norm[end]
                if (
                    c.isalnum()
                    and (c < "\u0e00" or bword(c) is not None)
                    and (not staged or not gap(end))
                ):
                    continue
            deny.append((start, end, hit))
        original = nt.original
        if not deny:
            return _new(Verdict, (_NONE, (), original, None))
        if allowed:
            allowed.sort()
            starts = [a for a, _ in allowed]
            reach = list(accumulate([b for _, b in allowed], max))
            deny = [h for h in deny if (k := bisect_right(starts, h[0]) - 1) < 0 or reach[k] < h[1]]
            if not deny:
                return _new(Verdict, (_NONE, (), original, None))
        if len(deny) > 1:
            # (start, end) pairs are distinct: equal ones would be one pattern
            deny.sort()
            if self.longest_match:
                ends = [e for _, e, _ in deny]
                ends.pop()
                # overlaps only: most texts have none
                if any(map(gt, ends, [s for s, _, _ in deny][1:])):
                    deny = _longest(deny)
        if staged:
            spans = nt.spans([(s, e) for s, e, _ in deny])
            hits = [_new(Hit, h[2] + se) for h, se in zip(deny, spans, strict=True)]
        else:
            hits = [_new(Hit, h[2] + h[:2]) for h in deny]
        return self._decided(original, tuple(hits), max([h[2][2] for h in deny]))

    def _decided(self, original: str, hits: tuple[Hit, ...], action: Action) -> Verdict:
        """The verdict of ``hits`` (ordered, offsets into ``original``) whose strongest action
        is ``action``: blocked, masked or delivered as it is."""
        if action is _BLOCK:
            return _new(Verdict, (action, hits, "", self.block_prompt))
        text = original
        if action is _MASK:
            text = _mask(text, [(h[4], h[5]) for h in hits if h[2] is _MASK], self.mask_char)
        return _new(Verdict, (action, hits, text, None))


def _allow_tuple(values: Iterable[str], name: str) -> tuple[str, ...]:
    if isinstance(values, str):
        raise ValidationError(f"{name} must be an iterable of strings, not a single string")
    out: list[str] = []
    for v in values:
        if not isinstance(v, str) or not v.strip():
            raise ValidationError(f"{name}: entries must be non-empty strings, got {v!r}")
        out.append(v.strip())
    return tuple(out)


def _rebuild(*args: Any) -> SensitiveWordFilter:
    (customer, agent, both, allow, allow_c, allow_a, norm, mask, longest, prompt, backend) = args
    return SensitiveWordFilter(
        customer,
        agent,
        both,
        allow,
        allow_c,
        allow_a,
        normalization=norm,
        mask_char=mask,
        longest_match=longest,
        block_prompt=prompt,
        backend=backend,
    )


class FilterHolder:
    """Holds the current filter and swaps in a new one atomically.

    ``check`` reads the current filter once, so a check running while :meth:`reload` swaps
    finishes on the filter it started with; no lock is taken on the hot path (rebinding one
    attribute is atomic). Build the new filter first (it may take a while), then ``reload``.
    """

    __slots__ = ("_filter",)

    def __init__(self, filter: SensitiveWordFilter | None = None) -> None:
        self._filter = filter if filter is not None else SensitiveWordFilter()

    @property
    def filter(self) -> SensitiveWordFilter:
        """The filter in use now."""
        return self._filter

    def check(self, text: str, role: MessageRole) -> Verdict:
        """``self.filter.check(text, role)``."""
        return self._filter.check(text, role)

    def reload(self, new_filter: SensitiveWordFilter) -> SensitiveWordFilter:
        """Swap ``new_filter`` in; return the previous one."""
        if not isinstance(new_filter, SensitiveWordFilter):
            raise ValidationError(f"reload needs a SensitiveWordFilter, got {new_filter!r}")
        old, self._filter = self._filter, new_filter
        return old
