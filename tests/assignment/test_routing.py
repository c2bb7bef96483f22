"""Designation, routing rules, sticky agents, overflow layers, duty hours, explanations."""

from __future__ import annotations

import datetime as dt

import pytest

from assignment.assign_helpers import agent, clock_of, customer, manager, sink_of
from chatmgmt import AgentStatus, ChatState, CustomerInfo, EndReason


def test_designated_agent_non_strict_falls_back() -> None:
    m = manager()
    m.register_agent(agent("ann", limit=1, order=0))
    m.register_agent(agent("bob", limit=5, order=1))
    first = m.open_chat(customer("u1"), designated_agent="bob")
    assert first.agent_id == "bob"
    assert first.route_reason["via"] == "designation"
    m.set_agent_status("bob", AgentStatus.OFFLINE)
    second = m.open_chat(customer("u2"), designated_agent="bob")
    assert second.agent_id == "ann"
    assert second.route_reason["passed_over"] == [{"via": "designation", "agent": "bob"}]


def test_designated_agent_strict_waits_for_that_agent_only() -> None:
    m = manager()
    m.register_agent(agent("ann", limit=5))
    m.register_agent(agent("bob", limit=1, status=AgentStatus.OFFLINE))
    chat = m.open_chat(customer("u1"), designated_agent="bob", strict=True)
    assert chat.state is ChatState.QUEUED
    assert chat.queue == "agent/bob"
    m.set_agent_status("bob", AgentStatus.ONLINE)
    assert m.get_chat(chat.id).agent_id == "bob"


def test_designated_group_strict_does_not_leave_the_group() -> None:
    # a group is known when the settings configure it or an agent serves it; a strict
    # designation of an unknown group is refused (tests/test_manager.py)
    m = manager({"assignment": {"groups": {"billing": {}}}})
    m.register_agent(agent("generalist", limit=5))
    chat = m.open_chat(customer("u"), designated_group="billing", strict=True)
    assert chat.state is ChatState.QUEUED
    assert chat.skill_group == "billing"
    loose = m.open_chat(customer("v"), designated_group="billing")
    assert loose.state is ChatState.QUEUED  # non-strict falls back to the default rules: group
    m.register_agent(agent("biller", groups=("billing",)))
    assert m.get_chat(chat.id).agent_id == "biller"


def rules_settings() -> dict[str, object]:
    return {
        "assignment": {
            "routing_rules": [
                {"name": "vip", "min_vip_level": 3, "target_group": "vip"},
                {"name": "office", "ip_ranges": ["10.0.0.0/8"], "target_agent": "ida"},
                {"name": "app", "channels": ["app"], "target_group": "mobile"},
                {"name": "known", "partner_ids": ["p9"], "target_agent": "kim"},
                {"name": "plan", "customer_fields": {"plan": "pro"}, "target_group": "pro"},
            ]
        }
    }


@pytest.mark.parametrize(
    ("info", "expected_agent", "rule"),
    [
        (CustomerInfo(partner_id="p1", vip_level=5, ip="10.1.2.3"), "vic", "vip"),
        (CustomerInfo(partner_id="p1", ip="10.1.2.3", channel="app"), "ida", "office"),
        (CustomerInfo(partner_id="p1", channel="app"), "mo", "app"),
        (CustomerInfo(partner_id="p9"), "kim", "known"),
        (CustomerInfo(partner_id="p2", custom_fields={"plan": "pro"}), "pat", "plan"),
        (CustomerInfo(partner_id="p3"), "gen", None),
    ],
)
def test_routing_rules_first_match_wins(
    info: CustomerInfo, expected_agent: str, rule: str | None
) -> None:
    m = manager(rules_settings())
    m.register_agent(agent("vic", groups=("vip",)))
    m.register_agent(agent("ida", groups=("office",)))
    m.register_agent(agent("mo", groups=("mobile",)))
    m.register_agent(agent("kim", groups=("x",)))
    m.register_agent(agent("pat", groups=("pro",)))
    m.register_agent(agent("gen", groups=("general",)))
    chat = m.open_chat(info, skill_group="general")
    assert chat.agent_id == expected_agent
    assert chat.route_reason.get("rule") == rule


def sticky_settings(**sticky: float) -> dict[str, object]:
    return {"assignment": {"sticky": sticky}}


def test_sticky_after_close_within_window_then_not_after() -> None:
    m = manager(sticky_settings(after_close_s=600))
    for i, name in enumerate(["ann", "bob", "cy"]):
        m.register_agent(agent(name, order=i, limit=5))
    first = m.open_chat(customer("loyal"))
    m.end_chat(first.id, reason=EndReason.AGENT, by=first.agent_id or "")
    clock_of(m).advance(60)
    again = m.open_chat(customer("loyal"))
    assert again.agent_id == first.agent_id
    assert again.route_reason["via"] == "sticky"
    m.end_chat(again.id)
    clock_of(m).advance(601)
    later = m.open_chat(customer("loyal"))
    assert later.route_reason["via"] != "sticky"


