"""What :meth:`~chatmgmt.ports.Storage.apply` reports from inside its unit of work.

* ``Change.census``: a storage with ``reports_census = True`` reads the group's
  :class:`~chatmgmt.ports.Census` before any effect of the unit — what
  :meth:`~chatmgmt.ports.AgentStore.census` returned just before — reports it in
  :attr:`~chatmgmt.ports.Applied.census` (and in
  :attr:`~chatmgmt.errors.PreconditionFailed.census` when the claim fails) and replaces every
  :data:`~chatmgmt.ports.CENSUS_MARKS` placeholder, at any depth, in the stored chat, the
  events and the timers by its counts; a storage without it leaves ``Change.census`` unread
  (the core then never sets it).
* ``Change.watch``: the heads of the watched queues after the effects, equal to
  :meth:`~chatmgmt.ports.QueueStore.heads` right after the commit, and with ``release`` the
  released agent's load equal to :meth:`~chatmgmt.ports.AgentStore.get`; or nothing at all
  (``Applied.heads`` None), never half of it.
"""

from __future__ import annotations

from typing import Any

from ...assignment import LEAST_BUSY
from ...errors import PreconditionFailed
from ...model import AgentId, AgentStatus, ChatId, ChatState, Timer
from ...ports import CENSUS_MARKS, PICKED, Applied, Change, QueuePush, RankedClaim, Storage
from ._support import StorageCase, agent, chat, event, open_queued, open_with

__all__ = ["UnitReportsContract"]

_MARKED: dict[str, Any] = {
    "eligible": CENSUS_MARKS["eligible"],
    "ineligible": {
        "full": CENSUS_MARKS["full"],
        "busy": CENSUS_MARKS["busy"],
        "away": CENSUS_MARKS["away"],
        "offline": CENSUS_MARKS["offline"],
        "excluded": 0,
    },
}


def _census_world(s: Storage, *, room: bool = True) -> None:
    """Group ``g``: ann and bob ONLINE with room (AWAY without ``room``), cat ONLINE at her
    limit, dan BUSY, eve AWAY, fay OFFLINE; zed in group ``h`` only."""
    free = AgentStatus.ONLINE if room else AgentStatus.AWAY
    for i, (aid, status, limit) in enumerate(
        [
            ("ann", free, 2),
            ("bob", free, 3),
            ("cat", AgentStatus.ONLINE, 1),
            ("dan", AgentStatus.BUSY, 2),
            ("eve", AgentStatus.AWAY, 2),
            ("fay", AgentStatus.OFFLINE, 2),
        ]
    ):
        s.agents.put(agent(aid, limit=limit, status=status, order=i), 0.0)
    s.agents.put(agent("zed", groups=("h",), order=9), 0.0)
    open_with(s, "held", "cat")


def _filled(census: Any) -> dict[str, Any]:
    return {
        "eligible": census.eligible,
        "ineligible": {
            "full": census.full,
            "busy": census.busy,
            "away": census.away,
            "offline": census.offline,
            "excluded": 0,
        },
    }


