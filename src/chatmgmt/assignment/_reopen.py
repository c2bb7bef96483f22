"""Where a reopened Always On chat goes, pure: to its last agent (a claim below that agent's
limit, checked by the store inside the unit of work) or into its group's unassigned pool.

:func:`plan_reopen` takes the chat already opened again (:func:`chatmgmt.lifecycle._reopen.
reopened`, ``UNASSIGNED``) and returns the whole change: the assignment and its claim, or the
pool entry, with the ``chat.reopened`` event saying where it went, who asked, and why it fell
back to the pool when it did.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .._plan import Items, Plan, leaving
from ..model import AgentId, Chat, Message, evolve
from ..ports import Claim, QueuePush
from ..settings import ChatSettings
from ..webhook import _payloads as payloads
from ._plans import plan_assignment
from ._routing import pool_name, wait_score

__all__ = ["plan_reopen"]


def plan_reopen(
    settings: ChatSettings,
    stored: Chat,
    opened: Chat,
    items: Items,
    *,
    requested: str,
    agent: AgentId | None,
    fallback: str | None,
    by: str,
    now: float,
    terms: Mapping[str, Any],
    message: Message | None = None,
) -> Plan:
    """The reopen of ``stored`` (``ENDED``) as ``opened`` with ``items`` (a message's events):
    assigned to ``agent`` (claimed with ``terms``), or with ``agent`` None into its group's pool
    (``fallback``: why not to the last agent, when that was ``requested``)."""
    remove, cancel = leaving(stored)
    if agent is not None:
        reason = {"via": "reopen", "agent": agent, "by": by}
        new, own = plan_assignment(opened, agent, reason, now)
        event = payloads.chat_reopened("last_agent", by, agent_id=agent, requested=requested)
        return Plan(
            new,
            [event, *items, *own],
            claim=Claim(agent, **terms),
            remove=remove,
            cancel=cancel,
            message=message,
        )
    # it waits in its pool from this very unit, so no moment exists where it waits nowhere;
    # routing then takes it from there
    pool = pool_name(opened.skill_group)
    # placed by when it started waiting again: its reopening (``opened.reopened_at``)
    score = wait_score(opened, settings.assignment.queue.priority_step_s)
    new = evolve(opened, queue=pool, queued_at=now)
    event = payloads.chat_reopened("pool", by, requested=requested, fallback=fallback)
    return Plan(
        new,
        [event, *items],
        push=QueuePush(pool, score),
        remove=remove,
        cancel=cancel,
        message=message,
    )
