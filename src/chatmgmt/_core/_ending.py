"""The end of a chat, planned by :func:`chatmgmt.lifecycle.plan_end` for the core."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .. import lifecycle as lc
from .._plan import Plan
from ..model import Chat, EndReason, MessageId
from ._satisfaction import Satisfaction

__all__ = ["Ending"]


class Ending(Satisfaction):
    """Plans the end (or abandonment) of a chat."""

    def ended_plan(
        self,
        chat: Chat,
        reason: EndReason,
        by: str,
        now: float,
        *,
        extra: Sequence[tuple[str, Mapping[str, Any]]] = (),
        abandon: bool = False,
        customer_invited_at: float | None = None,
    ) -> Plan:
        """The chat ended (or abandoned) with everything it implies (:func:`lc.plan_end`)."""
        message_id = MessageId(f"msg_{self._ids()}")  # new_id("msg") without its call
        return lc.plan_end(
            self.settings,
            chat,
            reason,
            by,
            now,
            message_id=message_id,
            extra=extra,
            abandon=abandon,
            customer_invited_at=customer_invited_at,
        )