def test_unavailable_sticky_agent_is_not_waited_for_by_default() -> None:
    m = manager(sticky_settings(after_close_s=600))
    m.register_agent(agent("ann", order=0))
    m.register_agent(agent("bob", order=1))
    first = m.open_chat(customer("loyal"))
    m.end_chat(first.id)
    m.set_agent_status(first.agent_id or "", AgentStatus.OFFLINE)
    again = m.open_chat(customer("loyal"))
    assert again.agent_id not in (None, first.agent_id)
    assert again.route_reason["passed_over"][0]["via"] == "sticky"


def test_sticky_wait_n_seconds_then_normal_routing() -> None:
    m = manager(sticky_settings(after_close_s=600, wait_s=30))
    m.register_agent(agent("ann", order=0, limit=1))
    m.register_agent(agent("bob", order=1))
    first = m.open_chat(customer("loyal"))
    assert first.agent_id == "ann"
    m.end_chat(first.id)
    blocker = m.open_chat(customer("other"), designated_agent="ann", strict=True)
    assert blocker.agent_id == "ann"  # ann is now full
    waiting = m.open_chat(customer("loyal"))
    assert waiting.state is ChatState.QUEUED and waiting.queue == "agent/ann"
    clock_of(m).advance(31)
    assert m.tick() == 1
    assert m.get_chat(waiting.id).agent_id == "bob"


def test_sticky_needs_a_partner_id() -> None:
    m = manager(sticky_settings(after_close_s=600))
    m.register_agent(agent("ann", order=0))
    m.register_agent(agent("bob", order=1))
    first = m.open_chat(customer(None))
    m.end_chat(first.id)
    assert m.open_chat(customer(None)).route_reason["via"] == "default"


def overflow_settings(
    *conditions: str, hours: dict[str, object] | None = None
) -> dict[str, object]:
    groups: dict[str, object] = {}
    if hours is not None:
        groups["sales"] = {"hours": hours}
    return {
        "assignment": {
            "groups": groups,
            "overflow": [
                {"target_group": "backup", "conditions": list(conditions)},
                {"target_agent": "boss", "conditions": ["all_busy", "no_agent_online"]},
            ],
        }
    }


def test_overflow_when_no_agent_online() -> None:
    m = manager(overflow_settings("no_agent_online"))
    m.register_agent(agent("b1", groups=("backup",)))
    chat = m.open_chat(customer("u"), skill_group="sales")
    assert chat.agent_id == "b1"
    assert chat.route_reason["via"] == "overflow[0]"
    assert chat.route_reason["overflow"] == [{"layer": 0, "condition": "no_agent_online"}]


def test_overflow_layer_skipped_when_its_condition_does_not_hold() -> None:
    m = manager(overflow_settings("no_agent_online"))
    m.register_agent(agent("s1", groups=("sales",), limit=1))
    m.register_agent(agent("b1", groups=("backup",)))
    m.open_chat(customer("u1"), skill_group="sales")
    # sales is online but all busy: layer 0 only overflows when nobody is online
    chat = m.open_chat(customer("u2"), skill_group="sales")
    assert chat.state is ChatState.QUEUED


def test_overflow_chain_goes_through_layers() -> None:
    m = manager(overflow_settings("all_busy"))
    m.register_agent(agent("s1", groups=("sales",), limit=1))
    m.register_agent(agent("b1", groups=("backup",), limit=1))
    m.register_agent(agent("boss", groups=("mgmt",), limit=1))
    picks = [m.open_chat(customer(f"u{i}"), skill_group="sales").agent_id for i in range(4)]
    assert picks == ["s1", "b1", "boss", None]


def test_overflow_when_group_off_duty_by_weekly_hours() -> None:
    hours = {"timezone": "Europe/Berlin", "weekly": {"mon": ["09:00-17:00"]}}
    m = manager(overflow_settings("off_duty", hours=hours))
    m.register_agent(agent("s1", groups=("sales",)))
    m.register_agent(agent("b1", groups=("backup",)))
    berlin = dt.timezone(dt.timedelta(hours=1))
    monday_noon = dt.datetime(2026, 11, 23, 12, 0, tzinfo=berlin).timestamp()
    monday_night = dt.datetime(2026, 11, 23, 22, 0, tzinfo=berlin).timestamp()
    assert m.open_chat(customer("u1"), skill_group="sales", now=monday_noon).agent_id == "s1"
    off = m.open_chat(customer("u2"), skill_group="sales", now=monday_night)
    assert off.agent_id == "b1"
    assert off.route_reason["overflow"][0]["condition"] == "off_duty"


def test_every_decision_is_explained_in_the_events() -> None:
    m = manager()
    m.register_agent(agent("a", limit=1))
    m.register_agent(agent("b", status=AgentStatus.AWAY))
    assigned = m.open_chat(customer("u1"))
    queued = m.open_chat(customer("u2"))
    events = {
        e.data["chat_id"]: e
        for e in sink_of(m).events
        if e.type in ("chat.assigned", "chat.queued")
    }
    reason = events[assigned.id].data["reason"]
    assert reason == assigned.route_reason
    assert reason["strategy"] == "round_robin" and reason["eligible"] == 1
    assert reason["ineligible"]["away"] == 1
    qreason = events[queued.id].data["reason"]
    assert qreason["via"] == "queue" and qreason["condition"] == "all_busy"
    assert qreason["ineligible"] == {"full": 1, "busy": 0, "away": 1, "offline": 0, "excluded": 0}
