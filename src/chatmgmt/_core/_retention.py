"""Retention: chats that are over are purged once ``retention.ended_chats_s`` has passed since
their last change (:meth:`~chatmgmt.ports.ChatStore.purge`), by hand (``purge()``) or a bounded
batch at a time from ``tick()`` (``retention.purge_on_tick``)."""

from __future__ import annotations

from ..ports import ChatStore
from ._deadlines import Deadlines
from ._ops import Eff, call

__all__ = ["Retention"]


class Retention(Deadlines):
    """``purge()``, and ``tick()`` purging when a purge is due."""

    # when tick() may purge next (per manager; every worker purging is harmless: a chat
    # is deleted once, and each purge is bounded)
    _next_purge_at: float = float("-inf")

    def purge(self, now: float, limit: int | None = None) -> Eff[int]:
        """Purge up to ``limit`` (default ``retention.purge_batch``) chats whose retention
        ran out at ``now``; returns how many. Nothing when retention is off (0)."""
        retention = self.settings.retention
        keep = retention.ended_chats_s
        if keep <= 0:
            return 0
        batch = retention.purge_batch if limit is None else limit
        purged = yield from call(ChatStore.purge, now - keep, batch)
        return purged

    def tick(self, now: float, limit: int) -> Eff[int]:
        """Fire the due deadlines (:meth:`Deadlines.tick`), then purge one batch when
        ``retention.purge_on_tick`` says so and one is due; returns how many deadlines
        fired."""
        fired = yield from super().tick(now, limit)
        retention = self.settings.retention
        if retention.purge_on_tick and retention.ended_chats_s > 0 and now >= self._next_purge_at:
            purged = yield from self.purge(now)
            # a full batch: more may be due, purge again at the next tick
            full = purged >= retention.purge_batch
            self._next_purge_at = now if full else now + retention.purge_interval_s
        return fired
