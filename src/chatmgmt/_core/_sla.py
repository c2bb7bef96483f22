"""The SLA timer's firing: the warnings and breaches due, as one change of the chat.

The clocks themselves move in :meth:`CoreBase.commit` (through
:func:`chatmgmt.lifecycle.track_sla`) with every change of a chat; the chat's one ``sla``
timer (:func:`chatmgmt.lifecycle.sla_timer`) is planned from the stored clocks like any other
deadline, so it is set and cancelled in the unit of work of the change that moves them.
"""

from __future__ import annotations

from .. import lifecycle as lc
from .._plan import Plan
from ..model import Chat, ChatId, evolve
from ._base import CoreBase
from ._ops import Eff

__all__ = ["fire_sla"]


def fire_sla(core: CoreBase, chat_id: ChatId, now: float) -> Eff[bool]:
    """Raise the chat's due ``sla.warning`` / ``sla.breached`` events and mark them on its
    clocks, in one version-guarded unit of work (read again on a lost race: an answer that
    stopped the clock first leaves nothing due). True when something was due."""
    if not core.sla_on:
        return False

    def planner(chat: Chat) -> Plan | None:
        due = lc.sla_due(chat, now)
        if due is None:
            return None
        sla, items = due
        return Plan(evolve(chat, sla=sla), items)

    old, new = yield from core.update(chat_id, planner, now)
    return new is not old
