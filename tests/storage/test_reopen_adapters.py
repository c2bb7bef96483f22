"""Always On reopen on every adapter: the last agent's claim is checked by the store inside the
reopen's unit of work (refused when the agent is at its limit: nothing committed, the chat goes
to its pool instead), and the stored chat, pool entry and agent load agree afterwards."""

from __future__ import annotations

import random

from chatmgmt import Agent, AgentStatus, ChatManager, ChatSettings, CustomerInfo
from chatmgmt.model import AgentId, ChatId, ChatState
from chatmgmt.ports import Storage
from chatmgmt.testing import ManualClock, check_invariants, sequential_ids
from storage.test_offers_pull_adapters import storage  # noqa: F401  (the adapter fixture)


def test_reopen_claims_the_last_agent_or_falls_back_to_the_pool(storage: Storage) -> None:  # noqa: F811
    m = ChatManager(
        storage,
        ChatSettings.from_dict({"reception_mode": "always_on"}),
        clock=ManualClock(100.0),
        rng=random.Random(1),
        ids=sequential_ids(),
    )
    m.register_agent(Agent("ann", skill_groups={"g"}, reception_limit=1, status=AgentStatus.ONLINE))
    m.open_chat(CustomerInfo(name="u"), skill_group="g", chat_id="r1")
    m.end_chat("r1")
    # ann is free: the reopen claims her slot in its unit
    chat = m.reopen("r1", to="last_agent", by="admin")
    assert chat.state is ChatState.ACTIVE and chat.agent_id == "ann"
    load = storage.agents.get(AgentId("ann"))
    assert load is not None and set(load.chats) == {"r1"}
    m.end_chat("r1")
    # ann at her limit: the store refuses the claim and the reopen goes to the pool
    m.open_chat(CustomerInfo(name="v"), skill_group="g", chat_id="r2")
    chat = m.reopen("r1", to="last_agent", by="admin")
    stored = storage.chats.get(ChatId("r1"))
    assert stored is not None and stored.state is ChatState.UNASSIGNED
    assert stored.queue == "pool/g" and stored.agent_id is None and stored.ended_at is None
    assert stored.reopened_at == 100.0  # its new wait for a person, kept by every adapter
    assert [c for c, _ in storage.queues.peek("pool/g", 10)] == ["r1"]
    load = storage.agents.get(AgentId("ann"))
    assert load is not None and set(load.chats) == {"r2"}
    check_invariants(storage, opened=["r1", "r2"], drained=True)
    # capacity frees: the pool hands r1 back to ann
    m.end_chat("r2")
    assert m.get_chat("r1").agent_id == "ann"
    check_invariants(storage, opened=["r1", "r2"], drained=True)
