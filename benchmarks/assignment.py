"""Assignment benchmark: indexed pick-and-claim vs a naive scan, and end-to-end opens.

Lines (JSON, one per figure):
- ``assign.pick_claim.{1k,10k,100k}``: median µs per pick-and-claim (a unit of work carrying
  only a ranked claim); baseline a scan over all agents (rank by the same key, then a checked
  claim of the best) on the same data in the same run.
- ``assign.growth.1k_to_100k``: median time at 100k over median time at 1k (baseline: the scan's).
- ``assign.open_chat.10k``: ChatManager opens per second end to end (auto-save, routing,
  events) with 10k agents; baseline the same opens with a custom scanning strategy.
- ``assign.open_chat.10k.cpu``: the same runs timed by the process's CPU time
  (``time.process_time``) instead of the wall clock: on a shared machine, the time the
  process was kept waiting for a core is left out.

``--only open_chat`` prints the two open_chat lines alone.
"""

from __future__ import annotations

import gc
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _common import emit, median_us_per_op

from chatmgmt import Agent, AgentStatus, ChatManager, CustomerInfo
from chatmgmt.assignment import ROUND_ROBIN, rank_scan
from chatmgmt.model import AgentId, ChatId
from chatmgmt.ports import Change, Claim, RankedClaim
from chatmgmt.storage import MemoryStorage
from chatmgmt.testing import ManualClock


def _storage(n: int) -> MemoryStorage:
    storage = MemoryStorage()
    for i in range(n):
        agent = Agent(
            AgentId(f"a{i}"),
            skill_groups={"g"},
            reception_limit=1_000_000,
            account_order=i,
            status=AgentStatus.ONLINE,
        )
        storage.agents.put(agent, 0.0)
    return storage


def pick_claim(n: int, ops: int) -> tuple[float, float]:
    storage = _storage(n)
    agents = storage.agents
    rng = random.Random(1)
    counter = [0]
    empty: frozenset[AgentId] = frozenset()

    def indexed(k: int) -> None:
        for _ in range(k):
            counter[0] += 1
            now = float(counter[0])
            claim = RankedClaim("g", ROUND_ROBIN, empty)
            storage.apply(
                Change(ChatId(f"c{counter[0]}"), None, now, claim=claim, tiebreak=rng.random())
            )

    warm = RankedClaim("g", ROUND_ROBIN, empty)
    storage.apply(Change(ChatId("warm"), None, 0.0, claim=warm))  # build the index
    value = median_us_per_op(indexed, ops)

    def scan(k: int) -> None:
        for _ in range(k):
            counter[0] += 1
            loads = agents.list("g")
            eligible = [ld for ld in loads if ld.agent.status is AgentStatus.ONLINE and ld.free]
            best = rank_scan(eligible, ROUND_ROBIN)
            assert best is not None
            claim = Claim(best.agent.id)
            storage.apply(Change(ChatId(f"c{counter[0]}"), None, float(counter[0]), claim=claim))

    scan_ops = max(3, ops * 1000 // (n * 20))
    baseline = median_us_per_op(scan, scan_ops, repeats=3)
    return value, baseline


def open_chats(n: int, ops: int) -> tuple[tuple[float, float], tuple[float, float]]:
    """Median opens per second, ours and the baseline's: ``(wall, cpu)`` each."""

    def run(strategies: dict[str, object] | None, count: int) -> tuple[float, float]:
        clock = ManualClock(0.0)
        manager = ChatManager(
            _storage(n),
            clock=clock,
            rng=random.Random(2),
            strategies=strategies,  # type: ignore[arg-type]
        )
        infos = [
            CustomerInfo(partner_id=f"u{i}", name=f"Customer {i}", channel="web")
            for i in range(count)
        ]
        gc.collect()
        t0, c0 = time.perf_counter(), time.process_time()
        for info in infos:
            clock.advance(0.001)
            manager.open_chat(info, skill_group="g")
        return count / (time.perf_counter() - t0), count / (time.process_time() - c0)

    def scanning(eligible, chat):  # type: ignore[no-untyped-def]
        return rank_scan(eligible, ROUND_ROBIN)

    def medians(runs: list[tuple[float, float]]) -> tuple[float, float]:
        return sorted(r[0] for r in runs)[1], sorted(r[1] for r in runs)[1]

    values = medians([run(None, ops) for _ in range(3)])
    baselines = medians([run({"*": scanning}, max(20, ops // 100)) for _ in range(3)])
    return values, baselines


def main() -> None:
    if "--only" not in sys.argv or sys.argv[sys.argv.index("--only") + 1] != "open_chat":
        pick_claims()
    (per_s, cpu_per_s), (base_per_s, base_cpu_per_s) = open_chats(10_000, 20_000)
    emit("assign.open_chat.10k", per_s, "opens/s", base_per_s, per_s / base_per_s)
    emit(
        "assign.open_chat.10k.cpu", cpu_per_s, "opens/s", base_cpu_per_s, cpu_per_s / base_cpu_per_s
    )


def pick_claims() -> None:
    results = {}
    for n, label in ((1_000, "1k"), (10_000, "10k"), (100_000, "100k")):
        value, baseline = pick_claim(n, 20_000)
        results[label] = (value, baseline)
        emit(f"assign.pick_claim.{label}", value, "us", baseline, baseline / value)
    growth = results["100k"][0] / results["1k"][0]
    base_growth = results["100k"][1] / results["1k"][1]
    emit("assign.growth.1k_to_100k", growth, "x", base_growth, base_growth / growth)


if __name__ == "__main__":
    main()
