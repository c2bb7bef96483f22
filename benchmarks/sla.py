"""SLA policies benchmark: what the clocks cost on a chat's changes.

Lines (JSON, one per figure):
- ``sla.chat_cycle``: median µs per chat cycle (open, agent reply, customer message, agent
  reply, end: five units of work) on the memory default with an SLA policy covering every chat
  (first response, next response, resolution; no calendar); baseline the same cycles with no
  policy configured, in the same run. ``ratio`` = baseline / value (< 1: the SLA's cost).
- ``sla.chat_cycle.business_hours``: the same with the group on a business calendar (due
  times in business time); same baseline.
"""

from __future__ import annotations

import itertools
import random
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from _common import emit, median_us_per_op

from chatmgmt import Agent, AgentStatus, ChatManager, ChatSettings, CustomerInfo, MessageRole
from chatmgmt.storage import MemoryStorage
from chatmgmt.testing import ManualClock

POLICY = {"name": "std", "first_response_s": 60, "next_response_s": 120, "resolution_s": 1800}
HOURS = {"timezone": "Europe/Berlin", "weekly": {d: ["08:00-20:00"] for d in ("mon", "tue")}}


def _manager(settings: dict[str, Any]) -> ChatManager:
    m = ChatManager(
        MemoryStorage(),
        ChatSettings.from_dict(settings),
        clock=ManualClock(1_765_180_800.0),  # a Monday 08:00 UTC
        rng=random.Random(1),
    )
    for i in range(100):
        m.register_agent(
            Agent(f"a{i}", skill_groups={"g"}, reception_limit=50, status=AgentStatus.ONLINE)
        )
    return m


def _cycles(m: ChatManager) -> Any:
    counter = itertools.count()

    def run(k: int) -> None:
        for _ in range(k):
            chat = m.open_chat(CustomerInfo(f"p{next(counter)}"), skill_group="g")
            agent = chat.agent_id or ""
            m.send_message(chat.id, "hi", role=MessageRole.AGENT, sender=agent)
            m.send_message(chat.id, "q", role=MessageRole.CUSTOMER)
            m.send_message(chat.id, "a", role=MessageRole.AGENT, sender=agent)
            m.end_chat(chat.id)

    return run


def main() -> None:
    ops = 400
    plain = _cycles(_manager({}))
    with_sla = _cycles(_manager({"sla": {"policies": [POLICY]}}))
    business = _cycles(
        _manager({"assignment": {"groups": {"g": {"hours": HOURS}}}, "sla": {"policies": [POLICY]}})
    )
    plain(50), with_sla(50), business(50)  # warm up
    base = median_us_per_op(plain, ops)
    value = median_us_per_op(with_sla, ops)
    emit("sla.chat_cycle", value, "us/cycle", base, base / value)
    value = median_us_per_op(business, ops)
    emit("sla.chat_cycle.business_hours", value, "us/cycle", base, base / value)


if __name__ == "__main__":
    main()
