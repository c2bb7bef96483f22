"""One replication: the discrete-event loop that drives the real :class:`~chatmgmt.ChatManager`.

Events sit in a ``heapq`` list (chat ends, abandonments, shift changes, agents' answers,
auto-transfer deadlines, the end of a leaving agent's grace time); arrivals are a pre-drawn
sorted list merged with it. A :class:`~chatmgmt.testing.ManualClock` is moved to each event's
time and the manager is called as a host would call it: ``open_chat`` on arrival (with the
customer's VIP level and partner id), ``send_message`` when the agent answers, ``tick`` when an
auto-transfer, a grace time or an offer's expiry is due, ``accept_offer`` /
``decline_offer`` when an agent answers an offer, ``end_chat`` when the handle time has elapsed,
``abandon`` when a queued customer's patience runs out, ``set_agent_status`` at shift changes.
Which agent took which chat — at once, later when a slot frees and the core drains the queue,
after an auto-transfer or a leave-policy move — is read from the ``chat.assigned``,
``chat.transferred`` and ``chat.returned`` events the manager emits to its event sink.
"""

from __future__ import annotations

import heapq
import math
import random

import attrs

from .._clock import ManualClock
from ..assignment._leave import leave_policy, leaves
from ..lifecycle import TimerKind, planned_timers
from ..manager import ChatManager
from ..model import Agent, AgentId, AgentStatus, ChatState, CustomerInfo, Event, MessageRole
from ..settings import ChatSettings, StrategyName
from ..storage.memory import MemoryStorage
from ._policy import Policy, resolve_policy
from ._scenario import Scenario

__all__ = ["Replication", "run_replication"]

_END, _ABANDON, _ONLINE, _OFFLINE, _REPLY, _TICK, _LEAVE, _ACCEPT, _DECLINE = range(9)
_ASSIGNED = "chat.assigned"
_TRANSFERRED = "chat.transferred"
_RETURNED = "chat.returned"
_OFFERED = "chat.offered"
_WITHDRAWN = ("chat.offer_declined", "chat.offer_expired")


class _Sink:
    """The manager's event sink: keeps (chat id, agent id or None, agent released or None,
    how) of every ``chat.assigned``, ``chat.offered``, ``chat.transferred``,
    ``chat.returned`` and withdrawn offer, in commit order (``how``: ``"auto"`` for an
    auto-transfer, ``"offer"`` for an offer made or withdrawn, else ``""``)."""

    def __init__(self) -> None:
        self.moves: list[tuple[str, str | None, str | None, str]] = []

    def emit(self, event: Event) -> None:
        data, cid = event.data, str(event.chat_id)
        if event.type == _ASSIGNED:
            self.moves.append((cid, str(data["agent_id"]), None, ""))
        elif event.type == _OFFERED:
            self.moves.append((cid, str(data["agent_id"]), None, "offer"))
        elif event.type in _WITHDRAWN:
            self.moves.append((cid, None, str(data["agent_id"]), "offer"))
        elif event.type == _TRANSFERRED:
            how = "auto" if data["automatic"] else ""
            self.moves.append((cid, data["agent_id"], data["from_agent_id"], how))
        elif event.type == _RETURNED:
            self.moves.append((cid, None, str(data["from_agent_id"]), ""))


@attrs.frozen
class Replication:
    """The raw outcome of one replication, for your own statistics.

    Per measured customer (arrival in the window): ``groups``, ``waits_s`` (time until an
    agent answered, or until the customer left), ``waited`` (queued at all), ``answered``;
    ``vip`` (a VIP customer), ``returning`` (came back, with a known last agent),
    ``same_agent`` (answered by that last agent), ``transfers`` (automatic transfers of the
    chat), ``moved`` (moves by the leave policy: its agent went offline) and ``rewait_s`` (the
    time such a chat then waited for its next agent, to it or to the end of the run),
    ``declined`` (offers of the chat declined or run out); per agent (in
    scenario order): ``occupancy`` (busy slot-time over slot-time while online, inside the
    window; NaN when never online) and ``chats`` (assignments inside the
    window); ``busy_slot_s`` / ``online_slot_s`` are the two integrals behind ``occupancy``.
    A customer neither answered nor ``abandoned`` was still queued when the run ran out of
    events (no agent left online to take the chat); its wait counts up to ``end_s``.
    """

    groups: tuple[str, ...]
    waits_s: tuple[float, ...]
    waited: tuple[bool, ...]
    answered: tuple[bool, ...]
    abandoned: tuple[bool, ...]
    occupancy: tuple[float, ...]
    chats: tuple[int, ...]
    end_s: float
    busy_slot_s: tuple[float, ...] = ()
    online_slot_s: tuple[float, ...] = ()
    vip: tuple[bool, ...] = ()
    returning: tuple[bool, ...] = ()
    same_agent: tuple[bool, ...] = ()
    transfers: tuple[int, ...] = ()
    moved: tuple[int, ...] = ()
    rewait_s: tuple[float, ...] = ()
    declined: tuple[int, ...] = ()


