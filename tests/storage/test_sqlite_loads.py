"""SQLite agent load rows: the load columns' JSON (orjson, with ``json`` for what orjson
refuses) and a ranked claim's rank row compared with the values its row holds (read with the
pick) instead of values computed again from the old load."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from chatmgmt.assignment._load import claimed, released
from chatmgmt.model import (
    Agent,
    AgentId,
    AgentLoad,
    AgentStatus,
    ChatId,
    ChatState,
    Ranking,
    RankKey,
)
from chatmgmt.ports import Change, RankedClaim
from chatmgmt.storage import _sqlite_loads
from chatmgmt.storage._rank_columns import RANK_NAMES
from chatmgmt.storage._sqlite_loads import LOAD_COLUMNS, load_of, load_writes
from chatmgmt.storage.sqlite import SQLiteStorage
from storage.test_sqlite_apply import _chat

NS = "t1"


def _load(*chats: str) -> AgentLoad:
    agent = Agent(
        AgentId("a"),
        reception_limit=3,
        account_order=4,
        status=AgentStatus.ONLINE,
        skill_groups=frozenset({"g"}),
    )
    return AgentLoad(agent, frozenset(ChatId(c) for c in chats), frozenset(), 5.0, 1.0, 0.25, 2)


def test_a_lone_surrogate_is_written_by_json_and_read_back() -> None:
    text = _sqlite_loads._dumps(["c\ud800", "d"])  # orjson refuses it
    assert text == json.dumps(["c\ud800", "d"])
    assert _sqlite_loads._loads(text) == ["c\ud800", "d"]


def test_texts_json_wrote_and_orjson_refuses_read_alike() -> None:
    old_style = json.dumps(["c2", "c1"])  # '["c2", "c1"]': written before orjson
    assert _sqlite_loads._loads(old_style) == ["c2", "c1"]
    assert _sqlite_loads._loads("[1e999, NaN]")[0] == float("inf")  # orjson refuses both
    row = (json.dumps({}), 2, old_style, "[]", 5.0, 1.0, 0.25, '{"c1": "web"}', "[4.5]")
    row = (_sqlite_loads.encode(_load().agent), *row[1:])
    load = load_of(row)
    assert load is not None
    assert load.chats == {"c1", "c2"} and load.inactive == frozenset()
    assert load.channels == {"c1": "web"} and load.recent == (4.5,)


def _stored(tmp_path: Path, load: AgentLoad) -> tuple[object, ...]:
    """``load``'s rank values as a rank row stores them (the columns' affinities applied)."""
    conn = sqlite3.connect(tmp_path / "ranks.db")
    conn.execute(
        "CREATE TABLE r (eligible INTEGER, status TEXT, category TEXT, lim INTEGER, "
        "active INTEGER, saturation REAL, free INTEGER, last_assigned_at REAL, "
        "idle_since REAL, tier INTEGER, account_order INTEGER, tiebreak REAL)"
    )
    conn.execute(
        f"INSERT INTO r VALUES ({', '.join('?' * len(RANK_NAMES))})",
        _sqlite_loads._rank_values(load),
    )
    row: tuple[object, ...] = conn.execute("SELECT * FROM r").fetchone()
    conn.close()
    return row


def test_stored_rank_values_give_the_same_writes(tmp_path: Path) -> None:
    old = _load("c1")
    stored = _stored(tmp_path, old)
    assert type(stored[4]) is int  # active 1.0 comes back 1: compared by value, not moved
    for new in (claimed(old, ChatId("c2"), 9.0, 0.5), released(old, ChatId("c1"), 9.0, 0.5)):
        assert load_writes(NS, new, old, stored) == load_writes(NS, new, old)
    # a stored value that differs is written (the row is what the update starts from)
    new = claimed(old, ChatId("c2"), 9.0, 0.5)
    changed = list(stored)
    changed[RANK_NAMES.index("tier")] = 7
    sql, rows = load_writes(NS, new, old, changed)[-1]
    assert "tier = ?" not in load_writes(NS, new, old)[-1][0]
    sets = sql.split(" SET ")[1].split(" WHERE ")[0].split(", ")
    assert rows[0][sets.index("tier = ?")] == float(old.agent.tier)


def test_a_ranked_claim_stores_what_a_fresh_computation_would(tmp_path: Path) -> None:
    storage = SQLiteStorage(tmp_path / "pick.db", namespace=NS)
    try:
        for i in range(3):
            storage.agents.put(
                Agent(
                    AgentId(f"a{i}"),
                    reception_limit=2,
                    account_order=i,
                    status=AgentStatus.ONLINE,
                    skill_groups=frozenset({"g"}),
                ),
                0.0,
            )
        ranking = Ranking("least", (RankKey("active"), RankKey("account_order")))
        for n in range(5):
            cid = f"c{n}"
            storage.apply(
                Change(
                    ChatId(cid),
                    None,
                    float(n),
                    chat=_chat(cid, 0, ChatState.ACTIVE, None),
                    claim=RankedClaim("g", ranking),
                )
            )
        conn = storage.database.connection()
        for i in range(3):
            row = conn.execute(
                f"SELECT {', '.join(LOAD_COLUMNS)} FROM agents WHERE ns = ? AND id = ?",
                (NS, f"a{i}"),
            ).fetchone()
            load = load_of(row)
            assert load is not None
            expected = _sqlite_loads._rank_values(load)
            for grp in ("", "g"):
                ranks = conn.execute(
                    f"SELECT {', '.join(RANK_NAMES)} FROM agent_ranks "
                    "WHERE ns = ? AND agent_id = ? AND grp = ?",
                    (NS, f"a{i}", grp),
                ).fetchone()
                assert list(ranks) == list(expected)
        assert sorted(
            len(load_of(r).chats)  # type: ignore[union-attr]
            for r in conn.execute(f"SELECT {', '.join(LOAD_COLUMNS)} FROM agents")
        ) == [1, 2, 2]
    finally:
        storage.close()
