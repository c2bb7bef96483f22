"""Async and external routing: a custom strategy that awaits a real router over HTTP, its
timeout and its fallback (assignment.custom_strategy), and the typed error a sync manager gives
for an async strategy.

The router is a real HTTP server on the loopback interface, in a thread; the strategy asks it
with httpx's async client, as a host would ask its own routing service.
"""

from __future__ import annotations

import asyncio
import functools
import json
import random
import threading
import time
from collections.abc import Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from chatmgmt import (
    Agent,
    AgentStatus,
    AsyncChatManager,
    ChatManager,
    ChatSettings,
    CustomerInfo,
)
from chatmgmt.errors import SettingsError, ValidationError
from chatmgmt.model import AgentLoad, Chat, ChatState
from chatmgmt.testing import (
    ManualClock,
    Operation,
    check_invariants,
    explore,
    sequential_ids,
)


class _Router(BaseHTTPRequestHandler):
    """POST /route {"chat": ..., "eligible": [...]} -> {"agent": <id>}. The path's last part
    chooses the behaviour: ``last`` (the last eligible agent), ``slow`` (answers after 2 s),
    ``fail`` (HTTP 500), ``ghost`` (an agent that does not exist), ``none`` (no pick)."""

    seen: list[dict[str, Any]] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).seen.append(body)
        mode = self.path.rsplit("/", 1)[-1]
        if mode == "fail":
            self.send_response(500)
            self.end_headers()
            return
        if mode == "slow":
            time.sleep(2.0)
        answer = {
            "last": body["eligible"][-1],
            "slow": body["eligible"][0],
            "ghost": "nobody",
            "none": None,
        }[mode]
        out = json.dumps({"agent": answer}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def router_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Router)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def external(url: str) -> Any:
    """An async strategy that asks the router at ``url`` (what a host writes)."""

    async def ask_router(eligible: Sequence[AgentLoad], chat: Chat) -> str | None:
        async with httpx.AsyncClient(timeout=10.0) as client:
            response = await client.post(
                url,
                json={
                    "chat": chat.id,
                    "vip": chat.customer.vip_level,
                    "eligible": [ld.agent.id for ld in eligible],
                },
            )
            response.raise_for_status()
            agent: str | None = response.json()["agent"]
            return agent

    return ask_router


def settings(**custom: Any) -> ChatSettings:
    return ChatSettings.from_dict({"assignment": {"custom_strategy": custom}})


async def open_with(
    strategy: Any, custom: dict[str, Any], agents: Sequence[str] = ("ann", "bob")
) -> tuple[AsyncChatManager, Chat]:
    m = AsyncChatManager(
        settings=settings(**custom),
        strategies={"*": strategy},
        clock=ManualClock(100.0),
        ids=sequential_ids(),
    )
    for name in agents:
        await m.register_agent(Agent(name, status=AgentStatus.ONLINE, reception_limit=1), now=0)
    chat = await m.open_chat(CustomerInfo(partner_id="p1", vip_level=2), chat_id="c1")
    return m, chat


def test_an_async_strategy_routes_through_a_real_http_router(router_url: str) -> None:
    _Router.seen.clear()
    m, chat = asyncio.run(open_with(external(f"{router_url}/route/last"), {}))
    assert chat.state is ChatState.ACTIVE and chat.agent_id == "bob"
    assert chat.route_reason["strategy"] == "ask_router"
    assert "custom_failed" not in chat.route_reason
    # the router saw the chat and the eligible agents, in account order
    assert _Router.seen == [{"chat": "c1", "vip": 2, "eligible": ["ann", "bob"]}]
    stored = asyncio.run(m.get_chat("c1"))
    assert stored.agent_id == "bob" and stored.state is ChatState.ACTIVE


def test_a_router_slower_than_the_timeout_falls_back_to_the_group_strategy(
    router_url: str,
) -> None:
    started = time.perf_counter()
    _m, chat = asyncio.run(
        open_with(external(f"{router_url}/route/slow"), {"timeout_s": 0.2, "fallback": "group"})
    )
    assert time.perf_counter() - started < 1.9  # the 2 s answer was not awaited
    assert chat.state is ChatState.ACTIVE and chat.agent_id == "ann"  # round robin's first
    assert chat.route_reason["strategy"] == "round_robin"
    failed = chat.route_reason["custom_failed"]
    assert failed["why"] == "timeout" and "0.2s" in failed["detail"]


