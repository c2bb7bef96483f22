"""The :meth:`~chatmgmt.ports.Storage.apply` contract: one atomic unit of work per change.

* every precondition (``version``, ``exists``, ``missing``, ``agent_unavailable``,
  ``no_agent``, ``queue_not_empty``) raises :class:`~chatmgmt.errors.PreconditionFailed` with
  that ``reason`` and commits nothing: chats, messages, loads, census, queues, timers, sticky
  marks and the outbox are as they were;
* every effect of a change lands together (slot, queue entry, timers, chat, message, sticky
  mark, events);
* a ranked claim picks what the pure rules of :mod:`chatmgmt.assignment._load` pick, for every
  rank field in both directions and custom multi-key rankings, skipping excluded agents, ties
  broken by agent id, and fills :data:`~chatmgmt.ports.PICKED` in the chat, its events and its
  timers;
* after random sequences of changes every stored :class:`~chatmgmt.model.AgentLoad` equals the
  pure functions applied to the same sequence, and the census equals their counts;
* under concurrent changes no agent holds more ACTIVE chats (read from the chat records) than
  its limit and no chat is held by two agents.
"""

from __future__ import annotations

import random
from collections.abc import Callable

import attrs

from ...assignment import LEAST_BUSY, ROUND_ROBIN, SATURATION_RANDOM
from ...errors import ConflictError, PreconditionFailed
from ...model import (
    AgentId,
    AgentStatus,
    ChatId,
    ChatState,
    Event,
    Message,
    MessageId,
    MessageRole,
    Ranking,
    RankKey,
    Sticky,
    Timer,
)
from ...ports import PICKED, Change, Claim, QueuePush, RankedClaim
from ._support import (
    EVERY_RANKING,
    StorageCase,
    agent,
    chat,
    check_records,
    create,
    end,
    event,
    message,
    nxt,
    open_queued,
    open_with,
    outbox_ids,
    refused,
    run_threads,
    snapshot,
    timer_keys,
    update,
)
from ._uow_drivers import QUEUE, Pin, World, build_world, everything, mixed_step

__all__ = ["UnitOfWorkContract"]

_NONE: frozenset[AgentId] = frozenset()


