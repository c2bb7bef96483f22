"""The real-time queue, the Always On pool, draining, limits, position and estimate."""

from __future__ import annotations

from assignment.assign_helpers import agent, clock_of, customer, manager, sink_of
from chatmgmt import AgentStatus, ChatState, CustomerInfo
from chatmgmt.assignment import queue_score


def test_queue_first_and_vip_go_ahead_fifo_within_a_priority() -> None:
    m = manager()
    m.register_agent(agent("a", limit=1))
    m.open_chat(customer("busy"))
    plain1 = m.open_chat(customer("p1"))
    clock_of(m).advance(1)
    plain2 = m.open_chat(customer("p2"))
    clock_of(m).advance(1)
    vip = m.open_chat(CustomerInfo(partner_id="v", vip_level=2))
    clock_of(m).advance(1)
    first = m.open_chat(customer("f"), queue_first=True)
    order = [m.queue_status(c.id).position for c in (first, vip, plain1, plain2)]  # type: ignore[union-attr]
    assert order == [0, 1, 2, 3]


def test_aging_lets_a_long_waiting_chat_beat_a_new_vip() -> None:
    step = 300.0
    old_plain = queue_score(0.0, 0, step)
    new_vip = queue_score(step * 2 + 1, 2, step)
    assert old_plain < new_vip  # waited longer than the VIP head start: goes first
    assert queue_score(10.0, 2, step) < queue_score(0.0, 0, step)


def test_position_and_estimated_wait() -> None:
    m = manager({"assignment": {"queue": {"estimate_handle_s": 120}}})
    m.register_agent(agent("a", limit=2))
    m.register_agent(agent("b", limit=2))
    for i in range(4):
        m.open_chat(customer(f"busy{i}"))
    queued = [m.open_chat(customer(f"q{i}")) for i in range(3)]
    status = m.queue_status(queued[2].id)
    assert status is not None
    assert (status.position, status.length) == (2, 3)
    assert status.estimated_wait_s == 3 * 120 / 4
    assert m.queue_status(m.list_chats(state=ChatState.ACTIVE)[0].id) is None


def test_drain_in_order_when_a_chat_ends_and_no_newer_chat_overtakes() -> None:
    m = manager()
    m.register_agent(agent("a", limit=1))
    active = m.open_chat(customer("x"))
    waiting = []
    for i in range(5):
        clock_of(m).advance(1)
        waiting.append(m.open_chat(customer(f"w{i}")))
    served = []
    current = active
    for _ in range(5):
        m.end_chat(current.id)
        now_active = [c for c in m.list_chats(state=ChatState.ACTIVE)]
        assert len(now_active) == 1
        current = now_active[0]
        served.append(current.id)
    assert served == [c.id for c in waiting]


def test_drain_when_an_agent_comes_online_or_limit_is_raised() -> None:
    m = manager()
    m.register_agent(agent("a", limit=1, status=AgentStatus.OFFLINE))
    chats = [m.open_chat(customer(f"u{i}")) for i in range(3)]
    assert all(c.state is ChatState.QUEUED for c in chats)
    m.set_agent_status("a", AgentStatus.ONLINE)
    assert m.get_chat(chats[0].id).agent_id == "a"
    assert m.get_chat(chats[1].id).state is ChatState.QUEUED
    m.set_reception_limit("a", 3)
    assert all(m.get_chat(c.id).agent_id == "a" for c in chats)


def test_max_queue_length_marks_the_leave_a_message_offer() -> None:
    m = manager({"assignment": {"queue": {"max_length": 2, "on_limit": "leave_message"}}})
    m.register_agent(agent("a", limit=1))
    m.open_chat(customer("busy"))
    q = [m.open_chat(customer(f"q{i}")) for i in range(3)]
    assert q[1].leave_message is None
    assert q[2].leave_message == "max_length"
    assert sink_of(m).of_type("queue.overflowed")[0].data["action"] == "leave_message"


def test_max_wait_overflows_to_another_group() -> None:
    settings = {
        "assignment": {
            "queue": {"max_wait_s": 60, "on_limit": "overflow"},
            "overflow": [{"target_group": "backup", "conditions": ["no_agent_online"]}],
        }
    }
    m = manager(settings)
    m.register_agent(agent("s", groups=("sales",), limit=1))
    m.register_agent(agent("b", groups=("backup",), limit=1))
    m.open_chat(customer("busy"), skill_group="sales")
    waiting = m.open_chat(customer("w"), skill_group="sales")
    assert waiting.state is ChatState.QUEUED
    clock_of(m).advance(61)
    assert m.tick() == 1
    moved = m.get_chat(waiting.id)
    assert moved.agent_id == "b"
    assert moved.skill_group == "backup"


