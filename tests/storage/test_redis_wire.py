"""The sync Redis driver's short path (``storage/_redis_wire.py``) on a real server.

It must answer exactly as redis-py does (RESP2 and RESP3 clients, text-decoding clients, error
replies, replies of every RESP3 type), survive a connection the server closed (falling back to
``execute_command``), a script cache the server flushed (NOSCRIPT), threads and forks, and stay
off for clients it does not know how to short-cut (a cluster, a single-connection client). The
adapter's decoded-agent cache must follow every configuration change.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from chatmgmt import ChatManager
from chatmgmt.errors import PreconditionFailed, StorageError
from chatmgmt.model import Agent, AgentId, AgentStatus, ChatId, CustomerInfo, EndReason
from chatmgmt.ports import Change, RankedClaim
from chatmgmt.storage._redis_keys import _exact
from chatmgmt.storage._redis_wire import _Reader, pack, wire_for
from chatmgmt.storage.redis import RedisStorage

pytestmark = pytest.mark.redis


def _storage(client: Any) -> RedisStorage:
    return RedisStorage(client, f"wire-{uuid.uuid4().hex[:8]}")


@pytest.fixture(params=[2, 3], ids=["resp2", "resp3"])
def client(request: pytest.FixtureRequest, redis_url: str) -> Iterator[redis.Redis]:
    c = redis.Redis.from_url(redis_url, protocol=request.param)
    yield c
    c.close()


def _agents(storage: RedisStorage, n: int = 3, limit: int = 2) -> ChatManager:
    manager = ChatManager(storage=storage)
    for i in range(n):
        manager.register_agent(
            Agent(
                AgentId(f"a{i}"),
                skill_groups=frozenset({"g"}),
                reception_limit=limit,
                status=AgentStatus.ONLINE,
            ),
            now=0.0,
        )
    return manager


def test_the_short_path_is_taken_and_answers_as_redis_py(client: redis.Redis) -> None:
    storage = _storage(client)
    assert storage._driver.wire is not None
    manager = _agents(storage)
    chat = manager.open_chat(CustomerInfo(channel="web"), skill_group="g", chat_id="c1")
    assert chat.agent_id is not None
    # the same reads through redis-py's own path give the same answers
    wire = storage._driver.wire
    census = storage.agents.census("g")
    assert storage.chats.get("c1") == chat
    storage._driver.wire = None
    assert storage.agents.census("g") == census
    assert storage.chats.get("c1") == chat
    storage._driver.wire = wire
    manager.end_chat(ChatId("c1"), reason=EndReason.AGENT)
    assert storage.chats.get("c1").state.value == "ended"  # type: ignore[union-attr]
    storage.delete_namespace()
    storage.close()


def test_a_refused_unit_raises_and_the_connection_stays_usable(client: redis.Redis) -> None:
    storage = _storage(client)
    _agents(storage, n=1, limit=1)
    claim = RankedClaim("g", storage_ranking())
    storage.apply(Change(ChatId("x1"), None, 1.0, claim=claim))
    with pytest.raises(PreconditionFailed) as err:
        storage.apply(Change(ChatId("x2"), None, 2.0, claim=claim))
    assert err.value.reason == "no_agent"
    assert storage.agents.get("a0").chats == {"x1"}  # type: ignore[union-attr]
    storage.delete_namespace()
    storage.close()


def storage_ranking() -> Any:
    from chatmgmt.assignment import LEAST_BUSY

    return LEAST_BUSY


def test_a_connection_the_server_closed_falls_back_and_recovers(client: redis.Redis) -> None:
    storage = _storage(client)
    manager = _agents(storage)
    manager.open_chat(CustomerInfo(channel="web"), skill_group="g", chat_id="c1")
    wire = storage._driver.wire
    assert wire is not None and len(wire._idle) == 1
    own = wire.command(("CLIENT", "ID"))  # the id of the wire's one connection
    assert client.client_kill_filter(_id=own) == 1
    chat = manager.open_chat(CustomerInfo(channel="web"), skill_group="g", chat_id="c2")
    assert chat.agent_id is not None
    assert storage.chats.get("c2") == chat
    storage.delete_namespace()
    storage.close()


def test_a_flushed_script_cache_is_loaded_again(client: redis.Redis) -> None:
    storage = _storage(client)
    manager = _agents(storage)
    client.script_flush()
    chat = manager.open_chat(CustomerInfo(channel="web"), skill_group="g", chat_id="c1")
    assert storage.chats.get("c1") == chat
    storage.delete_namespace()
    storage.close()


def test_a_data_version_refusal_is_the_adapters_error(client: redis.Redis) -> None:
    storage = _storage(client)
    client.set(storage.key_prefix + ":dv", "999")
    with pytest.raises(StorageError, match="version 999"):
        storage.chats.get("c1")
    client.delete(storage.key_prefix + ":dv")
    storage.delete_namespace()
    storage.close()


def test_text_decoding_clients_get_the_same_answers(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    storage = _storage(client)
    assert storage._driver.wire is not None
    manager = _agents(storage)
    chat = manager.open_chat(CustomerInfo(channel="web"), skill_group="g", chat_id="c1")
    assert storage.chats.get("c1") == chat
    assert storage.agents.census("g").total == 3
    storage.delete_namespace()
    storage.close()
    client.close()


def test_threads_never_share_a_connection(client: redis.Redis) -> None:
    storage = _storage(client)
    manager = _agents(storage, n=8, limit=50)
    errors: list[BaseException] = []

    def work(t: int) -> None:
        try:
            for i in range(30):
                cid = f"t{t}-{i}"
                manager.open_chat(CustomerInfo(channel="web"), skill_group="g", chat_id=cid)
                assert storage.chats.get(cid).id == cid  # type: ignore[union-attr]
                manager.end_chat(ChatId(cid), reason=EndReason.AGENT)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []
    ended = storage.chats.list()
    assert len(ended) == 120 and all(c.state.value == "ended" for c in ended)
    assert storage.agents.census("g").load == 0
    storage.delete_namespace()
    storage.close()


def test_other_clients_keep_redis_pys_path(redis_url: str) -> None:
    single = redis.Redis.from_url(redis_url, single_connection_client=True)
    assert wire_for(single) is None
    blocking = redis.Redis(connection_pool=redis.BlockingConnectionPool.from_url(redis_url))
    assert wire_for(blocking) is None
    latin = redis.Redis.from_url(redis_url, encoding="latin-1")
    assert wire_for(latin) is None
    single.close()
    blocking.close()
    latin.close()


def test_pack_writes_resp() -> None:
    assert pack(("SET", b"k", 1, 2.5, "ü")) == (
        b"*5\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\n1\r\n$3\r\n2.5\r\n$2\r\n\xc3\xbc\r\n"
    )
    with pytest.raises(TypeError):
        pack(("SET", None))


def test_pack_writes_arguments_of_every_length_and_the_plan_numbers_read_back_exactly(
    redis_url: str,
) -> None:
    """Arguments below and above the prebuilt headers' 2,048 bytes are written with their
    exact length; the apply plan's numbers (``_exact``: orjson's shortest digits) parse back to
    the same double in Python and in Redis (a score written and read back)."""
    for n in (0, 1, 9, 10, 2047, 2048, 2049, 70000):
        data = b"x" * n
        assert pack((data,)) == b"*1\r\n$%d\r\n%b\r\n" % (n, data)
    assert pack(("\u00fc" * 1500,)).startswith(b"*1\r\n$3000\r\n")
    values = [1796668174.7261093, 0.5396174484497788, 5.0, -0.0, 1e-300, 2.0**60 + 1, 1 / 3]
    values += [1e16, 123456789012345678.0, float("inf"), float("-inf"), 7]
    assert _exact(float("nan")) == "nan"
    client = redis.Redis.from_url(redis_url)
    key = f"exact-{uuid.uuid4().hex}"
    try:
        for i, value in enumerate(values):
            assert float(_exact(value)) == value
            client.zadd(key, {f"m{i}": _exact(value)})
            assert client.zscore(key, f"m{i}") == value
    finally:
        client.delete(key)


class _Chunks:
    """A socket that hands out a byte string a few bytes at a time."""

    def __init__(self, data: bytes, size: int) -> None:
        self.data = data
        self.size = size

    def recv(self, _n: int) -> bytes:
        out, self.data = self.data[: self.size], self.data[self.size :]
        return out


@pytest.mark.parametrize("size", [1, 3, 1000])
def test_the_reader_parses_every_resp_type_across_chunk_borders(size: int) -> None:
    from redis._parsers.base import BaseParser

    data = (
        b"*12\r\n:1\r\n$5\r\nhello\r\n$-1\r\n+OK\r\n_\r\n#t\r\n,1.5\r\n(12345678901234567890\r\n"
        b"%1\r\n$1\r\nk\r\n:2\r\n~1\r\n$1\r\ns\r\n=8\r\ntxt:abcd\r\n-ERR inner\r\n"
        b">2\r\n$4\r\npush\r\n$1\r\nx\r\n"  # an out-of-band push, skipped
        b"|1\r\n$1\r\na\r\n$1\r\nb\r\n:7\r\n"  # attributes before a reply, skipped
        b"-NOSCRIPT No matching script\r\n"
    )
    reader = _Reader(_Chunks(data, size), BaseParser.parse_error)
    first = reader.reply()
    assert first[:10] == [
        1,
        b"hello",
        None,
        b"OK",
        None,
        True,
        1.5,
        12345678901234567890,
        {b"k": 2},
        [b"s"],
    ]
    assert first[10] == b"abcd"
    assert isinstance(first[11], redis.ResponseError) and str(first[11]) == "inner"
    assert reader.reply() == 7
    with pytest.raises(redis.exceptions.NoScriptError):
        reader.reply()
    with pytest.raises(ConnectionError):
        reader.reply()  # the socket is closed


def test_a_forked_child_uses_connections_of_its_own(client: redis.Redis) -> None:
    import os

    storage = _storage(client)
    manager = _agents(storage)
    manager.open_chat(CustomerInfo(channel="web"), skill_group="g", chat_id="c1")
    wire = storage._driver.wire
    assert wire is not None and len(wire._idle) == 1
    pid = os.fork()
    if pid == 0:  # the child: the parent's connection is forgotten, a new one serves it
        code = 1
        try:
            if not wire._idle:
                manager.open_chat(CustomerInfo(channel="web"), skill_group="g", chat_id="c2")
                code = 0 if storage.chats.get("c2") is not None else 1
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    # the parent's connection is still in step
    assert len(wire._idle) == 1
    assert storage.chats.get("c1") is not None and storage.chats.get("c2") is not None
    storage.delete_namespace()
    storage.close()


def test_decoded_agents_are_shared_until_their_configuration_changes(client: redis.Redis) -> None:
    storage = _storage(client)
    _agents(storage, n=1)
    first, again = storage.agents.get("a0"), storage.agents.get("a0")
    assert first is not None and again is not None
    assert again.agent is first.agent  # one decoded value for one stored JSON
    storage.agents.put(
        Agent(AgentId("a0"), skill_groups=frozenset({"g", "h"}), reception_limit=4),
        1.0,
        expected_version=first.version,
    )
    changed = storage.agents.get("a0")
    assert changed is not None and changed.agent.reception_limit == 4
    assert changed.agent.skill_groups == {"g", "h"} and changed.agent.status.value == "offline"
    storage.delete_namespace()
    storage.close()


def _libraries(client: redis.Redis) -> list[str]:
    names = []
    for entry in client.function_list():
        if isinstance(entry, dict):
            name = entry.get(b"library_name", entry.get("library_name"))
        else:  # RESP2: a flat list of names and values
            name = entry[entry.index(b"library_name") + 1]
        names.append(name.decode() if isinstance(name, bytes) else name)
    return names


def test_the_scripts_run_as_one_redis_functions_library(client: redis.Redis) -> None:
    """On the short path the storage's scripts are one library, loaded once per server (its
    name carries its code's digest); every call is an FCALL of it, not an EVALSHA."""
    storage = _storage(client)
    manager = _agents(storage)
    functions = storage._driver.functions
    assert functions and functions["apply"].startswith("cm_")
    library = "chatmgmt_" + functions["apply"].split("_")[1]
    assert library in _libraries(client)
    client.config_resetstat()
    chat = manager.open_chat(CustomerInfo(channel="web"), skill_group="g", chat_id="c1")
    manager.end_chat(ChatId("c1"), reason=EndReason.AGENT)
    stats = client.info("commandstats")
    assert stats["cmdstat_fcall"]["calls"] >= 2
    assert "cmdstat_evalsha" not in stats
    other = RedisStorage(client, storage.namespace)  # finds the library there and keeps it
    assert other.agents.get("a0") == storage.agents.get("a0")
    assert _libraries(client).count(library) == 1
    assert storage.chats.get("c1").agent_id == chat.agent_id  # type: ignore[union-attr]
    storage.delete_namespace()
    for s in (storage, other):
        s.close()


