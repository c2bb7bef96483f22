"""What this machine's cores give Python processes running at once: the ceiling of every
``<n>proc`` figure.

The 4-process storage lines (``storage.<backend>.open_per_s.4proc``) run 4 workers, and for
Redis and PostgreSQL a server, on the machine's cores. Whether those cores add up is a property
of the machine, not of chatmgmt: two virtual CPUs that are siblings of one physical core (SMT),
or a host that gives the guest less than its CPU count, run each process slower while the
others run. This script measures it with no chatmgmt code: the same CPU-bound Python work
(dicts, strings, integers, small objects: what an interpreter does in a unit of work) done by
1 process alone, then by 2 and 4 processes at once, for ``--seconds`` each, after a barrier.

Lines (medians of ``--repeats`` rounds; one round runs 1, 2 and 4 processes in turn, so load
from elsewhere hits all three alike):

- ``machine.python.work_us.1proc``: CPU time of one piece of work, one process alone;
- ``machine.python.work_us.<n>proc``: the same with ``n`` processes running at once (CPU time
  per piece inside each process), beside the alone figure as the baseline (``ratio`` < 1: each
  process runs slower when others run);
- ``machine.python.capacity.<n>proc``: the pieces the ``n`` processes finish per second
  together, in units of what one process alone finishes (the baseline, 1.0): 2.0 on two
  independent cores, ~1.3 when two vCPUs share one core.

A throughput target at ``n`` processes therefore needs a per-operation cost (CPU time measured
with one process alone, server included) of at most ``capacity / target``. Only on a quiet
machine: with other work running, one process alone gets less than a CPU and ``n`` processes
take a larger share from the others, so ``capacity`` can exceed the number of CPUs.
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from _common import emit

PROCS = (1, 2, 4)


def work() -> int:
    """One piece of CPU-bound interpreter work (~1 ms): build and read small dicts and
    strings, as a unit of work's Python does."""
    total = 0
    for i in range(400):
        record = {"id": f"chat-{i}", "state": "active", "n": i, "agent": None}
        record["agent"] = record["id"].upper()
        total += len(record["agent"]) + record["n"] % 7
    return total


def _worker(seconds: float, barrier: Any, results: Any) -> None:
    work()
    barrier.wait(60)
    done = 0
    cpu, start = time.process_time(), time.perf_counter()
    while time.perf_counter() - start < seconds:
        work()
        done += 1
    results.put((done, time.process_time() - cpu, time.perf_counter() - start))


def run(procs: int, seconds: float) -> tuple[float, float]:
    """(CPU µs per piece inside a process, pieces per second of all processes together)."""
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(procs), ctx.Queue()
    workers = [ctx.Process(target=_worker, args=(seconds, barrier, results)) for _ in range(procs)]
    for w in workers:
        w.start()
    rows = [results.get(timeout=seconds + 120) for _ in workers]
    for w in workers:
        w.join(30)
    done = sum(r[0] for r in rows)
    cpu = sum(r[1] for r in rows)
    wall = max(r[2] for r in rows)
    return cpu / done * 1e6, done / wall


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="measuring time per run")
    parser.add_argument("--repeats", type=int, default=5, help="rounds of 1, 2, 4 processes")
    args = parser.parse_args()
    cost: dict[int, list[float]] = {n: [] for n in PROCS}
    rate: dict[int, list[float]] = {n: [] for n in PROCS}
    for _ in range(args.repeats):
        for n in PROCS:
            us, per_s = run(n, args.seconds)
            cost[n].append(us)
            rate[n].append(per_s)
    alone_us, alone_rate = statistics.median(cost[1]), statistics.median(rate[1])
    emit("machine.python.work_us.1proc", alone_us, "us/piece", None, None)
    for n in PROCS[1:]:
        us, per_s = statistics.median(cost[n]), statistics.median(rate[n])
        emit(f"machine.python.work_us.{n}proc", us, "us/piece", alone_us, alone_us / us)
        emit(f"machine.python.capacity.{n}proc", per_s / alone_rate, "x one alone", 1.0, None)
    print(f"# work_us {cost} per_s {rate}", flush=True)


if __name__ == "__main__":
    main()
