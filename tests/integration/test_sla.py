"""SLA policies on the managers: clocks on the stored chat, sla.warning / sla.breached once
each, the figures in chat.ended, business time, re-selection on tags, priority and transfer."""

from __future__ import annotations

import asyncio
import datetime as dt
import zoneinfo
from typing import Any

import pytest

from assignment.assign_helpers import agent, customer, manager, sink_of
from chatmgmt import AsyncChatManager, ChatSettings, MessageRole
from chatmgmt.model import Chat, ChatState, CustomerInfo
from chatmgmt.testing import ManualClock, RecordingEventSink, sequential_ids

STANDARD = {"name": "standard", "first_response_s": 60, "next_response_s": 30, "resolution_s": 600}
VIP = {"name": "vip", "tags": ["vip"], "first_response_s": 20, "resolution_s": 300}
SLA: dict[str, Any] = {"sla": {"policies": [VIP, STANDARD], "warn_before": 0.25}}


def sla_events(m: Any) -> list[tuple[str, str]]:
    return [(e.type, e.data["metric"]) for e in sink_of(m).events if e.type.startswith("sla.")]


def stored(m: Any, chat_id: str) -> Chat:
    chat = m.storage.chats.get(chat_id)
    assert chat is not None
    return chat


def test_a_first_response_warns_then_breaches_once_and_the_answer_records_it() -> None:
    m = manager(SLA)
    m.register_agent(agent("ann"))
    chat = m.open_chat(customer("u"))
    sla = stored(m, chat.id).sla
    assert sla is not None and sla.policy == "standard"
    first = sla.first_response
    assert first is not None and (first.started_at, first.warn_at, first.due_at) == (
        1000.0,
        1045.0,
        1060.0,
    )
    assert m.storage.timers.get(f"{chat.id}:sla").due_at == 1045.0  # type: ignore[union-attr]
    assert m.tick(1044) == 0 and sla_events(m) == []
    assert m.tick(1046) == 1
    assert sla_events(m) == [("sla.warning", "first_response")]
    assert m.storage.timers.get(f"{chat.id}:sla").due_at == 1060.0  # type: ignore[union-attr]
    m.tick(1061)
    m.tick(1062)  # nothing more: the breach went out once
    assert sla_events(m) == [("sla.warning", "first_response"), ("sla.breached", "first_response")]
    breached = sink_of(m).of_type("sla.breached")[0]
    assert breached.data["due_at"] == 1060.0 and breached.data["policy"] == "standard"
    m.send_message(chat.id, "hello", role=MessageRole.AGENT, sender="ann", now=1070)
    first = stored(m, chat.id).sla.first_response  # type: ignore[union-attr]
    assert first is not None and not first.running
    assert (first.achieved_s, first.breaches, first.runs) == (70.0, 1, 1)
    assert len(sink_of(m).of_type("sla.breached")) == 1  # the late answer does not repeat it


def test_an_answer_in_time_cancels_the_timer_and_nothing_goes_out() -> None:
    m = manager(SLA)
    m.register_agent(agent("ann"))
    chat = m.open_chat(customer("u"))
    m.send_message(chat.id, "hi", role=MessageRole.AGENT, sender="ann", now=1010)
    first = stored(m, chat.id).sla.first_response  # type: ignore[union-attr]
    assert first is not None and (first.achieved_s, first.breaches) == (10.0, 0)
    timer = m.storage.timers.get(f"{chat.id}:sla")
    assert timer is not None and timer.due_at == 1450.0  # the resolution's warning is next
    m.tick(1100)
    assert sla_events(m) == []