class UnitReportsContract(StorageCase):
    """The reports of :meth:`Storage.apply`; part of :class:`StorageContract`."""

    def _reports_census(self, applied: Applied | None = None) -> bool:
        """Whether the storage reads ``Change.census``: it must when it says
        ``reports_census = True``; it may without (then every report of it must be right)."""
        if getattr(self.storage, "reports_census", False) is True:
            return True
        return applied is not None and applied.census is not None

    def _marked_change(self, chat_id: str, census: str, **kwargs: Any) -> Change:
        reason = {"via": "default", **_MARKED, "note": [CENSUS_MARKS["eligible"], "x"]}
        new = chat(
            chat_id, state=ChatState.ACTIVE, agent_id=PICKED, assigned_at=1.0, route_reason=reason
        )
        data: dict[str, Any] = {
            "agent_id": PICKED,
            "reason": reason,
            "deep": {"list": [[CENSUS_MARKS["full"]]]},
        }
        timer = Timer(f"{chat_id}:t", 9.0, ChatId(chat_id), "probe", 0, {"c": _MARKED})
        return Change(
            new.id,
            None,
            1.0,
            chat=new,
            claim=RankedClaim("g", LEAST_BUSY),
            events=(event("n1", chat_id, **data),),
            schedule=(timer,),
            census=census,
            **kwargs,
        )

    def test_census_is_read_in_the_unit_and_fills_the_marks(self) -> None:
        """The census before the claim, in ``Applied.census``; its counts in place of every
        mark in the stored chat, the outbox's event and the timer."""
        s = self.storage
        _census_world(s)
        before = s.agents.census("g")
        applied = s.apply(self._marked_change("c1", "g"))
        if not self._reports_census(applied):
            assert applied.census is None
            return
        assert applied.census == before
        assert s.agents.census("g") != before  # the claim moved it: it was read before
        want = _filled(before)
        stored = s.chats.get(ChatId("c1"))
        assert stored is not None and stored.agent_id == applied.agent_id
        assert dict(stored.route_reason) == {
            "via": "default",
            **want,
            "note": [before.eligible, "x"],
        }
        (entry,) = [e.event for e in s.outbox.claim("w", 10, 0.0, 1.0) if e.event.id == "evt-n1"]
        assert entry.data["agent_id"] == applied.agent_id
        assert dict(entry.data["reason"]) == dict(stored.route_reason)
        assert entry.data["deep"] == {"list": [[before.full]]}
        assert entry == applied.events[0]
        (due,) = s.timers.claim_due(10.0, 10, 5.0)
        assert due.payload == {"c": want}

    def test_census_of_another_group_and_of_everyone(self) -> None:
        """``Change.census`` names any group ("" = every agent), not only the claim's."""
        s = self.storage
        _census_world(s)
        for group, chat_id in (("h", "c1"), ("", "c2")):
            before = s.agents.census(group)
            applied = s.apply(self._marked_change(chat_id, group))
            if self._reports_census(applied):
                assert applied.census == before, group
                stored = s.chats.get(ChatId(chat_id))
                assert stored is not None
                assert stored.route_reason["eligible"] == before.eligible, group

    def test_failed_claim_reports_the_census_and_commits_nothing(self) -> None:
        """A ranked claim nobody can take: ``no_agent`` with the census it saw."""
        s = self.storage
        _census_world(s, room=False)
        before = s.agents.census("g")
        try:
            s.apply(self._marked_change("c1", "g"))
        except PreconditionFailed as exc:
            assert exc.reason == "no_agent"
            assert exc.census in ((before,) if self._reports_census() else (before, None))
        else:
            raise AssertionError("a claim with no eligible agent committed")
        assert s.chats.get(ChatId("c1")) is None
        assert s.agents.census("g") == before

    def test_watch_reports_heads_and_the_released_load_after_the_unit(self) -> None:
        """An end that frees a slot: the watched queues' heads and the agent's load as the
        plain reads return them right after the commit (or nothing at all)."""
        s = self.storage
        _census_world(s)
        open_with(s, "c1", "ann")
        open_queued(s, "q1", "queue/g", 5.0)
        open_queued(s, "q2", "agent/ann", 3.0)
        current = s.chats.get(ChatId("c1"))
        assert current is not None
        watch = ("agent/ann", "queue/g", "pool/g", "queue/", "pool/", "queue/none")
        ended = chat(
            "c1", state=ChatState.ENDED, agent_id=AgentId("ann"), version=current.version + 1
        )
        applied = s.apply(
            Change(
                ChatId("c1"),
                current.version,
                2.0,
                chat=ended,
                release=AgentId("ann"),
                push=QueuePush("pool/g", 1.0),
                watch=watch,
            )
        )
        if applied.heads is None:
            assert applied.released is None
            return
        assert applied.heads == tuple(s.queues.heads(watch))
        assert [h.length for h in applied.heads] == [1, 1, 1, 0, 0, 0]
        assert applied.released == s.agents.get(AgentId("ann"))
        assert applied.released is not None and "c1" not in applied.released.chats

    def test_watch_without_release_and_an_unknown_agent(self) -> None:
        """Heads without a release carry no load; releasing an unregistered agent reports
        None for it; no watch reports no heads."""
        s = self.storage
        open_queued(s, "q1", "queue/g", 5.0)
        new = chat("c1")
        applied = s.apply(
            Change(
                new.id,
                None,
                1.0,
                chat=new,
                push=QueuePush("queue/g", 6.0),
                watch=("queue/g",),
            )
        )
        if applied.heads is not None:
            assert applied.heads == tuple(s.queues.heads(["queue/g"]))
            assert applied.heads[0].length == 2
            assert applied.released is None
        plain = s.apply(Change(ChatId("c2"), None, 1.0, chat=chat("c2")))
        assert plain.heads in (None, ())
        gone = s.apply(
            Change(ChatId("c3"), None, 1.0, chat=chat("c3"), release=AgentId("nobody"), watch=())
        )
        assert gone.released is None

    def test_reports_do_not_change_what_commits(self) -> None:
        """The same change with and without reports stores the same chat and load."""
        results: list[tuple[Any, ...]] = []
        for census, watch in ((None, ()), ("g", ("queue/g",))):
            s = self.new_storage(f"r{len(results)}")
            _census_world(s)
            change = self._marked_change("c1", "g", watch=watch)
            if census is None:
                change = Change(
                    change.chat_id,
                    None,
                    1.0,
                    chat=change.chat,
                    claim=change.claim,
                    tiebreak=0.5,
                )
            else:
                change = Change(
                    change.chat_id,
                    None,
                    1.0,
                    chat=change.chat,
                    claim=change.claim,
                    census=census,
                    watch=watch,
                    tiebreak=0.5,
                )
            applied: Applied = s.apply(change)
            stored = s.chats.get(ChatId("c1"))
            assert stored is not None
            results.append((applied.agent_id, stored.state, s.agents.get(AgentId("ann"))))
        assert results[0] == results[1]
