"""The process hammer and the kill -9 run: workers, a record sampler and the invariants.

Workers are separate processes, each a :class:`~chatmgmt.ChatManager` over its own connection
to one shared store, running a seeded random mix (open, some chats in a bot's stage first,
message, end, abandon, transfer to a group and to an agent, hold and resume, the bot's handoff,
agent offline/online, reception limit 2→1→2, ``tick()`` — which also closes chats left on hold
and hands off bot chats that stayed too long — and a periodic ``reconcile()``; in Always On
Mode, :data:`ALWAYS_ON_SETTINGS`, also reopening ended chats to the pool or the last agent and
customers' messages reopening them). A :class:`Sampler` thread reads the stored **chat
records** (with the agents and the queue entries, in one consistent read) every few
milliseconds and checks them while the workers run; :func:`check_end` checks the full
invariants once they stopped.

Agents and limits. Six agents over two groups (two of them in both). ``a0`` (limit 1), ``a1``,
``a3`` (limit 2) and ``a4`` (limit 1) keep their limits; ``a2`` and ``a5`` are *flexible*:
the workers move their limit between 2 and 1. Lowering a limit takes no chat away from the
agent: the chats it already holds stay with it and it gets no new chat until it is below the
new limit. So a flexible agent may legitimately hold 2 ACTIVE chats while its limit is 1; the
sampler checks flexible agents against the highest limit they have during the run (2) and
fixed agents against their own limit. Once the run is over every agent is set back to limit 2
and ONLINE, a ``reconcile()`` drains the queues, and the end check is exact.

Capacity per channel. Chats are web or WhatsApp; ``a1`` weighs a WhatsApp chat 2 (of its 2
units) and ``a3`` takes at most 1 WhatsApp chat (:data:`CHANNEL_CAPACITY`): the limits are
checked in units and per channel on the records.
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

from chatmgmt import ChatManager
from chatmgmt.assignment import agent_queue, pool_name, queue_name
from chatmgmt.assignment._load import cost, fits
from chatmgmt.errors import ChatMgmtError, PreconditionFailed
from chatmgmt.lifecycle import on_hold, resumed_at
from chatmgmt.model import (
    Agent,
    AgentId,
    AgentLoad,
    AgentStatus,
    Chat,
    ChatId,
    ChatState,
    CustomerInfo,
    EndReason,
    MessageRole,
)
from chatmgmt.ports import Applied, Change, Storage
from chatmgmt.settings import ChatSettings

GROUPS = ("g1", "g2")
AGENTS: dict[str, tuple[frozenset[str], int]] = {
    "a0": (frozenset({"g1"}), 1),
    "a1": (frozenset({"g1"}), 2),
    "a2": (frozenset({"g1", "g2"}), 2),
    "a3": (frozenset({"g1", "g2"}), 2),
    "a4": (frozenset({"g2"}), 1),
    "a5": (frozenset({"g2"}), 2),
}
CHANNEL_CAPACITY: dict[str, dict[str, dict[str, int]]] = {
    "a1": {"channel_weights": {"whatsapp": 2}},
    "a3": {"channel_limits": {"whatsapp": 1}},
}
"""Per-channel capacity of some agents (``Agent`` keyword arguments)."""
CHAT_CHANNELS = ("web", "web", "whatsapp")
FLEXIBLE = ("a2", "a5")
"""Agents whose reception limit the workers move between 2 and 1."""
FINAL_LIMITS = {a: (2 if a in FLEXIBLE else lim) for a, (_g, lim) in AGENTS.items()}
CAPS = {a: (2 if a in FLEXIBLE else lim) for a, (_g, lim) in AGENTS.items()}
"""The most ACTIVE chats an agent may hold at any moment: its limit, or for a flexible agent
the highest limit it has during the run (chats held when a limit is lowered stay)."""

SETTINGS: dict[str, Any] = {
    # short deadlines so that tick() has work: queue timeouts, auto-transfers, inactivity ends,
    # the close of a chat left on hold and the bot stage's handoff limit. Held chats do not
    # count toward the limit (the default), so every hold and resume moves a slot.
    "assignment": {"queue": {"max_wait_s": 1.5, "on_limit": "end"}, "auto_transfer_s": 0.6},
    "end_of_chat": {"warn_after_s": 0.5, "end_after_s": 1.2, "hold_close_after_s": 1.0},
    "bot": {"handoff_after_s": 0.8},
}
ALWAYS_ON_SETTINGS: dict[str, Any] = {
    # Always On: no queue, chats wait unassigned in pools and never time out; ended chats are
    # reopened (to the pool or the last agent) by the workers and by customers' messages
    "reception_mode": "always_on",
    "bot": {"handoff_after_s": 0.8},
}

WAITING = (ChatState.QUEUED, ChatState.UNASSIGNED)


def hammer_ops(default: int) -> int:
    """Operations per worker process: ``CHATMGMT_HAMMER_OPS`` or ``default``."""
    return int(os.environ.get("CHATMGMT_HAMMER_OPS", default))


def queue_of(chat: Chat) -> str | None:
    """The queue or pool ``chat`` waits in (typed field when there is one, else the core's)."""
    typed = getattr(chat, "queue", None)
    if isinstance(typed, str):
        return typed or None
    from chatmgmt._core._base import queue_of as core_queue_of

    return core_queue_of(chat)


def waits_in(chat: Chat) -> str | None:
    """The queue a chat must have exactly one entry in (None: none)."""
    if chat.state in WAITING:
        return queue_of(chat)
    return None


def all_queues() -> list[str]:
    """Every queue name the hammer's chats can wait in."""
    names = [queue_name(""), pool_name("")]
    for g in GROUPS:
        names += [queue_name(g), pool_name(g)]
    names += [agent_queue(a) for a in AGENTS]
    return names


def setup_agents(storage: Storage) -> None:
    """Register the six agents ONLINE with their starting limits."""
    manager = ChatManager(storage=storage, settings=ChatSettings.coerce(SETTINGS))
    for i, (aid, (groups, limit)) in enumerate(AGENTS.items()):
        manager.register_agent(
            Agent(
                AgentId(aid),
                skill_groups=groups,
                reception_limit=limit,
                account_order=i,
                status=AgentStatus.ONLINE,
                **CHANNEL_CAPACITY.get(aid, {}),
            )
        )


def restore_agents(storage: Storage, settings: dict[str, Any] | None = None) -> ChatManager:
    """Every agent ONLINE at its final limit (each change drains), then reconcile + tick."""
    manager = ChatManager(storage=storage, settings=ChatSettings.coerce(settings or SETTINGS))
    for aid in AGENTS:
        manager.set_reception_limit(aid, FINAL_LIMITS[aid])
        manager.set_agent_status(aid, AgentStatus.ONLINE)
    manager.reconcile()
    manager.tick()
    manager.reconcile()
    return manager


# --------------------------------------------------------------------------- workers


class CountingStorage:
    """A storage that counts the refusals of :meth:`Storage.apply` (by reason)."""

    def __init__(self, inner: Storage, refusals: Counter[str]) -> None:
        self._inner = inner
        self._refusals = refusals

    def apply(self, change: Change) -> Applied:
        try:
            return self._inner.apply(change)
        except PreconditionFailed as exc:
            self._refusals[exc.reason] += 1
            raise

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def _log_line(fd: int, line: str) -> None:
    os.write(fd, (line + "\n").encode())


def hammer_worker(
    factory: Callable[[], Storage],
    index: int,
    ops: int,
    seed: int,
    counts: Any,
    log_dir: str,
    settings: dict[str, Any] | None = None,
) -> None:
    """Run ``ops`` operations of the mix (``ops <= 0``: until killed) under ``settings``
    (:data:`SETTINGS` by default; :data:`ALWAYS_ON_SETTINGS` adds reopens to the mix).

    ``counts`` is a shared array of chats opened per worker (chat ids ``w<worker>-<n>``, so a
    worker acts on the others' chats too and a restarted worker continues the numbering).
    Every chat whose ``open_chat`` returned is written to ``<log_dir>/opened-<index>`` before
    anything else happens to it; the tallies go to ``<log_dir>/stats-<index>-<pid>.json``.
    """
    refusals: Counter[str] = Counter()
    storage: Any = CountingStorage(factory(), refusals)
    rng = random.Random(seed)
    settings = settings or SETTINGS
    always_on = settings.get("reception_mode") == "always_on"
    manager = ChatManager(
        storage=storage, settings=ChatSettings.coerce(settings), rng=random.Random(seed + 1)
    )
    tally: Counter[str] = Counter()
    fd = os.open(
        os.path.join(log_dir, f"opened-{index}"), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644
    )
    stats_path = os.path.join(log_dir, f"stats-{index}-{os.getpid()}.json")
    agents = list(AGENTS)
    workers = len(counts)

    def some_chat() -> str | None:
        j = index if rng.random() < 0.7 else rng.randrange(workers)
        n = counts[j]
        if n == 0:
            return None
        return f"w{j}-{rng.randrange(max(0, n - 12), n)}"

    def act_on_chat() -> None:
        """Pick an ACTIVE chat (60 %) or a recent one still open (3 tries), and do what fits
        its state (which may have changed since: the operation then refuses)."""
        if rng.random() < 0.6:
            active = manager.list_chats(state=ChatState.ACTIVE)
            if active:
                pick = rng.choice(active)
                pick_state(pick.id, pick)
                return
        for _ in range(3):
            target = some_chat()
            if target is None:
                return
            chat = manager.get_chat(target)
            if chat.state.is_open or (always_on and chat.state is ChatState.ENDED):
                break
        else:
            return
        pick_state(target, chat)

    def reopen(target: str) -> None:
        """An ended Always On chat: reopened by a person (to the pool or its last agent) or
        by its customer's message."""
        r = rng.random()
        if r < 0.4:
            manager.send_message(target, "one more thing", role=MessageRole.CUSTOMER, sender="x")
            tally["reopen.message"] += 1
            return
        to = "last_agent" if r < 0.7 else "pool"
        chat = manager.reopen(target, to=to, by="admin")
        tally[f"reopen.{to}"] += 1
        tally[f"reopen.{to}.{chat.state.value}"] += 1

    def hold_or_resume(target: str, chat: Chat) -> None:
        if on_hold(chat):
            manager.resume_chat(target, by=str(chat.agent_id))
            tally["resume"] += 1
        else:
            manager.hold_chat(target, by=str(chat.agent_id), reason="checking")
            tally["hold"] += 1

    def pick_state(target: str, chat: Chat) -> None:
        r = rng.random()
        if chat.state is ChatState.ENDED:
            reopen(target)
        elif on_hold(chat) and r < 0.5:
            hold_or_resume(target, chat)
        elif chat.state is ChatState.BOT and r < 0.7:
            manager.handoff(target, reason="human", fields={"w": index}, by="faq-bot")
            tally["handoff"] += 1
        elif r < 0.2:
            role = rng.choice((MessageRole.CUSTOMER, MessageRole.AGENT))
            manager.send_message(target, f"hello {r}", role=role, sender="x")
            tally["message"] += 1
        elif chat.state is not ChatState.ACTIVE:
            if always_on:  # the customer who leaves ends an Always On chat
                manager.end_chat(target, reason=EndReason.CUSTOMER, by="customer")
            else:
                manager.abandon(target)
            tally["abandon"] += 1
        elif r < 0.36:
            hold_or_resume(target, chat)
        elif r < 0.6:
            manager.end_chat(target, reason=EndReason.AGENT)
            tally["end"] += 1
        elif r < 0.85:
            moved = manager.transfer(target, to_group=rng.choice(GROUPS))
            tally["transfer.group"] += 1
            tally[f"transfer.group.{moved.state.value}"] += 1
        else:
            tally["transfer.agent.try"] += 1
            manager.transfer(target, to_agent=rng.choice(agents))
            tally["transfer.agent"] += 1

    def step(i: int) -> None:
        r = rng.random()
        if i % 40 == 39:
            for key, n in manager.reconcile().items():
                tally[f"reconcile.{key}"] += n
            tally["reconcile"] += 1
        elif r < 0.3:
            with counts.get_lock():
                n = counts[index]
                counts[index] = n + 1
            chat_id = f"w{index}-{n}"
            chat = manager.open_chat(
                CustomerInfo(channel=rng.choice(CHAT_CHANNELS), partner_id=f"p{index}-{n % 7}"),
                skill_group=rng.choice(GROUPS),
                chat_id=chat_id,
                bot="faq-bot" if rng.random() < 0.15 else None,
            )
            _log_line(fd, chat_id)
            tally["open"] += 1
            tally[f"open.{chat.state.value}"] += 1
        elif r < 0.72:
            act_on_chat()
        elif r < 0.81:
            aid = rng.choice(agents)
            status = AgentStatus.ONLINE if rng.random() < 0.6 else AgentStatus.OFFLINE
            manager.set_agent_status(aid, status)
            tally[f"status.{status.value}"] += 1
        elif r < 0.86:
            aid = rng.choice(FLEXIBLE)
            limit = rng.choice((1, 2))
            manager.set_reception_limit(aid, limit)
            tally[f"limit.{limit}"] += 1
        else:
            tally["tick.fired"] += manager.tick()
            tally["tick"] += 1

    i = 0
    try:
        while ops <= 0 or i < ops:
            try:
                step(i)
            except ChatMgmtError as exc:
                name = f"error.{type(exc).__name__}"
                tally[name] += 1
                if tally[name] <= 2:
                    tally[f"{name}: {str(exc)[:160]}"] += 1
            i += 1
            if i % 25 == 0:
                _dump(stats_path, tally, refusals, None)
    except BaseException as exc:
        _dump(stats_path, tally, refusals, f"{type(exc).__name__}: {exc}")
        raise
    finally:
        os.close(fd)
    _dump(stats_path, tally, refusals, None, done=True)


def _dump(
    path: str, tally: Counter[str], refusals: Counter[str], crash: str | None, done: bool = False
) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(
            {"tally": tally, "refusals": refusals, "crash": crash, "done": done}, f, default=dict
        )
    os.replace(tmp, path)


def read_stats(log_dir: str) -> tuple[Counter[str], Counter[str], list[str], int]:
    """Summed tallies, summed refusals, crashes and finished workers from the stats files."""
    tally: Counter[str] = Counter()
    refusals: Counter[str] = Counter()
    crashes: list[str] = []
    done = 0
    for name in os.listdir(log_dir):
        if name.startswith("stats-") and name.endswith(".json"):
            with open(os.path.join(log_dir, name)) as f:
                data = json.load(f)
            tally.update(data["tally"])
            refusals.update(data["refusals"])
            if data["crash"]:
                crashes.append(data["crash"])
            done += bool(data["done"])
    return tally, refusals, crashes, done


def read_opened(log_dir: str) -> list[str]:
    """Every chat id a worker saw ``open_chat`` return for."""
    out: list[str] = []
    for name in os.listdir(log_dir):
        if name.startswith("opened-"):
            with open(os.path.join(log_dir, name)) as f:
                out += [line.strip() for line in f if line.strip()]
    return out


# --------------------------------------------------------------------------- snapshots


Snapshot = tuple[list[Chat], list[AgentLoad], dict[str, list[str]]]
"""Chat records, agent loads and queue entries (chat ids in order) read at one instant."""


def memory_snapshot(storage: Storage) -> Snapshot:
    """Chats, agents and the known queues read one after the other (one thread only)."""
    queues = {q: [str(c) for c, _s in storage.queues.peek(q, 1_000_000)] for q in all_queues()}
    return storage.chats.list(), storage.agents.list(), {q: v for q, v in queues.items() if v}


def sqlite_snapshot(storage: Any) -> Snapshot:
    """One read transaction over chats, agents and queue entries."""
    from chatmgmt.storage._codec import decode
    from chatmgmt.storage._sqlite_unit import LOAD_COLUMNS, load_of

    ns = storage.namespace
    with storage.database.read() as conn:
        chats = [
            decode(r[0], Chat)
            for r in conn.execute("SELECT data FROM chats WHERE ns = ? ORDER BY rowid", (ns,))
        ]
        rows = conn.execute(f"SELECT {', '.join(LOAD_COLUMNS)} FROM agents WHERE ns = ?", (ns,))
        loads = [load for load in map(load_of, rows) if load is not None]
        queues: dict[str, list[str]] = {}
        for queue, chat_id in conn.execute(
            "SELECT queue, chat_id FROM queue_entries WHERE ns = ? ORDER BY queue, score, seq",
            (ns,),
        ):
            queues.setdefault(queue, []).append(chat_id)
    return chats, loads, queues


def postgres_snapshot(storage: Any) -> Snapshot:
    """One REPEATABLE READ transaction over chats, agents and queue entries."""
    from chatmgmt.storage._codec import decode

    ns = storage.namespace.encode()
    with storage.database.pool.connection() as conn:
        conn.autocommit = False
        conn.isolation_level = 3  # psycopg.IsolationLevel.REPEATABLE_READ
        try:
            with conn.transaction():
                chats = [
                    decode(r[0], Chat)
                    for r in conn.execute(
                        "SELECT data FROM chatmgmt_chats WHERE ns = %s ORDER BY seq", (ns,)
                    )
                ]
                loads = [
                    decode(r[0], AgentLoad)
                    for r in conn.execute("SELECT data FROM chatmgmt_agents WHERE ns = %s", (ns,))
                ]
                queues: dict[str, list[str]] = {}
                for queue, chat_id in conn.execute(
                    "SELECT queue, chat_id FROM chatmgmt_queue_entries WHERE ns = %s "
                    "ORDER BY queue, score, seq",
                    (ns,),
                ):
                    queues.setdefault(bytes(queue).decode(), []).append(chat_id)
        finally:
            conn.isolation_level = None
            conn.autocommit = True
    return chats, loads, queues


_REDIS_SNAPSHOT = """
local out = {redis.call('HVALS', KEYS[1]), {}, {}}
for _, aenc in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  local akey = ARGV[1] .. ':ag:' .. aenc
  local h = redis.call('HMGET', akey, 'agent', 'last', 'idle', 'tb', 'ver')
  if h[1] then
    out[2][#out[2] + 1] = {h[1], h[2], h[3], h[4], redis.call('SMEMBERS', akey .. ':chats'),
      redis.call('SMEMBERS', akey .. ':inactive'), h[5] or '1',
      redis.call('HGETALL', akey .. ':ch'), redis.call('LRANGE', akey .. ':rec', 0, -1)}
  end
end
for i = 2, #ARGV do
  out[3][#out[3] + 1] = redis.call('ZRANGE', ARGV[1] .. ':q:' .. ARGV[i], 0, -1)
end
return out
"""


def redis_snapshot(storage: Any) -> Snapshot:
    """One Lua script reading the chat hash, every agent and the known queues."""
    from chatmgmt.storage._codec import decode
    from chatmgmt.storage.redis import _enc, _load

    prefix = storage.key_prefix
    names = all_queues()
    reply = storage.client.eval(
        _REDIS_SNAPSHOT,
        2,
        f"{prefix}:ch",
        f"{prefix}:grp:{_enc('')}",
        prefix,
        *(_enc(q) for q in names),
    )
    chats = [decode(raw, Chat) for raw in reply[0]]
    loads = [_load(r) for r in reply[1]]
    queues: dict[str, list[str]] = {}
    for name, members in zip(names, reply[2], strict=True):
        if members:
            # a member is a 20-digit insertion number, then the chat id
            queues[name] = [(m.decode() if isinstance(m, bytes) else m)[20:] for m in members]
    return chats, loads, queues


# --------------------------------------------------------------------------- invariants


def check_snapshot(snapshot: Snapshot, caps: dict[str, int]) -> tuple[list[str], dict[str, int]]:
    """The invariants that hold at every instant; returns (violations, observations).

    * no agent holds more ACTIVE chat records than ``caps`` (in units of its channel weights),
      nor more of a channel than its limit for that channel. Chats on hold do not count (they
      sit in the agent's uncounted chats); a chat that counts again after its hold may take
      the agent over its limit (docs/lifecycle.md, *Limit rule*), so resumed chats are left out
      of this bound: every other counted chat came by a claim below the limit;
    * no chat is held by two agents, and an ACTIVE chat is held by its agent exactly
      (the load counters equal the chat records);
    * every waiting chat has a queue and is in it exactly once; every entry is a waiting chat
      of that queue.
    """
    chats, loads, queues = snapshot
    bad: list[str] = []
    seen: dict[str, str] = {}
    by_id = {c.id: c for c in chats}
    active: dict[str, set[str]] = {}
    for chat in chats:
        if chat.state is ChatState.ACTIVE:
            if chat.agent_id is None:
                bad.append(f"{chat.id} ACTIVE without an agent")
                continue
            active.setdefault(chat.agent_id, set()).add(chat.id)
    at_limit = 0
    for load in loads:
        aid = load.agent.id
        mine = active.get(aid, set())
        # the chats that count and came by a claim below the limit; a chat counted again after
        # a hold (resumed with this agent) may take it over the limit (the limit rule)
        counted = {c for c in mine if c in load.chats and resumed_at(by_id[c]) is None}
        units = cost(load.agent, (by_id[c].channel for c in counted))
        if units > caps.get(aid, load.agent.reception_limit):
            bad.append(f"{aid} holds {len(counted)} ACTIVE chats ({units}): {sorted(counted)}")
        for channel, most in load.agent.channel_limits.items():
            of_channel = sorted(c for c in counted if by_id[c].channel == channel)
            if len(of_channel) > most:
                bad.append(f"{aid} holds {len(of_channel)} ACTIVE {channel} chats: {of_channel}")
        if load.agent.reception_limit and len(mine) >= load.agent.reception_limit:
            at_limit += 1
        held = load.chats | load.inactive
        if held != mine:
            bad.append(f"{aid} holds {sorted(held)} but its ACTIVE chats are {sorted(mine)}")
        for chat_id in held:
            if chat_id in seen:
                bad.append(f"{chat_id} held by {seen[chat_id]} and {aid}")
            seen[chat_id] = aid
    for queue, entries in queues.items():
        dup = [c for c, n in Counter(entries).items() if n > 1]
        if dup:
            bad.append(f"{queue}: entries twice {dup}")
        for entry in entries:
            found = by_id.get(ChatId(entry))
            if found is None or waits_in(found) != queue:
                state = None if found is None else found.state.value
                bad.append(f"{queue}: entry {entry} is not a chat waiting there ({state})")
    for chat in chats:
        if chat.state in WAITING:
            home = waits_in(chat)
            if home is None:
                bad.append(f"{chat.id} {chat.state.value} without a queue")
            elif chat.id not in queues.get(home, ()):
                bad.append(f"{chat.id} {chat.state.value} missing from {home}")
    states = Counter(c.state.value for c in chats)
    held = sum(map(on_hold, chats))
    return bad, {
        "at_limit": at_limit,
        "queued": states["queued"] + states["unassigned"],
        "active": states["active"],
        "held": held,
        "bot": states["bot"],
    }


def check_end(storage: Storage, snapshot: Snapshot, opened: Iterable[str]) -> dict[str, int]:
    """The full invariants once the workers stopped and :func:`restore_agents` ran.

    Everything :func:`check_snapshot` checks with the agents' own limits; every opened chat
    found, in exactly one state (through ``chats.list(state)`` too, so the state indexes agree);
    no waiting chat next to a free eligible agent. Raises AssertionError listing violations.
    """
    chats, loads, _queues = snapshot
    bad, _obs = check_snapshot(snapshot, {ld.agent.id: ld.agent.reception_limit for ld in loads})
    by_id = {c.id: c for c in chats}
    opened = list(opened)
    lost = [c for c in opened if c not in by_id]
    if lost:
        bad.append(f"{len(lost)} opened chats lost, e.g. {lost[:5]}")
    in_state: Counter[str] = Counter()
    for state in ChatState:
        for chat in storage.chats.list(state):
            in_state[chat.id] += 1
            if chat.state is not state:
                bad.append(f"{chat.id} listed as {state.value} but is {chat.state.value}")
    for chat in chats:
        if in_state[chat.id] != 1:
            bad.append(f"{chat.id} found in {in_state[chat.id]} states")
        if storage.chats.get(chat.id) is None:
            bad.append(f"{chat.id} listed but not found")
    for chat in chats:
        if chat.state is not ChatState.QUEUED:
            continue
        for load in loads:
            agent = load.agent
            if (
                agent.status is AgentStatus.ONLINE
                and chat.skill_group in agent.skill_groups
                and agent.id not in chat.excluded
                and fits(load, chat.channel, 0.0)
                and waits_in(chat) == queue_name(chat.skill_group)
            ):
                bad.append(f"{chat.id} waits in {queue_of(chat)} next to free {agent.id}")
    assert not bad, f"{len(bad)} violations:\n" + "\n".join(bad[:30])
    try:  # the library's own checker too, where it exists
        from chatmgmt.testing import check_invariants
    except ImportError:
        pass
    else:
        check_invariants(
            storage,
            opened=opened,
            drained=True,
            queues=all_queues(),
            count_on_hold=False,
            allowance=resumed_allowance(snapshot),
        )
    states = Counter(c.state.value for c in chats)
    return {"chats": len(chats), "opened": len(opened), **states}


def resumed_allowance(snapshot: Snapshot) -> dict[str, int]:
    """Agents holding a chat counted again after its hold: the units they count now (the
    limit rule lets a resume take an agent over its limit; the end check then bounds them by
    what they hold, and :func:`check_snapshot` checks their claimed chats alone)."""
    chats, loads, _queues = snapshot
    by_id = {c.id: c for c in chats}
    out: dict[str, int] = {}
    for load in loads:
        mine = [by_id[c] for c in load.chats if c in by_id]
        if any(resumed_at(c) is not None for c in mine):
            out[load.agent.id] = cost(load.agent, (c.channel for c in mine))
    return out


class Sampler:
    """A thread checking a snapshot of the stored records every few milliseconds.

    Also checks that no chat seen once disappears (ids never go away).
    """

    def __init__(self, snapshot: Callable[[], Snapshot], period_s: float = 0.004) -> None:
        self.snapshot = snapshot
        self.period_s = period_s
        self.violations: list[str] = []
        self.samples = 0
        self.at_limit = 0
        self.queued_seen = 0
        self.held_seen = 0
        self.bot_seen = 0
        self.errors: list[str] = []
        self._ids: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                snap = self.snapshot()
            except Exception as exc:  # a read failing is reported, not a silent pass
                self.errors.append(repr(exc))
                time.sleep(0.05)
                continue
            bad, obs = check_snapshot(snap, CAPS)
            ids = {c.id for c in snap[0]}
            gone = self._ids - ids
            if gone:
                bad.append(f"chats disappeared: {sorted(gone)[:5]}")
            self._ids |= ids
            self.violations.extend(bad[:5])
            self.samples += 1
            self.at_limit += obs["at_limit"]
            self.queued_seen += obs["queued"]
            self.held_seen += obs["held"]
            self.bot_seen += obs["bot"]
            time.sleep(self.period_s)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)