class UnitOfWorkContract(StorageCase):
    """:meth:`~chatmgmt.ports.Storage.apply`: preconditions, atomicity, ranked claims, the
    load rules, and concurrency read from the chat records."""

    # preconditions: each refuses and commits nothing ---------------------------------

    def _refused_commits_nothing(self, reason: str, make: Callable[[World], Change]) -> None:
        s = self.new_storage(f"/{reason}/{random.random()}")
        world = build_world(s)
        ids = ["c", "q1", "b1", "ghost", "fresh"]
        queues = [QUEUE, "queue/h"]
        groups = ["", "g"]
        before = snapshot(s, ids, queues, groups, ["p-c", "p-ghost", "p-fresh"])
        change = make(world)
        exc = refused(reason, lambda: s.apply(change))
        assert isinstance(exc, ConflictError)
        assert exc.chat_id == change.chat_id
        after = snapshot(s, ids, queues, groups, ["p-c", "p-ghost", "p-fresh"])
        assert after == before, f"{reason}: a refused change committed something"
        assert timer_keys(s) == sorted(world.timers), reason
        assert outbox_ids(s) == list(world.events), reason

    def test_refused_version_commits_nothing(self) -> None:
        """A stale ``expected_version``: ``version``, nothing committed."""
        self._refused_commits_nothing(
            "version", lambda w: everything(w, Claim(AgentId("cat")), expected=0)
        )
        self._refused_commits_nothing(
            "version", lambda w: everything(w, Claim(AgentId("cat")), expected=7)
        )

    def test_refused_exists_commits_nothing(self) -> None:
        """Creating a chat whose id is taken: ``exists``, nothing committed."""
        self._refused_commits_nothing(
            "exists", lambda w: everything(w, Claim(AgentId("cat")), expected=None)
        )

    def test_refused_missing_commits_nothing(self) -> None:
        """Changing a chat that does not exist: ``missing``, nothing committed."""
        self._refused_commits_nothing(
            "missing",
            lambda w: everything(w, Claim(AgentId("cat")), expected=0, chat_id="ghost"),
        )
        self._refused_commits_nothing(
            "missing",
            lambda w: everything(w, RankedClaim("g", ROUND_ROBIN), expected=3, chat_id="ghost"),
        )

    def test_refused_agent_unavailable_commits_nothing(self) -> None:
        """A checked claim of a full, OFFLINE, unknown or zero-limit agent:
        ``agent_unavailable``, nothing committed (not even the release before it)."""
        for who in ("bob", "off", "nobody"):
            self._refused_commits_nothing(
                "agent_unavailable",
                lambda w, who=who: everything(w, Claim(AgentId(who))),  # type: ignore[misc]
            )
            self._refused_commits_nothing(
                "agent_unavailable",
                lambda w, who=who: everything(  # type: ignore[misc]
                    w, Claim(AgentId(who)), expected=None, chat_id="fresh"
                ),
            )
        self._refused_commits_nothing(
            "agent_unavailable",
            lambda w: everything(w, Claim(AgentId("nobody"), force=True)),
        )

    def test_refused_no_agent_commits_nothing(self) -> None:
        """A ranked claim with no eligible agent (full, excluded, offline, other group):
        ``no_agent``, nothing committed."""
        self._refused_commits_nothing(
            "no_agent",
            lambda w: everything(
                w, RankedClaim("g", LEAST_BUSY, frozenset({AgentId("cat"), AgentId("ann")}))
            ),
        )
        self._refused_commits_nothing(
            "no_agent",
            lambda w: everything(w, RankedClaim("nobody-serves-this", ROUND_ROBIN)),
        )
        self._refused_commits_nothing(
            "no_agent",
            lambda w: everything(
                w,
                RankedClaim(
                    "g", ROUND_ROBIN, frozenset({AgentId("cat"), AgentId("ann")}), hold=False
                ),
                expected=None,
                chat_id="fresh",
            ),
        )

    def test_refused_queue_not_empty_commits_nothing(self) -> None:
        """``require_empty`` on a queue holding a chat: ``queue_not_empty``, nothing
        committed."""
        self._refused_commits_nothing(
            "queue_not_empty",
            lambda w: everything(
                w, Claim(AgentId("cat")), expected=None, chat_id="fresh", require_empty=QUEUE
            ),
        )
        self._refused_commits_nothing(
            "queue_not_empty",
            lambda w: everything(w, RankedClaim("g", ROUND_ROBIN), require_empty=QUEUE),
        )

    def test_require_empty_ignores_the_chat_itself(self) -> None:
        """``require_empty`` on the queue the chat itself waits in, alone there: the chat may
        be routed from it (a chat a bot handed off, an Always On chat reopened)."""
        s = self.storage
        build_world(s)
        q1 = s.chats.get(ChatId("q1"))
        assert q1 is not None
        new = attrs.evolve(
            q1, state=ChatState.ACTIVE, agent_id=AgentId("cat"), version=q1.version + 1
        )
        change = Change(
            q1.id,
            q1.version,
            50.0,
            chat=new,
            claim=Claim(AgentId("cat")),
            require_empty=QUEUE,
            remove=(QUEUE,),
            tiebreak=0.5,
        )
        applied = s.apply(change)
        assert applied.chat is not None and applied.chat.agent_id == "cat"
        assert s.queues.length(QUEUE) == 0

    def test_refused_inactive_only_change_commits_nothing(self) -> None:
        """A stale change that only moves a slot to inactive commits nothing."""

        def make(w: World) -> Change:
            return Change(
                ChatId("c"),
                0,
                9.0,
                chat=attrs.evolve(w.chat, version=1, inactive=True),
                inactive=(AgentId("ann"), True),
            )

        self._refused_commits_nothing("version", make)

    def test_precondition_order(self) -> None:
        """The first failing precondition is raised: the version before the queue, the queue
        before the claim."""
        s = self.storage
        world = build_world(s)
        refused("version", lambda: s.apply(everything(world, Claim(AgentId("bob")), expected=0)))
        refused(
            "exists",
            lambda: s.apply(
                everything(world, Claim(AgentId("bob")), expected=None, require_empty=QUEUE)
            ),
        )
        refused(
            "missing",
            lambda: s.apply(
                everything(world, RankedClaim("none", ROUND_ROBIN), expected=0, chat_id="zz")
            ),
        )
        refused(
            "queue_not_empty",
            lambda: s.apply(
                everything(
                    world,
                    RankedClaim("none", ROUND_ROBIN),
                    expected=None,
                    chat_id="new",
                    require_empty=QUEUE,
                )
            ),
        )

    # effects land together ------------------------------------------------------------

    def test_every_effect_lands_together(self) -> None:
        """A drain: slot claimed, queue entry removed, wait timer cancelled, reply timer set,
        chat stored, message appended, sticky mark and events appended — all in one call."""
        s = self.storage
        world = build_world(s)
        q1 = s.chats.get(ChatId("q1"))
        assert q1 is not None
        new = nxt(q1, state=ChatState.ACTIVE, agent_id=AgentId("cat"), assigned_at=40.0)
        note = Message(
            MessageId("sys-1"), ChatId("q1"), MessageRole.SYSTEM, "system", "hello", 40.0
        )
        events = (event("d-1", "q1", 2, agent_id="cat"), event("d-2", "q1", 3))
        reply = Timer("q1/reply", 100.0, "q1", "first_reply", 2, {"agent_id": "cat"})
        sticky = Sticky("p-q1", AgentId("cat"), 40.0, "closed")
        applied = s.apply(
            Change(
                ChatId("q1"),
                0,
                40.0,
                chat=new,
                claim=Claim(AgentId("cat")),
                remove=(QUEUE,),
                cancel=("q1/wait",),
                schedule=(reply,),
                message=note,
                sticky=sticky,
                events=events,
                tiebreak=0.375,
            )
        )
        assert (applied.chat, applied.agent_id, applied.events) == (new, AgentId("cat"), events)
        assert s.chats.get(ChatId("q1")) == new
        assert s.chats.messages(ChatId("q1")) == [note]
        assert s.chats.sticky("p-q1") == sticky
        cat = s.agents.get(AgentId("cat"))
        assert cat is not None and cat.chats == {"q1"}
        assert cat.last_assigned_at == 40.0 and cat.tiebreak == 0.375
        assert s.queues.length(QUEUE) == 0 and s.queues.position(QUEUE, ChatId("q1")) is None
        assert s.outbox.pending() == len(world.events) + 2
        check_records(s)
        assert [e.event for e in s.outbox.claim("w", 100, 0.0, 1.0)][-2:] == list(events)
        due = s.timers.claim_due(1e9, 100, 1.0)
        assert sorted(t.key for t in due) == ["c/idle", "q1/reply"]
        assert [t for t in due if t.key == "q1/reply"] == [reply]

    def test_create_with_queue_timers_and_events(self) -> None:
        """A new chat (``expected_version=None``) lands with its queue entry, timers, message
        and events; ``require_empty`` holds on an empty queue."""
        s = self.storage
        new = chat("n1", created_at=3.0)
        timer = Timer("n1/wait", 30.0, "n1", "queue_wait", 0, {"queue": "queue/x"})
        first = message("m1", "n1", "hello", 3.0)
        applied = create(
            s,
            new,
            now=3.0,
            push=QueuePush("queue/x", 4.5),
            require_empty="queue/x",
            schedule=(timer,),
            message=first,
            events=(event("n1", "n1", 1),),
        )
        assert applied.chat == new and applied.agent_id is None
        assert applied.events == (event("n1", "n1", 1),)
        assert s.chats.get(ChatId("n1")) == new
        assert s.queues.peek("queue/x", 5) == [("n1", 4.5)]
        assert s.chats.messages(ChatId("n1")) == [first]
        assert s.timers.claim_due(30.0, 5, 1.0) == [timer]
        assert [e.event.id for e in s.outbox.claim("w", 5, 0.0, 1.0)] == ["evt-n1"]

    def test_chat_none_repairs_indexes_under_the_version_guard(self) -> None:
        """``chat=None`` leaves the chat unchanged and still applies the indexes, only at the
        expected version."""
        s = self.storage
        q = open_queued(s, "r1", "queue/r", 1.0)
        refused(
            "version", lambda: s.apply(Change(ChatId("r1"), 5, 2.0, push=QueuePush("queue/s", 1.0)))
        )
        assert s.queues.length("queue/s") == 0
        applied = s.apply(
            Change(ChatId("r1"), 0, 2.0, remove=("queue/r",), push=QueuePush("queue/s", 1.0))
        )
        assert applied.chat is None and applied.agent_id is None
        assert s.chats.get(ChatId("r1")) == q
        assert s.queues.peek("queue/s", 5) == [("r1", 1.0)]
        assert s.queues.length("queue/r") == 0

    def test_release_is_idempotent_and_moves_idle_since(self) -> None:
        """A release frees one slot once (no error when nothing is held, or the agent is
        unknown); the agent becomes idle at ``now`` when it holds nothing."""
        s = self.storage
        s.agents.put(agent("a", limit=2), 0.0)
        c1 = open_with(s, "c1", "a", now=1.0, tiebreak=0.1)
        open_with(s, "c2", "a", now=2.0, tiebreak=0.2)
        ended = nxt(c1, state=ChatState.ENDED)
        update(s, ended, now=3.0, release=AgentId("a"), tiebreak=0.3)
        load = s.agents.get(AgentId("a"))
        assert load is not None
        assert load.chats == {"c2"} and load.idle_since == 0.0 and load.tiebreak == 0.3
        update(s, nxt(ended), now=4.0, release=AgentId("a"), tiebreak=0.4)
        update(s, nxt(nxt(ended)), now=4.0, release=AgentId("ghost"), tiebreak=0.4)
        assert s.agents.get(AgentId("a")) == load
        end(s, "c2", now=5.0, tiebreak=0.5)
        load = s.agents.get(AgentId("a"))
        assert load is not None and load.chats == frozenset() and load.idle_since == 5.0
        check_records(s)

    def test_checked_claim_rules(self) -> None:
        """A checked claim: only ONLINE agents below the limit; idempotent per chat; records
        the time and tiebreak; ``force`` takes the slot whatever the status and load."""
        s = self.storage
        s.agents.put(agent("a", limit=2), 0.0)
        s.agents.put(agent("off", status=AgentStatus.OFFLINE), 0.0)
        s.agents.put(agent("z", limit=0), 0.0)
        c1 = open_with(s, "c1", "a", now=5.0, tiebreak=0.1)
        load = s.agents.get(AgentId("a"))
        assert load is not None
        assert load.chats == {"c1"} and load.last_assigned_at == 5.0 and load.tiebreak == 0.1
        c1b = nxt(c1)
        update(s, c1b, now=6.0, claim=Claim(AgentId("a")), tiebreak=0.2)  # held: idempotent
        assert s.agents.get(AgentId("a")) == load
        open_with(s, "c2", "a", now=7.0, tiebreak=0.3)
        refused("agent_unavailable", lambda: open_with(s, "c3", "a", now=8.0))  # full
        update(s, nxt(c1b), now=9.0, claim=Claim(AgentId("a")))  # held while full: allowed
        refused("agent_unavailable", lambda: open_with(s, "c4", "off"))
        refused("agent_unavailable", lambda: open_with(s, "c5", "ghost"))
        refused("agent_unavailable", lambda: open_with(s, "c6", "z"))
        for cid in ("c3", "c4", "c5", "c6"):
            assert s.chats.get(ChatId(cid)) is None
        full = s.agents.get(AgentId("a"))
        assert full is not None and full.chats == {"c1", "c2"}
        # force (a repair): the agent exists; status and limit do not matter
        for cid, who in (("f1", "a"), ("f2", "off"), ("f3", "z")):
            new = chat(cid, state=ChatState.ACTIVE, agent_id=AgentId(who))
            applied = create(s, new, now=10.0, claim=Claim(AgentId(who), force=True), tiebreak=0.6)
            assert applied.agent_id == who
            forced = s.agents.get(AgentId(who))
            assert forced is not None and cid in forced.chats
            assert forced.last_assigned_at == 10.0 and forced.tiebreak == 0.6
        a = s.agents.get(AgentId("a"))
        assert a is not None and a.active == 3  # over its limit, by a repair's decision

    def test_inactive_chats_stop_counting(self) -> None:
        """``inactive=(agent, True)`` moves a held chat out of the count (the agent is
        eligible again), ``False`` back in (even over the limit); both idempotent; a release
        clears an inactive chat too."""
        s = self.storage
        s.agents.put(agent("a", limit=1), 0.0)
        c1 = open_with(s, "c1", "a", now=1.0)
        refused("agent_unavailable", lambda: open_with(s, "c2", "a"))
        c1 = nxt(c1, inactive=True)
        update(s, c1, inactive=(AgentId("a"), True))
        c1 = nxt(c1)
        update(s, c1, inactive=(AgentId("a"), True))
        load = s.agents.get(AgentId("a"))
        assert load is not None and load.chats == frozenset() and load.inactive == {"c1"}
        assert s.agents.census("").eligible == 1
        c1 = nxt(c1)
        update(s, c1, claim=Claim(AgentId("a")))  # held (inactive): allowed, stays inactive
        load = s.agents.get(AgentId("a"))
        assert load is not None and load.inactive == {"c1"} and load.chats == frozenset()
        open_with(s, "c2", "a", now=2.0)
        c1 = nxt(c1, inactive=False)
        update(s, c1, inactive=(AgentId("a"), False))  # back over the limit: allowed
        load = s.agents.get(AgentId("a"))
        assert load is not None and load.chats == {"c1", "c2"} and load.inactive == frozenset()
        c1 = nxt(c1, inactive=True)
        update(s, c1, inactive=(AgentId("a"), True))
        end(s, "c1", now=3.0)
        load = s.agents.get(AgentId("a"))
        assert load is not None and load.chats == {"c2"} and load.inactive == frozenset()
        c2 = s.chats.get(ChatId("c2"))
        assert c2 is not None
        update(s, nxt(c2), inactive=(AgentId("ghost"), True))  # unknown agent: no error
        check_records(s)

    # ranked claims --------------------------------------------------------------------

    def test_ranked_claim_fills_picked_everywhere(self) -> None:
        """The store replaces PICKED by the agent it picked: the chat's agent, ``served_by``
        and ``route_reason`` values, the events' ``data["agent_id"]``, the timers' payload
        values and list items; :class:`~chatmgmt.ports.Applied` reports the same."""
        s = self.storage
        s.agents.put(agent("ann", limit=1, order=1), 0.0)
        s.agents.put(agent("bob", limit=1, order=2), 0.0)
        new = chat(
            "p1",
            state=ChatState.ACTIVE,
            agent_id=PICKED,
            served_by=(AgentId("old"), PICKED),
            route_reason={"agent": PICKED, "via": "group", "n": 1},
        )
        events = (
            Event("e1", "chat.assigned", 1.0, {"agent_id": PICKED, "group": "g"}, "p1", 1),
            Event("e2", "chat.other", 1.0, {"agent_id": "someone"}, "p1", 2),
            Event("e3", "chat.plain", 1.0, {"x": 1}, "p1", 3),
        )
        timer = Timer(
            "p1/t",
            9.0,
            "p1",
            "first_reply",
            1,
            {"agent_id": PICKED, "agents": [PICKED, "z"], "n": 2},
        )
        applied = create(
            s,
            new,
            now=4.0,
            claim=RankedClaim("g", ROUND_ROBIN, frozenset({AgentId("ann")})),
            schedule=(timer,),
            events=events,
            tiebreak=0.5,
        )
        bound = attrs.evolve(
            new,
            agent_id=AgentId("bob"),
            served_by=(AgentId("old"), AgentId("bob")),
            route_reason={"agent": "bob", "via": "group", "n": 1},
        )
        bound_events = (
            attrs.evolve(events[0], data={"agent_id": "bob", "group": "g"}),
            *events[1:],
        )
        assert applied.agent_id == "bob"
        assert applied.chat == bound
        assert applied.events == bound_events
        assert s.chats.get(ChatId("p1")) == bound
        assert [e.event for e in s.outbox.claim("w", 10, 0.0, 1.0)] == list(bound_events)
        (stored_timer,) = s.timers.claim_due(9.0, 10, 1.0)
        assert stored_timer.payload == {"agent_id": "bob", "agents": ["bob", "z"], "n": 2}
        bob = s.agents.get(AgentId("bob"))
        assert bob is not None and bob.chats == {"p1"} and bob.last_assigned_at == 4.0
        check_records(s)

    def test_ranked_claim_without_hold_takes_no_slot(self) -> None:
        """``hold=False`` picks like a ranked claim (eligible agents only) and counts as an
        assignment for the ranking (``last_assigned_at``, ``tiebreak``), but takes no slot."""
        s = self.storage
        s.agents.put(agent("ann", limit=1, order=1), 0.0, [], 0.1)
        s.agents.put(agent("bob", limit=1, order=2), 0.0, [], 0.1)
        new = chat("m1", state=ChatState.LEFT_MESSAGE, agent_id=PICKED)
        applied = create(
            s, new, now=7.0, claim=RankedClaim("g", ROUND_ROBIN, hold=False), tiebreak=0.7
        )
        assert applied.agent_id == "ann"
        assert s.chats.get(ChatId("m1")) == attrs.evolve(new, agent_id=AgentId("ann"))
        ann = s.agents.get(AgentId("ann"))
        assert ann is not None and ann.chats == frozenset() and ann.inactive == frozenset()
        assert ann.last_assigned_at == 7.0 and ann.tiebreak == 0.7
        # round robin moves on to bob, who has waited longer
        picked = create(
            s,
            chat("m2", state=ChatState.LEFT_MESSAGE, agent_id=PICKED),
            now=8.0,
            claim=RankedClaim("g", ROUND_ROBIN, hold=False),
        )
        assert picked.agent_id == "bob"
        open_with(s, "busy", "bob")
        open_with(s, "busy2", "ann")
        refused(
            "no_agent",
            lambda: create(
                s, chat("m3", agent_id=PICKED), claim=RankedClaim("g", ROUND_ROBIN, hold=False)
            ),
        )

    def test_ranked_claim_respects_group_exclusions_and_limits(self) -> None:
        """Only ONLINE agents of the group below their limit and not excluded are picked."""
        s = self.storage
        s.agents.put(agent("a", groups=["g"], limit=1, order=1), 0.0)
        s.agents.put(agent("b", groups=["g"], limit=1, order=2), 0.0)
        s.agents.put(agent("c", groups=["other"], limit=5, order=0), 0.0)
        s.agents.put(agent("d", groups=["g"], status=AgentStatus.BUSY, order=0), 0.0)

        def claim(cid: str, group: str, excluded: frozenset[AgentId] = _NONE) -> AgentId | None:
            new = chat(cid, state=ChatState.ACTIVE, agent_id=PICKED)
            try:
                return create(s, new, claim=RankedClaim(group, ROUND_ROBIN, excluded)).agent_id
            except PreconditionFailed as exc:
                assert exc.reason == "no_agent", exc
                assert s.chats.get(ChatId(cid)) is None
                return None

        assert claim("x1", "g") == "a"
        assert claim("x2", "g", frozenset({AgentId("b")})) is None
        assert claim("x3", "g") == "b"
        assert claim("x4", "g") is None
        assert claim("x5", "nobody") is None
        assert claim("x6", "") == "c"
        check_records(s)

    def test_ranked_ties_break_by_agent_id(self) -> None:
        """When every ranking value ties, agents are picked in agent-id order (code points),
        whatever order they were registered in."""
        s = self.storage
        ids = ["b", "a", "B", "a-2", "ä", "a10", "a9", "中", "a:{1}", "a%"]
        for aid in ids:
            s.agents.put(agent(aid, limit=1), 0.0, [], 0.5)
        ranking = Ranking("flat", (RankKey("tier"),))
        got = []
        for i in range(len(ids)):
            applied = create(
                s,
                chat(f"t{i}", state=ChatState.ACTIVE, agent_id=PICKED),
                claim=RankedClaim("g", ranking),
                now=1.0,
                tiebreak=0.5,
            )
            got.append(applied.agent_id)
        assert got == sorted(ids)
        refused("no_agent", lambda: create(s, chat("t-last"), claim=RankedClaim("g", ranking)))

    def test_ranked_claims_agree_with_pure_rules_for_every_ranking(self) -> None:
        """For every rank field in both directions, every built-in ranking and custom
        multi-key rankings, ranked claims pick what the pure rules pick, and the loads and
        census stay equal to the pure functions of the same changes."""
        for n, ranking in enumerate(EVERY_RANKING):
            s = self.new_storage(f"/rank{n}")
            Pin(s, random.Random(f"rank-{ranking}"), (ranking,)).run(
                36, ops=("open", "end", "transfer", "agent")
            )

    def test_loads_equal_pure_rules_after_random_sequences(self) -> None:
        """Random sequences of every kind of change (ranked and checked claims, forced claims,
        picks without a slot, releases, transfers, inactive moves, agent updates): after each,
        every stored AgentLoad equals the pure functions applied to the same sequence and the
        census equals their counts; the chat records agree at the end."""
        for seed in range(3):
            s = self.new_storage(f"/pin{seed}")
            Pin(s, random.Random(seed), EVERY_RANKING).run(120)

    def test_capacity_per_channel_and_fairness_cap_equal_pure_rules(self) -> None:
        """The same random sequences with capacity per channel (random channel weights and
        limits, chats of random channels, agents reconfigured on the way) and random fairness
        caps on the claims: every pick, refusal, stored AgentLoad (its held chats' channels and
        assignment times included) and census equals the pure rules; the chat records stay
        within every limit counted in units."""
        for seed in range(3):
            s = self.new_storage(f"/capacity{seed}")
            Pin(s, random.Random(f"capacity-{seed}"), EVERY_RANKING, capacity=True).run(120)

    # concurrency, read from the chat records --------------------------------------------

    def test_concurrent_ranked_claims_never_exceed_limits(self) -> None:
        """Threads opening chats by ranked claims on 5 agents of limit 3: exactly 15 chats
        become ACTIVE, the rest are refused ``no_agent``; nobody over the limit."""
        s = self.storage
        for i in range(5):
            s.agents.put(agent(f"a{i}", limit=3, order=i), 0.0)
        rankings = (ROUND_ROBIN, LEAST_BUSY, SATURATION_RANDOM)

        def work(i: int) -> list[tuple[AgentId | None, str]]:
            got: list[tuple[AgentId | None, str]] = []
            for k in range(4):
                cid = f"t{i}-{k}"
                new = chat(cid, state=ChatState.ACTIVE, agent_id=PICKED)
                try:
                    applied = create(
                        s,
                        new,
                        now=float(k),
                        claim=RankedClaim("g", rankings[(i + k) % 3]),
                        tiebreak=random.random(),
                    )
                except PreconditionFailed as exc:
                    assert exc.reason == "no_agent", exc
                    continue
                got.append((applied.agent_id, cid))
            return got

        claimed_ = [pair for chunk in run_threads(self.threads, work) for pair in chunk]
        assert len(claimed_) == 15
        active = s.chats.list(ChatState.ACTIVE)
        assert sorted((c.agent_id, c.id) for c in active) == sorted(claimed_)
        check_records(s)
        assert all(ld.active == 3 for ld in s.agents.list("g"))

    def test_concurrent_checked_claims_never_exceed_limit(self) -> None:
        """Many threads claiming one agent of limit 3 for new chats: exactly 3 succeed."""
        s = self.storage
        s.agents.put(agent("a", limit=3), 0.0)

        def claim(i: int) -> bool:
            try:
                open_with(s, f"c{i}", "a")
            except PreconditionFailed as exc:
                assert exc.reason == "agent_unavailable", exc
                return False
            return True

        assert run_threads(self.threads, claim).count(True) == 3
        assert len(s.chats.list(ChatState.ACTIVE, AgentId("a"))) == 3
        check_records(s)

    def test_concurrent_changes_of_one_chat_one_winner(self) -> None:
        """Threads assigning one queued chat to different agents from the same version:
        exactly one wins; one agent holds it; one set of events; the queue entry is gone."""
        s = self.storage
        n = self.threads
        for i in range(n):
            s.agents.put(agent(f"a{i:02d}", limit=1), 0.0)
        q = open_queued(s, "q", QUEUE, 1.0)

        def assign(i: int) -> bool:
            new = nxt(q, state=ChatState.ACTIVE, agent_id=AgentId(f"a{i:02d}"))
            try:
                update(
                    s,
                    new,
                    claim=Claim(AgentId(f"a{i:02d}")),
                    remove=(QUEUE,),
                    events=(event(i, "q", 1),),
                )
            except PreconditionFailed as exc:
                assert exc.reason == "version", exc
                return False
            return True

        results = run_threads(n, assign)
        assert results.count(True) == 1
        winner = f"a{results.index(True):02d}"
        stored = s.chats.get(ChatId("q"))
        assert stored is not None and stored.agent_id == winner and stored.version == 1
        assert [ld.agent.id for ld in s.agents.list() if ld.chats] == [winner]
        assert s.outbox.pending() == 1 and s.queues.length(QUEUE) == 0
        check_records(s)

    def test_concurrent_mixed_operations_keep_chat_records_consistent(self) -> None:
        """Threads opening (ranked, or queued when nobody is free), ending, transferring,
        draining, marking inactive and changing agents' status at once, on shared chats:
        afterwards no agent holds more ACTIVE chats than its limit, no chat is held twice,
        every queued chat is in its queue once and every entry is a queued chat."""
        s = self.storage
        for i in range(4):
            s.agents.put(agent(f"a{i}", limit=2, order=i), 0.0)
        n = max(2, min(self.threads, 8))
        pool = [ChatId(f"m{i}") for i in range(n * 3)]

        def work(i: int) -> None:
            rng = random.Random(i)
            for step in range(25):
                cid = rng.choice(pool)
                now = float(step)
                try:
                    mixed_step(s, rng, cid, now)
                except PreconditionFailed as exc:
                    assert exc.reason in (
                        "version",
                        "exists",
                        "missing",
                        "no_agent",
                        "agent_unavailable",
                    ), exc
                except ConflictError:
                    pass  # an agent update lost its compare-and-set

        run_threads(n, work)
        check_records(s)
        queued = s.chats.list(ChatState.QUEUED)
        entries = s.queues.peek(QUEUE, 10_000)
        assert sorted(c.id for c in queued) == sorted(c for c, _ in entries)
        assert len({c for c, _ in entries}) == len(entries)
