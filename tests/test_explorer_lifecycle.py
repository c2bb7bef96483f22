"""Interleaving explorer: the later lifecycle operations — hold, resume, a bot's handoff and an
Always On reopen — against each of the ten operations of ``tests/test_explorer.py`` (open, end,
abandon, transfer to a group and to an agent, drain, customer message, agent status, limit,
``reconcile()``), with the invariants on the stored records after every call that writes.

Each lifecycle operation runs in a world where it moves a slot or a queue entry that the other
operation also reaches for:

* **hold** (``hold_world``): held chats do not count, so holding c1 frees ann's slot and her
  queues drain into it (c3, or the new chat, or the chat moved to her group) — against every
  other change of those slots and that queue;
* **resume** (``resume_world``): c1 is on hold and c3 took ann's freed slot; the resume counts
  c1 again (ann over her limit by the limit rule) while the others fill or free her slots;
* **handoff** (``handoff_world``): b1 leaves the bot stage into queue/g (behind c3, both
  agents of g full): the queue's order and the slots freed by the others decide who gets it;
* **reopen** (``reopen_world``, Always On): c0, which ann served and which ended, is reopened
  to ann (full: the fallback puts it in pool/g behind c3) while the others free or fill ann's
  slot and the pool.

Besides the invariants (held and inactive chats not counting), every call that writes is
checked for each active chat's slot sitting where its record says (counted exactly when
neither on hold nor inactive), and each run's end for the chat the lifecycle operation moved
(``FINAL``; both through ``invariant_with`` of tests/test_explorer_hold.py): a held chat keeps
its hold record, a resumed one is not left on hold, a handed-off chat waits or is active in
its group with its handoff context, a reopened chat is never left ENDED by a reopen that lost.
Sizes follow ``CHATMGMT_EXPLORE_SCALE`` as the other explorer tests.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from chatmgmt import ChatManager, ChatSettings, CustomerInfo
from chatmgmt.assignment import pool_name
from chatmgmt.model import AgentId, ChatId, ChatState, EndReason, MessageRole
from chatmgmt.ports import Storage
from chatmgmt.testing import (
    Operation,
    crash_points,
    explore,
    find_violations,
)
from explorer_world import standard_agents, standard_world
from test_explorer import OPERATIONS, SCALE
from test_explorer_hold import invariant_with

UNCOUNTED = {"assignment": {"on_hold_chats_count": False, "inactive_chats_count": False}}
REAL_TIME = ChatSettings.from_dict(UNCOUNTED)
ALWAYS_ON = ChatSettings.from_dict({**UNCOUNTED, "reception_mode": "always_on"})


def hold_world(storage: Storage | None = None) -> ChatManager:
    """The standard world (ann and bob full in g with c1 and c2, c3 queued, cat free in h,
    dan offline) with held and inactive chats not counting."""
    return standard_world(REAL_TIME, storage)


def resume_world(storage: Storage | None = None) -> ChatManager:
    """:func:`hold_world` after ann put c1 on hold at 5: c3 took her freed slot, and c4
    (opened at 6) waits in queue/g."""
    m = hold_world(storage)
    m.hold_chat("c1", by="ann", reason="billing", now=5.0)
    m.open_chat(CustomerInfo(name="c4"), skill_group="g", chat_id="c4", now=6.0)
    assert m.get_chat("c3").agent_id == "ann" and m.get_chat("c4").queue == "queue/g"
    return m


def handoff_world(storage: Storage | None = None) -> ChatManager:
    """:func:`hold_world` plus b1 in the bot stage of faq-bot (skill group g)."""
    m = hold_world(storage)
    m.open_chat(CustomerInfo(name="b"), skill_group="g", chat_id="b1", bot="faq-bot", now=5.0)
    return m


def reopen_world(storage: Storage | None = None) -> ChatManager:
    """Always On: ann served c0, which ended at 0.8; then the standard shape: ann and bob
    (group g, limit 1) hold c1 and c2, c3 waits unassigned in pool/g, cat (group h) is free,
    dan (group g) is OFFLINE."""
    m = standard_agents(ALWAYS_ON, storage)
    m.open_chat(
        CustomerInfo(name="c0"), skill_group="g", designated_agent="ann", chat_id="c0", now=0.5
    )
    m.end_chat("c0", now=0.8)
    for i, agent in ((1, "ann"), (2, "bob"), (3, None)):
        m.open_chat(
            CustomerInfo(name=f"c{i}"),
            skill_group="g",
            designated_agent=agent,
            chat_id=f"c{i}",
            now=float(i),
        )
    assert m.get_chat("c1").agent_id == "ann" and m.get_chat("c2").agent_id == "bob"
    assert m.get_chat("c3").queue == pool_name("g")
    assert m.get_chat("c0").served_by[-1] == "ann"
    return m


LIFECYCLE: dict[str, tuple[Operation, Callable[..., ChatManager]]] = {
    "hold": (Operation("hold", lambda m: m.hold_chat("c1", by="ann", now=10.5)), hold_world),
    "resume": (
        Operation("resume", lambda m: m.resume_chat("c1", by="ann", now=10.5)),
        resume_world,
    ),
    "handoff": (
        Operation(
            "handoff",
            lambda m: m.handoff("b1", reason="human", fields={"k": 1}, by="faq-bot", now=10.5),
        ),
        handoff_world,
    ),
    "reopen": (
        Operation("reopen", lambda m: m.reopen("c0", to="last_agent", by="admin", now=10.5)),
        reopen_world,
    ),
    "reopen_pool": (
        Operation("reopen_pool", lambda m: m.reopen("c0", by="admin", now=10.5)),
        reopen_world,
    ),
}


def other_operations(world: str) -> dict[str, Operation]:
    """The ten operations of tests/test_explorer.py, aimed at this world's waiting chat: in
    the resume world the customer of c4 (queued) leaves; in the Always On world the drain
    serves pool/g and the customer of c3 (in the pool) leaves, which ends it there (abandon
    is for the Real-Time queue)."""
    ops = dict(OPERATIONS)
    if world == "resume":
        ops["abandon"] = Operation("abandon", lambda m: m.abandon("c4", now=12.0))
    if world.startswith("reopen"):
        ops["drain"] = Operation("drain", lambda m: m._core.drain(pool_name("g"), 15.0))
        ops["abandon"] = Operation(
            "abandon",
            lambda m: m.end_chat("c3", reason=EndReason.CUSTOMER, by="customer", now=12.0),
        )
    return ops


def _chat(storage: Storage, chat_id: str) -> Any:
    chat = storage.chats.get(ChatId(chat_id))
    assert chat is not None, f"{chat_id} is gone"
    return chat


def _held(storage: Storage) -> list[str]:
    """c1 was held (unless it ended or moved first): an ACTIVE c1 with ann keeps a hold
    record (on hold, or resumed by the customer's message)."""
    chat = _chat(storage, "c1")
    if chat.state is ChatState.ACTIVE and chat.agent_id == "ann" and chat.hold is None:
        return ["c1 is active with ann but has no hold record"]
    return []


def _resumed(storage: Storage) -> list[str]:
    """Whatever raced it, an ACTIVE c1 is not left on hold (an ended or requeued chat keeps
    its hold record for reporting)."""
    chat = _chat(storage, "c1")
    if (
        chat.state is ChatState.ACTIVE
        and chat.hold is not None
        and chat.hold.get("resumed_at") is None
    ):
        return [f"c1 is still on hold after the resume: {chat.hold}"]
    return []


def _handed_off(storage: Storage) -> list[str]:
    chat = _chat(storage, "b1")
    if chat.bot is None or "handoff" not in chat.bot:
        return [f"b1 was not handed off: {chat.state.value}"]
    if chat.state not in (ChatState.QUEUED, ChatState.ACTIVE):
        return [f"b1 was handed off but is {chat.state.value}"]
    if chat.skill_group != "g":
        return [f"b1 left its group: {chat.skill_group}"]
    if chat.agent_id is not None and chat.route_reason.get("handoff", {}).get("reason") != "human":
        return [f"b1 was assigned without its handoff context: {chat.route_reason}"]
    return []


def _reopened(storage: Storage) -> list[str]:
    chat = _chat(storage, "c0")
    if chat.state is ChatState.ENDED or chat.ended_at is not None:
        return [f"c0 is not open after the reopen: {chat.state.value}"]
    if chat.agent_id is not None and chat.agent_id not in ("ann", "bob", "dan"):
        return [f"c0 went to {chat.agent_id}, outside its group"]
    return []


FINAL: dict[str, Callable[[Storage], list[str]]] = {
    "hold": _held,
    "resume": _resumed,
    "handoff": _handed_off,
    "reopen": _reopened,
    "reopen_pool": _reopened,
}

PAIRS = [(lc, other) for lc in LIFECYCLE for other in OPERATIONS]


@pytest.mark.parametrize(("lifecycle", "other"), PAIRS, ids=[f"{a}+{b}" for a, b in PAIRS])
def test_each_lifecycle_operation_against_each_operation(lifecycle: str, other: str) -> None:
    op, world = LIFECYCLE[lifecycle]
    report = explore(
        world,
        [op, other_operations(lifecycle)[other]],
        invariant=invariant_with(FINAL[lifecycle]),
        exhaustive_limit=200 * SCALE,
        random_runs=40 * SCALE,
        probes=4,
        seed=len(lifecycle) * 31 + len(other),
    )
    report.assert_ok()
    assert report.runs > 1
    assert report.longest > 2  # both operations made storage calls


@pytest.mark.parametrize("lifecycle", list(LIFECYCLE))
def test_the_worlds_hold_the_invariants_before_anything_runs(lifecycle: str) -> None:
    _op, world = LIFECYCLE[lifecycle]
    m = world()
    assert invariant_with(FINAL[lifecycle])(m.storage, opened=["c1", "c2", "c3"]) == []


@pytest.mark.parametrize("lifecycle", list(LIFECYCLE))
def test_each_crash_point_in_the_contended_world(lifecycle: str) -> None:
    """Each lifecycle operation abandoned after each of its storage calls in its world above:
    the invariants hold as left, and reconcile() + tick() find nothing to repair."""
    op, world = LIFECYCLE[lifecycle]
    report = crash_points(world, op, invariant=invariant_with(), now=50.0)
    report.assert_ok()
    assert report.points > 1 and report.repairs == {}


def test_the_final_checks_can_fail() -> None:
    """Each end check reads the stored record: a world where its operation never ran fails
    it (so a lost hold, resume, handoff or reopen would be reported)."""
    for lifecycle, (_op, world) in LIFECYCLE.items():
        m = world()
        assert FINAL[lifecycle](m.storage) or lifecycle == "hold", lifecycle
    # hold: c1 active with ann and no hold record
    m = hold_world()
    assert m.get_chat("c1").hold is None
    assert _held(m.storage) == ["c1 is active with ann but has no hold record"]
    assert _resumed(resume_world().storage)
    assert _handed_off(handoff_world().storage)
    assert _reopened(reopen_world().storage)


def test_a_handoff_and_a_transfer_race_for_cats_last_slot() -> None:
    """b1 handed off to h (cat free, limit 1) while c2 is transferred to cat: in every
    interleaving cat holds one of them, the other waits (b1 in queue/h) or stays (c2 with
    bob), and both outcomes happen: the claim is decided inside the store's unit of work."""
    handoff_h = Operation(
        "handoff_h",
        lambda m: m.handoff("b1", reason="human", skill_group="h", by="faq-bot", now=10.5),
    )
    holders: set[str] = set()

    def cat_holds_one(storage: Storage, **kwargs: Any) -> list[str]:
        found = invariant_with()(storage, **kwargs)
        if kwargs.get("drained"):
            held = [c.id for c in storage.chats.list(ChatState.ACTIVE) if c.agent_id == "cat"]
            if len(held) != 1:
                found.append(f"cat holds {held}")
            holders.update(held)
        return found

    report = explore(
        handoff_world,
        [handoff_h, OPERATIONS["transfer_agent"]],
        invariant=cat_holds_one,
        exhaustive_limit=400 * SCALE,
        random_runs=60 * SCALE,
        probes=4,
    )
    report.assert_ok()
    assert holders == {"b1", "c2"}, holders


def test_a_resumed_chat_counts_again_while_status_and_limit_race() -> None:
    """The resume against ann's limit going to 2 and dan coming online, three at once: every
    interleaving (random beyond the exhaustive size) keeps the slots on the records."""
    op, world = LIFECYCLE["resume"]
    report = explore(
        world,
        [op, OPERATIONS["limit"], OPERATIONS["status"]],
        invariant=invariant_with(_resumed),
        exhaustive_limit=0,
        random_runs=30 * SCALE,
        probes=1,
        seed=5,
    )
    report.assert_ok()
    assert report.runs > 1


def test_the_customer_message_resumes_c1_in_the_resume_world() -> None:
    """Sanity of the resume world: the standard message operation (c1's customer) resumes
    c1, which counts again beside c3 (ann over her limit of 1 by the limit rule)."""
    m = resume_world()
    m.send_message("c1", "back", role=MessageRole.CUSTOMER, now=12.0)
    chat = m.get_chat("c1")
    assert chat.hold is not None and chat.hold["resumed_by"] == "customer"
    ann = m.storage.agents.get(AgentId("ann"))
    assert ann is not None and ann.chats == {"c1", "c3"}


# regression (found by the process hammer's end check, FIFO): a chat that began in a bot's
# stage and was sent back to a queue after its handoff was ordered by its creation, so the
# time with the bot counted as waiting and it went ahead of chats that were waiting for a
# person before its handoff. It is now ordered by its handoff (first_arrival), and the FIFO
# invariant reads a handed-off chat's arrival the same way.
def test_a_handed_off_chat_sent_back_keeps_its_place_from_the_handoff() -> None:
    m = hold_world()  # ann and bob full in g, c3 queued in queue/g (created at 3), cat free
    m.open_chat(CustomerInfo(name="b"), skill_group="g", chat_id="b1", bot="faq-bot", now=1.0)
    m.open_chat(CustomerInfo(name="c4"), skill_group="g", chat_id="c4", now=5.0)
    m.handoff("b1", reason="human", skill_group="h", by="faq-bot", now=10.0)
    assert m.get_chat("b1").agent_id == "cat"
    m.transfer("b1", to_group="g", now=20.0)  # back to a queue: behind c3 and c4
    order = [str(c) for c, _score in m.storage.queues.peek("queue/g", 10)]
    assert order == ["c3", "c4", "b1"], order
    assert find_violations(m.storage) == []


def test_the_fifo_invariant_reads_a_handoff_as_the_arrival() -> None:
    """A handed-off chat put ahead of a chat that waited before its handoff is reported."""
    from chatmgmt.model import evolve
    from chatmgmt.ports import Change, QueuePush

    m = hold_world()
    m.open_chat(CustomerInfo(name="b"), skill_group="g", chat_id="b1", bot="faq-bot", now=1.0)
    m.open_chat(CustomerInfo(name="c4"), skill_group="g", chat_id="c4", now=5.0)
    m.handoff("b1", reason="human", skill_group="g", by="faq-bot", now=10.0)
    b1 = m.get_chat("b1")
    moved = evolve(b1, queued_at=20.0, version=b1.version + 1)  # requeued at 20, scored at 1
    m.storage.apply(
        Change(
            b1.id, b1.version, 20.0, chat=moved, remove=("queue/g",), push=QueuePush("queue/g", 1.0)
        )
    )
    found = find_violations(m.storage)
    assert any(v.startswith("FIFO: in 'queue/g' (priority 0) 'b1'") for v in found), found