def _quiet(settings: ChatSettings) -> ChatSettings:
    """The settings a replication ticks with: the simulated customers send no messages and
    their patience is modelled by the simulator, so the inactivity, reminder and queue-wait
    timers stay off (only auto-transfer deadlines, leave grace timers and offer expiries fire)."""
    eoc = attrs.evolve(
        settings.end_of_chat,
        warn_after_s=0.0,
        end_after_s=0.0,
        agent_reminder_s=0.0,
        channels={},
    )
    queue = attrs.evolve(settings.assignment.queue, max_wait_s=0.0)
    assignment = attrs.evolve(settings.assignment, queue=queue)
    return attrs.evolve(settings, end_of_chat=eoc, assignment=assignment)


def run_replication(
    scenario: Scenario,
    policy: Policy = StrategyName.ROUND_ROBIN,
    rng: random.Random | None = None,
) -> Replication:
    """Run one replication of ``scenario`` under ``policy`` with the seeded ``rng``.

    The arrivals (with handle times, patience, VIP levels and returning customers) are drawn
    first from ``rng``; the manager's own randomness (ids, random tie-breaks) comes from a
    generator seeded from it next, and the agents' answer times from a third. So two policies
    run with equally seeded generators serve exactly the same customers (common random
    numbers), which sharpens every comparison.
    """
    rng = rng if rng is not None else random.Random(0)
    manager_rng = random.Random(rng.getrandbits(64))
    arrivals = scenario.generate(rng)
    reply_rng = random.Random(rng.getrandbits(64))
    settings, strategies = resolve_policy(policy, scenario.settings)
    auto_s = settings.assignment.auto_transfer_s
    answers = auto_s > 0 or any(spec.reply is not None for spec in scenario.agents)
    leave = settings.assignment.leave
    leaving = leaves(leave, AgentStatus.OFFLINE)
    offers = settings.assignment.offers
    if auto_s > 0 or leaving or offers.enabled or offers.groups:
        settings = _quiet(settings)
    clock = ManualClock(0.0)
    sink = _Sink()
    manager = ChatManager(
        MemoryStorage(),
        settings,
        clock=clock,
        rng=manager_rng,
        strategies=strategies,
        event_sink=sink,
    )
    w0, w1 = scenario.warmup_s, scenario.duration_s

    specs = scenario.agents
    index = {spec.id: i for i, spec in enumerate(specs)}
    n_agents = len(specs)
    slots = [spec.slots for spec in specs]
    active = [0] * n_agents
    online = [False] * n_agents
    last = [0.0] * n_agents
    busy_area = [0.0] * n_agents
    online_time = [0.0] * n_agents
    chats = [0] * n_agents

    heap: list[tuple[float, int, int, int, int]] = []
    seq = 0

    def push(t: float, kind: int, i: int, gen: int = 0) -> None:
        nonlocal seq
        heapq.heappush(heap, (t, seq, kind, i, gen))
        seq += 1

    for i, spec in enumerate(specs):
        online[i] = spec.online_at(0.0)
        status = AgentStatus.ONLINE if online[i] else AgentStatus.OFFLINE
        manager.register_agent(
            Agent(
                AgentId(spec.id),
                skill_groups=spec.groups,
                reception_limit=spec.slots,
                tier=spec.tier,
                account_order=i,
                status=status,
            ),
            now=0.0,
        )
        for start, end in spec.shifts:
            if start > 0:
                push(start, _ONLINE, i)
            push(end, _OFFLINE, i)

    n = len(arrivals)
    arrival_t = [a.time_s for a in arrivals]
    handle = [a.handle_s for a in arrivals]
    start_t = [math.nan] * n
    left_t = [math.nan] * n
    waited = [False] * n
    abandoned = [False] * n
    agent_of = [-1] * n
    gen_of = [0] * n  # bumped at every move of the chat: stale events are skipped
    transfers = [0] * n
    moved = [0] * n
    offered = [False] * n  # the chat is offered to agent_of[i], not yet accepted
    declined = [0] * n  # offers declined or expired
    moved_at = [math.nan] * n
    rewait = [0.0] * n
    left_handle = list(handle)  # handle time still to go (a chat moved on keeps the rest)
    end_at = [math.nan] * n
    previous = [-1] * n  # the customer's last agent when the chat opened (-1: none)
    served = [-1] * n  # the agent who answered
    last_agent: dict[str, int] = {}  # partner id -> the agent who last served them

    def touch(a: int, t: float) -> None:
        lo = last[a] if last[a] > w0 else w0
        hi = t if t < w1 else w1
        if hi > lo and online[a]:
            online_time[a] += hi - lo
            busy_area[a] += active[a] * (hi - lo)
        last[a] = t

    def release(i: int, now: float) -> None:
        a = agent_of[i]
        touch(a, now)
        active[a] -= 1
        agent_of[i] = -1
        gen_of[i] += 1
        if not math.isnan(end_at[i]):
            left_handle[i] = max(0.0, end_at[i] - now)
            end_at[i] = math.nan

    def finish_at(i: int, t: float) -> None:
        end_at[i] = t
        push(t, _END, i, gen_of[i])

    def hold(i: int, a: int, now: float) -> None:
        """Agent ``a`` holds chat ``i``'s slot (an assignment, or an offer)."""
        if not math.isnan(moved_at[i]):
            rewait[i] += now - moved_at[i]
            moved_at[i] = math.nan
        agent_of[i] = a
        gen_of[i] += 1
        touch(a, now)
        active[a] += 1
        if active[a] > slots[a]:
            raise AssertionError(
                f"agent {specs[a].id} holds {active[a]} chats over its limit {slots[a]}"
            )

    def offer(i: int, a: int, now: float) -> None:
        """Chat ``i`` is offered to ``a``: it answers after its ``offer_reply`` time, or lets
        the offer run out (the core's expiry, through ``tick``)."""
        hold(i, a, now)
        offered[i] = True
        spec = specs[a]
        delay = spec.offer_reply.sample(reply_rng) if spec.offer_reply is not None else 0.0
        declines = spec.decline_share > 0 and reply_rng.random() < spec.decline_share
        expires = manager.get_chat(f"c{i}").offer_expires_at
        if expires is not None and now + delay >= expires:
            push(expires, _TICK, i, gen_of[i])
        else:
            push(now + delay, _DECLINE if declines else _ACCEPT, i, gen_of[i])

    def assign(i: int, a: int, now: float) -> None:
        if offered[i] and agent_of[i] == a:
            offered[i] = False  # the offer was accepted: the slot is held already
        else:
            hold(i, a, now)
        if w0 <= now < w1:
            chats[a] += 1
        if not answers:
            if math.isnan(start_t[i]):
                start_t[i] = now
                served[i] = a
            finish_at(i, now + left_handle[i])
            return
        reply = specs[a].reply
        push(now + (reply.sample(reply_rng) if reply is not None else 0.0), _REPLY, i, gen_of[i])
        if auto_s > 0:
            chat = manager.get_chat(f"c{i}")
            for timer in planned_timers(
                chat, end_of_chat=settings.end_of_chat, assignment=settings.assignment
            ):
                if timer.kind == TimerKind.AUTO_TRANSFER.value:
                    push(timer.due_at, _TICK, i, gen_of[i])

    def take_moves(now: float) -> None:
        while sink.moves:
            cid, to, away, how = sink.moves.pop(0)
            i = int(cid[1:])
            if away is not None:
                release(i, now)
                if how == "auto":
                    transfers[i] += 1
                elif how == "offer":
                    offered[i] = False
                    declined[i] += 1
                else:
                    moved[i] += 1
                    moved_at[i] = now
            if to is not None:
                if how == "offer":
                    offer(i, index[to], now)
                else:
                    assign(i, index[to], now)

    def grace_ticks(a: int, now: float) -> None:
        """The agent left: tick when the grace time of each group it holds chats of ends."""
        groups = {arrivals[i].group for i in range(n) if agent_of[i] == a}
        for due in sorted({now + leave_policy(leave, g).grace_s for g in groups}):
            push(due, _LEAVE, a)

    nxt = 0
    now = 0.0
    take_moves(now)
    while nxt < n or heap:
        if heap and (nxt >= n or heap[0][0] <= arrival_t[nxt]):
            now, _s, kind, i, gen = heapq.heappop(heap)
            clock.set(now)
            if kind == _END:
                if gen == gen_of[i]:
                    a = agent_of[i]
                    release(i, now)
                    left_t[i] = now
                    who = arrivals[i].customer
                    if who is not None:
                        last_agent[who] = a
                    manager.end_chat(f"c{i}", now=now)
            elif kind == _REPLY:
                if gen == gen_of[i]:
                    manager.send_message(
                        f"c{i}", "hello", role=MessageRole.AGENT, sender=specs[agent_of[i]].id
                    )
                    if math.isnan(start_t[i]):
                        start_t[i] = now
                        served[i] = agent_of[i]
                    finish_at(i, now + left_handle[i])
            elif kind == _TICK:
                if gen == gen_of[i]:
                    manager.tick(now)
            elif kind in (_ACCEPT, _DECLINE):
                if gen == gen_of[i] and offered[i]:
                    agent = specs[agent_of[i]].id
                    if kind == _ACCEPT:
                        manager.accept_offer(f"c{i}", agent, now=now)
                    else:
                        manager.decline_offer(f"c{i}", agent, reason="busy", now=now)
            elif kind == _LEAVE:
                if not online[i]:
                    manager.tick(now)
            elif kind == _ABANDON:
                if math.isnan(start_t[i]) and agent_of[i] < 0 and math.isnan(left_t[i]):
                    left_t[i] = now
                    abandoned[i] = True
                    gen_of[i] += 1
                    manager.abandon(f"c{i}", now=now)
            else:
                touch(i, now)
                online[i] = kind == _ONLINE
                status = AgentStatus.ONLINE if online[i] else AgentStatus.OFFLINE
                manager.set_agent_status(specs[i].id, status, now=now)
                if leaving and not online[i]:
                    grace_ticks(i, now)
        else:
            i = nxt
            nxt += 1
            now = arrival_t[i]
            clock.set(now)
            arrival = arrivals[i]
            if arrival.customer is not None:
                previous[i] = last_agent.get(arrival.customer, -1)
            info = CustomerInfo(partner_id=arrival.customer, vip_level=arrival.vip_level)
            chat = manager.open_chat(info, skill_group=arrival.group, chat_id=f"c{i}", now=now)
            if chat.state is not ChatState.ACTIVE:
                waited[i] = True
                if math.isfinite(arrival.patience_s):
                    push(now + arrival.patience_s, _ABANDON, i)
        take_moves(now)

    end = max(now, w1)
    for a in range(n_agents):
        touch(a, end)
    measured = [i for i in range(n) if w0 <= arrival_t[i] < w1]
    answered = [not math.isnan(start_t[i]) for i in measured]
    waits = []
    for i in measured:
        if not math.isnan(start_t[i]):
            waits.append(start_t[i] - arrival_t[i])
        else:  # abandoned, or never answered (no agent left to take it)
            waits.append((left_t[i] if not math.isnan(left_t[i]) else end) - arrival_t[i])
    return Replication(
        tuple(arrivals[i].group for i in measured),
        tuple(waits),
        tuple(waited[i] for i in measured),
        tuple(answered),
        tuple(abandoned[i] for i in measured),
        tuple(
            busy_area[a] / (slots[a] * online_time[a]) if online_time[a] > 0 else math.nan
            for a in range(n_agents)
        ),
        tuple(chats),
        end,
        tuple(busy_area),
        tuple(online_time[a] * slots[a] for a in range(n_agents)),
        tuple(arrivals[i].vip_level > 0 for i in measured),
        tuple(previous[i] >= 0 for i in measured),
        tuple(previous[i] >= 0 and served[i] == previous[i] for i in measured),
        tuple(transfers[i] for i in measured),
        tuple(moved[i] for i in measured),
        tuple(
            rewait[i] + (end - moved_at[i] if not math.isnan(moved_at[i]) else 0.0)
            for i in measured
        ),
        tuple(declined[i] for i in measured),
    )