def test_a_failing_router_falls_back_to_the_named_strategy(router_url: str) -> None:
    async def scenario() -> Chat:
        m = AsyncChatManager(
            settings=settings(fallback="least_busy"),
            strategies={"*": external(f"{router_url}/route/fail")},
            clock=ManualClock(100.0),
            ids=sequential_ids(),
        )
        await m.register_agent(Agent("ann", status=AgentStatus.ONLINE, reception_limit=3), now=0)
        await m.register_agent(Agent("bob", status=AgentStatus.ONLINE, reception_limit=3), now=0)
        # ann holds one chat (designated); least busy must pick bob for the next
        await m.open_chat(CustomerInfo(name="x"), designated_agent="ann", chat_id="c0")
        return await m.open_chat(CustomerInfo(name="y"), chat_id="c1")

    chat = asyncio.run(scenario())
    assert chat.agent_id == "bob"
    assert chat.route_reason["strategy"] == "least_busy"
    failed = chat.route_reason["custom_failed"]
    assert failed["why"] == "error" and "500" in failed["detail"]


def test_fallback_queue_leaves_the_chat_waiting(router_url: str) -> None:
    m, chat = asyncio.run(open_with(external(f"{router_url}/route/fail"), {"fallback": "queue"}))
    assert chat.state is ChatState.QUEUED and chat.agent_id is None
    assert chat.queue == "queue/"
    status = asyncio.run(m.queue_status("c1"))
    assert status is not None and status.position == 0


def test_an_agent_the_router_made_up_is_a_failure_not_a_crash(router_url: str) -> None:
    _m, chat = asyncio.run(open_with(external(f"{router_url}/route/ghost"), {}))
    assert chat.agent_id == "ann"
    assert chat.route_reason["custom_failed"]["why"] == "error"
    assert "'nobody'" in chat.route_reason["custom_failed"]["detail"]


def test_no_pick_from_the_router_queues_the_chat(router_url: str) -> None:
    _m, chat = asyncio.run(open_with(external(f"{router_url}/route/none"), {}))
    assert chat.state is ChatState.QUEUED
    assert "custom_failed" not in chat.route_reason


def test_an_asyncio_task_router_is_awaited() -> None:
    """An external router reached through a queue to another task (no HTTP)."""

    async def scenario() -> Chat:
        requests: asyncio.Queue[tuple[list[str], asyncio.Future[str]]] = asyncio.Queue()

        async def router_task() -> None:
            while True:
                names, answer = await requests.get()
                await asyncio.sleep(0.01)
                answer.set_result(sorted(names)[-1])

        async def via_task(eligible: Sequence[AgentLoad], chat: Chat) -> str:
            answer: asyncio.Future[str] = asyncio.get_running_loop().create_future()
            await requests.put(([ld.agent.id for ld in eligible], answer))
            return await answer

        task = asyncio.create_task(router_task())
        try:
            _m, chat = await open_with(via_task, {}, agents=("ann", "bob", "cy"))
        finally:
            task.cancel()
        return chat

    chat = asyncio.run(scenario())
    assert chat.agent_id == "cy" and chat.route_reason["strategy"] == "via_task"


def test_concurrent_opens_never_put_an_agent_over_its_limit() -> None:
    """Every open's router answers "ann" after a pause, so the opens race for her one slot:
    the checked claim lets one win and asks the router again for the others (checked on the
    stored chat records)."""

    async def scenario() -> AsyncChatManager:
        async def prefers_ann(eligible: Sequence[AgentLoad], chat: Chat) -> str:
            await asyncio.sleep(0.01)
            names = [ld.agent.id for ld in eligible]
            return "ann" if "ann" in names else names[0]

        m = AsyncChatManager(strategies={"*": prefers_ann}, clock=ManualClock(100.0))
        for name in ("ann", "bob", "cy"):
            await m.register_agent(Agent(name, status=AgentStatus.ONLINE, reception_limit=1))
        await asyncio.gather(
            *(m.open_chat(CustomerInfo(name=f"c{i}"), chat_id=f"c{i}") for i in range(5))
        )
        return m

    m = asyncio.run(scenario())
    chats = [asyncio.run(m.get_chat(f"c{i}")) for i in range(5)]
    holders = [c.agent_id for c in chats if c.state is ChatState.ACTIVE]
    assert sorted(holders) == ["ann", "bob", "cy"]  # each exactly once, nobody over 1
    assert sum(c.state is ChatState.QUEUED for c in chats) == 2


def test_a_sync_strategy_works_under_the_async_manager_and_its_error_falls_back() -> None:
    def broken(eligible: Sequence[AgentLoad], chat: Chat) -> AgentLoad | None:
        raise RuntimeError("routing table missing")

    _m, chat = asyncio.run(open_with(broken, {}))
    assert chat.agent_id == "ann"
    assert chat.route_reason["custom_failed"] == {
        "why": "error",
        "detail": "RuntimeError: routing table missing",
    }


