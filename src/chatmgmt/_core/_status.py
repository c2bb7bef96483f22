"""Where a waiting chat stands: the answer of ``queue_status``."""

from __future__ import annotations

import attrs

from ..model import ChatId

__all__ = ["QueueStatus"]


@attrs.frozen
class QueueStatus:
    """Where a waiting chat stands.

    ``position`` is 0-based; ``estimated_wait_s`` is ``inf`` when nobody is online;
    ``leave_message`` is why the leave-a-message form should be offered now (an
    :class:`~chatmgmt.lifecycle.OfferReason` value or a queue limit), or None.
    """

    chat_id: ChatId
    queue: str
    position: int
    length: int
    estimated_wait_s: float
    leave_message: str | None = None
