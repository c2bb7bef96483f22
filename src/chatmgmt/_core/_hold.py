"""Hold and inactivity release: put a chat on hold, resume it, and fire the two deadlines
(``hold_close``, ``inactivity_release``). Each change is one compare-and-set of the chat with its
slot move (``Change.inactive``) and events in the same unit of work; the rules are pure, in
:mod:`chatmgmt.lifecycle._hold`."""

from __future__ import annotations

from .. import lifecycle as lc
from .._plan import Plan
from .._text import check_text
from ..lifecycle._hold import counts, slot_move
from ..model import Chat, ChatId, EndReason, Timer
from ._deadlines import Deadlines
from ._ops import Eff

__all__ = ["Holding"]

_RELEASE = lc.TimerKind.INACTIVITY_RELEASE.value
_CLOSE = lc.TimerKind.HOLD_CLOSE.value


class Holding(Deadlines):
    """``hold_chat`` / ``resume_chat``, and the firing of the hold and inactivity deadlines."""

    def hold_chat(self, chat_id: ChatId, by: str, reason: str, now: float) -> Eff[Chat]:
        """Put the active chat on hold (nothing changes when it is on hold already); when held
        chats do not count, the slot frees in the same unit and the agent's queues drain."""
        check_text("by", by)
        check_text("reason", reason)
        assignment = self.settings.assignment
        old, new = yield from self.update(
            chat_id, lambda chat: lc.plan_hold(chat, by, reason, now, assignment), now
        )
        yield from self._drain_if_freed(old, new, now)
        return new

    def resume_chat(self, chat_id: ChatId, by: str, now: float) -> Eff[Chat]:
        """Resume the chat on hold (nothing changes when it is not on hold); its slot counts
        again in the same unit when it had been freed."""
        check_text("by", by)
        assignment = self.settings.assignment
        _old, new = yield from self.update(
            chat_id, lambda chat: lc.plan_resume(chat, by, now, assignment), now
        )
        return new

    def fire(self, timer: Timer, chat: Chat, now: float) -> Eff[bool]:
        """The hold and inactivity deadlines here; every other kind as before."""
        kind = timer.kind
        if kind != _RELEASE and kind != _CLOSE:
            return (yield from super().fire(timer, chat, now))
        if lc.is_stale(timer, chat):
            return False

        def planner(current: Chat) -> Plan | None:
            # planned against the chat as it is now: a message (or a resume, an end) that
            # landed since the tick read it makes the deadline stale, and nothing happens
            if lc.is_stale(timer, current):
                return None
            if kind == _CLOSE:
                return self.ended_plan(current, EndReason.HOLD_TIMEOUT, "system", now)
            fired = lc.mark_fired(current, timer)
            return lc.plan_inactive(current, True, "silence", self.settings.assignment, **fired)

        old, new = yield from self.update(ChatId(timer.chat_id), planner, now)
        if old is new:
            return False
        if kind == _CLOSE:
            if old.agent_id is not None:
                yield from self.drain_for_agent(old.agent_id, now)
        else:
            yield from self._drain_if_freed(old, new, now)
        return True

    def _drain_if_freed(self, old: Chat, new: Chat, now: float) -> Eff[None]:
        """Drain for the agent whose slot this change freed (an uncounted chat)."""
        if old is new or new.agent_id is None:
            return
        if slot_move(old, new, self.settings.assignment) is not None and not counts(
            new, self.settings.assignment
        ):
            yield from self.drain_for_agent(new.agent_id, now)