def test_a_late_answer_before_any_tick_breaches_in_its_own_unit_of_work() -> None:
    m = manager(SLA)
    m.register_agent(agent("ann"))
    chat = m.open_chat(customer("u"))
    m.send_message(chat.id, "sorry", role=MessageRole.AGENT, sender="ann", now=1090)
    assert sla_events(m) == [("sla.breached", "first_response")]
    m.tick(1100)  # the timer finds nothing due any more
    assert sla_events(m) == [("sla.breached", "first_response")]
    first = stored(m, chat.id).sla.first_response  # type: ignore[union-attr]
    assert first is not None and first.breached and first.achieved_s == 90.0


def test_next_response_runs_per_customer_message_after_an_answer() -> None:
    m = manager(SLA)
    m.register_agent(agent("ann"))
    chat = m.open_chat(customer("u"))
    m.send_message(chat.id, "q1", role=MessageRole.CUSTOMER, now=1005)  # before any answer
    assert not stored(m, chat.id).sla.next_response.running  # type: ignore[union-attr]
    m.send_message(chat.id, "a1", role=MessageRole.AGENT, sender="ann", now=1010)
    m.send_message(chat.id, "q2", role=MessageRole.CUSTOMER, now=1020)
    m.send_message(chat.id, "q3", role=MessageRole.CUSTOMER, now=1025)  # the same wait
    nxt = stored(m, chat.id).sla.next_response  # type: ignore[union-attr]
    assert nxt is not None and (nxt.started_at, nxt.due_at) == (1020.0, 1050.0)
    m.send_message(chat.id, "a2", role=MessageRole.AGENT, sender="ann", now=1032)
    m.send_message(chat.id, "q4", role=MessageRole.CUSTOMER, now=1040)
    m.tick(1063)  # warned at 1062.5 (a quarter of 30 s left)
    m.tick(1071)
    m.send_message(chat.id, "a3", role=MessageRole.AGENT, sender="ann", now=1080)
    nxt = stored(m, chat.id).sla.next_response  # type: ignore[union-attr]
    assert nxt is not None and (nxt.runs, nxt.breaches, nxt.achieved_s) == (2, 1, 40.0)
    assert sla_events(m) == [("sla.warning", "next_response"), ("sla.breached", "next_response")]


def test_chat_ended_carries_the_figures_and_the_clocks_stop() -> None:
    m = manager(SLA)
    m.register_agent(agent("ann"))
    chat = m.open_chat(customer("u"))
    m.send_message(chat.id, "hi", role=MessageRole.AGENT, sender="ann", now=1010)
    m.end_chat(chat.id, now=1200)
    (ended,) = sink_of(m).of_type("chat.ended")
    figures = ended.data["sla"]
    assert figures["policy"] == "standard" and figures["business_hours"] is False
    assert figures["first_response"]["achieved_s"] == 10.0
    assert figures["resolution"] == {
        "target_s": 600.0,
        "achieved_s": 200.0,
        "breached": False,
        "breaches": 0,
        "runs": 1,
        "running": False,
        "due_at": None,
    }
    assert figures == stored(m, chat.id).sla.figures()  # type: ignore[union-attr]
    assert m.storage.timers.get(f"{chat.id}:sla") is None


def test_an_end_past_a_due_time_breaches_in_the_end_unit() -> None:
    m = manager(SLA)
    m.register_agent(agent("ann"))
    chat = m.open_chat(customer("u"))
    m.end_chat(chat.id, now=1100)  # never answered, first response due at 1060
    assert sla_events(m) == [("sla.breached", "first_response")]
    figures = sink_of(m).of_type("chat.ended")[0].data["sla"]
    assert figures["first_response"]["breached"] and figures["first_response"]["runs"] == 0
    assert figures["first_response"]["achieved_s"] is None
    assert not figures["resolution"]["breached"]


def test_without_policies_chats_have_no_sla_and_no_timer() -> None:
    m = manager()
    m.register_agent(agent("ann"))
    chat = m.open_chat(customer("u"))
    assert stored(m, chat.id).sla is None and m.storage.timers.get(f"{chat.id}:sla") is None
    m.end_chat(chat.id, now=1100)
    assert sink_of(m).of_type("chat.ended")[0].data["sla"] is None
    assert m._core.sla_on is False


