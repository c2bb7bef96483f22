"""Instructions per ``open_chat`` on the in-memory default, counted by callgrind.

Deterministic where wall clock figures are not (two shared cores): valgrind counts the
instructions a process runs, whatever else the machine does. The workload: 1,000 agents in one
group (round robin, no limit reached), customers with a partner id (auto-save on), the default
deadlines, one warm-up open; then N opens with the collector off. The figure is the count of a
run doing N opens minus the count of the same run doing none, over N (``PYTHONHASHSEED=0``,
sequential ids: the same count on every run).

Line: ``assign.open_chat.instructions`` (instructions per open), with ``--baseline DIR`` the
same count for the tree in ``DIR`` (its ``src``) as the baseline, measured in the same run
(``ratio`` > 1: fewer instructions here). Needs ``valgrind`` on the PATH.

    python benchmarks/open_instructions.py [--opens 2000] [--baseline /path/to/other/tree]
"""

from __future__ import annotations

import argparse
import gc
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _common import callgrind_count, emit_instructions


def workload(opens: int) -> None:
    """The measured process: set up, one warm-up open, then ``opens`` opens."""
    from chatmgmt import Agent, AgentStatus, ChatManager, CustomerInfo
    from chatmgmt.testing import ManualClock, sequential_ids

    clock = ManualClock(1000.0)
    manager = ChatManager(None, clock=clock, rng=random.Random(1), ids=sequential_ids())
    for i in range(1000):
        agent = Agent(
            f"a{i}",
            skill_groups={"g"},
            reception_limit=1_000_000,
            account_order=i,
            status=AgentStatus.ONLINE,
        )
        manager.register_agent(agent)
    infos = [
        CustomerInfo(partner_id=f"u{i}", name=f"Customer {i}", channel="web")
        for i in range(opens + 1)
    ]
    manager.open_chat(infos[-1], skill_group="g")
    gc.collect()
    gc.disable()
    for info in infos[:opens]:
        clock.advance(0.001)
        manager.open_chat(info, skill_group="g")


def count(src: Path, opens: int) -> int:
    """Instructions of one run of :func:`workload` over the package in ``src``."""
    return callgrind_count(__file__, ["--workload", str(opens)], src)


def per_open(src: Path, opens: int) -> float:
    return (count(src, opens) - count(src, 0)) / opens


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--opens", type=int, default=2000)
    parser.add_argument("--baseline", type=Path, help="another tree: its src is the baseline")
    parser.add_argument("--workload", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.workload is not None:
        workload(args.workload)
        return
    emit_instructions(
        "assign.open_chat.instructions",
        "instructions/open",
        lambda src: per_open(src, args.opens),
        args.baseline,
    )


if __name__ == "__main__":
    main()