def test_a_flushed_function_library_is_loaded_again(client: redis.Redis) -> None:
    storage = _storage(client)
    manager = _agents(storage)
    client.function_flush()
    chat = manager.open_chat(CustomerInfo(channel="web"), skill_group="g", chat_id="c1")
    assert chat.agent_id is not None and storage.chats.get("c1") == chat
    assert storage._driver.functions and any(n.startswith("chatmgmt_") for n in _libraries(client))
    storage.delete_namespace()
    storage.close()


def test_a_user_refused_functions_runs_the_same_scripts(client: redis.Redis) -> None:
    """A server without functions, or a user its ACL refuses them, gets the scripts."""
    user = f"nofn-{uuid.uuid4().hex[:6]}"
    client.acl_setuser(
        user, enabled=True, nopass=True, keys=["*"], commands=["+@all", "-function", "-fcall"]
    )
    kwargs = client.connection_pool.connection_kwargs
    own = redis.Redis(
        host=kwargs.get("host", "localhost"),
        port=kwargs.get("port", 6379),
        username=user,
        protocol=kwargs.get("protocol", 2),
    )
    try:
        storage = _storage(own)
        manager = _agents(storage)
        assert storage._driver.functions == {}
        chat = manager.open_chat(CustomerInfo(channel="web"), skill_group="g", chat_id="c1")
        manager.end_chat(ChatId("c1"), reason=EndReason.AGENT)
        assert storage.chats.get("c1").state.value == "ended"  # type: ignore[union-attr]
        assert chat.agent_id is not None
        storage.delete_namespace()
        storage.close()
    finally:
        own.close()
        client.acl_deluser(user)


