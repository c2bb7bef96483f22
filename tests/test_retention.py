"""Retention: chats that are over are purged after ``retention.ended_chats_s``, by hand or from
``tick()``; open chats never; leftovers of a purged chat break nothing; counters are evicted."""

from __future__ import annotations

import asyncio

from chatmgmt import AgentStatus, AsyncChatManager, ChatManager, ChatState, CustomerInfo
from chatmgmt.model import ChatId, EndReason, Timer
from chatmgmt.ports import Change, Claim, QueuePush
from chatmgmt.settings import ChatSettings
from chatmgmt.storage import MemoryStorage
from chatmgmt.testing import make_agent, sequential_ids
from chatmgmt.testing._contracts._support import timer_keys

START = 1_700_000_000.0
DAY = 86_400.0


def _settings(**retention: object) -> ChatSettings:
    return ChatSettings.from_dict({"retention": retention})


def _manager(
    settings: ChatSettings | None = None, storage: MemoryStorage | None = None
) -> ChatManager:
    manager = ChatManager(storage or MemoryStorage(), settings, ids=sequential_ids())
    manager.register_agent(make_agent("ann", limit=100), now=START)
    return manager


def test_default_keeps_thirty_days_then_purges_with_messages() -> None:
    manager = _manager()
    assert manager.settings.retention.ended_chats_s == 30 * DAY
    chat = manager.open_chat(CustomerInfo(partner_id="u1"), now=START)
    manager.send_message(chat.id, "hello", now=START + 1)
    manager.end_chat(chat.id, reason=EndReason.AGENT, by="ann", now=START + 2)
    assert manager.purge(now=START + 2 + 30 * DAY) == 0  # not yet: strictly older
    assert manager.purge(now=START + 3 + 30 * DAY) == 1
    assert manager.list_chats() == []
    assert manager.storage.chats.messages(chat.id) == []


def test_zero_keeps_forever() -> None:
    manager = _manager(_settings(ended_chats_s=0))
    chat = manager.open_chat(CustomerInfo(), now=START)
    manager.end_chat(chat.id, now=START + 1)
    assert manager.purge(now=START + 100 * 365 * DAY) == 0
    assert manager.tick(now=START + 100 * 365 * DAY) == 0
    assert len(manager.list_chats()) == 1


def test_open_chats_and_unanswered_messages_stay_answered_ones_go() -> None:
    manager = _manager(_settings(ended_chats_s=60))
    manager.set_agent_status("ann", AgentStatus.OFFLINE, now=START)
    queued = manager.open_chat(CustomerInfo(), now=START)
    assert queued.state is ChatState.QUEUED
    left = manager.open_chat(CustomerInfo(), now=START)
    left = manager.submit_message(
        left.id, {"message": "call me", "email": "a@example.com"}, now=START + 1
    )
    assert left.state is ChatState.LEFT_MESSAGE
    later = START + 10 * DAY
    assert manager.purge(now=later) == 0
    manager.reply_offline_message(left.id, "ann", "done", now=later)
    assert manager.purge(now=later + 59) == 0
    assert manager.purge(now=later + 61) == 1
    assert [c.id for c in manager.list_chats()] == [queued.id]


def test_tick_purges_a_bounded_batch_when_due() -> None:
    settings = _settings(ended_chats_s=10, purge_batch=3, purge_interval_s=100)
    manager = _manager(settings)
    for _ in range(7):
        chat = manager.open_chat(CustomerInfo(), now=START)
        manager.end_chat(chat.id, now=START + 1)
    assert manager.tick(now=START + 5) == 0
    assert len(manager.list_chats()) == 7  # nothing due: the next purge waits the interval
    manager.tick(now=START + 50)
    assert len(manager.list_chats()) == 7
    manager.tick(now=START + 106)
    assert len(manager.list_chats()) == 4  # a full batch: purge again at the next tick
    manager.tick(now=START + 107)
    assert len(manager.list_chats()) == 1
    manager.tick(now=START + 108)
    assert manager.list_chats() == []


def test_tick_does_not_purge_when_told_not_to() -> None:
    manager = _manager(_settings(ended_chats_s=10, purge_on_tick=False))
    chat = manager.open_chat(CustomerInfo(), now=START)
    manager.end_chat(chat.id, now=START + 1)
    manager.tick(now=START + DAY)
    assert len(manager.list_chats()) == 1
    assert manager.purge(now=START + DAY, limit=0) == 0
    assert manager.purge(now=START + DAY) == 1