def test_no_covering_policy_means_no_sla() -> None:
    m = manager({"sla": {"policies": [VIP]}})
    chat = m.open_chat(customer("u"))
    assert stored(m, chat.id).sla is None


def test_tagging_mid_chat_selects_the_policy_again_from_the_original_start() -> None:
    m = manager(SLA)
    m.register_agent(agent("ann"))
    chat = m.open_chat(customer("u"))
    m.send_message(chat.id, "hi", role=MessageRole.AGENT, sender="ann", now=1010)
    m.tag_chat(chat.id, "vip", by="ann", now=1030)
    sla = stored(m, chat.id).sla
    assert sla is not None and sla.policy == "vip" and sla.next_response is None
    assert sla.first_response is not None and sla.first_response.achieved_s == 10.0
    resolution = sla.resolution
    assert resolution is not None and (resolution.started_at, resolution.due_at) == (1000, 1300)
    m.untag_chat(chat.id, "vip", by="ann", now=1040)
    back = stored(m, chat.id).sla
    assert back is not None and back.policy == "standard"
    assert back.resolution is not None and back.resolution.due_at == 1600.0
    assert back.next_response is not None and not back.next_response.running


def test_a_stricter_policy_whose_due_time_passed_breaches_at_the_next_tick() -> None:
    m = manager(SLA)
    chat = m.open_chat(customer("u"))  # queued: nobody online
    m.tag_chat(chat.id, "vip", by="sup", now=1030)  # vip: first response due at 1020
    m.tick(1031)
    assert sla_events(m) == [("sla.breached", "first_response")]


def test_a_stricter_policy_after_a_late_answer_breaches_in_the_tagging_unit() -> None:
    # regression (found by test_sla_stateful): an answer at 30 s met the standard 60 s, then
    # the vip tag (20 s) left a finished run achieved late under its target but not breached
    m = manager(SLA)
    m.register_agent(agent("ann"))
    chat = m.open_chat(customer("u"))
    m.send_message(chat.id, "hi", role=MessageRole.AGENT, sender="ann", now=1030)
    assert sla_events(m) == []
    m.tag_chat(chat.id, "vip", by="sup", now=1040)
    first = stored(m, chat.id).sla.first_response  # type: ignore[union-attr]
    assert first is not None and (first.target_s, first.achieved_s) == (20.0, 30.0)
    assert first.breached and first.breaches == 1
    assert sla_events(m) == [("sla.breached", "first_response")]
    m.untag_chat(chat.id, "vip", by="sup", now=1050)  # back to 60 s: a breach is not taken back
    m.tag_chat(chat.id, "vip", by="sup", now=1060)  # nor sent twice
    assert sla_events(m) == [("sla.breached", "first_response")]
    again = stored(m, chat.id).sla.first_response  # type: ignore[union-attr]
    assert again is not None and again.breaches == 1


def test_a_stricter_policy_during_a_reopened_run_breaches_the_finished_one() -> None:
    # regression (found by test_sla_stateful, seed 101): an Always On chat's resolution took
    # 320 s under the standard 600 s; reopened, its new run started; then the vip tag (300 s)
    # left the finished run achieved late under its target but not breached
    m = manager({**SLA, "reception_mode": "always_on"})
    m.register_agent(agent("ann"))
    chat = m.open_chat(customer("u"))
    m.send_message(chat.id, "hi", role=MessageRole.AGENT, sender="ann", now=1010)
    m.end_chat(chat.id, now=1320)
    m.send_message(chat.id, "again", role=MessageRole.CUSTOMER, sender="u", now=1330)
    reopened = stored(m, chat.id)
    assert reopened.state is not ChatState.ENDED
    res = reopened.sla.resolution  # type: ignore[union-attr]
    assert res is not None and res.running and (res.achieved_s, res.breaches) == (320.0, 0)
    m.tag_chat(chat.id, "vip", by="sup", now=1340)
    res = stored(m, chat.id).sla.resolution  # type: ignore[union-attr]
    assert res is not None and (res.target_s, res.achieved_s) == (300.0, 320.0)
    assert res.breached and res.breaches == 1
    assert res.running and not res.late  # the new run breaches, or not, on its own
    assert sla_events(m) == [("sla.breached", "resolution")]
    m.tick(1330 + 301)  # the new run misses 300 s too: its own breach
    res = stored(m, chat.id).sla.resolution  # type: ignore[union-attr]
    assert res is not None and res.breaches == 2 and res.late
    assert sla_events(m).count(("sla.breached", "resolution")) == 2