def test_max_wait_can_end_the_chat() -> None:
    m = manager({"assignment": {"queue": {"max_wait_s": 30, "on_limit": "end"}}})
    waiting = m.open_chat(customer("w"))
    clock_of(m).advance(31)
    m.tick()
    ended = m.get_chat(waiting.id)
    assert ended.state is ChatState.ENDED and ended.end_reason is not None
    assert ended.end_reason.value == "queue_timeout"


def test_a_chat_assigned_before_its_max_wait_never_times_out() -> None:
    m = manager({"assignment": {"queue": {"max_wait_s": 30, "on_limit": "end"}}})
    waiting = m.open_chat(customer("w"))
    m.register_agent(agent("a"))
    clock_of(m).advance(31)
    assert m.tick() == 0
    assert m.get_chat(waiting.id).state is ChatState.ACTIVE


def test_always_on_pool_hands_out_when_capacity_frees_or_by_admin() -> None:
    m = manager({"reception_mode": "always_on"})
    m.register_agent(agent("a", limit=1, status=AgentStatus.OFFLINE))
    chats = [m.open_chat(customer(f"u{i}")) for i in range(3)]
    assert all(c.state is ChatState.UNASSIGNED for c in chats)
    assert len(sink_of(m).of_type("chat.unassigned")) == 3
    m.set_agent_status("a", AgentStatus.ONLINE)  # comes online: takes the oldest
    assert m.get_chat(chats[0].id).agent_id == "a"
    assert m.get_chat(chats[1].id).state is ChatState.UNASSIGNED
    m.register_agent(agent("b", limit=5, status=AgentStatus.AWAY))
    m.set_agent_status("b", AgentStatus.ONLINE)
    assert m.get_chat(chats[1].id).agent_id == "b"
    assert m.get_chat(chats[2].id).agent_id == "b"


def test_admin_assigns_a_pooled_chat_explicitly() -> None:
    m = manager({"reception_mode": "always_on"})
    m.register_agent(agent("a", limit=1))
    m.open_chat(customer("busy"))
    pooled = m.open_chat(customer("p"))
    assert pooled.state is ChatState.UNASSIGNED
    m.register_agent(agent("b", limit=1, status=AgentStatus.ONLINE), now=None)
    # b came online and took it from the pool; a second pooled chat goes by hand
    other = m.open_chat(customer("q"))
    m.set_reception_limit("b", 2)
    assert m.get_chat(other.id).agent_id == "b"
    third = m.open_chat(customer("r"))
    assert third.state is ChatState.UNASSIGNED
    m.register_agent(agent("c", limit=1, status=AgentStatus.AWAY))
    try:
        m.assign(third.id, "c")
    except Exception as exc:  # an AWAY agent cannot take it
        assert type(exc).__name__ == "AssignmentError"
    else:
        raise AssertionError("assigning to an AWAY agent must fail")
    m.end_chat(m.list_chats(agent_id="a")[0].id)
    assert m.get_chat(third.id).agent_id == "a"


def test_admin_assigns_a_queued_chat_explicitly() -> None:
    m = manager()
    m.register_agent(agent("outsider", groups=("sales",), limit=2))
    queued = m.open_chat(customer("q"), skill_group="billing")
    assert queued.state is ChatState.QUEUED
    done = m.assign(queued.id, "outsider", by="supervisor")
    assert done.agent_id == "outsider"
    assert done.route_reason == {"via": "admin", "agent": "outsider", "by": "supervisor"}
    assert m.queue_status(queued.id) is None
    assert m.agent("outsider").active == 1


def test_abandoning_leaves_the_queue() -> None:
    m = manager()
    chat = m.open_chat(customer("u"))
    m.abandon(chat.id)
    assert m.get_chat(chat.id).state is ChatState.ABANDONED
    assert m.queue_status(chat.id) is None
    m.register_agent(agent("a"))
    assert m.get_chat(chat.id).state is ChatState.ABANDONED
