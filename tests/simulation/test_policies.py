"""The simulator models VIP routing, sticky routing and auto-transfer through the real core, so
``compare`` can weigh them: exact traces first, then statistical comparisons under load."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from chatmgmt.simulation import (
    AgentSpec,
    Exponential,
    Fixed,
    PoissonArrivals,
    Scenario,
    ScenarioError,
    TraceArrivals,
    Variant,
    compare,
    predict,
    run_replication,
    scenario_from_dict,
    simulate,
)
from chatmgmt.simulation._cli import simulate_main

AUTO = {"assignment": {"auto_transfer_s": 30}}


# ----------------------------------------------------------------------------- auto-transfer


def _slow_and_fast() -> list[AgentSpec]:
    # round robin tries "slow" first (account order); it answers after 60 s, "fast" after 1 s
    return [AgentSpec("slow", reply=Fixed(60.0)), AgentSpec("fast", reply=Fixed(1.0))]


def test_an_agent_slower_than_auto_transfer_s_loses_the_chat() -> None:
    sc = Scenario([TraceArrivals([0.0], handle_s=[100.0])], _slow_and_fast(), 1000.0, 0.0)
    rep = run_replication(sc, Variant(AUTO), random.Random(1))
    assert rep.transfers == (1,)  # moved from slow to fast at 30 s
    assert rep.waits_s == (31.0,)  # fast answered 1 s later
    assert rep.answered == (True,)
    assert rep.chats == (1, 1)


def test_without_auto_transfer_the_slow_answer_is_waited_for() -> None:
    sc = Scenario([TraceArrivals([0.0], handle_s=[100.0])], _slow_and_fast(), 1000.0, 0.0)
    rep = run_replication(sc, "round_robin", random.Random(1))
    assert rep.transfers == (0,)
    assert rep.waits_s == (60.0,)
    assert rep.chats == (1, 0)


def test_auto_transfer_back_to_the_queue_when_nobody_else_is_free() -> None:
    """fast is busy until 100 s: the chat goes back to the queue at 30 s and fast takes it
    when its first chat ends; slow is never offered it again (excluded)."""
    trace = TraceArrivals([0.0, 0.5], handle_s=[99.5, 50.0])
    agents = [AgentSpec("fast", reply=Fixed(0.0)), AgentSpec("slow", reply=Fixed(60.0))]
    sc = Scenario([trace], agents, 1000.0, 0.0)
    rep = run_replication(sc, Variant(AUTO), random.Random(1))
    assert rep.transfers == (0, 1)
    assert rep.waits_s == (0.0, 99.0)  # answered by fast at 99.5 s, when its first chat ends
    assert rep.chats == (2, 1)


def test_compare_reports_transfers_and_shorter_waits_with_auto_transfer() -> None:
    """At a light load a slow agent's chats find a free agent when they are moved on: the
    customers who drew that agent stop waiting ten minutes."""
    agents = [AgentSpec(f"a{i}", reply=Exponential(10.0)) for i in range(3)]
    agents.append(AgentSpec("slowpoke", reply=Fixed(600.0)))
    stream = PoissonArrivals(1 / 180, handle=Exponential(120.0))
    sc = Scenario([stream], agents, duration_s=4 * 3600, warmup_s=600, target_s=60)
    results = compare(
        sc,
        {"off": "round_robin", "auto 45 s": Variant({"assignment": {"auto_transfer_s": 45}})},
        replications=4,
        seed=3,
    )
    off, auto = results["off"], results["auto 45 s"]
    assert off.auto_transfers is None
    assert auto.auto_transfers is not None and auto.auto_transfers.low > 0
    assert auto.mean_wait_s.high < off.mean_wait_s.low  # waiting for slowpoke is gone
    pairs = zip(auto.overall.wait_p99_s.values, off.overall.wait_p99_s.values, strict=True)
    assert all(a < o for a, o in pairs)  # the ten-minute tail, replication by replication


def test_auto_transfer_can_cost_more_than_it_saves_under_load() -> None:
    """What the simulator is for: at a higher load round robin keeps handing chats to the
    slow agent (it is always the longest since its last assignment), each one costs it 45 s
    before it moves on, and the other agents are busy: waits grow. Measured, not assumed."""
    agents = [AgentSpec(f"a{i}", reply=Exponential(20.0)) for i in range(3)]
    agents.append(AgentSpec("slowpoke", reply=Fixed(120.0)))
    stream = PoissonArrivals(1 / 60, handle=Exponential(120.0))
    sc = Scenario([stream], agents, duration_s=4 * 3600, warmup_s=600, target_s=45)
    results = compare(
        sc,
        {"off": "round_robin", "auto": Variant({"assignment": {"auto_transfer_s": 45}})},
        replications=3,
        seed=3,
    )
    assert results["auto"].mean_wait_s.mean > results["off"].mean_wait_s.mean
    slow_auto = results["auto"].agents["slowpoke"].chats.mean
    assert slow_auto > 2 * results["off"].agents["slowpoke"].chats.mean


# ----------------------------------------------------------------------------- VIP


def test_vip_customers_wait_less_under_queue_priority() -> None:
    stream = PoissonArrivals(0.85 / 60, handle=Exponential(120.0), vip_share=0.2, vip_level=5)
    sc = Scenario([stream], [AgentSpec("a"), AgentSpec("b")], duration_s=6 * 3600)
    # one VIP level is worth 5 minutes of waiting: VIPs go ahead of chats up to 25 minutes old
    policy = Variant({"assignment": {"queue": {"priority_step_s": 300}}})
    result = simulate(sc, policy, replications=4, seed=2)
    vip, regular = result.classes["vip"], result.classes["regular"]
    assert 0 < vip.customers.mean < regular.customers.mean
    # paired, replication by replication: the same customers, VIPs ahead
    pairs = zip(vip.mean_wait_s.values, regular.mean_wait_s.values, strict=True)
    assert all(v < r / 2 for v, r in pairs)
    assert predict(sc) is None  # two classes: the one-class formula does not apply
    # without VIPs there are no classes to report
    assert simulate(Scenario.simple(0.85 / 60, 120, 2), replications=1).classes == {}


def test_a_vip_routing_rule_sends_vips_to_their_agent() -> None:
    trace = TraceArrivals(range(0, 100, 10), "general", handle_s=[5] * 10, vip_share=0.5)
    settings = {
        "assignment": {
            "routing_rules": [
                {"name": "vip", "target_group": "vip", "strict": True, "min_vip_level": 1}
            ]
        }
    }
    agents = [AgentSpec("general", groups={"general"}), AgentSpec("vipdesk", groups={"vip"})]
    sc = Scenario([trace], agents, 200.0, 0.0)
    rep = run_replication(sc, Variant(settings), random.Random(4))
    assert 0 < sum(rep.vip) < 10  # both kinds arrived
    assert rep.chats == (10 - sum(rep.vip), sum(rep.vip))  # every VIP went to vipdesk


# ----------------------------------------------------------------------------- sticky


def test_a_returning_customer_goes_back_to_their_agent_with_sticky_routing() -> None:
    # customer 0 arrives at 0 (ann, by round robin), leaves at 10; the next arrivals return
    trace = TraceArrivals([0, 50, 100, 150], handle_s=[10, 10, 10, 10], returning_share=1.0)
    sc = Scenario([trace], [AgentSpec("ann"), AgentSpec("bob")], 1000.0, 0.0)
    sticky = Variant({"assignment": {"sticky": {"after_close_s": 3600}}}, name="sticky")
    rep = run_replication(sc, sticky, random.Random(1))
    assert rep.returning == (False, True, True, True)
    assert rep.same_agent == (False, True, True, True)
    assert rep.chats == (4, 0)
    plain = run_replication(sc, "round_robin", random.Random(1))
    # round robin: ann (tie, account order), ann (bob never assigned either: the tie again),
    # bob, ann — the customer meets their last agent only by chance
    assert plain.same_agent == (False, True, False, False)
    assert plain.chats == (3, 1)


def test_compare_sticky_on_and_off() -> None:
    stream = PoissonArrivals(1 / 60, handle=Exponential(180.0), returning_share=0.6)
    agents = [AgentSpec(f"a{i}", slots=2) for i in range(4)]
    sc = Scenario([stream], agents, duration_s=4 * 3600, warmup_s=600)
    results = compare(
        sc,
        [
            Variant(name="off"),
            Variant({"assignment": {"sticky": {"after_close_s": 86400}}}, name="sticky"),
        ],
        replications=3,
        seed=5,
    )
    off, on = results["off"].p_same_agent, results["sticky"].p_same_agent
    assert off is not None and on is not None
    assert on.low > 0.8 and off.high < 0.5
    assert predict(sc) is not None  # sticky is work-conserving: Erlang C still applies
    # the queue figures do not depend on who answers (work-conserving): same P(wait) band
    assert abs(results["off"].p_wait.mean - results["sticky"].p_wait.mean) < 0.1


# ----------------------------------------------------------------------------- errors


def test_a_variant_with_bad_settings_fails_before_running() -> None:
    sc = Scenario.simple(0.01, 60, 1, duration_s=100, warmup_s=0)
    with pytest.raises(ScenarioError, match=r"assignment\.auto_transfer_s"):
        compare(sc, [Variant({"assignment": {"auto_transfer_s": -1}})])


@pytest.mark.parametrize(
    "build",
    [
        lambda: PoissonArrivals(1.0, vip_share=1.5),
        lambda: PoissonArrivals(1.0, vip_level=0),
        lambda: TraceArrivals([0.0], returning_share=-0.1),
        lambda: AgentSpec("a", reply=5),
    ],
)
def test_bad_new_fields_are_refused(build: object) -> None:
    with pytest.raises(ScenarioError):
        build()  # type: ignore[operator]


def test_no_vip_and_no_returning_customers_change_nothing() -> None:
    """The new draws happen only when a share is set: the old figures stay the same."""
    sc = Scenario.simple(1 / 60, 120, 2, duration_s=3600, warmup_s=0)
    rep = run_replication(sc, "round_robin", random.Random(9))
    again = run_replication(sc, Variant(), random.Random(9))
    assert rep == again
    assert not any(rep.vip) and not any(rep.returning) and not any(rep.transfers)


def test_scenario_files_take_the_new_keys() -> None:
    loaded = scenario_from_dict(
        {
            "arrivals": [{"per_min": 1, "vip_share": 0.1, "vip_level": 3, "returning_share": 0.5}],
            "agents": [{"count": 2, "reply": {"dist": "fixed", "value_s": 5}}],
        }
    )
    stream = loaded.scenario.arrivals[0]
    assert isinstance(stream, PoissonArrivals)
    assert (stream.vip_share, stream.vip_level, stream.returning_share) == (0.1, 3, 0.5)
    assert loaded.scenario.agents[0].reply == Fixed(5.0)
    with pytest.raises(ScenarioError, match=r"arrivals\[0\].*vip_share"):
        scenario_from_dict({"arrivals": [{"per_min": 1, "vip_share": 2}], "agents": [{}]})


# ----------------------------------------------------------------------------- agent leave


def _leaving_world() -> Scenario:
    # ann (shift 0-50) takes c0 at 0 for 100 s; bob takes c1 at 1 until 80
    trace = TraceArrivals([0.0, 1.0], handle_s=[100.0, 79.0])
    agents = [AgentSpec("ann", shifts=[[0, 50]]), AgentSpec("bob")]
    return Scenario([trace], agents, 1000.0, 0.0)


@pytest.mark.parametrize("action", ["requeue", "forward"])
def test_a_leaving_agents_chat_waits_for_the_next_agent(action: str) -> None:
    """ann goes offline at 50; after the 10 s grace time the leave policy moves c0 (back to
    the queue, or forwarded to the group where nobody is free, which queues it); bob takes it
    when c1 ends at 80 and finishes the 40 s of handling left."""
    policy = Variant({"assignment": {"leave": {"action": action, "grace_s": 10}}})
    rep = run_replication(_leaving_world(), policy, random.Random(1))
    assert rep.moved == (1, 0)
    assert rep.rewait_s == (20.0, 0.0)
    assert rep.waits_s == (0.0, 0.0)  # answered at once; the second wait is rewait_s
    assert rep.chats == (1, 2)
    assert rep.end_s == 1000.0
    result = simulate(_leaving_world(), policy, replications=1)
    assert result.leave_moves is not None and result.leave_moves.mean == 0.5
    assert result.rewait_s is not None and result.rewait_s.mean == 20.0


def test_keep_leaves_the_chat_with_the_agent_who_left() -> None:
    rep = run_replication(_leaving_world(), "round_robin", random.Random(1))
    assert rep.moved == (0, 0) and rep.chats == (1, 1)
    assert simulate(_leaving_world(), "round_robin", replications=1).leave_moves is None


def test_coming_back_within_the_grace_time_keeps_the_chats() -> None:
    trace = TraceArrivals([0.0], handle_s=[100.0])
    agents = [AgentSpec("ann", shifts=[[0, 50], [55, 1000]]), AgentSpec("bob")]
    sc = Scenario([trace], agents, 1000.0, 0.0)
    policy = Variant({"assignment": {"leave": {"action": "requeue", "grace_s": 10}}})
    rep = run_replication(sc, policy, random.Random(1))
    assert rep.moved == (0,) and rep.chats == (1, 0)


def test_the_command_line_compares_variants_from_a_scenario_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "sticky.json"
    path.write_text(
        json.dumps(
            {
                "duration_s": 3600,
                "warmup_s": 0,
                "replications": 2,
                "policies": [
                    "round_robin",
                    {
                        "name": "sticky",
                        "settings": {"assignment": {"sticky": {"after_close_s": 86400}}},
                    },
                    {
                        "name": "auto",
                        "strategy": "least_busy",
                        "settings": {"assignment": {"auto_transfer_s": 30}},
                    },
                ],
                "arrivals": [{"per_min": 1, "handle": 120, "returning_share": 0.7}],
                "agents": [
                    {"count": 3, "reply": {"dist": "fixed", "value_s": 5}, "decline_share": 0}
                ],
            }
        ),
        encoding="utf-8",
    )
    assert simulate_main(["--scenario", str(path), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)["policies"]
    assert list(doc) == ["round_robin", "sticky", "auto"]
    assert doc["sticky"]["p_same_agent"] > doc["round_robin"]["p_same_agent"]
    assert doc["auto"]["auto_transfers"] == 0.0  # every agent answers within 5 s
    assert "auto_transfers" not in doc["sticky"]


@pytest.mark.parametrize(
    ("policy", "fragment"),
    [
        ({"strategy": "least_busy"}, "policies[0].name"),
        ({"name": "x", "settings": []}, "policies[0].settings"),
        ({"name": "x", "flavour": 1}, "policies[0]: unknown key(s): flavour"),
        (3, "policies[0]: must be a policy name or an object"),
    ],
)
def test_bad_variants_in_a_file_name_the_field(policy: object, fragment: str) -> None:
    data = {"policies": [policy], "arrivals": [{"per_min": 1}], "agents": [{}]}
    with pytest.raises(ScenarioError) as info:
        scenario_from_dict(data)
    assert fragment in str(info.value)


# ----------------------------------------------------------------------------- offers

OFFERS = {"assignment": {"offers": {"enabled": True, "timeout_s": 30}}}


def _one_chat(*agents: AgentSpec) -> Scenario:
    return Scenario([TraceArrivals([0.0], handle_s=[100.0])], list(agents), 1000.0, 0.0)


def test_a_declined_offer_goes_to_the_next_agent() -> None:
    sc = _one_chat(AgentSpec("picky", decline_share=1.0), AgentSpec("keen"))
    rep = run_replication(sc, Variant(OFFERS), random.Random(1))
    assert rep.declined == (1,)
    assert rep.waits_s == (0.0,) and rep.answered == (True,)
    assert rep.chats == (0, 1)  # an assignment counts when the offer is accepted


def test_an_offer_nobody_answers_runs_out_and_moves_on() -> None:
    sc = _one_chat(AgentSpec("sleepy", offer_reply=Fixed(60.0)), AgentSpec("keen"))
    rep = run_replication(sc, Variant(OFFERS), random.Random(1))
    assert rep.declined == (1,)
    assert rep.waits_s == (30.0,)  # the offer to sleepy ran out at 30 s; keen accepted
    assert rep.chats == (0, 1)
    # an answer within the timeout is an acceptance after that long
    quick = _one_chat(AgentSpec("thinks", offer_reply=Fixed(12.0)), AgentSpec("keen"))
    rep = run_replication(quick, Variant(OFFERS), random.Random(1))
    assert rep.declined == (0,) and rep.waits_s == (12.0,) and rep.chats == (1, 0)


def test_a_chat_every_agent_declined_waits() -> None:
    sc = _one_chat(AgentSpec("picky", decline_share=1.0))
    rep = run_replication(sc, Variant(OFFERS), random.Random(1))
    assert rep.declined == (1,) and rep.answered == (False,)  # never offered to picky again
    result = simulate(sc, Variant(OFFERS), replications=1)
    assert result.offer_declines is not None and result.offer_declines.mean == 1.0
    assert simulate(sc, "round_robin", replications=1).offer_declines is None


def test_compare_offers_on_and_off_under_load() -> None:
    agents = [AgentSpec(f"a{i}", offer_reply=Exponential(8.0), decline_share=0.2) for i in range(3)]
    sc = Scenario([PoissonArrivals(1 / 90, handle=Exponential(150.0))], agents, 3 * 3600, 600)
    results = compare(sc, {"assign": "round_robin", "offer": Variant(OFFERS)}, replications=3)
    on, off = results["offer"], results["assign"]
    assert on.offer_declines is not None and on.offer_declines.low > 0
    assert off.offer_declines is None
    pairs = zip(on.mean_wait_s.values, off.mean_wait_s.values, strict=True)
    assert all(a > b for a, b in pairs)  # offers cost their answer time and the declines
