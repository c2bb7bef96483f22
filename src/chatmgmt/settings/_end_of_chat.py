"""The ``end_of_chat`` section of the settings tree: end prompts and inactivity timeouts.

A piece of :mod:`chatmgmt.settings`, which re-exports :class:`EndOfChatSettings`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from ._base import _need, _number
from ._overrides import _check_with_overrides


@attrs.frozen
class EndOfChatSettings:
    """End-of-chat prompts and inactivity timeouts; overridable per skill group and channel.

    Customer inactivity: ``warn_prompt`` after ``warn_after_s`` seconds of customer silence,
    the end (with ``timeout_prompt``) after ``end_after_s`` (0: never). Any customer message
    resets both. ``agent_reminder_s``: remind the agent after this long without a reply (0: off).
    Real-Time Reception Mode only: Always On chats never time out. A chat's effective section
    is the channel's override over its skill group's over the global one (``resolve``).
    """

    end_prompt: str = attrs.field(
        default="This chat has ended. Thank you for contacting us.",
        metadata={"doc": "System message stored and shown when a chat ends."},
    )
    timeout_prompt: str = "This chat was closed because we did not hear from you."
    warn_prompt: str = "Are you still there? This chat will close soon if we do not hear from you."
    warn_after_s: float = 300.0
    end_after_s: float = 600.0
    agent_reminder_s: float = 0.0
    agent_reminder_prompt: str = attrs.field(
        default="The customer is waiting for your reply.",
        metadata={"doc": "System message reminding the agent to reply."},
    )
    inactive_after_s: float = attrs.field(
        default=0.0,
        metadata={
            "doc": "Mark an active chat inactive after this many seconds without a message "
            "from either side (0: off); frees its slot when inactive_chats_count is false."
        },
    )
    hold_close_after_s: float = attrs.field(
        default=0.0,
        metadata={
            "doc": "End a chat that has been on hold this many seconds (reason hold_timeout; "
            "0: never). Real-Time Reception Mode only."
        },
    )
    hold_close_prompt: str = attrs.field(
        default="This chat was closed while it was on hold. Write to us again at any time.",
        metadata={"doc": "System message stored and shown when a chat on hold is closed."},
    )
    channels: Mapping[str, Mapping[str, Any]] = attrs.field(
        factory=dict, metadata={"doc": "Overrides per channel: a partial end-of-chat section."}
    )
    groups: Mapping[str, Mapping[str, Any]] = attrs.field(
        factory=dict,
        metadata={"doc": "Overrides per skill group: a partial end-of-chat section."},
    )

    def check(self, path: str) -> None:
        """Raise SettingsError at ``path`` when invalid."""
        _number(self.warn_after_s, f"{path}.warn_after_s", note="0: never")
        _number(self.end_after_s, f"{path}.end_after_s", note="0: never")
        if self.end_after_s and self.warn_after_s:
            _need(
                self.end_after_s > self.warn_after_s,
                f"{path}.end_after_s",
                "must be greater than warn_after_s",
            )
        _number(self.agent_reminder_s, f"{path}.agent_reminder_s", note="0: off")
        _number(self.inactive_after_s, f"{path}.inactive_after_s", note="0: off")
        _number(self.hold_close_after_s, f"{path}.hold_close_after_s", note="0: never")

    def __attrs_post_init__(self) -> None:
        _check_with_overrides(self, "end_of_chat")
