"""The ``sla`` section of the settings tree: SLA policies (a piece of :mod:`chatmgmt.settings`).

The section, its policies and their checks are re-exported by :mod:`chatmgmt.settings`
(``SlaSettings``, ``SlaPolicy``) and take part in ``ChatSettings.from_dict`` / ``to_dict`` and
the generated settings reference like any section.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from ._base import MAX_COUNT, _need, _number
from ._overrides import _check_with_overrides

__all__ = ["SlaPolicy", "SlaSettings"]


@attrs.frozen
class SlaPolicy:
    """An SLA policy: which chats it covers and its targets, in seconds (0: no such target).

    A chat is covered when every condition that is set holds: its skill group is one of
    ``groups``, its priority one of ``priorities``, and it carries one of ``tags``. Targets:
    ``first_response_s`` (from the chat's start to the first agent message),
    ``next_response_s`` (from each customer message that follows an agent message to the
    agent's next message) and ``resolution_s`` (from the start to the end).
    """

    name: str = attrs.field(
        metadata={"doc": "The policy's name; chats, events and the chat.ended figures name it."}
    )
    groups: tuple[str, ...] = attrs.field(
        default=(), metadata={"doc": "Skill groups it covers (any of; empty: every group)."}
    )
    priorities: tuple[int, ...] = attrs.field(
        default=(), metadata={"doc": "Chat priorities it covers (any of; empty: every priority)."}
    )
    tags: tuple[str, ...] = attrs.field(
        default=(), metadata={"doc": "Chat tags it covers (the chat has any of them; empty: any)."}
    )
    first_response_s: float = attrs.field(
        default=0.0, metadata={"doc": "First response target in seconds (0: none)."}
    )
    next_response_s: float = attrs.field(
        default=0.0, metadata={"doc": "Next response target in seconds (0: none)."}
    )
    resolution_s: float = attrs.field(
        default=0.0, metadata={"doc": "Resolution target in seconds (0: none)."}
    )

    def check(self, path: str) -> None:
        """Raise SettingsError at ``path`` when invalid."""
        _need(
            bool(self.name) and self.name == self.name.strip(),
            f"{path}.name",
            "must be a non-empty string without surrounding spaces",
        )
        for i, priority in enumerate(self.priorities):
            _number(priority, f"{path}.priorities[{i}]", lo=-MAX_COUNT, hi=MAX_COUNT, integer=True)
        for i, tag in enumerate(self.tags):
            _need(bool(tag), f"{path}.tags[{i}]", "must be a non-empty string")
        for name in ("first_response_s", "next_response_s", "resolution_s"):
            _number(getattr(self, name), f"{path}.{name}", note="0: no target")
        _need(
            bool(self.first_response_s or self.next_response_s or self.resolution_s),
            path,
            "an SLA policy needs at least one target (first_response_s, next_response_s "
            "or resolution_s)",
        )


@attrs.frozen
class SlaSettings:
    """SLA policies: response and resolution targets per skill group, priority and tags;
    overridable per skill group and channel.

    The first policy in ``policies`` that covers a chat applies to it (none: no SLA). It is
    chosen when the chat starts and again whenever its skill group, priority or tags change.
    ``warn_before``: the ``sla.warning`` event goes out when this fraction of a target is left
    (0: no warning). ``business_hours``: targets count business time of the chat's group
    calendar (``assignment.groups.<g>.hours`` or the tenant default ``assignment.hours``)
    when it has one. ``pause_on_hold``: while a chat is on hold its clocks stand still (no
    warning or breach falls due; the time on hold is not counted), as the SLA timers of
    help desks stop while a ticket waits on the customer or a third party.
    """

    policies: tuple[SlaPolicy, ...] = attrs.field(
        default=(), metadata={"doc": "SLA policies in order; the first that covers a chat wins."}
    )
    warn_before: float = attrs.field(
        default=0.2,
        metadata={"doc": "sla.warning when this fraction of a target is left (0: no warning)."},
    )
    business_hours: bool = attrs.field(
        default=True,
        metadata={"doc": "Count business time of the chat's group calendar (when it has one)."},
    )
    pause_on_hold: bool = attrs.field(
        default=True,
        metadata={"doc": "A chat on hold pauses its SLA clocks (they resume with it)."},
    )
    channels: Mapping[str, Mapping[str, Any]] = attrs.field(
        factory=dict, metadata={"doc": "Overrides per channel: a partial sla section."}
    )
    groups: Mapping[str, Mapping[str, Any]] = attrs.field(
        factory=dict, metadata={"doc": "Overrides per skill group: a partial sla section."}
    )

    def check(self, path: str) -> None:
        """Raise SettingsError at ``path`` when invalid."""
        _number(self.warn_before, f"{path}.warn_before", hi=1.0, note="0: no warning")
        _need(self.warn_before < 1.0, f"{path}.warn_before", "must be below 1")
        seen: set[str] = set()
        for i, policy in enumerate(self.policies):
            policy.check(f"{path}.policies[{i}]")
            _need(
                policy.name not in seen,
                f"{path}.policies[{i}].name",
                f"another policy is already named {policy.name!r}",
            )
            seen.add(policy.name)

    @property
    def configured(self) -> bool:
        """Whether any policy exists (globally or in an override): else SLAs cost nothing."""
        if self.policies:
            return True
        overrides = (*self.channels.values(), *self.groups.values())
        return any(isinstance(o, Mapping) and o.get("policies") for o in overrides)

    def __attrs_post_init__(self) -> None:
        _check_with_overrides(self, "sla")
