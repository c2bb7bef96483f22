"""SQLite unit of work: what it builds before the writer's turn. The released agent's new load
and its statements are built from the agent's row as the chat read before the change found it
(``SQLiteChatStore.get`` reads it in the same statement), and used inside only when the
precondition statement reads back the very same row; the census of
``Change.census`` comes with the preconditions' row (one statement)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chatmgmt.assignment._load import released
from chatmgmt.errors import PreconditionFailed
from chatmgmt.model import Agent, AgentId, AgentStatus, ChatId, ChatState
from chatmgmt.ports import Change, Claim, QueuePush
from chatmgmt.storage import _sqlite_unit
from chatmgmt.storage.sqlite import SQLiteStorage
from storage.test_sqlite_apply import _chat

NS = "t1"


@pytest.fixture
def storage(tmp_path: Path) -> Iterator[SQLiteStorage]:
    s = SQLiteStorage(tmp_path / "unit.db", namespace=NS)
    yield s
    s.close()


def _agent(aid: str, limit: int = 3) -> Agent:
    return Agent(
        AgentId(aid),
        reception_limit=limit,
        status=AgentStatus.ONLINE,
        skill_groups=frozenset({"g"}),
    )


def _assign(storage: SQLiteStorage, cid: str, agent: str, now: float) -> None:
    storage.apply(
        Change(
            ChatId(cid),
            None,
            now,
            chat=_chat(cid, 0, ChatState.ACTIVE, agent),
            claim=Claim(AgentId(agent)),
        )
    )


def _end(cid: str, now: float, **kw: Any) -> Change:
    return Change(
        ChatId(cid),
        0,
        now,
        chat=_chat(cid, 1, ChatState.ENDED, None),
        release=AgentId("a"),
        tiebreak=0.25,
        **kw,
    )


def _rank_rows(storage: SQLiteStorage) -> list[tuple[Any, ...]]:
    with storage.database.read() as conn:
        return conn.execute(
            "SELECT grp, eligible, category, active, free, saturation, idle_since "
            "FROM agent_ranks WHERE ns = ? AND agent_id = 'a' ORDER BY grp",
            (NS,),
        ).fetchall()


@pytest.mark.parametrize("read_first", [True, False])
def test_an_unchanged_row_takes_the_release_built_before_the_turn(
    storage: SQLiteStorage, monkeypatch: pytest.MonkeyPatch, read_first: bool
) -> None:
    """The chat read before the end (as the core reads it) brings its agent's load columns:
    the release is built from them before the turn; without that read, inside it."""
    storage.agents.put(_agent("a"), 1.0)
    _assign(storage, "c1", "a", 2.0)
    _assign(storage, "c2", "a", 2.5)
    before = storage.agents.get(AgentId("a"))
    assert before is not None
    inside: list[bool] = []  # per build: whether a write transaction was open
    writes = _sqlite_unit.load_writes

    def counted(*args: Any) -> Any:
        inside.append(storage.database.connection().in_transaction)
        return writes(*args)

    monkeypatch.setattr(_sqlite_unit, "load_writes", counted)
    if read_first:
        assert storage.chats.get(ChatId("c1")) is not None
    applied = storage.apply(_end("c1", 3.0))
    assert inside == [not read_first]
    expected = released(before, ChatId("c1"), 3.0, 0.25)
    assert storage.agents.get(AgentId("a")) == expected == applied.released
    assert [row[3] for row in _rank_rows(storage)] == [1, 1]  # groups "" and "g"


def test_a_kept_row_serves_one_unit_of_its_agent_only(storage: SQLiteStorage) -> None:
    storage.agents.put(_agent("a"), 1.0)
    _assign(storage, "c1", "a", 2.0)
    db = storage.database
    assert storage.chats.get(ChatId("c1")) is not None
    assert db.recall_agent("other", "a") is None  # another namespace: forgotten too
    assert storage.chats.get(ChatId("c1")) is not None
    row = db.recall_agent(NS, "a")
    assert row is not None and len(row) == 9
    assert db.recall_agent(NS, "a") is None  # once
    assert storage.chats.get(ChatId("c1")) is not None
    assert db.recall_agent(NS, "b") is None


def test_a_row_changed_before_the_turn_is_released_as_read_inside(
    storage: SQLiteStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another writer claims a slot of the released agent between the read before the turn
    and the turn: the unit releases from the row it reads inside (the prepared load would
    drop that claim and free a slot that is taken)."""
    storage.agents.put(_agent("a"), 1.0)
    _assign(storage, "c1", "a", 2.0)
    prepare = _sqlite_unit._prepare_release

    def raced(*args: Any) -> Any:
        prepared = prepare(*args)
        assert prepared is not None
        _assign(storage, "c2", "a", 2.5)  # commits before the unit's turn
        return prepared

    monkeypatch.setattr(_sqlite_unit, "_prepare_release", raced)
    assert storage.chats.get(ChatId("c1")) is not None  # brings a's row, as the core would
    applied = storage.apply(_end("c1", 3.0))
    load = storage.agents.get(AgentId("a"))
    assert load is not None and load.chats == {ChatId("c2")}
    assert applied.released == load
    # the rank rows and the census agree with the stored load: one active chat of three
    assert [row[3:5] for row in _rank_rows(storage)] == [(1, 2), (1, 2)]
    census = storage.agents.census("g")
    assert (census.eligible, census.load, census.capacity) == (1, 1, 3)


