"""The ``sensitive_words`` section of the settings tree: moderation entries and actions.

A piece of :mod:`chatmgmt.settings`, which re-exports its public names; kept apart so that each
module holds one part of the tree.
"""

from __future__ import annotations

import attrs

from ._base import MAX_COUNT, _need, _number

__all__ = [
    "SensitiveWordSettings",
    "WordEntry",
]


# --------------------------------------------------------------------------- 4. sensitive words

_ACTIONS = ("block", "mask", "warn")


@attrs.frozen
class WordEntry:
    """A sensitive word with its category and action (``block``, ``mask`` or ``warn``)."""

    word: str = attrs.field(metadata={"doc": "The word or phrase to find."})
    category: str = attrs.field(
        default="default", metadata={"doc": "An open category: abuse, politics, contact-info, ..."}
    )
    action: str = attrs.field(
        default="block",
        metadata={
            "doc": "block (not delivered), mask (matched characters replaced) "
            "or warn (delivered, flagged)."
        },
    )

    def check(self, path: str) -> None:
        """Raise SettingsError at ``path`` when invalid."""
        _need(bool(self.word.strip()), f"{path}.word", "must be a non-empty word")
        _need(self.action in _ACTIONS, f"{path}.action", f"must be one of {', '.join(_ACTIONS)}")


@attrs.frozen
class SensitiveWordSettings:
    """Sensitive-word moderation.

    Lists: ``customer`` (what customers send), ``agent`` (what agents send), ``both``;
    allow-lists ``allow`` (both roles), ``allow_customer``, ``allow_agent``. Normalization
    switches mirror :class:`chatmgmt.moderation.Normalization`. ``alert_hits`` within
    ``alert_window_s`` from one sender raise a supervisor alert (0: off).
    ``original_in_webhooks``: whether the original text of a masked or blocked message may
    appear in webhook payloads.
    """

    enabled: bool = attrs.field(default=True, metadata={"doc": "Run moderation on messages."})
    customer: tuple[WordEntry, ...] = ()
    agent: tuple[WordEntry, ...] = ()
    both: tuple[WordEntry, ...] = ()
    allow: tuple[str, ...] = ()
    allow_customer: tuple[str, ...] = ()
    allow_agent: tuple[str, ...] = ()
    block_prompt: str = attrs.field(
        default="Your message was not sent because it contains words that are not allowed.",
        metadata={"doc": "What the sender of a blocked message is shown."},
    )
    mask_char: str = attrs.field(
        default="*", metadata={"doc": "The character that replaces each masked character."}
    )
    longest_match: bool = attrs.field(
        default=True, metadata={"doc": "Where hits overlap, keep the longest."}
    )
    fold_case: bool = attrs.field(default=True, metadata={"doc": "Match regardless of case."})
    fold_width: bool = attrs.field(
        default=True, metadata={"doc": "Match full-width letters and digits as half-width."}
    )
    fold_styles: bool = attrs.field(
        default=True,
        metadata={"doc": "Match circled, parenthesized and mathematical letters as plain ones."},
    )
    fold_lookalikes: bool = attrs.field(
        default=True, metadata={"doc": "Match lookalike Cyrillic and Greek letters as Latin ones."}
    )
    traditional_to_simplified: bool = attrs.field(
        default=False, metadata={"doc": "Match traditional Chinese as simplified (shipped table)."}
    )
    collapse_repeats: bool = attrs.field(
        default=False, metadata={"doc": "Match repeated characters as one (fuuuck)."}
    )
    skip_noise: bool = attrs.field(
        default=True,
        metadata={
            "doc": "Skip punctuation, symbols, emoji, zero-width characters and spaces "
            "between single letters inside words."
        },
    )
    alert_hits: int = 0
    alert_window_s: float = 600.0
    original_in_webhooks: bool = False

    def __attrs_post_init__(self) -> None:
        p = "sensitive_words"
        for role in ("customer", "agent", "both"):
            for i, entry in enumerate(getattr(self, role)):
                entry.check(f"{p}.{role}[{i}]")
        _need(len(self.mask_char) == 1, f"{p}.mask_char", "must be exactly one character")
        _number(self.alert_hits, f"{p}.alert_hits", hi=MAX_COUNT, integer=True, note="0: off")
        _number(self.alert_window_s, f"{p}.alert_window_s", above=True)