def test_leftovers_of_a_purged_chat_break_neither_reconcile_nor_tick() -> None:
    storage = MemoryStorage()
    manager = _manager(_settings(ended_chats_s=10, purge_on_tick=False), storage)
    chat = manager.open_chat(CustomerInfo(), now=START)
    ended = manager.end_chat(chat.id, now=START + 1)
    # a broken adapter (or a hand edit) left index entries naming the ended chat
    timer = Timer(f"{chat.id}:inactivity_end", START + 50, chat.id, "inactivity_end")
    storage.apply(
        Change(
            ChatId(chat.id),
            ended.version,
            START + 2,
            claim=Claim(make_agent("ann").id, force=True),
            push=QueuePush("queue/", 1.0),
            schedule=(timer,),
        )
    )
    assert manager.purge(now=START + 100) == 1
    assert manager.tick(now=START + 100) == 0  # the timer finds no chat and is dropped
    assert len(storage.timers) == 0
    fixed = manager.reconcile(now=START + 101)
    assert fixed["released"] == 1 and fixed["removed"] == 1
    assert manager.agent("ann").chats == frozenset()
    again = manager.open_chat(CustomerInfo(), now=START + 102)
    assert again.state is ChatState.ACTIVE
    manager.end_chat(again.id, now=START + 103)


def test_async_manager_purges() -> None:
    async def scenario() -> int:
        manager = AsyncChatManager(settings=_settings(ended_chats_s=10), ids=sequential_ids())
        await manager.register_agent(make_agent("ann"), now=START)
        chat = await manager.open_chat(CustomerInfo(), now=START)
        await manager.end_chat(chat.id, now=START + 1)
        await manager.tick(now=START + 20)
        return len(await manager.list_chats())

    assert asyncio.run(scenario()) == 0


def test_memory_rate_counters_forget_idle_keys() -> None:
    storage = MemoryStorage()
    counters = storage.counters
    for i in range(1000):
        counters.hit(f"sender{i}", float(i) / 100, 50.0)
    assert len(counters) == 1000  # every key still inside its window
    for i in range(300):
        counters.hit(f"live{i % 3}", 100.0 + i, 5.0)
    assert len(counters) <= 10
    assert counters.hit("live0", 400.0, 5.0) == 2  # its hits in the window: 397 and 400


def _reused_id_timers(second: bool) -> tuple[list[str], list[str]]:
    """A chat ``c1`` queued (no agent online), abandoned and purged; then a new chat opened
    with the same id ``c1`` (assigned by ranking: same version 0 as the purged one had) and
    answered by its agent, by the same manager or (``second``) by another one on the same
    storage. Returns the timers stored for ``c1`` and those of a never-reused id ``c2`` taken
    through the same steps."""
    settings = ChatSettings.from_dict(
        {
            "retention": {"ended_chats_s": 10},
            "assignment": {"auto_transfer_s": 60, "queue": {"max_wait_s": 300}},
        }
    )
    storage = MemoryStorage()
    first = ChatManager(storage, settings, ids=sequential_ids())
    first.register_agent(make_agent("ann", limit=5, status=AgentStatus.OFFLINE), now=START)
    assert first.open_chat(CustomerInfo(), chat_id="c1", now=START).state is ChatState.QUEUED
    first.abandon("c1", now=START + 1)
    assert first.purge(now=START + 20) == 1
    other = ChatManager(storage, settings, ids=sequential_ids()) if second else first
    first.set_agent_status("ann", AgentStatus.ONLINE, now=START + 30)
    keys: list[list[str]] = []
    for cid in ("c1", "c2"):
        opened = other.open_chat(CustomerInfo(), chat_id=cid, now=START + 30)
        assert (opened.state, opened.version) == (ChatState.ACTIVE, 0)
        # the agent answers: no auto-transfer any more (the first manager makes the change)
        first.send_message(cid, "hello", sender="ann", role="agent", now=START + 31)
        keys.append([k for k in timer_keys(storage) if k.startswith(f"{cid}:")])
    return keys[0], keys[1]


def test_a_chat_id_used_again_after_a_purge_gets_its_own_deadlines() -> None:
    # the deadlines a change compares against were cached per (chat id, version): the purged
    # chat's version-0 plan (its queue timeout) was taken for the new chat's version 0, so the
    # answer cancelled the queue timeout it never had and left its auto-transfer stored
    for second in (False, True):
        reused, fresh = _reused_id_timers(second)
        assert "c2:auto_transfer" not in fresh
        assert reused == [k.replace("c2", "c1") for k in fresh], (second, reused, fresh)
