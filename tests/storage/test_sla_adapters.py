"""A chat's SLA on every adapter: the clocks stored with each change, the SLA timer set and
cancelled in the same unit of work, the breach fired by tick, the figures read back equal;
an old record without an SLA reads as none."""

from __future__ import annotations

import json
import random

from chatmgmt import Agent, AgentStatus, ChatManager, ChatSettings, MessageRole
from chatmgmt.model import Chat, ChatId, ChatSla, CustomerInfo, SlaClock
from chatmgmt.ports import Storage
from chatmgmt.storage._codec import decode, encode
from chatmgmt.testing import ManualClock, RecordingEventSink, sequential_ids
from storage.test_offers_pull_adapters import storage  # noqa: F401  (the adapter fixture)

SETTINGS = {
    "sla": {
        "policies": [{"name": "std", "first_response_s": 60, "resolution_s": 600}],
        "warn_before": 0.5,
    }
}


def test_sla_clocks_round_trip_through_the_adapter(storage: Storage) -> None:  # noqa: F811
    sink = RecordingEventSink()
    m = ChatManager(
        storage,
        ChatSettings.from_dict(SETTINGS),
        clock=ManualClock(100.0),
        rng=random.Random(1),
        ids=sequential_ids(),
        event_sink=sink,
    )
    m.register_agent(Agent("ann", reception_limit=2, status=AgentStatus.ONLINE))
    m.open_chat(CustomerInfo(name="u"), chat_id="s1")
    timer = storage.timers.get("s1:sla")
    assert timer is not None and timer.due_at == 130.0  # the first response's warning
    assert m.tick(now=131.0) == 1
    assert storage.timers.get("s1:sla").due_at == 160.0  # type: ignore[union-attr]
    assert m.tick(now=161.0) == 1
    m.send_message("s1", "sorry", role=MessageRole.AGENT, sender="ann", now=170.0)
    m.end_chat("s1", now=200.0)
    chat = storage.chats.get(ChatId("s1"))
    assert chat is not None and chat.sla == ChatSla(
        "std",
        first_response=SlaClock(60.0, warned=True, late=True, achieved_s=70.0, runs=1, breaches=1),
        resolution=SlaClock(600.0, achieved_s=100.0, runs=1),
    )
    assert storage.timers.get("s1:sla") is None
    assert [e.type for e in sink.events if e.type.startswith("sla.")] == [
        "sla.warning",
        "sla.breached",
    ]
    claimed = storage.outbox.claim("test", 1000, 300.0, 30.0)
    (ended,) = [c.event for c in claimed if c.event.type == "chat.ended"]
    assert ended.data["sla"] == chat.sla.figures()


def test_an_old_record_without_an_sla_reads_as_none() -> None:
    sla = ChatSla("p", True, "g", resolution=SlaClock(60.0, started_at=1.0, due_at=61.0))
    chat = Chat(ChatId("c"), CustomerInfo(name="u"), "web", sla=sla)
    assert decode(encode(chat), Chat).sla == sla
    data = json.loads(encode(chat))
    del data["sla"]
    assert decode(json.dumps(data), Chat).sla is None
