"""Routing benchmark: condition trees in routing rules, and async custom strategies.

Lines (JSON, one per figure):
- ``routing.plan.when_tree``: median µs of ``plan_route`` (the routing plan of one chat) with
  ten routing rules whose conditions are ``when`` trees (all / any / not, a range, tags, a time
  span in a time zone); baseline the same with ten rules written with the flat conditions only
  (channels, min_vip_level, customer_fields), measured in the same run, interleaved. No rule
  matches, so every rule is evaluated: the worst case for the first-match scan.
- ``routing.open.async_strategy``: ``AsyncChatManager.open_chat`` per second with an ``async
  def`` custom strategy (awaited by the driver, the timeout armed); baseline the same opens with
  the same strategy written as a sync function, in the same run, 100 agents.
"""

from __future__ import annotations

import asyncio
import gc
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _common import emit, median_us_per_op

from chatmgmt import Agent, AgentStatus, AsyncChatManager, ChatSettings, CustomerInfo
from chatmgmt.assignment import RouteRequest, plan_route
from chatmgmt.model import AgentLoad, Chat, ChatId
from chatmgmt.testing import ManualClock

_TREE = {
    "all": [
        {"channel": ["app", "email"]},
        {"any": [{"vip_level": {"min": 4}}, {"tags": {"any": ["gold", "enterprise"]}}]},
        {"not": {"weekday": ["sat", "sun"]}},
        {"time": {"from": "09:00", "to": "18:00", "timezone": "Europe/Berlin"}},
        {"attribute": {"key": "order_total", "min": 100, "max": 5000}},
    ]
}


def match(ops: int) -> tuple[float, float]:
    info = CustomerInfo(partner_id="u1", channel="web", vip_level=1, custom_fields={"tier": "b"})
    chat = Chat(ChatId("c1"), info, "web", attributes={"tags": ["billing"], "order_total": 20})
    trees = [{"name": f"r{i}", "target_group": "g", "when": _TREE} for i in range(10)]
    flat = [
        {
            "name": f"r{i}",
            "target_group": "g",
            "channels": ["app", "email"],
            "min_vip_level": 4,
            "customer_fields": {"tier": "a"},
        }
        for i in range(10)
    ]
    request = RouteRequest()

    def run(rules: list[dict[str, object]]) -> Callable[[int], None]:
        settings = ChatSettings.from_dict({"assignment": {"routing_rules": rules}}).assignment

        def go(k: int) -> None:
            for _ in range(k):
                plan_route(chat, request, settings, "u1", None, 1.7e9)

        return go

    values, baselines = [], []
    for _ in range(3):  # interleaved, so a busy moment hits both
        values.append(median_us_per_op(run(trees), ops))
        baselines.append(median_us_per_op(run(flat), ops))
    return statistics.median(values), statistics.median(baselines)


async def _opens(strategy: object, count: int) -> float:
    manager = AsyncChatManager(strategies={"*": strategy}, clock=ManualClock(0.0))  # type: ignore[dict-item]
    for i in range(100):
        agent = Agent(f"a{i}", status=AgentStatus.ONLINE, reception_limit=10**6, account_order=i)
        await manager.register_agent(agent)
    infos = [CustomerInfo(name=f"c{i}") for i in range(count)]
    gc.collect()
    t0 = time.perf_counter()
    for info in infos:
        await manager.open_chat(info)
    return count / (time.perf_counter() - t0)


def opens(count: int) -> tuple[float, float]:
    async def least_loaded(eligible: Sequence[AgentLoad], chat: Chat) -> AgentLoad | None:
        return min(eligible, key=lambda ld: ld.active, default=None)

    def least_loaded_sync(eligible: Sequence[AgentLoad], chat: Chat) -> AgentLoad | None:
        return min(eligible, key=lambda ld: ld.active, default=None)

    values, baselines = [], []
    for _ in range(3):  # interleaved, so a busy moment hits both
        values.append(asyncio.run(_opens(least_loaded, count)))
        baselines.append(asyncio.run(_opens(least_loaded_sync, count)))
    return statistics.median(values), statistics.median(baselines)


def main() -> None:
    value, baseline = match(5_000)
    emit("routing.plan.when_tree", value, "us", baseline, baseline / value)
    per_s, base_per_s = opens(2_000)
    emit("routing.open.async_strategy", per_s, "opens/s", base_per_s, per_s / base_per_s)


if __name__ == "__main__":
    main()