def test_a_transfer_to_another_group_selects_again_on_its_calendar() -> None:
    berlin = zoneinfo.ZoneInfo("Europe/Berlin")
    monday_eight = dt.datetime(2026, 12, 7, 8, 0, tzinfo=berlin).timestamp()
    settings = {
        "assignment": {
            "groups": {
                "night": {},
                "day": {"hours": {"timezone": "Europe/Berlin", "weekly": {"mon": ["09:00-17:00"]}}},
            }
        },
        "sla": {
            "policies": [
                {"name": "night", "groups": ["night"], "resolution_s": 3600},
                {"name": "day", "groups": ["day"], "resolution_s": 3600},
            ]
        },
    }
    m = manager(settings, clock=ManualClock(monday_eight))
    m.register_agent(agent("ann", groups=("night",)))
    m.register_agent(agent("bob", groups=("day",)))
    chat = m.open_chat(customer("u"), skill_group="night")
    sla = stored(m, chat.id).sla
    assert sla is not None and sla.policy == "night" and not sla.business_hours
    assert sla.resolution is not None and sla.resolution.due_at == monday_eight + 3600
    m.transfer(chat.id, to_group="day", now=monday_eight + 4200)  # 09:10, bob takes it
    sla = stored(m, chat.id).sla
    assert sla is not None and sla.policy == "day" and sla.business_hours
    assert sla.calendar_group == "day"
    # counted from the chat's start in business time: 09:00 opening + 1 h
    assert sla.resolution is not None and sla.resolution.due_at == monday_eight + 2 * 3600
    m.end_chat(chat.id, now=monday_eight + 5400)  # 09:30: half an hour of business time
    figures = sink_of(m).of_type("chat.ended")[0].data["sla"]
    assert figures["business_hours"] is True and figures["resolution"]["achieved_s"] == 1800.0


@pytest.mark.parametrize("group", ["", "billing"])
def test_a_bot_stage_chat_starts_its_clocks_at_the_handoff(group: str) -> None:
    m = manager(SLA)
    m.register_agent(agent("ann", groups=("billing",)))
    m.register_agent(agent("bob"))
    chat = m.open_chat(customer("u"), bot="faq-bot")
    sla = stored(m, chat.id).sla
    assert sla is not None and not any(c.running for c in sla.clocks().values())
    assert m.storage.timers.get(f"{chat.id}:sla") is None
    m.send_message(chat.id, "help", role=MessageRole.CUSTOMER, now=1100)
    m.tick(1200)  # an hour of bot stage breaches nothing
    m.handoff(chat.id, reason="asked for a human", skill_group=group or None, now=1300)
    first = stored(m, chat.id).sla.first_response  # type: ignore[union-attr]
    assert first is not None and (first.started_at, first.due_at) == (1300.0, 1360.0)
    m.tick(1361)
    assert sla_events(m) == [("sla.breached", "first_response")]
    assert stored(m, chat.id).sla.resolution.started_at == 1300.0  # type: ignore[union-attr]


