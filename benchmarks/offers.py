"""Offers and pull mode benchmark, each beside its baseline measured in the same run.

Lines (JSON, one per figure):
- ``offers.open_chat``: µs per open that ends in an offer (offers on: the slot claimed, the
  expiry timer scheduled, ``chat.offered``); baseline the same opens with offers off (an
  immediate assignment). ``ratio`` < 1 is what an offer costs over an assignment.
- ``offers.decline``: µs per decline that re-offers to the next agent in one unit (release,
  ranked claim excluding the decliner, then the drain); baseline an automatic-style group
  transfer of an active chat (release plus ranked claim, then the drain) on the same world.
- ``pull.take_chat``: µs per ``take_chat(agent)`` of the next waiting chat (peek, read, one
  unit with a checked claim); baseline an admin ``assign`` of a named chat (read, one unit
  with the same checked claim) on the same world.
"""

from __future__ import annotations

import gc
import random
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from _common import emit, median_us_per_op

from chatmgmt import Agent, AgentStatus, ChatManager, ChatSettings, CustomerInfo
from chatmgmt.testing import ManualClock, sequential_ids

AGENTS = 200
OPS = 400


def _manager(assignment: dict[str, Any]) -> ChatManager:
    settings = ChatSettings.from_dict({"assignment": assignment})
    m = ChatManager(
        None, settings, clock=ManualClock(1.0), rng=random.Random(1), ids=sequential_ids()
    )
    for i in range(AGENTS):
        agent = Agent(
            f"a{i}",
            skill_groups={"g", "p"},
            reception_limit=1000,
            account_order=i,
            status=AgentStatus.ONLINE,
        )
        m.register_agent(agent)
    return m


def _opens(assignment: dict[str, Any]) -> float:
    def run(ops: int) -> None:
        m = _manager(assignment)
        info = CustomerInfo()
        for _ in range(ops):
            m.open_chat(info, skill_group="g")

    return median_us_per_op(run, OPS, repeats=5)


def _declines(offers: bool) -> float:
    def run(ops: int) -> None:
        assignment: dict[str, Any] = {"offers": {"enabled": offers}}
        m = _manager(assignment)
        ids = [m.open_chat(CustomerInfo(), skill_group="g").id for _ in range(ops)]
        gc.collect()
        for cid in ids:
            chat = m.get_chat(cid)
            assert chat.agent_id is not None
            if offers:
                m.decline_offer(cid, chat.agent_id)
            else:
                m.transfer(cid, to_group="g")

    # the opens are timed too, equally in both: the difference is the decline or transfer
    return median_us_per_op(run, OPS, repeats=5)


def _takes(pull: bool) -> float:
    def run(ops: int) -> None:
        m = _manager({"groups": {"p": {"pull": True}}})
        ids = [m.open_chat(CustomerInfo(), skill_group="p").id for _ in range(ops)]
        gc.collect()
        for i, cid in enumerate(ids):
            agent = f"a{i % AGENTS}"
            if pull:
                m.take_chat(agent)
            else:
                m.assign(cid, agent)

    return median_us_per_op(run, OPS, repeats=5)


def main() -> None:
    on = _opens({"offers": {"enabled": True}})
    off = _opens({})
    emit("offers.open_chat", on, "us/open", off, off / on)
    decline = _declines(True)
    transfer = _declines(False)
    emit("offers.decline", decline, "us/open+decline", transfer, transfer / decline)
    take = _takes(True)
    assign = _takes(False)
    emit("pull.take_chat", take, "us/open+take", assign, assign / take)


if __name__ == "__main__":
    main()