# ----------------------------------------------------------------------------- the sync manager


async def _async_pick(eligible: Sequence[AgentLoad], chat: Chat) -> AgentLoad | None:
    return None


class _AsyncCallable:
    async def __call__(self, eligible: Sequence[AgentLoad], chat: Chat) -> AgentLoad | None:
        return None


@pytest.mark.parametrize(
    "strategy",
    [_async_pick, functools.partial(_async_pick), _AsyncCallable()],
    ids=["async_def", "partial", "async_call"],
)
def test_a_sync_manager_refuses_an_async_strategy_at_construction(strategy: Any) -> None:
    with pytest.raises(ValidationError, match=r"strategies\['vip'\] is an async strategy"):
        ChatManager(strategies={"vip": strategy})


def test_a_sync_strategy_returning_a_coroutine_is_refused_when_called() -> None:
    """Not detectable at construction (a lambda): refused at the call, nothing committed."""
    m = ChatManager(strategies={"*": lambda eligible, chat: _async_pick(eligible, chat)})
    m.register_agent(Agent("ann", status=AgentStatus.ONLINE))
    with pytest.raises(ValidationError, match="AsyncChatManager"):
        m.open_chat(CustomerInfo(name="x"), chat_id="c1")
    assert m.list_chats() == []


def test_a_failing_sync_strategy_falls_back_under_the_sync_manager() -> None:
    calls: list[str] = []

    def broken(eligible: Sequence[AgentLoad], chat: Chat) -> AgentLoad | None:
        calls.append(chat.id)
        raise KeyError("tier")

    m = ChatManager(strategies={"*": broken}, rng=random.Random(1))
    m.register_agent(Agent("ann", status=AgentStatus.ONLINE))
    chat = m.open_chat(CustomerInfo(name="x"), chat_id="c1")
    assert calls == ["c1"]
    assert chat.agent_id == "ann" and chat.route_reason["custom_failed"]["why"] == "error"


# ----------------------------------------------------------------------------- settings


@pytest.mark.parametrize(
    ("custom", "path"),
    [
        ({"fallback": "random"}, "assignment.custom_strategy.fallback"),
        ({"timeout_s": -1}, "assignment.custom_strategy.timeout_s"),
        ({"timeout_s": "2"}, "assignment.custom_strategy.timeout_s"),
        ({"retries": 2}, "assignment.custom_strategy.retries"),
    ],
)
def test_custom_strategy_settings_name_the_bad_path(custom: dict[str, Any], path: str) -> None:
    with pytest.raises(SettingsError) as info:
        settings(**custom)
    assert info.value.path == path


def test_custom_strategy_settings_round_trip() -> None:
    s = settings(timeout_s=0.5, fallback="saturation")
    assert ChatSettings.from_dict(s.to_dict()) == s
    assert s.assignment.custom_strategy.fallback == "saturation"


# ----------------------------------------------------------------------------- the explorer


def _failing_world() -> ChatManager:
    def flaky(eligible: Sequence[AgentLoad], chat: Chat) -> AgentLoad | None:
        if chat.id == "c9":
            raise RuntimeError("router down")
        return eligible[0]

    m = ChatManager(
        strategies={"g": flaky},
        rng=random.Random(7),
        ids=sequential_ids(),
        clock=ManualClock(100.0),
    )
    for name in ("ann", "bob"):
        m.register_agent(Agent(name, skill_groups={"g"}, status=AgentStatus.ONLINE), now=0)
    m.open_chat(CustomerInfo(name="c1"), skill_group="g", chat_id="c1", now=1.0)
    return m


def test_explorer_a_failed_custom_pick_and_its_fallback_race_with_other_opens() -> None:
    ops = [
        Operation(
            "open_fails",
            lambda m: m.open_chat(CustomerInfo(name="n"), skill_group="g", chat_id="c9", now=5),
        ),
        Operation(
            "open_custom",
            lambda m: m.open_chat(CustomerInfo(name="o"), skill_group="g", chat_id="c8", now=6),
        ),
        Operation("end", lambda m: m.end_chat("c1", now=7.0)),
    ]
    report = explore(_failing_world, ops, exhaustive_limit=0, random_runs=60, probes=2, seed=5)
    report.assert_ok()
    assert report.runs > 1
    # after all three, one agent was freed: two new chats active at most, the rest queued
    m = _failing_world()
    for op in ops:
        op.start(m)
    check_invariants(m.storage, opened=["c1", "c8", "c9"], drained=True)
    assert m.get_chat("c9").route_reason["custom_failed"]["detail"] == "RuntimeError: router down"
