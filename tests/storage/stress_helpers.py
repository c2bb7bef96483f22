"""Worker processes and invariant checks for the storage stress and crash tests."""

from __future__ import annotations

import contextlib
import os
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from chatmgmt import ChatManager
from chatmgmt.errors import ChatMgmtError
from chatmgmt.model import Agent, AgentId, AgentStatus, ChatState, CustomerInfo, EndReason, Event
from chatmgmt.ports import Storage

GROUPS = ("sales", "support", "billing", "vip")


def stress_size(default: int) -> int:
    """Opens per process: ``CHATMGMT_STRESS_OPENS`` (the issue's full size is 5000)."""
    return int(os.environ.get("CHATMGMT_STRESS_OPENS", default))


def register_agents(storage: Storage, count: int, seed: int = 1) -> None:
    """``count`` ONLINE agents spread over the groups, limits 1..3."""
    rng = random.Random(seed)
    manager = ChatManager(storage=storage, rng=random.Random(seed))
    for i in range(count):
        groups = {GROUPS[i % len(GROUPS)], GROUPS[(i * 7 + 1) % len(GROUPS)]}
        manager.register_agent(
            Agent(
                AgentId(f"agent-{i:03d}"),
                skill_groups=frozenset(groups),
                reception_limit=rng.randint(1, 3),
                account_order=i,
                status=AgentStatus.ONLINE,
            ),
            now=0.0,
        )


def open_end_worker(
    factory: Callable[[], Storage], index: int, opens: int, keep_open: int, results: Any
) -> None:
    """Open ``opens`` chats (random groups) and end them, keeping ``keep_open`` open at once."""
    storage = factory()
    rng = random.Random(1000 + index)
    manager = ChatManager(storage=storage, rng=random.Random(index))
    created: list[str] = []
    errors: list[str] = []
    pending: deque[str] = deque()
    try:
        for i in range(opens):
            chat = manager.open_chat(
                CustomerInfo(channel="web"),
                skill_group=rng.choice(GROUPS),
                chat_id=f"w{index}-{i}",
            )
            created.append(chat.id)
            pending.append(chat.id)
            while len(pending) > keep_open:
                victim = pending.popleft() if rng.random() < 0.8 else pending.pop()
                try:
                    manager.end_chat(victim, reason=EndReason.SYSTEM)
                except ChatMgmtError as exc:
                    errors.append(repr(exc))
        while pending:
            manager.end_chat(pending.popleft(), reason=EndReason.SYSTEM)
    except BaseException as exc:
        errors.append(repr(exc))
    results.put((index, created, errors))


def crash_worker(factory: Callable[[], Storage], round_: int, started: Any) -> None:
    """Open and end chats until killed (the kill -9 test); signals once it is running."""
    storage = factory()
    rng = random.Random(round_)
    manager = ChatManager(storage=storage, rng=random.Random(round_ * 7919))
    pending: deque[str] = deque()
    i = 0
    while True:
        chat = manager.open_chat(
            CustomerInfo(channel="web"), skill_group=rng.choice(GROUPS), chat_id=f"r{round_}-{i}"
        )
        pending.append(chat.id)
        if i == 5:
            started.set()
        i += 1
        if len(pending) > 20:
            with contextlib.suppress(ChatMgmtError):
                manager.end_chat(pending.popleft(), reason=EndReason.SYSTEM)


class LimitWatcher:
    """A thread polling the agents: nobody may be over the limit at any moment.

    It also counts chats whose slot two agents hold at one instant: that happens by design
    while two workers race to assign one queued chat (each claims a slot first; the loser of
    the chat's compare-and-set releases its slot), so it is a transient, not a violation; the
    final check requires that no chat is held twice.
    """

    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self.violations: list[str] = []
        self.transient_double_holds = 0
        self.polls = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            loads = self.storage.agents.list()
            seen: set[str] = set()
            for load in loads:
                if load.active > load.agent.reception_limit:
                    self.violations.append(f"{load.agent.id} holds {load.active}")
                for chat_id in load.chats | load.inactive:
                    if chat_id in seen:
                        self.transient_double_holds += 1
                    seen.add(chat_id)
            self.polls += 1
            time.sleep(0.005)

    def __enter__(self) -> LimitWatcher:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)


def drain_outbox(storage: Storage) -> list[Event]:
    """Every pending event (claimed with a long lease, not acknowledged)."""
    out: list[Event] = []
    while True:
        batch = storage.outbox.claim("checker", 500, 1e12, 1e6)
        if not batch:
            return out
        out.extend(e.event for e in batch)


def check_invariants(storage: Storage, chat_ids: list[str] | None = None) -> dict[str, int]:
    """No agent over its limit, no chat with two agents, every ACTIVE chat's agent holds its
    slot, every chat's events complete (seq 1..event_seq) and chat.started among them."""
    loads = storage.agents.list()
    holder: dict[str, str] = {}
    for load in loads:
        assert load.active <= load.agent.reception_limit, load
        for chat_id in load.chats | load.inactive:
            assert chat_id not in holder, (chat_id, holder[chat_id], load.agent.id)
            holder[chat_id] = load.agent.id
    chats = storage.chats.list()
    by_id = {c.id: c for c in chats}
    if chat_ids is not None:
        missing = [c for c in chat_ids if c not in by_id]
        assert not missing, f"{len(missing)} chats lost, e.g. {missing[:3]}"
    for chat in chats:
        if chat.state is ChatState.ACTIVE:
            assert chat.agent_id is not None and holder.get(chat.id) == chat.agent_id, chat.id
    events = drain_outbox(storage)
    seqs: dict[str, list[int]] = {}
    started: set[str] = set()
    for event in events:
        if event.chat_id is not None:
            seqs.setdefault(event.chat_id, []).append(event.seq)
            if event.type == "chat.started":
                started.add(event.chat_id)
    for chat in chats:
        got = sorted(seqs.get(chat.id, []))
        assert got == list(range(1, chat.event_seq + 1)), (chat.id, got, chat.event_seq)
        assert chat.id in started, chat.id
    return {"chats": len(chats), "events": len(events), "held": len(holder)}
