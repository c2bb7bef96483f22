"""The ``bot`` settings section: the bot stage's own timeouts and its satisfaction rule.

A piece of :mod:`chatmgmt.settings`, which re-exports :class:`BotSettings` and holds it in
``ChatSettings.bot``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from ._base import _number
from ._overrides import _check_with_overrides

__all__ = ["BotSettings"]


@attrs.frozen
class BotSettings:
    """The bot stage (``open_chat(..., bot=...)``); overridable per skill group and channel.

    ``end_after_s``: customer silence in the bot stage ends the chat (reason
    ``customer_inactivity``, Real-Time Reception Mode only; 0: never). ``handoff_after_s``: the
    bot stage lasts at most this long, then the chat is handed off to an agent with the reason
    ``timeout`` (both modes; 0: no limit). ``skip_satisfaction``: a chat that ends in the bot
    stage (no agent ever served it) gets no satisfaction invitation; off, the satisfaction rules
    apply with the bot standing in for the agent (the rating is attributed to the bot's id). A
    chat's effective section is the channel's override over its skill group's over the global
    one (``resolve``).
    """

    end_after_s: float = 0.0
    handoff_after_s: float = 0.0
    skip_satisfaction: bool = attrs.field(
        default=True,
        metadata={"doc": "No satisfaction invitation for a chat that ends in the bot stage."},
    )
    channels: Mapping[str, Mapping[str, Any]] = attrs.field(
        factory=dict, metadata={"doc": "Overrides per channel: a partial bot section."}
    )
    groups: Mapping[str, Mapping[str, Any]] = attrs.field(
        factory=dict, metadata={"doc": "Overrides per skill group: a partial bot section."}
    )

    def check(self, path: str) -> None:
        """Raise SettingsError at ``path`` when invalid."""
        _number(self.end_after_s, f"{path}.end_after_s", note="0: never")
        _number(self.handoff_after_s, f"{path}.handoff_after_s", note="0: no limit")

    def __attrs_post_init__(self) -> None:
        _check_with_overrides(self, "bot")
