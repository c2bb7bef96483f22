"""Builders for agents, customers and chats with sensible defaults."""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from typing import Any

from ..model import Agent, AgentId, AgentStatus, Chat, ChatId, ChatState, CustomerInfo

__all__ = ["make_agent", "make_agents", "make_chat", "make_customer"]

_counter = itertools.count(1)


def make_agent(
    agent_id: str | None = None,
    *,
    groups: Iterable[str] = (),
    limit: int = 5,
    status: AgentStatus = AgentStatus.ONLINE,
    tier: int = 0,
    order: int | None = None,
    **kwargs: Any,
) -> Agent:
    """An agent, ONLINE by default, with a unique id and account order unless given."""
    n = next(_counter)
    return Agent(
        id=AgentId(agent_id or f"agent-{n}"),
        display_name=kwargs.pop("display_name", agent_id or f"Agent {n}"),
        skill_groups=frozenset(groups),
        reception_limit=limit,
        tier=tier,
        account_order=n if order is None else order,
        status=status,
        **kwargs,
    )


def make_agents(count: int, **kwargs: Any) -> list[Agent]:
    """``count`` agents ``a0`` .. ``a{count-1}`` in account order."""
    return [make_agent(f"a{i}", order=i, **kwargs) for i in range(count)]


def make_customer(partner_id: str | None = None, **kwargs: Any) -> CustomerInfo:
    """A customer; anonymous when ``partner_id`` is None."""
    return CustomerInfo(partner_id=partner_id, **kwargs)


def make_chat(chat_id: str | None = None, **kwargs: Any) -> Chat:
    """A chat value (not stored) for testing pure functions such as custom strategies."""
    customer = kwargs.pop("customer", CustomerInfo())
    return Chat(
        id=ChatId(chat_id or f"chat-{next(_counter)}"),
        customer=customer,
        channel=kwargs.pop("channel", customer.channel),
        state=kwargs.pop("state", ChatState.QUEUED),
        **kwargs,
    )
