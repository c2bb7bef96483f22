"""Capacity per channel and the fairness cap: what they cost an open, end to end.

Lines (JSON, one per figure), each an open-then-end cycle (``ChatManager.open_chat`` and
``end_chat``, memory storage, 1,000 agents of one group, round robin, chats of three channels
in turn):

- ``capacity.channels.open_end.1k``: cycles per second when every agent has channel weights and
  limits (WhatsApp weighs 2, at most 2 WhatsApp chats, 1 voice chat); baseline the same cycles
  without per-channel configuration, in the same run.
- ``capacity.fairness.open_end.1k``: the same with a fairness cap on (100 assignments per agent
  per hour: it never binds here, so the figure is the cost of keeping and counting assignment
  times); baseline without a cap.
- ``capacity.fairness_binding.open_end.20``: a cap that binds (2 assignments per agent per hour,
  20 agents, 400 cycles: after the first 40 every open walks past all 20 agents at the cap and
  the chat waits, then the customer leaves it); baseline the same 20 agents without a cap
  (every open assigned).

Runs alternate between the variant and its baseline (median of 5 runs each), so both see the
same machine load.
"""

from __future__ import annotations

import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from _common import emit

from chatmgmt import Agent, AgentStatus, ChatManager, ChatSettings, CustomerInfo
from chatmgmt.model import AgentId
from chatmgmt.storage import MemoryStorage
from chatmgmt.testing import ManualClock

_CHANNELS = ("web", "whatsapp", "voice")


def _manager(agents: int, channels: bool, cap: int) -> ChatManager:
    settings: dict[str, Any] = {"auto_save": {"enabled": False}}
    if cap:
        settings["assignment"] = {"fairness": {"max_assignments": cap, "window_s": 3600}}
    m = ChatManager(
        MemoryStorage(),
        ChatSettings.from_dict(settings),
        clock=ManualClock(0.0),
        rng=random.Random(1),
    )
    extra: dict[str, Any] = {}
    if channels:
        extra = {
            "channel_weights": {"whatsapp": 2},
            "channel_limits": {"whatsapp": 2, "voice": 1},
        }
    for i in range(agents):
        m.register_agent(
            Agent(
                AgentId(f"a{i}"),
                skill_groups={"g"},
                reception_limit=4,
                account_order=i,
                status=AgentStatus.ONLINE,
                **extra,
            ),
            now=0.0,
        )
    return m


def _cycles_per_s(agents: int, channels: bool, cap: int, cycles: int) -> float:
    m = _manager(agents, channels, cap)
    customers = [CustomerInfo(name=f"c{i}", channel=_CHANNELS[i % 3]) for i in range(cycles)]
    t0 = time.perf_counter()
    for i, customer in enumerate(customers):
        now = 1.0 + i * 0.001
        chat = m.open_chat(customer, skill_group="g", chat_id=f"c{i}", now=now)
        if chat.agent_id is None:
            m.abandon(chat.id, now=now)  # the customer leaves the queue
        else:
            m.end_chat(chat.id, now=now)
    return cycles / (time.perf_counter() - t0)


def _pair(name: str, variant: dict[str, Any], baseline: dict[str, Any], cycles: int) -> None:
    values, bases = [], []
    for _ in range(5):
        values.append(_cycles_per_s(cycles=cycles, **variant))
        bases.append(_cycles_per_s(cycles=cycles, **baseline))
    value, base = statistics.median(values), statistics.median(bases)
    emit(name, value, "cycles/s", base, value / base)


def main() -> None:
    plain = {"agents": 1000, "channels": False, "cap": 0}
    _pair(
        "capacity.channels.open_end.1k",
        {"agents": 1000, "channels": True, "cap": 0},
        plain,
        3000,
    )
    _pair(
        "capacity.fairness.open_end.1k",
        {"agents": 1000, "channels": False, "cap": 100},
        plain,
        3000,
    )
    _pair(
        "capacity.fairness_binding.open_end.20",
        {"agents": 20, "channels": False, "cap": 2},
        {"agents": 20, "channels": False, "cap": 0},
        400,
    )


if __name__ == "__main__":
    main()
