"""The ``satisfaction`` section of the settings tree: schemes, invitation and rating rules, and
:func:`resolve_satisfaction`, which lays a group's and a channel's invitation rules over it.

A piece of :mod:`chatmgmt.settings`, which re-exports its public names.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from ..model import EndReason
from ._base import MAX_COUNT, _fail, _need, _number
from ._enums import SecondRating
from ._overrides import _SKIP_CHECK, _apply


@attrs.frozen
class SatisfactionScheme:
    """An evaluation scheme: 2, 3 or 5 levels (1 = worst), a label and tags per level."""

    levels: int = attrs.field(default=5, metadata={"doc": "2, 3 or 5 levels; 1 is the worst."})
    labels: tuple[str, ...] = attrs.field(
        default=(
            "Very dissatisfied",
            "Dissatisfied",
            "Neutral",
            "Satisfied",
            "Very satisfied",
        ),
        metadata={"doc": "One label per level, worst first."},
    )
    tags: Mapping[str, tuple[str, ...]] = attrs.field(
        factory=dict,
        metadata={"doc": "Tags the customer may pick, per level (keys '1'..'levels')."},
    )
    ask_resolved: bool = attrs.field(
        default=True, metadata={"doc": "Ask 'was your problem solved?'."}
    )
    comment_required_below: int = attrs.field(
        default=0, metadata={"doc": "A comment is required for levels below this (0: never)."}
    )
    comment_max_length: int = attrs.field(
        default=500, metadata={"doc": "Longest accepted comment."}
    )

    def check(self, path: str) -> None:
        """Raise SettingsError at ``path`` when invalid."""
        _need(self.levels in (2, 3, 5), f"{path}.levels", "must be 2, 3 or 5")
        _need(
            len(self.labels) == self.levels,
            f"{path}.labels",
            f"needs one label per level ({self.levels}), got {len(self.labels)}",
        )
        for key in self.tags:
            _need(
                key.isdigit() and 1 <= int(key) <= self.levels,
                f"{path}.tags.{key}",
                f"keys are levels 1..{self.levels}",
            )
        _number(
            self.comment_required_below,
            f"{path}.comment_required_below",
            hi=self.levels + 1,
            integer=True,
            note="0: never",
        )
        _number(
            self.comment_max_length, f"{path}.comment_max_length", lo=1, hi=MAX_COUNT, integer=True
        )


_DEFAULT_INVITE_REASONS = (EndReason.AGENT, EndReason.CUSTOMER)


@attrs.frozen
class SatisfactionSettings:
    """Satisfaction evaluation: scheme (global, per group), invitation and rating rules."""

    enabled: bool = attrs.field(
        default=True, metadata={"doc": "Satisfaction evaluation on or off."}
    )
    scheme: SatisfactionScheme = attrs.field(factory=SatisfactionScheme)
    groups: Mapping[str, SatisfactionScheme] = attrs.field(
        factory=dict,
        metadata={"doc": "Schemes per skill group, replacing the global scheme there."},
    )
    invite_on_end_reasons: tuple[EndReason, ...] = _DEFAULT_INVITE_REASONS
    agent_may_invite: bool = attrs.field(
        default=True, metadata={"doc": "Agents may send the invitation themselves."}
    )
    skip_if_agent_never_replied: bool = attrs.field(
        default=True, metadata={"doc": "No invitation when the agent never wrote in the chat."}
    )
    max_invitations: int = attrs.field(
        default=1, metadata={"doc": "How many invitations one chat may get."}
    )
    second_rating: SecondRating = SecondRating.REFUSE
    refuse_message: str = attrs.field(
        default="You have already rated this chat. Thank you!",
        metadata={"doc": "Shown when a second rating is refused."},
    )
    window_s: float = attrs.field(
        default=14 * 24 * 3600.0,
        metadata={"doc": "Ratings are accepted this long after the chat ended."},
    )
    visible_to_agent: bool = attrs.field(
        default=True, metadata={"doc": "Agents see the rating of their chats."}
    )
    customer_initiated: bool = attrs.field(
        default=False, metadata={"doc": "Customers may rate without an invitation."}
    )
    invite_prompt: str = attrs.field(
        default="How would you rate this chat?",
        metadata={
            "doc": "Text of the invitation: stored as a system message with every invitation "
            "(an agent's, or at chat end after the end prompt) ('': none)."
        },
    )
    reminder_after_s: float = attrs.field(
        default=0.0,
        metadata={"doc": "One reminder this long after an invitation left unrated (0: none)."},
    )
    reminder_prompt: str = attrs.field(
        default="You can still rate this chat: how did we do?",
        metadata={"doc": "Text of the reminder, stored as a system message."},
    )
    min_interval_s: float = attrs.field(
        default=0.0,
        metadata={
            "doc": "No invitation to a customer (partner id with a CRM record) invited less "
            "than this long ago (0: no limit)."
        },
    )
    skip_tags: tuple[str, ...] = attrs.field(
        default=(), metadata={"doc": "A chat with one of these tags is never invited."}
    )
    invite_tags: tuple[str, ...] = attrs.field(
        default=(),
        metadata={
            "doc": "A chat with one of these tags is invited at its end whatever the end "
            "reason, agent reply or customer interval (skip_tags win)."
        },
    )
    group_rules: Mapping[str, Mapping[str, Any]] = attrs.field(
        factory=dict,
        metadata={
            "doc": "Invitation rules per skill group: a partial satisfaction section of the "
            "invitation rules (schemes per group stay in groups)."
        },
    )
    channels: Mapping[str, Mapping[str, Any]] = attrs.field(
        factory=dict,
        metadata={"doc": "Invitation rules per channel (over the group's): a partial section."},
    )

    def check(self, path: str) -> None:
        """Raise SettingsError at ``path`` when an invitation rule is invalid."""
        _number(self.max_invitations, f"{path}.max_invitations", lo=1, hi=1000, integer=True)
        _number(self.reminder_after_s, f"{path}.reminder_after_s", note="0: none")
        _number(self.min_interval_s, f"{path}.min_interval_s", note="0: no limit")
        for name in ("skip_tags", "invite_tags"):
            for i, tag in enumerate(getattr(self, name)):
                _need(
                    bool(tag) and tag == tag.strip() and len(tag) <= 100,
                    f"{path}.{name}[{i}]",
                    "a tag: non-empty, at most 100 characters, without surrounding spaces",
                )

    def __attrs_post_init__(self) -> None:
        if _SKIP_CHECK.get():  # an override laid over a checked section (resolve_satisfaction)
            return
        p = "satisfaction"
        self.scheme.check(f"{p}.scheme")
        for name, scheme in self.groups.items():
            scheme.check(f"{p}.groups.{name}")
        _number(self.window_s, f"{p}.window_s", above=True)
        self.check(p)
        for kind in ("group_rules", "channels"):
            for name, partial in getattr(self, kind).items():
                path = f"{p}.{kind}.{name}"
                _invitation_rules_only(partial, path)
                _apply(self, partial, path).check(path)


_INVITATION_RULES = frozenset(
    {
        "enabled",
        "invite_on_end_reasons",
        "agent_may_invite",
        "skip_if_agent_never_replied",
        "max_invitations",
        "invite_prompt",
        "reminder_after_s",
        "reminder_prompt",
        "min_interval_s",
        "skip_tags",
        "invite_tags",
    }
)
"""The ``satisfaction`` settings a group (``group_rules``) or channel (``channels``) may
override: the invitation rules; schemes, rating rules and the window stay global."""


def _invitation_rules_only(partial: object, path: str) -> None:
    if not isinstance(partial, Mapping):
        raise _fail(path, "an override must be a mapping of field names to values")
    for key in partial:
        why = "only invitation rules can be overridden here"
        _need(key in _INVITATION_RULES, f"{path}.{key}", why)


def resolve_satisfaction(
    section: SatisfactionSettings, *, channel: str | None = None, group: str | None = None
) -> SatisfactionSettings:
    """The satisfaction rules for a chat: its channel's ``channels`` override over its
    group's ``group_rules`` override over the global section (the section itself when
    neither has one)."""
    out = section
    rules = section.group_rules
    if group and rules and group in rules:
        out = _apply(out, rules[group], f"satisfaction.group_rules.{group}")
    channels = section.channels
    if channel is not None and channels and channel in channels:
        out = _apply(out, channels[channel], f"satisfaction.channels.{channel}")
    return out