def test_a_release_of_an_unknown_agent_builds_nothing(storage: SQLiteStorage) -> None:
    storage.agents.put(_agent("b"), 1.0)
    _assign(storage, "c1", "b", 2.0)
    change = Change(
        ChatId("c1"),
        0,
        3.0,
        chat=_chat("c1", 1, ChatState.ENDED, None),
        release=AgentId("nobody"),
    )
    applied = storage.apply(change)
    assert applied.released is None
    assert storage.chats.get(ChatId("c1")) is not None


@pytest.mark.parametrize("fails", [False, True])
def test_the_census_comes_with_every_precondition_read(storage: SQLiteStorage, fails: bool) -> None:
    """The widest precondition statement (a queue that must be empty, a named agent, the
    released agent) with the census rows after it: the census reported is the one before the
    effects, on success and in a refusal."""
    storage.agents.put(_agent("a"), 1.0)
    storage.agents.put(_agent("b", limit=1), 1.0)
    _assign(storage, "c1", "a", 2.0)
    if fails:
        _assign(storage, "c0", "b", 2.2)  # b is full
    before = storage.agents.census("g")
    change = Change(
        ChatId("c1"),
        0,
        3.0,
        chat=_chat("c1", 1, ChatState.ACTIVE, "b"),
        release=AgentId("a"),
        claim=Claim(AgentId("b")),
        require_empty="g",
        census="g",
    )
    if fails:
        with pytest.raises(PreconditionFailed) as info:
            storage.apply(change)
        assert info.value.reason == "agent_unavailable"
        assert info.value.census == before
        return
    applied = storage.apply(change)
    assert applied.census == before
    after = storage.agents.census("g")
    assert (before.eligible, before.full) == (2, 0)
    assert (after.eligible, after.full, after.load) == (1, 1, 1)  # b took its one slot


@pytest.mark.parametrize("queued", [False, True])
def test_the_watched_queues_are_probed_with_the_preconditions(
    storage: SQLiteStorage, queued: bool
) -> None:
    """A change that writes no queue entry asks whether its watched queues hold one in its
    precondition statement (no probe statement of its own); the heads it reports are those
    a read after it gives, the census and the other columns where they were (the widest
    statement: a queue that must be empty, a named agent, a release, the census)."""
    storage.agents.put(_agent("a"), 1.0)
    storage.agents.put(_agent("b"), 1.0)
    _assign(storage, "c1", "a", 2.0)
    if queued:
        storage.apply(
            Change(ChatId("q1"), None, 2.1, chat=_chat("q1"), push=QueuePush("queue/g", 1.0))
        )
    watch = ("queue/g", "queue/x", "pool/g")
    seen: list[str] = []
    storage.database.connection().set_trace_callback(seen.append)
    before = storage.agents.census("g")
    try:
        applied = storage.apply(
            Change(
                ChatId("c1"),
                0,
                3.0,
                chat=_chat("c1", 1, ChatState.ACTIVE, "b"),
                release=AgentId("a"),
                claim=Claim(AgentId("b")),
                require_empty="pool/g",
                census="g",
                watch=watch,
            )
        )
    finally:
        storage.database.connection().set_trace_callback(None)
    assert not [sql for sql in seen if sql.startswith("SELECT 1 FROM queue_entries")]
    assert applied.heads == tuple(storage.queues.heads(watch))
    assert [h.length for h in applied.heads] == [int(queued), 0, 0]
    assert applied.census == before
    assert applied.agent_id == "b" and applied.released is not None
    assert not applied.released.chats
