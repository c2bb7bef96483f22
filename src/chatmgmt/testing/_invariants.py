"""The library's invariants, checked on the stored CHAT RECORDS of any sync storage.

The load counters of an agent agree with themselves even when the chats disagree with them, so
every check here starts from the chat records (``chats.list()``) and compares the indexes
(slots, queue entries) against them. Only the ports' read methods are used, so the memory,
SQLite and Redis storages (and a host's own adapter) can all be checked.

:func:`find_violations` returns what is wrong as a list of sentences (empty: all hold);
:func:`check_invariants` raises :class:`AssertionError` listing them. See
``docs/correctness.md`` for what each invariant means and how the suite tests it.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping

from ..assignment import agent_queue, pool_name, queue_name
from ..assignment._load import cost, counts_toward_limit, fits, in_group
from ..assignment._routing import first_arrival
from ..lifecycle._hold import on_hold
from ..model import AgentId, AgentLoad, Chat, ChatId, ChatState
from ..ports import Storage

__all__ = ["channel_allowance", "check_invariants", "find_violations", "held_allowance", "waits_in"]

_WAITING = (ChatState.QUEUED, ChatState.UNASSIGNED)
_PEEK_ALL = 1_000_000


def _submission_pool(group: str) -> str:
    return f"submissions/{group}"


def waits_in(chat: Chat) -> str | None:
    """The queue or pool the stored ``chat`` must have exactly one entry in (None: none).

    A QUEUED or UNASSIGNED chat waits in the queue it names (``chat.queue``; ``""`` when it
    names none, which is itself a violation); a left message not yet handed to an agent waits in
    ``submissions/<group>``; any other chat waits nowhere.
    """
    if chat.state is ChatState.LEFT_MESSAGE:
        return None if chat.agent_id else _submission_pool(chat.skill_group)
    if chat.state in _WAITING:
        return chat.queue or ""
    return None


def channel_allowance(agent_id: str, channel: str) -> str:
    """The key of ``allowance`` that bounds ``agent_id``'s chats of ``channel`` (agent ids
    never contain NUL)."""
    return f"{agent_id}\x00{channel}"


def held_allowance(storage: Storage) -> dict[str, int]:
    """What every agent holds now, read from the chat records that hold a slot (ACTIVE, and
    OFFERED while the offer runs), as an ``allowance`` for
    :func:`find_violations`: per agent the units of its limit its chats take, and per
    agent and channel (:func:`channel_allowance`) how many chats of that channel it holds.
    With it, "an agent at or over a limit never gains a chat" is what the check says."""
    loads = {ld.agent.id: ld for ld in storage.agents.list()}
    mine: dict[AgentId, list[str]] = {}
    out: dict[str, int] = {}
    for chat in storage.chats.list():
        if not chat.state.holds_slot:
            continue
        aid = chat.agent_id
        load = loads.get(aid) if aid is not None else None
        if aid is None or load is None:
            continue
        mine.setdefault(aid, []).append(chat.channel)
        key = channel_allowance(aid, chat.channel)
        out[key] = out.get(key, 0) + 1
    for aid, channels in mine.items():
        out[aid] = cost(loads[aid].agent, channels)
    return out


def _over_fairness(aid: AgentId, chats: Iterable[Chat], most: int, window_s: float) -> str | None:
    """The fairness violation of ``aid`` in the records: ``most + 1`` assignments (by
    ``assigned_at`` of the chats it has) within less than ``window_s`` seconds."""
    times = sorted(c.assigned_at for c in chats if c.agent_id == aid and c.assigned_at is not None)
    for i in range(len(times) - most):
        if times[i + most] - times[i] < window_s:
            return (
                f"fairness: agent {aid!r} was assigned {most + 1} chats within {window_s} s "
                f"(at {times[i : i + most + 1]})"
            )
    return None


def find_violations(
    storage: Storage,
    *,
    opened: Iterable[str] | None = None,
    drained: bool = False,
    allowance: Mapping[str, int] | None = None,
    count_inactive: bool = True,
    count_on_hold: bool = True,
    off_duty: Iterable[str] = (),
    queues: Iterable[str] = (),
    fairness: tuple[int, float] | None = None,
) -> list[str]:
    """Every invariant the stored records break, as sentences (empty when all hold).

    * **limit**: no agent has more ACTIVE or OFFERED chat records (``agent_id`` = the agent;
      a pending offer holds a slot) than its reception limit, each counted in units of its
      channel weight (``Agent.channel_weights``, default 1), and no more of one channel than
      its limit for that channel (``Agent.channel_limits``). Lowering a limit keeps the chats
      the agent already holds, so an agent may legitimately stay above its new limit until
      chats end; ``allowance`` maps such an agent to the most it may hold (for instance what it
      held before the limit went down: ``{"ann": 3}``), and :func:`channel_allowance` keys
      bound its chats of one channel; the bound is ``max(limit, allowance)``. The interleaving
      explorer sets it step by step to what the agent held before the step
      (:func:`held_allowance`), so "an agent at or over a limit never gains a chat" is what it
      checks. ``count_inactive=False`` (with the setting ``inactive_chats_count=False``):
      inactive chats do not count; ``count_on_hold=False`` (with ``on_hold_chats_count=False``):
      chats on hold do not count;
    * **fairness** (only with ``fairness=(n, window_s)``): no agent has more than ``n`` chat
      records assigned to it (``assigned_at``) within any ``window_s`` seconds. Records keep
      only a chat's last assignment, so this sees the assignments that stuck; pass it when
      only capped routing assigns (an admin's ``assign`` and a transfer to a named agent are
      not capped);
    * **one agent**: no chat id is in two agents' slots;
    * **findable**: every chat of ``opened`` exists; every chat is listed under exactly its
      own state by ``chats.list(state)`` and once by ``chats.list()``;
    * **queued**: every QUEUED or UNASSIGNED chat names its queue and has exactly one entry
      there (and none in another known queue); a left message not yet handed out has one in
      ``submissions/<group>``; every entry of a known queue is a chat that waits there;
    * **counters**: each agent's ``load.chats | load.inactive`` is exactly the set of ACTIVE
      and OFFERED chats with that ``agent_id`` (and no such chat names an unknown agent);
    * **FIFO**: in one queue, among chats of equal priority, no chat is ahead of one that
      first waited for a person before it (``first_arrival``: its creation, its handoff for a
      chat that began in a bot's stage, its last reopening for a reopened Always On chat;
      a chat sent back, moved between queues or put back by ``reconcile()`` keeps that
      place);
    * **drained** (only with ``drained=True``, i.e. once a drain has run): no waiting chat
      has an eligible agent — ONLINE, room for the chat's channel (its weight below the limit,
      below the limit of that channel), not in the chat's ``excluded`` and, with
      ``fairness``, fewer than ``n`` assignment times kept (an agent that may be at the cap
      is not counted as free) — among those
      its queue serves (``agent/<id>``: that agent; ``queue/<g>``, ``pool/<g>``: the agents of
      ``g``, every agent for ``""``); groups in ``off_duty`` are skipped (outside working
      hours nobody is eligible). A custom strategy that may refuse every agent makes this
      check meaningless for its groups: list them in ``off_duty``.

    The queues scanned are derived from the records: those the chats name, ``agent/<id>`` of
    every agent, ``queue/``, ``pool/`` and ``submissions/`` of every group of the agents and
    chats (and of ``""``), plus ``queues``.
    """
    out: list[str] = []
    loads: dict[AgentId, AgentLoad] = {ld.agent.id: ld for ld in storage.agents.list()}
    chats: dict[ChatId, Chat] = {}
    for chat in storage.chats.list():
        if chat.id in chats:
            out.append(f"findable: chat {chat.id!r} is listed twice by chats.list()")
        chats[chat.id] = chat
    # ---- findable, in exactly one state
    for cid in opened or ():
        if ChatId(cid) not in chats:
            found = storage.chats.get(ChatId(cid))
            where = "" if found is None else f" (get() finds it {found.state.value})"
            out.append(f"findable: opened chat {cid!r} is not listed{where}")
    listed: dict[ChatId, list[ChatState]] = {}
    for state in ChatState:
        for chat in storage.chats.list(state):
            listed.setdefault(chat.id, []).append(state)
    for cid, chat in chats.items():
        states = listed.get(cid, [])
        if states != [chat.state]:
            shown = [s.value for s in states]
            out.append(f"findable: chat {cid!r} is {chat.state.value} but listed under {shown}")
    # ---- slots against records: one agent, counters equal chats, limits
    active: dict[AgentId, set[ChatId]] = {}
    counted: dict[AgentId, set[ChatId]] = {}
    for chat in chats.values():
        if not chat.state.holds_slot:
            continue
        what = chat.state.value.upper()
        if chat.agent_id is None:
            out.append(f"counters: {what} chat {chat.id!r} has no agent")
            continue
        if chat.agent_id not in loads:
            out.append(f"counters: {what} chat {chat.id!r} names unknown agent {chat.agent_id!r}")
        active.setdefault(chat.agent_id, set()).add(chat.id)
        if counts_toward_limit(
            chat.inactive,
            on_hold(chat),
            inactive_count=count_inactive,
            on_hold_count=count_on_hold,
        ):
            counted.setdefault(chat.agent_id, set()).add(chat.id)
    holders: dict[ChatId, list[AgentId]] = {}
    for aid, load in loads.items():
        for cid in load.chats | load.inactive:
            holders.setdefault(cid, []).append(aid)
        held = set(load.chats | load.inactive)
        records = active.get(aid, set())
        if held != records:
            extra = sorted(held - records)
            missing = sorted(records - held)
            out.append(
                f"counters: agent {aid!r} holds slots {sorted(held)} but its ACTIVE or OFFERED "
                f"chats are {sorted(records)} (slot without such a chat: {extra}; such a chat "
                f"without a slot: {missing})"
            )
        limit = load.agent.reception_limit
        allowed = allowance or {}
        bound = max(limit, allowed.get(aid, limit))
        mine = counted.get(aid, set())
        units = cost(load.agent, (chats[c].channel for c in mine))
        if units > bound:
            why = f"its limit {limit}" if bound == limit else f"max(limit {limit}, allowed {bound})"
            size = f"{len(mine)} ACTIVE chats" + (f" ({units} units)" if units != len(mine) else "")
            out.append(
                f"limit: agent {aid!r} has {size} (pending offers included) over {why}: "
                f"{sorted(mine)}"
            )
        for channel, most in load.agent.channel_limits.items():
            of_channel = sorted(c for c in mine if chats[c].channel == channel)
            channel_bound = max(most, allowed.get(channel_allowance(aid, channel), most))
            if len(of_channel) > channel_bound:
                out.append(
                    f"limit: agent {aid!r} has {len(of_channel)} ACTIVE {channel} chats over "
                    f"its {channel} limit {most} (allowed {channel_bound}): {of_channel}"
                )
        if fairness is not None:
            problem = _over_fairness(aid, chats.values(), *fairness)
            if problem:
                out.append(problem)
    for cid, who in holders.items():
        if len(who) > 1:
            out.append(f"one agent: chat {cid!r} is in the slots of {sorted(who)}")
    # ---- queues against records
    names: set[str] = set(queues)
    groups: set[str] = {""}
    for load in loads.values():
        names.add(agent_queue(load.agent.id))
        groups.update(load.agent.skill_groups)
    for chat in chats.values():
        groups.add(chat.skill_group)
        named = waits_in(chat)
        if named:
            names.add(named)
    for group in groups:
        names.update((queue_name(group), pool_name(group), _submission_pool(group)))
    entries: dict[str, list[tuple[ChatId, float]]] = {}
    for name in sorted(names):
        listed_entries = storage.queues.peek(name, _PEEK_ALL)
        if listed_entries:
            entries[name] = listed_entries
        length = storage.queues.length(name)
        if length != len(listed_entries):
            out.append(f"queued: {name!r} has length {length} but {len(listed_entries)} entries")
    seen: dict[ChatId, list[str]] = {}
    for name, rows in entries.items():
        for cid, _score in rows:
            seen.setdefault(cid, []).append(name)
        counts: dict[ChatId, int] = {}
        for cid, _score in rows:
            counts[cid] = counts.get(cid, 0) + 1
        for cid, n in counts.items():
            if n > 1:
                out.append(f"queued: chat {cid!r} has {n} entries in {name!r}")
            entry = chats.get(cid)
            if entry is None:
                out.append(f"queued: {name!r} holds {cid!r}, which does not exist")
            elif waits_in(entry) != name:
                out.append(
                    f"queued: {name!r} holds {cid!r}, which is {entry.state.value} and waits in "
                    f"{waits_in(entry)!r}"
                )
    for chat in chats.values():
        home = waits_in(chat)
        if home is None:
            continue
        if home == "":
            out.append(f"queued: chat {chat.id!r} is {chat.state.value} but names no queue")
            continue
        if storage.queues.position(home, chat.id) is None:
            out.append(
                f"queued: chat {chat.id!r} is {chat.state.value} in {home!r} but has no entry "
                f"there (entries in {sorted(seen.get(chat.id, []))})"
            )
    # ---- FIFO within a priority
    for name, rows in entries.items():
        if name.startswith("submissions/"):
            continue
        by_priority: dict[int, list[Chat]] = {}
        for cid, _score in rows:
            entry = chats.get(cid)
            if entry is not None and waits_in(entry) == name:
                by_priority.setdefault(entry.priority, []).append(entry)
        for priority, line in by_priority.items():
            for ahead, behind in itertools.pairwise(line):
                a_arrived, b_arrived = first_arrival(ahead), first_arrival(behind)
                if b_arrived < a_arrived:
                    out.append(
                        f"FIFO: in {name!r} (priority {priority}) {ahead.id!r} (waiting since "
                        f"{a_arrived}) is ahead of {behind.id!r}, which waited before it "
                        f"(since {b_arrived})"
                    )
    # ---- drained: no waiting chat next to a free eligible agent
    if drained:
        skip = set(off_duty)
        for name, rows in entries.items():
            kind, _, target = name.partition("/")
            if kind not in ("agent", "queue", "pool") or (kind != "agent" and target in skip):
                continue
            for cid, _score in rows:
                waiting = chats.get(cid)
                if waiting is None or waiting.state not in _WAITING or waits_in(waiting) != name:
                    continue
                free = [
                    ld.agent.id
                    for ld in loads.values()
                    if fits(ld, waiting.channel, 0.0)
                    and (fairness is None or len(ld.recent) < fairness[0])
                    and ld.agent.id not in waiting.excluded
                    and (ld.agent.id == target if kind == "agent" else in_group(ld.agent, target))
                ]
                if free:
                    out.append(
                        f"drained: chat {cid!r} waits in {name!r} while {sorted(free)} "
                        "could take it"
                    )
    return out


def check_invariants(
    storage: Storage,
    *,
    opened: Iterable[str] | None = None,
    drained: bool = False,
    allowance: Mapping[str, int] | None = None,
    count_inactive: bool = True,
    count_on_hold: bool = True,
    off_duty: Iterable[str] = (),
    queues: Iterable[str] = (),
    fairness: tuple[int, float] | None = None,
) -> None:
    """Raise :class:`AssertionError` listing every invariant the stored records break.

    The arguments are those of :func:`find_violations`, which returns the list instead.

    >>> from chatmgmt import ChatManager, Agent, AgentStatus, CustomerInfo
    >>> manager = ChatManager()
    >>> _ = manager.register_agent(Agent("ann", status=AgentStatus.ONLINE, reception_limit=1))
    >>> chat = manager.open_chat(CustomerInfo(name="Ada"))
    >>> check_invariants(manager.storage, opened=[chat.id], drained=True)
    """
    found = find_violations(
        storage,
        opened=opened,
        drained=drained,
        allowance=allowance,
        count_inactive=count_inactive,
        count_on_hold=count_on_hold,
        off_duty=off_duty,
        queues=queues,
        fairness=fairness,
    )
    if found:
        raise AssertionError(f"{len(found)} invariant(s) broken:\n  " + "\n  ".join(found))
