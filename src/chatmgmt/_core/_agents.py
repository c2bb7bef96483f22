"""Agents: registration, status and limit changes, each a compare-and-set on the agent."""

from __future__ import annotations

from collections.abc import Callable

from ..errors import ConflictError, ValidationError
from ..model import Agent, AgentId, AgentLoad, AgentStatus, Event, evolve
from ..ports import AgentStore
from ..webhook import EventType
from ._base import RETRY, Retry
from ._leaving import Leaving
from ._ops import Eff, call

__all__ = ["Agents"]


class Agents(Leaving):
    """Register agents and change their status or limit without losing a concurrent change."""

    def _change_agent(
        self, agent_id: AgentId, change: Callable[[Agent | None], Agent], now: float
    ) -> Eff[AgentLoad]:
        """Read the agent, apply ``change`` to it, store it by compare-and-set on its version
        (retrying on a lost race), then drain the queues its new capacity can serve."""

        def attempt() -> Eff[AgentLoad | Retry]:
            old = yield from call(AgentStore.get, agent_id)
            agent = change(old.agent if old is not None else None)
            previous = old.agent.status if old is not None else AgentStatus.OFFLINE
            events: list[Event] = []
            if (
                old is None
                or previous is not agent.status
                or old.agent.reception_limit != agent.reception_limit
            ):
                data = {
                    "agent_id": agent.id,
                    "status": agent.status.value,
                    "previous_status": previous.value,
                    "reception_limit": agent.reception_limit,
                }
                events.append(self.event(EventType.AGENT_STATUS_CHANGED, data, now))
            yield from self.before_status(previous, agent.status, agent.id, now)
            try:
                load = yield from call(
                    AgentStore.put,
                    agent,
                    now,
                    events,
                    self.rng.random(),
                    None if old is None else old.version,
                )
            except ConflictError:
                return RETRY
            yield from self.emit(events)
            yield from self.after_status(previous, load, now)
            if load.agent.status is AgentStatus.ONLINE:
                if load.free > 0:
                    yield from self.drain_for_agent(agent.id, now)
                yield from self.drain_submissions(load, now)
            return load

        return (yield from self.retrying("agent", agent_id, attempt))

    def put_agent(self, agent: Agent, now: float) -> Eff[AgentLoad]:
        """Register or update an agent; capacity that appears drains the queues."""
        return (yield from self._change_agent(agent.id, lambda _old: agent, now))

    def set_agent_status(
        self, agent_id: AgentId, status: AgentStatus, now: float
    ) -> Eff[AgentLoad]:
        """Change an agent's status (ONLINE agents receive chats)."""
        yield from self.load(agent_id)
        status = AgentStatus(status)
        return (
            yield from self._change_agent(
                agent_id, lambda old: evolve(_known(old, agent_id), status=status), now
            )
        )

    def set_reception_limit(self, agent_id: AgentId, limit: int, now: float) -> Eff[AgentLoad]:
        """Change how many chats an agent holds at once; a higher limit drains the queues.

        Lowering it below the chats the agent holds keeps those chats with the agent; it gets
        no new one until it is below the new limit."""
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
            raise ValidationError(f"reception_limit: must be an integer >= 0, got {limit!r}")
        yield from self.load(agent_id)
        return (
            yield from self._change_agent(
                agent_id, lambda old: evolve(_known(old, agent_id), reception_limit=limit), now
            )
        )


def _known(agent: Agent | None, agent_id: AgentId) -> Agent:
    if agent is None:
        from ..errors import NotFoundError

        raise NotFoundError("agent", agent_id)
    return agent
