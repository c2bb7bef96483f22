"""Monitor benchmark: the live snapshot reads indexes and counters, not every chat.

Setup, through the public API on the in-memory default: 1,000 agents in 100 skill groups (per
group 8 ONLINE with a reception limit of 10, one BUSY, one AWAY) and 10,000 open chats (100
per group: 80 active, 20 waiting in the group's queue), opened one second apart.

Ours: ``ChatManager.monitor()`` (every agent's load in account order, one
``AgentStore.censuses`` read of the groups' counters, one ``QueueStore.heads`` read that carries
when each line's oldest chat started waiting; no chat read). Baseline, in the same run on the
same data, alternating with ours: what a host does without it — list every chat and every agent
and fold them into the same per-group figures (the check below asserts both give the same
groups).

Lines (JSON), ``ratio`` = baseline / ours (target: <= 2 ms, ratio >= 20):

* ``monitor.snapshot.1k_agents``: median wall ms per snapshot (``perf_counter``); baseline the
  scan.
* ``monitor.snapshot.1k_agents.cpu``: the same runs in CPU ms (``process_time``): less exposed
  to other processes on a shared machine.
* ``monitor.snapshot.1k_agents.cold``: wall ms with the memory adapter's reuse of unchanged
  census and head values defeated before every snapshot (as if every group changed between two
  snapshots); baseline the scan.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from _common import emit

from chatmgmt import Agent, AgentStatus, ChatManager, ChatSettings, ChatState, CustomerInfo
from chatmgmt.model import AgentId
from chatmgmt.monitoring import GroupView, Snapshot
from chatmgmt.testing import ManualClock

GROUPS = 100
T0 = 1_000_000.0
HANDLE_S = 300.0


def setup() -> tuple[ChatManager, ManualClock]:
    """The manager with 1,000 agents and 10,000 open chats."""
    settings = ChatSettings.from_dict(
        {
            "assignment": {"strategy": "least_busy", "queue": {"estimate_handle_s": HANDLE_S}},
            "end_of_chat": {"warn_after_s": 0, "end_after_s": 0},
        }
    )
    clock = ManualClock(T0)
    manager = ChatManager(settings=settings, clock=clock)
    n = 0
    for g in range(GROUPS):
        for k in range(10):
            status = AgentStatus.ONLINE if k < 8 else (AgentStatus.BUSY, AgentStatus.AWAY)[k - 8]
            manager.register_agent(
                Agent(
                    AgentId(f"a{n}"),
                    skill_groups=frozenset({f"g{g}"}),
                    reception_limit=10,
                    account_order=n,
                    status=status,
                )
            )
            n += 1
    for i in range(100):
        for g in range(GROUPS):
            manager.open_chat(CustomerInfo(partner_id=f"c{g}_{i}"), skill_group=f"g{g}")
        clock.advance(1.0)
    return manager, clock


def scan(manager: ChatManager, now: float) -> dict[str, GroupView]:
    """The baseline: every chat and every agent, folded into the per-group figures."""
    loads = manager.storage.agents.list()
    chats = manager.list_chats()
    per: dict[str, list[float]] = {}  # waiting, oldest queued_at, active
    for chat in chats:
        row = per.setdefault(chat.skill_group, [0, now, 0])
        if chat.state is ChatState.QUEUED:
            row[0] += 1
            since = chat.queued_at if chat.queued_at is not None else chat.created_at
            row[1] = min(row[1], since)
        elif chat.state is ChatState.ACTIVE:
            row[2] += 1
    agents: dict[str, list[int]] = {}  # online, busy, away, offline, free, capacity
    for load in loads:
        for group in load.agent.skill_groups:
            a = agents.setdefault(group, [0, 0, 0, 0, 0, 0])
            status = load.agent.status
            if status is AgentStatus.ONLINE:
                a[0] += 1
                a[4] += max(0, load.agent.reception_limit - len(load.chats))
                a[5] += load.agent.reception_limit
            else:
                a[{AgentStatus.BUSY: 1, AgentStatus.AWAY: 2}.get(status, 3)] += 1
    out = {}
    for group in sorted(set(per) | set(agents)):
        waiting, oldest, active = per.get(group, [0, now, 0])
        a = agents.get(group, [0, 0, 0, 0, 0, 0])
        out[group] = GroupView(
            group,
            int(waiting),
            now - oldest if waiting else None,
            (waiting + 1) * HANDLE_S / a[5] if a[5] else None,
            a[0],
            a[1],
            a[2],
            a[3],
            a[4],
            int(active),
        )
    return out


def main() -> None:
    """Print the JSON line."""
    manager, clock = setup()
    now = clock.now()
    snap: Snapshot = manager.monitor(now=now)
    assert snap.groups == scan(manager, now), "the snapshot and the scan disagree"
    assert sum(g.waiting for g in snap.groups.values()) == 2000
    ours: list[float] = []
    base: list[float] = []
    ours_cpu: list[float] = []
    base_cpu: list[float] = []
    cold: list[float] = []
    storage: Any = manager.storage
    for _ in range(15):
        t0, c0 = time.perf_counter(), time.process_time()
        for _ in range(20):
            manager.monitor(now=now)
        ours.append((time.perf_counter() - t0) / 20 * 1e3)
        ours_cpu.append((time.process_time() - c0) / 20 * 1e3)
        t0, c0 = time.perf_counter(), time.process_time()
        for _ in range(2):
            scan(manager, now)
        base.append((time.perf_counter() - t0) / 2 * 1e3)
        base_cpu.append((time.process_time() - c0) / 2 * 1e3)
        spent = 0.0
        for _ in range(20):
            storage.agents._censuses.clear()  # private: the reuse of unchanged values
            storage.queues._heads.clear()
            t0 = time.perf_counter()
            manager.monitor(now=now)
            spent += time.perf_counter() - t0
        cold.append(spent / 20 * 1e3)
    value = statistics.median(ours)
    baseline = statistics.median(base)
    emit("monitor.snapshot.1k_agents", value, "ms", baseline, baseline / value)
    cpu, cpu_base = statistics.median(ours_cpu), statistics.median(base_cpu)
    emit("monitor.snapshot.1k_agents.cpu", cpu, "ms", cpu_base, cpu_base / cpu)
    value = statistics.median(cold)
    emit("monitor.snapshot.1k_agents.cold", value, "ms", baseline, baseline / value)


if __name__ == "__main__":
    main()
