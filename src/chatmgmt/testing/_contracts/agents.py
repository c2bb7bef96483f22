"""The :class:`~chatmgmt.ports.AgentStore` contract: registration and updates by
compare-and-set on ``AgentLoad.version`` (a concurrent change is never lost), reads, census.

Slots move only inside :meth:`~chatmgmt.ports.Storage.apply`; the claim and release rules are
checked by :mod:`.unit_of_work`.
"""

from __future__ import annotations

import attrs

from ...assignment._load import updated_agent
from ...errors import ConflictError
from ...model import AgentId, AgentLoad, AgentStatus, ChatId
from ...ports import Census, GroupCensus
from ._support import (
    StorageCase,
    agent,
    check_records,
    end,
    event,
    expected_census,
    nxt,
    open_with,
    raises,
    run_threads,
    update,
)

__all__ = ["AgentStoreContract"]


class AgentStoreContract(StorageCase):
    """Agents and their load: :meth:`~chatmgmt.ports.AgentStore.put` registers (version 1,
    idle since ``now``, the given tiebreak) or updates by compare-and-set keeping the load;
    ``get``, ``list`` (account order, then id), ``census`` and ``censuses``."""

    def test_agent_put_get_list(self) -> None:
        """put registers at version 1 and updates keeping the load; list in account order."""
        s = self.storage
        assert s.agents.get(AgentId("nobody")) is None
        b = agent("b", groups=["g"], order=2)
        a = agent("a", groups=["g", "h"], order=2)
        c = agent("c", groups=["h"], order=1)
        load = s.agents.put(b, 10.0, [event(1)], 0.5)
        assert load == AgentLoad(agent=b, idle_since=10.0, tiebreak=0.5, version=1)
        assert load == updated_agent(None, b, 10.0, 0.5)
        s.agents.put(a, 11.0)
        s.agents.put(c, 12.0)
        assert s.agents.get(AgentId("b")) == load
        assert [ld.agent.id for ld in s.agents.list()] == ["c", "a", "b"]
        assert [ld.agent.id for ld in s.agents.list("g")] == ["a", "b"]
        assert [ld.agent.id for ld in s.agents.list("h")] == ["c", "a"]
        assert s.agents.list("nope") == []
        open_with(s, "c1", "b", now=20.0, tiebreak=0.25)
        b2 = agent("b", groups=["h"], limit=4, order=2, status=AgentStatus.AWAY)
        updated = s.agents.put(b2, 30.0, [], 0.9, expected_version=1)
        assert updated.agent == b2
        assert updated.chats == frozenset({"c1"})
        assert updated.last_assigned_at == 20.0 and updated.idle_since == 10.0
        assert updated.tiebreak == 0.25 and updated.version == 2
        assert [ld.agent.id for ld in s.agents.list("g")] == ["a"]
        assert s.agents.get(AgentId("b")) == updated
        assert s.outbox.pending() == 1

    def test_agent_put_is_compare_and_set(self) -> None:
        """put from a stale version, or registering an existing agent, raises ConflictError
        and changes nothing (no event either); updating an unknown agent conflicts too."""
        s = self.storage
        s.agents.put(agent("a", limit=2), 1.0, [event(1)], 0.5)
        open_with(s, "c1", "a", now=2.0, tiebreak=0.75)
        before = s.agents.get(AgentId("a"))
        assert before is not None and before.version == 1
        with raises(ConflictError):
            s.agents.put(agent("a", limit=9), 3.0, [event(2)], 0.1)  # exists
        with raises(ConflictError):
            s.agents.put(agent("a", limit=9), 3.0, [event(3)], 0.1, expected_version=0)
        with raises(ConflictError):
            s.agents.put(agent("a", limit=9), 3.0, [event(4)], 0.1, expected_version=2)
        with raises(ConflictError):
            s.agents.put(agent("ghost"), 3.0, [event(5)], 0.1, expected_version=1)
        assert s.agents.get(AgentId("a")) == before
        assert s.agents.get(AgentId("ghost")) is None
        assert s.outbox.pending() == 1
        after = s.agents.put(agent("a", limit=9), 3.0, [event(6)], 0.1, expected_version=1)
        assert after == updated_agent(before, agent("a", limit=9), 3.0, 0.1)
        assert after.version == 2 and after.chats == {"c1"}
        assert s.outbox.pending() == 2

    def test_census_counts(self) -> None:
        """census agrees with the pure census of the agents' statuses and loads, per group
        and for ``""``, after puts, claims and releases."""
        s = self.storage
        s.agents.put(agent("on1", groups=["g"], limit=2), 0.0)
        s.agents.put(agent("on2", groups=["g", "h"], limit=1), 0.0)
        s.agents.put(agent("busy", groups=["g"], status=AgentStatus.BUSY), 0.0)
        s.agents.put(agent("away", groups=["h"], status=AgentStatus.AWAY), 0.0)
        s.agents.put(agent("off", groups=["g"], status=AgentStatus.OFFLINE), 0.0)
        s.agents.put(agent("zero", groups=["g"], limit=0), 0.0)
        open_with(s, "c1", "on2")
        open_with(s, "c2", "on1")
        assert s.agents.census("g") == Census(
            eligible=1, full=2, busy=1, away=0, offline=1, capacity=3, load=2
        )
        assert s.agents.census("h") == Census(eligible=0, full=1, away=1, capacity=1, load=1)
        assert s.agents.census("") == expected_census(s.agents.list())
        assert s.agents.census("unknown") == Census()
        end(s, "c1")
        busy = s.agents.get(AgentId("busy"))
        assert busy is not None
        s.agents.put(agent("busy", groups=["h"]), 2.0, expected_version=busy.version)
        for group in ("g", "h", ""):
            assert s.agents.census(group) == expected_census(s.agents.list(), group), group
        check_records(s)

    def test_censuses_bulk(self) -> None:
        """censuses reads several groups at once, in the order asked: each one's census as
        ``census`` gives it, ``held`` (chats held by its agents, counted and inactive, whatever
        their status) and ``free`` (slots below the limit of its ONLINE agents, an agent above
        its limit counting 0); an unknown group is all zeros."""
        s = self.storage
        s.agents.put(agent("on1", groups=["g"], limit=3), 0.0)
        s.agents.put(agent("on2", groups=["g", "h"], limit=2), 0.0)
        s.agents.put(agent("busy", groups=["g"], limit=2), 0.0)
        s.agents.put(agent("away", groups=["h"], status=AgentStatus.AWAY), 0.0)
        s.agents.put(agent("off", groups=["g"], status=AgentStatus.OFFLINE), 0.0)
        for cid, aid in (("c1", "on1"), ("c2", "on2"), ("c3", "on2"), ("c4", "busy")):
            open_with(s, cid, aid)
        c1 = s.chats.get(ChatId("c1"))
        assert c1 is not None
        update(s, nxt(c1, inactive=True), inactive=(AgentId("on1"), True))  # held, not counted
        on2 = s.agents.get(AgentId("on2"))
        assert on2 is not None  # holding 2, limit lowered to 1: above its limit
        s.agents.put(agent("on2", groups=["g", "h"], limit=1), 1.0, expected_version=on2.version)
        busy = s.agents.get(AgentId("busy"))
        assert busy is not None
        s.agents.put(
            agent("busy", groups=["g"], limit=2, status=AgentStatus.BUSY),
            1.0,
            expected_version=busy.version,
        )
        got = s.agents.censuses(["h", "unknown", "g", ""])
        assert got == [
            GroupCensus(full=1, away=1, capacity=1, load=2, held=2, free=0),
            GroupCensus(),
            GroupCensus(eligible=1, full=1, busy=1, offline=1, capacity=4, load=2, held=4, free=3),
            GroupCensus(
                eligible=1, full=1, busy=1, away=1, offline=1, capacity=4, load=2, held=4, free=3
            ),
        ]
        for group, census in zip(["h", "unknown", "g", ""], got, strict=True):
            assert attrs.evolve(census) == census
            base = {f.name: getattr(census, f.name) for f in attrs.fields(Census)}
            assert Census(**base) == s.agents.census(group), group
        assert s.agents.censuses([]) == []
        end(s, "c4")
        assert s.agents.censuses(["g"]) == [
            GroupCensus(eligible=1, full=1, offline=1, busy=1, capacity=4, load=2, held=3, free=3)
        ]

    def test_concurrent_puts_from_one_version_one_winner(self) -> None:
        """Many updates from the same version at once: exactly one wins, the others raise
        ConflictError; the stored agent is the winner's."""
        s = self.storage
        s.agents.put(agent("a", limit=2), 0.0)

        def put(i: int) -> bool:
            try:
                s.agents.put(agent("a", limit=10 + i), 1.0, expected_version=1)
            except ConflictError:
                return False
            return True

        results = run_threads(self.threads, put)
        assert results.count(True) == 1
        stored = s.agents.get(AgentId("a"))
        assert stored is not None and stored.version == 2
        assert stored.agent.reception_limit == 10 + results.index(True)

    def test_concurrent_status_and_limit_changes_are_never_lost(self) -> None:
        """Two writers each re-read and retry on ConflictError (a status change and a limit
        change, then many increments): every change survives, none undoes another."""
        s = self.storage
        s.agents.put(agent("a", limit=2, order=0), 0.0)
        n = max(2, min(self.threads, 8))
        rounds = 10
        conflicts: list[int] = []

        def change(i: int) -> None:
            for _ in range(rounds):
                while True:
                    current = s.agents.get(AgentId("a"))
                    assert current is not None
                    a = current.agent
                    if i == 0:
                        new = attrs.evolve(
                            a, status=AgentStatus.AWAY, account_order=a.account_order + 1
                        )
                    elif i == 1:
                        new = attrs.evolve(a, reception_limit=7, account_order=a.account_order + 1)
                    else:
                        new = attrs.evolve(a, account_order=a.account_order + 1)
                    try:
                        s.agents.put(new, 1.0, expected_version=current.version)
                        break
                    except ConflictError:
                        conflicts.append(i)

        run_threads(n, change)
        stored = s.agents.get(AgentId("a"))
        assert stored is not None
        assert stored.agent.status is AgentStatus.AWAY
        assert stored.agent.reception_limit == 7
        assert stored.agent.account_order == n * rounds
        assert stored.version == 1 + n * rounds

    def test_puts_keep_slots_claimed_concurrently(self) -> None:
        """Configuration updates racing with claims and releases never lose a slot: the load
        afterwards holds exactly the chats still ACTIVE with the agent."""
        s = self.storage
        s.agents.put(agent("a", limit=1000), 0.0)
        n = max(2, min(self.threads, 8))

        def work(i: int) -> None:
            for k in range(12):
                if i % 2 == 0:
                    while True:
                        current = s.agents.get(AgentId("a"))
                        assert current is not None
                        new = attrs.evolve(current.agent, tier=current.agent.tier + 1)
                        try:
                            s.agents.put(new, float(k), expected_version=current.version)
                            break
                        except ConflictError:
                            pass
                else:
                    open_with(s, f"t{i}-{k}", "a", now=float(k))
                    if k % 3 == 0:
                        end(s, f"t{i}-{k}", now=float(k))

        run_threads(n, work)
        check_records(s)
        load = s.agents.get(AgentId("a"))
        assert load is not None
        writers = len([i for i in range(n) if i % 2 == 0])
        assert load.agent.tier == writers * 12 and load.version == 1 + writers * 12
        claimers = [i for i in range(n) if i % 2 == 1]
        assert load.chats == {f"t{i}-{k}" for i in claimers for k in range(12) if k % 3}
