"""The ``reopen`` settings section (Always On Mode): what a customer's message to an ended chat
does, and for how long an ended chat may be opened again.

A piece of :mod:`chatmgmt.settings`, which re-exports :class:`ReopenSettings`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from ._base import _need, _number
from ._overrides import _check_with_overrides

__all__ = ["REOPEN_TARGETS", "ReopenSettings"]

REOPEN_TARGETS = ("pool", "last_agent")
"""Where a reopened chat goes: its group's unassigned pool, or the agent who held it last."""


@attrs.frozen
class ReopenSettings:
    """Always On Mode: reopening ended chats; overridable per skill group and channel.

    ``on_customer_message``: a customer's message to an ended chat reopens it (off: the message
    raises :class:`~chatmgmt.errors.ReopenRefusedError` and the host opens a new chat).
    ``customer_to``: where such a reopen goes, ``pool`` or ``last_agent`` (within that agent's
    limit; the pool when the agent is full, offline or gone). ``window_s``: a customer's message
    reopens the chat only this long after it ended (0: no limit). A chat's effective section is
    the channel's override over its skill group's over the global one (``resolve``).
    """

    on_customer_message: bool = attrs.field(
        default=True,
        metadata={"doc": "A customer's message to an ended Always On chat reopens it."},
    )
    customer_to: str = attrs.field(
        default="pool",
        metadata={"doc": "Where a customer's reopen goes: 'pool' or 'last_agent'."},
    )
    window_s: float = attrs.field(
        default=0.0,
        metadata={"doc": "A customer reopens a chat only this long after its end (0: always)."},
    )
    channels: Mapping[str, Mapping[str, Any]] = attrs.field(
        factory=dict, metadata={"doc": "Overrides per channel: a partial reopen section."}
    )
    groups: Mapping[str, Mapping[str, Any]] = attrs.field(
        factory=dict, metadata={"doc": "Overrides per skill group: a partial reopen section."}
    )

    def check(self, path: str) -> None:
        """Raise SettingsError at ``path`` when invalid."""
        _need(
            self.customer_to in REOPEN_TARGETS,
            f"{path}.customer_to",
            f"expected one of {', '.join(repr(t) for t in REOPEN_TARGETS)}, "
            f"got {self.customer_to!r}",
        )
        _number(self.window_s, f"{path}.window_s", note="0: no limit")

    def __attrs_post_init__(self) -> None:
        _check_with_overrides(self, "reopen")
