"""Instructions per ``open_chat`` (or ``end_chat``) on the in-memory default, by callgrind.

Deterministic where wall clock figures are not (two shared cores): valgrind counts the
instructions a process runs, whatever else the machine does. The workload: 1,000 agents in one
group (round robin, no limit reached), customers with a partner id (auto-save on), the default
deadlines, one warm-up open; then N opens with the collector off. The figure is the count of a
run doing N opens minus the count of the same run doing none, over N (``PYTHONHASHSEED=0``,
sequential ids: the same count on every run).

``--end``: the same workload opens N chats with the collector on, then ends them (an agent's
end: the slot released, the agent's queues drained, none waiting) with the collector off; the
figure is the count of that run minus the same run ending none, over N.

Lines: ``assign.open_chat.instructions`` (instructions per open) or, with ``--end``,
``assign.end_chat.instructions`` (per end); with ``--baseline DIR`` the same count for the tree
in ``DIR`` (its ``src``) as the baseline, measured in the same run (``ratio`` > 1: fewer
instructions here). Needs ``valgrind`` on the PATH.

    python benchmarks/open_instructions.py [--opens 2000] [--end] [--baseline /other/tree]
"""

from __future__ import annotations

import argparse
import gc
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _common import callgrind_count, emit_instructions


def workload(opens: int, ends: int | None) -> None:
    """The measured process: set up, one warm-up open, then ``opens`` opens; with ``ends``
    (``--end``), the opens with the collector on, then the first ``ends`` of them ended."""
    from chatmgmt import Agent, AgentStatus, ChatManager, CustomerInfo, EndReason
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
    if ends is None:
        gc.collect()
        gc.disable()
    chats = []
    for info in infos[:opens]:
        clock.advance(0.001)
        chats.append(manager.open_chat(info, skill_group="g").id)
    if ends is None:
        return
    gc.collect()
    gc.disable()
    for chat_id in chats[:ends]:
        clock.advance(0.001)
        manager.end_chat(chat_id, reason=EndReason.AGENT)


def count(src: Path, opens: int, ends: int | None = None) -> int:
    """Instructions of one run of :func:`workload` over the package in ``src``."""
    more = [] if ends is None else ["--ends", str(ends)]
    return callgrind_count(__file__, ["--workload", str(opens), *more], src)


def per_open(src: Path, opens: int) -> float:
    return (count(src, opens) - count(src, 0)) / opens


def per_end(src: Path, ends: int) -> float:
    return (count(src, ends, ends) - count(src, ends, 0)) / ends


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--opens", type=int, default=2000, help="opens (or ends) counted")
    parser.add_argument("--end", action="store_true", help="count end_chat instead")
    parser.add_argument("--baseline", type=Path, help="another tree: its src is the baseline")
    parser.add_argument("--workload", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--ends", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.workload is not None:
        workload(args.workload, args.ends)
        return
    if args.end:
        emit_instructions(
            "assign.end_chat.instructions",
            "instructions/end",
            lambda src: per_end(src, args.opens),
            args.baseline,
        )
        return
    emit_instructions(
        "assign.open_chat.instructions",
        "instructions/open",
        lambda src: per_open(src, args.opens),
        args.baseline,
    )


if __name__ == "__main__":
    main()
