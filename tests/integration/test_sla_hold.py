"""SLA clocks and hold: a chat on hold pauses its running clocks (``sla.pause_on_hold``, on by
default): no warning or breach falls due while it is held, the due times move by the time on
hold when it resumes (or is moved, or ends), and the achieved figures leave the hold out."""

from __future__ import annotations

from typing import Any

from assignment.assign_helpers import agent, customer, manager, sink_of
from chatmgmt import MessageRole
from chatmgmt.model import Chat

STANDARD = {"name": "standard", "first_response_s": 60, "next_response_s": 30, "resolution_s": 600}
QUIET = {"end_of_chat": {"warn_after_s": 0, "end_after_s": 0}}  # no inactivity end in the way


def settings(**sla: Any) -> dict[str, Any]:
    return {**QUIET, "sla": {"policies": [STANDARD], "warn_before": 0.25, **sla}}


def sla_events(m: Any) -> list[tuple[str, str]]:
    return [(e.type, e.data["metric"]) for e in sink_of(m).events if e.type.startswith("sla.")]


def stored(m: Any, chat_id: str) -> Chat:
    chat = m.storage.chats.get(chat_id)
    assert chat is not None and chat.sla is not None
    return chat


def answered_chat(m: Any) -> str:
    """ann's chat opened at 1000 and answered at 1010: the resolution clock runs (warning at
    1450, due at 1600)."""
    m.register_agent(agent("ann"))
    chat = m.open_chat(customer("u"))
    m.send_message(chat.id, "hi", role=MessageRole.AGENT, sender="ann", now=1010)
    res = stored(m, chat.id).sla.resolution  # type: ignore[union-attr]
    assert res is not None and (res.warn_at, res.due_at) == (1450.0, 1600.0)
    return str(chat.id)


def test_a_held_chat_has_no_sla_deadline_and_resumes_with_its_due_times_moved() -> None:
    m = manager(settings())
    cid = answered_chat(m)
    m.hold_chat(cid, by="ann", now=1020)
    sla = stored(m, cid).sla
    assert sla is not None and sla.paused_since == 1020.0
    assert m.storage.timers.get(f"{cid}:sla") is None  # nothing falls due while held
    m.tick(1650)  # past the warning and the due time the clock had
    assert sla_events(m) == []
    m.resume_chat(cid, by="ann", now=1120)  # 100 s on hold
    res = stored(m, cid).sla.resolution  # type: ignore[union-attr]
    assert res is not None and (res.warn_at, res.due_at, res.paused_s) == (1550.0, 1700.0, 100.0)
    assert stored(m, cid).sla.paused_since is None  # type: ignore[union-attr]
    timer = m.storage.timers.get(f"{cid}:sla")
    assert timer is not None and timer.due_at == 1550.0
    m.tick(1549)
    assert sla_events(m) == []
    m.tick(1551)
    assert sla_events(m) == [("sla.warning", "resolution")]
    m.end_chat(cid, now=1650)
    res = stored(m, cid).sla.resolution  # type: ignore[union-attr]
    assert res is not None and (res.achieved_s, res.breaches, res.paused_s) == (550.0, 0, 0.0)
    figures = sink_of(m).of_type("chat.ended")[0].data["sla"]["resolution"]
    assert figures["achieved_s"] == 550.0 and not figures["breached"]


def test_the_customer_writing_resumes_the_clocks_too() -> None:
    m = manager(settings())
    cid = answered_chat(m)
    m.hold_chat(cid, by="ann", now=1020)
    m.send_message(cid, "still there?", role=MessageRole.CUSTOMER, now=1070)  # resumes
    sla = stored(m, cid).sla
    assert sla is not None and sla.paused_since is None
    assert sla.resolution is not None and sla.resolution.due_at == 1650.0  # 50 s later
    nxt = sla.next_response  # the customer's message starts the next response, unpaused
    assert nxt is not None and (nxt.started_at, nxt.due_at, nxt.paused_s) == (1070.0, 1100.0, 0.0)


def test_an_agent_answering_while_on_hold_leaves_the_hold_out_of_the_figure() -> None:
    """The next response waits from 1030; the chat is held at 1040 and the agent writes
    (still on hold) at 1100: 10 s of waiting, not 70, and no breach of the 30 s target."""
    m = manager(settings())
    cid = answered_chat(m)
    m.send_message(cid, "q", role=MessageRole.CUSTOMER, now=1030)
    m.hold_chat(cid, by="ann", now=1040)
    m.send_message(cid, "checking", role=MessageRole.AGENT, sender="ann", now=1100)
    nxt = stored(m, cid).sla.next_response  # type: ignore[union-attr]
    assert nxt is not None and (nxt.achieved_s, nxt.breaches, nxt.running) == (10.0, 0, False)
    assert stored(m, cid).sla.paused_since == 1040.0  # type: ignore[union-attr]  still held
    assert sla_events(m) == []


def test_a_chat_ended_on_hold_counts_its_resolution_until_the_hold() -> None:
    m = manager(settings())
    cid = answered_chat(m)
    m.hold_chat(cid, by="ann", now=1020)
    m.end_chat(cid, now=1900)  # on hold since 1020: 20 s of resolution, not 900
    res = stored(m, cid).sla.resolution  # type: ignore[union-attr]
    assert res is not None and (res.achieved_s, res.breaches) == (20.0, 0)
    assert sla_events(m) == []


def test_a_transfer_ends_the_hold_and_the_pause() -> None:
    m = manager(settings())
    cid = answered_chat(m)
    m.register_agent(agent("bob"))
    m.hold_chat(cid, by="ann", now=1020)
    m.transfer(cid, to_agent="bob", now=1220)
    chat = stored(m, cid)
    assert chat.agent_id == "bob" and chat.hold is None
    assert chat.sla is not None and chat.sla.paused_since is None
    assert chat.sla.resolution is not None and chat.sla.resolution.due_at == 1800.0


def test_with_pause_on_hold_off_the_clocks_keep_running() -> None:
    m = manager(settings(pause_on_hold=False))
    cid = answered_chat(m)
    m.hold_chat(cid, by="ann", now=1020)
    assert stored(m, cid).sla.paused_since is None  # type: ignore[union-attr]
    m.tick(1451)
    assert sla_events(m) == [("sla.warning", "resolution")]


def test_a_breach_due_before_the_hold_goes_out_with_the_hold() -> None:
    """Held at 1070, after its first response was due (1060) but before a tick: the hold's
    unit sends the breach (as a late answer's would), once; at the resume the clock's due
    time moves by the hold and no second breach follows."""
    m = manager(settings())
    m.register_agent(agent("ann"))
    chat = m.open_chat(customer("u"))
    m.hold_chat(chat.id, by="ann", now=1070)
    assert sla_events(m) == [("sla.breached", "first_response")]
    m.tick(1100)
    m.resume_chat(chat.id, by="ann", now=1200)
    first = stored(m, chat.id).sla.first_response  # type: ignore[union-attr]
    assert first is not None and (first.due_at, first.late, first.breaches) == (1190.0, True, 1)
    m.tick(1201)
    m.send_message(chat.id, "sorry", role=MessageRole.AGENT, sender="ann", now=1210)
    first = stored(m, chat.id).sla.first_response  # type: ignore[union-attr]
    assert first is not None and (first.achieved_s, first.breaches) == (80.0, 1)  # 210 - 130
    assert sla_events(m) == [("sla.breached", "first_response")]
