"""The ``limits`` and ``retention`` sections of the settings tree.

A piece of :mod:`chatmgmt.settings`, which re-exports its public names; kept apart so that each
module holds one part of the tree.
"""

from __future__ import annotations

import attrs

from ._base import MAX_COUNT, _number

__all__ = [
    "LimitsSettings",
    "RetentionSettings",
]


# --------------------------------------------------------------------------- limits


@attrs.frozen
class LimitsSettings:
    """Limits on what the public API accepts from customers and agents.

    ``max_message_chars``: the longest message text, in characters (code points); a longer one
    is refused with :class:`~chatmgmt.errors.ValidationError` (``text: ...``) before moderation,
    so nothing of it is stored or sent.
    """

    max_message_chars: int = attrs.field(
        default=10_000, metadata={"doc": "The longest message text accepted, in characters."}
    )

    def __attrs_post_init__(self) -> None:
        _number(
            self.max_message_chars, "limits.max_message_chars", lo=1, hi=MAX_COUNT, integer=True
        )


# --------------------------------------------------------------------------- retention


@attrs.frozen
class RetentionSettings:
    """How long chats that are over stay stored, and how they are purged.

    ``ended_chats_s``: chats that are over (ended, abandoned, and left messages an agent
    answered; :func:`chatmgmt.ports.retention_start`) and their messages are kept this long
    after their last change, then purged (0: kept forever). ``purge_on_tick``: ``tick()`` purges
    up to ``purge_batch`` of them at most every ``purge_interval_s`` (sooner while a batch came
    back full); with False, call ``purge()`` yourself.
    """

    ended_chats_s: float = attrs.field(
        default=30 * 24 * 3600.0,
        metadata={
            "doc": "How long a chat that is over is kept after its last change (0: forever)."
        },
    )
    purge_on_tick: bool = attrs.field(
        default=True, metadata={"doc": "tick() purges a bounded batch when one is due."}
    )
    purge_batch: int = attrs.field(
        default=500, metadata={"doc": "The most chats one purge (one storage call) deletes."}
    )
    purge_interval_s: float = attrs.field(
        default=60.0, metadata={"doc": "The least time between two purges by tick()."}
    )

    def __attrs_post_init__(self) -> None:
        p = "retention"
        _number(self.ended_chats_s, f"{p}.ended_chats_s", note="0: keep forever")
        _number(self.purge_batch, f"{p}.purge_batch", lo=1, hi=100_000, integer=True)
        _number(self.purge_interval_s, f"{p}.purge_interval_s", hi=86_400)
