"""Invariants under concurrency: threads on the sync manager, tasks on the async manager."""

from __future__ import annotations

import asyncio
import random
import threading
from collections import Counter

from assignment.assign_helpers import agent
from chatmgmt import AsyncChatManager, ChatManager, ChatState, CustomerInfo
from chatmgmt.model import AgentId
from chatmgmt.ports import Change, Claim
from chatmgmt.storage import MemoryStorage


def check_invariants(storage: MemoryStorage, opened: int) -> None:
    loads = storage.agents.list()
    holders: Counter[str] = Counter()
    for load in loads:
        assert load.active <= load.agent.reception_limit, load
        holders.update(load.chats)
    assert all(n == 1 for n in holders.values()), "a chat held by two agents"
    chats = storage.chats.list()
    assert len(chats) == opened, "a chat was lost"
    for chat in chats:
        if chat.state is ChatState.ACTIVE:
            assert chat.agent_id is not None and holders[chat.id] == 1
            assert storage.queues.position((chat.queue or "queue/"), chat.id) is None
        else:
            assert holders[chat.id] == 0, f"{chat.state} chat still holds a slot"
        if chat.state is ChatState.QUEUED:
            assert storage.queues.position(chat.queue, chat.id) is not None
    started = Counter(e.chat_id for e in storage.outbox.events() if e.type == "chat.started")
    assert len(started) == opened and set(started.values()) == {1}


def test_threads_open_and_end_chats_without_breaking_invariants() -> None:
    storage = MemoryStorage()
    manager = ChatManager(storage, rng=random.Random(1))
    for i in range(12):
        manager.register_agent(agent(f"a{i}", limit=1 + i % 3, order=i, groups=("g",)))
    over_limit = []
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            for load in storage.agents.list():
                if load.active > load.agent.reception_limit:
                    over_limit.append(load)

    per_thread = 300
    threads_n = 8

    def work(seed: int) -> None:
        rng = random.Random(seed)
        mine: list[str] = []
        for i in range(per_thread):
            chat = manager.open_chat(CustomerInfo(partner_id=f"p{seed}-{i % 7}"), skill_group="g")
            mine.append(chat.id)
            if rng.random() < 0.6 and mine:
                victim = mine.pop(rng.randrange(len(mine)))
                current = manager.get_chat(victim)
                if current.state.is_open:
                    try:
                        if current.state is ChatState.ACTIVE:
                            manager.end_chat(victim)
                        else:
                            manager.abandon(victim)
                    except Exception as exc:  # a concurrent drain may have assigned it
                        assert type(exc).__name__ == "InvalidTransitionError"

    watcher = threading.Thread(target=watch)
    watcher.start()
    workers = [threading.Thread(target=work, args=(s,)) for s in range(threads_n)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    stop.set()
    watcher.join()
    assert not over_limit
    check_invariants(storage, per_thread * threads_n)
    # every free slot is in use while chats still wait: no lost wake-up
    waiting = storage.queues.length("queue/g")
    free = sum(ld.free for ld in storage.agents.list())
    assert waiting == 0 or free == 0


def test_async_tasks_open_and_end_chats_without_breaking_invariants() -> None:
    storage = MemoryStorage()
    manager = AsyncChatManager(storage.aio(), rng=random.Random(2))

    async def main() -> None:
        for i in range(6):
            await manager.register_agent(agent(f"a{i}", limit=2, order=i))

        async def work(seed: int) -> None:
            rng = random.Random(seed)
            for _ in range(150):
                chat = await manager.open_chat(CustomerInfo(partner_id=f"p{seed}"))
                await asyncio.sleep(0)
                if rng.random() < 0.7:
                    current = await manager.get_chat(chat.id)
                    if current.state is ChatState.ACTIVE:
                        await manager.end_chat(chat.id)

        await asyncio.gather(*(work(s) for s in range(10)))

    asyncio.run(main())
    check_invariants(storage, 1500)


def test_reconcile_repairs_indexes_broken_outside_the_unit_of_work() -> None:
    # With every change one unit of work nothing in the library can break a chat's indexes;
    # reconcile() repairs what was broken from outside (here: by hand, as an older release
    # or a host adapter that broke the contract might have left it)
    storage = MemoryStorage()
    manager = ChatManager(storage, rng=random.Random(4))
    manager.register_agent(agent("a", limit=2))
    queued = manager.open_chat(CustomerInfo(partner_id="u"), skill_group="nobody")
    # a slot the chat does not know of
    storage.apply(Change(queued.id, queued.version, 0.0, claim=Claim(AgentId("a"))))
    storage._space.queue_remove(queued.queue, queued.id)  # entry lost
    fixed = manager.reconcile()
    assert (fixed["released"], fixed["claimed"], fixed["requeued"]) == (1, 0, 1)
    assert manager.agent("a").active == 0
    assert manager.queue_status(queued.id) is not None
    assert manager.reconcile() == dict.fromkeys(fixed, 0)  # nothing left to repair
