"""Satisfaction benchmark: what the rating invitation's extras cost at chat end.

Setup, through the public API on the in-memory default: 20 agents, chats opened for distinct
customers (CRM auto-save on), the agent replies, then ``end_chat`` is timed alone. Each round
times ours and its baseline on fresh managers built the same way, alternating; the figure is
the median over the rounds of µs per ``end_chat``.

Lines (JSON, one per figure):
- ``satisfaction.end_chat.invite_prompt``: the end stores the invitation's system message after
  the end prompt (``invite_prompt`` set, the default); baseline the same end with
  ``invite_prompt: ""`` (the end prompt and the invitation, no second message — what an end
  did before the prompt was sent at chat end). ``ratio`` < 1: the extra message's cost.
- ``satisfaction.end_chat.min_interval``: ``min_interval_s`` set (the customer's record read
  and compare-and-set before the end's unit); baseline the same end without it.
- ``satisfaction.end_chat.reminder``: ``reminder_after_s`` set (one more timer in the unit);
  baseline without it.
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

from chatmgmt import Agent, AgentStatus, ChatManager, ChatSettings, CustomerInfo, MessageRole
from chatmgmt.testing import ManualClock

CHATS = 2_000
ROUNDS = 7


def _ends_us(satisfaction: dict[str, Any]) -> float:
    """µs per end_chat of CHATS served chats under ``satisfaction``."""
    settings = ChatSettings.from_dict({"satisfaction": satisfaction})
    m = ChatManager(settings=settings, clock=ManualClock(1_000.0), rng=random.Random(3))
    for i in range(20):
        m.register_agent(Agent(f"a{i}", reception_limit=200, status=AgentStatus.ONLINE))
    ids = []
    for i in range(CHATS):
        chat = m.open_chat(CustomerInfo(partner_id=f"u{i}"))
        m.send_message(chat.id, "Hello", role=MessageRole.AGENT, sender=chat.agent_id or "")
        ids.append(chat.id)
    t0 = time.perf_counter()
    for chat_id in ids:
        m.end_chat(chat_id)
    return (time.perf_counter() - t0) / CHATS * 1e6


def compare(name: str, ours: dict[str, Any], baseline: dict[str, Any]) -> None:
    mine: list[float] = []
    base: list[float] = []
    for k in range(ROUNDS):
        if k % 2:
            mine.append(_ends_us(ours))
            base.append(_ends_us(baseline))
        else:
            base.append(_ends_us(baseline))
            mine.append(_ends_us(ours))
    value, reference = statistics.median(mine), statistics.median(base)
    emit(name, value, "us", reference, reference / value)


def main() -> None:
    compare("satisfaction.end_chat.invite_prompt", {}, {"invite_prompt": ""})
    compare("satisfaction.end_chat.min_interval", {"min_interval_s": 3600}, {})
    compare("satisfaction.end_chat.reminder", {"reminder_after_s": 600}, {})


if __name__ == "__main__":
    main()