def test_priority_selects_the_policy() -> None:
    m = manager(
        {"sla": {"policies": [{"name": "p2", "priorities": [2], "resolution_s": 10}, STANDARD]}}
    )
    vip = m.open_chat(CustomerInfo(partner_id="v", vip_level=2))
    plain = m.open_chat(customer("p"))
    assert stored(m, vip.id).sla.policy == "p2"  # type: ignore[union-attr]
    assert stored(m, plain.id).sla.policy == "standard"  # type: ignore[union-attr]


def test_group_override_of_the_sla_section() -> None:
    m = manager(
        {"sla": {"policies": [STANDARD], "groups": {"g": {"policies": [VIP | {"tags": []}]}}}}
    )
    in_g = m.open_chat(customer("a"), skill_group="g")
    other = m.open_chat(customer("b"), skill_group="h")
    assert stored(m, in_g.id).sla.policy == "vip"  # type: ignore[union-attr]
    assert stored(m, other.id).sla.policy == "standard"  # type: ignore[union-attr]


def test_the_async_manager_runs_the_same_clocks() -> None:
    async def run() -> None:
        sink = RecordingEventSink()
        m = AsyncChatManager(
            None,
            ChatSettings.from_dict(SLA),
            clock=ManualClock(1000.0),
            ids=sequential_ids(),
            event_sink=sink,
        )
        await m.register_agent(agent("ann"))
        chat = await m.open_chat(customer("u"))
        await m.tick(1070)
        await m.end_chat(chat.id, now=1080)
        assert [e.type for e in sink.events if e.type.startswith("sla.")] == ["sla.breached"]
        got = await m.get_chat(chat.id)
        assert got.state is ChatState.ENDED and got.sla is not None
        assert got.sla.first_response is not None and got.sla.first_response.breached

    asyncio.run(run())


@pytest.mark.parametrize(
    ("sla", "path"),
    [
        ({"policies": [{"name": "x"}]}, "sla.policies[0]"),
        ({"policies": [{"name": "x", "resolution_s": -1}]}, "sla.policies[0].resolution_s"),
        ({"policies": [STANDARD, STANDARD]}, "sla.policies[1].name"),
        ({"warn_before": 1}, "sla.warn_before"),
        ({"groups": {"g": {"warn_before": -0.1}}}, "sla.groups.g.warn_before"),
        ({"channels": {"app": {"policies": [{"name": ""}]}}}, "sla.channels.app.policies[0].name"),
        ({"policies": [{"name": "x", "resolution_s": 1, "priorities": ["hi"]}]}, "sla.policies"),
    ],
)
def test_bad_sla_settings_name_the_path(sla: dict[str, Any], path: str) -> None:
    from chatmgmt.errors import SettingsError

    with pytest.raises(SettingsError) as info:
        ChatSettings.from_dict({"sla": sla})
    assert info.value.path.startswith(path)


def test_a_clock_added_after_a_reopening_starts_at_the_reopening() -> None:
    # Always On; the plain policy has no resolution target, the vip one does. After the chat
    # is reopened, a vip tag adds the resolution clock: it starts where the human part of
    # this period started, the reopening (not the creation, which would breach it at once)
    plain = {"name": "plain", "first_response_s": 60}
    m = manager({"reception_mode": "always_on", "sla": {"policies": [VIP, plain]}})
    m.register_agent(agent("ann"))
    chat = m.open_chat(customer("u"))
    m.send_message(chat.id, "hello", role=MessageRole.AGENT, sender="ann", now=1005)
    m.end_chat(chat.id, now=1010)
    assert stored(m, chat.id).sla.resolution is None  # type: ignore[union-attr]
    m.reopen(chat.id, by="admin", now=2000)
    m.tag_chat(chat.id, "vip", by="ann", now=2005)
    sla = stored(m, chat.id).sla
    assert sla is not None and sla.policy == "vip"
    resolution = sla.resolution
    assert resolution is not None and (resolution.started_at, resolution.due_at) == (2000.0, 2300.0)
    m.tick(2100)
    assert ("sla.breached", "resolution") not in sla_events(m)