def test_unit_reports_read_the_same_on_both_paths(client: redis.Redis) -> None:
    # the census, heads and released load come back in the same nested reply as the pick, on
    # the short path and on redis-py's, in RESP2 and RESP3
    from chatmgmt.model import Chat
    from chatmgmt.ports import CENSUS_MARKS, PICKED, Census, QueueHead, QueuePush

    storage = _storage(client)
    _agents(storage, n=1, limit=1)
    reason = {"eligible": CENSUS_MARKS["eligible"], "n": [{"full": CENSUS_MARKS["full"]}]}
    wire = storage._driver.wire
    outcomes: list[Any] = []
    for short in (True, False):
        storage._driver.wire = wire if short else None
        cid = ChatId(f"r{short}")
        opened = storage.apply(
            Change(
                cid,
                None,
                1.0,
                chat=Chat(cid, CustomerInfo(), "web", agent_id=PICKED, route_reason=reason),
                claim=RankedClaim("g", storage_ranking()),
                census="g",
            )
        )
        with pytest.raises(PreconditionFailed) as refused:
            storage.apply(
                Change(
                    ChatId(f"x{short}"),
                    None,
                    2.0,
                    claim=RankedClaim("g", storage_ranking()),
                    census="",
                )
            )
        ended = storage.apply(
            Change(
                cid,
                0,
                3.0,
                release=AgentId("a0"),
                push=QueuePush("q", 1.0),
                watch=("q", "empty"),
            )
        )
        storage.apply(Change(cid, 0, 4.0, remove=("q",)))
        assert ended.census is None  # not asked for: the script answers false
        outcomes.append((opened, refused.value.census, ended.heads, ended.released))
    storage._driver.wire = wire
    for (opened, census, heads, released), cid in zip(outcomes, ("rTrue", "rFalse"), strict=True):
        assert opened.census == Census(eligible=1, capacity=1)
        assert opened.chat is not None
        assert opened.chat.route_reason == {"eligible": 1, "n": [{"full": 0}]}
        assert opened.chat.agent_id == "a0"
        assert storage.chats.get(ChatId(cid)) == opened.chat
        assert census == Census(full=1, capacity=1, load=1)
        assert heads == (
            QueueHead("q", 1, ChatId(cid), ChatId(cid), heads[0].oldest_at),
            QueueHead("empty"),
        )
        assert released is not None and released.chats == frozenset()
    storage.delete_namespace()
    storage.close()
