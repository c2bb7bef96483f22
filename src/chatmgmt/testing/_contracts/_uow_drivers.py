"""Drivers of the unit-of-work contract: the world a refused change must leave intact, the
change that touches everything, one random step of the concurrent mix, and the pin of the
stored loads to the pure load rules."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import attrs

from ...assignment import LEAST_BUSY, ROUND_ROBIN
from ...assignment._load import (
    claimed,
    fits,
    forced,
    moved_inactive,
    released,
    touched,
    updated_agent,
)
from ...errors import ConflictError, PreconditionFailed
from ...model import (
    Agent,
    AgentId,
    AgentLoad,
    AgentStatus,
    Chat,
    ChatId,
    ChatState,
    EndReason,
    Ranking,
    Sticky,
    Timer,
)
from ...ports import PICKED, Change, Claim, QueuePush, RankedClaim, Storage
from ._support import (
    agent,
    chat,
    check_records,
    create,
    event,
    expected_census,
    expected_pick,
    message,
    nxt,
    open_with,
    refused,
    update,
)

__all__ = ["QUEUE", "Pin", "World", "build_world", "everything", "mixed_step"]

QUEUE = "queue/g"
"""The queue of the world and of the concurrent mix."""


@attrs.frozen
class World:
    """What :func:`build_world` stored, to compare against after a refused change."""

    chat: Chat
    timers: tuple[str, ...]
    events: tuple[str, ...]


def build_world(s: Storage) -> World:
    """ann (limit 1) holds ``c`` (version 1, a message, a timer); bob (limit 1) holds ``b1``;
    cat (limit 2) is free; off is OFFLINE; ``q1`` waits in ``queue/g`` with a timer."""
    s.agents.put(agent("ann", limit=1, order=1), 0.0, [event("w-ann")], 0.5)
    s.agents.put(agent("bob", limit=1, order=2), 0.0, [], 0.5)
    s.agents.put(agent("cat", limit=2, order=3), 0.0, [], 0.5)
    s.agents.put(agent("off", limit=5, status=AgentStatus.OFFLINE), 0.0, [], 0.5)
    c0 = chat("c", state=ChatState.ACTIVE, agent_id=AgentId("ann"), served_by=(AgentId("ann"),))
    s.apply(
        Change(
            c0.id,
            None,
            1.0,
            chat=c0,
            claim=Claim(AgentId("ann")),
            message=message("m1", "c"),
            events=(event("w-c0", "c", 1),),
            tiebreak=0.25,
        )
    )
    c1 = nxt(c0, last_customer_message_at=2.0)
    update(
        s,
        c1,
        now=2.0,
        schedule=(Timer("c/idle", 60.0, "c", "idle", 1, {"agent_id": "ann"}),),
        sticky=Sticky("p-c", AgentId("ann"), 2.0, "closed"),
        events=(event("w-c1", "c", 2),),
    )
    open_with(s, "b1", "bob")
    q1 = chat("q1")
    create(
        s,
        q1,
        push=QueuePush(QUEUE, 5.0),
        schedule=(Timer("q1/wait", 90.0, "q1", "queue_wait"),),
        events=(event("w-q1", "q1", 1),),
    )
    return World(c1, ("c/idle", "q1/wait"), ("evt-w-ann", "evt-w-c0", "evt-w-c1", "evt-w-q1"))


def everything(
    world: World,
    claim: Claim | RankedClaim | None,
    *,
    expected: int | None = 1,
    chat_id: str = "c",
    require_empty: str | None = None,
) -> Change:
    """A change of ``chat_id`` that touches everything: a release of ann, ``claim``, queue
    entries, timers, the chat, a message, a sticky mark and events."""
    base = world.chat if chat_id == "c" else chat(chat_id)
    version = 0 if expected is None else expected + 1
    new = attrs.evolve(
        base,
        id=ChatId(chat_id),
        agent_id=PICKED if isinstance(claim, RankedClaim) else AgentId("cat"),
        served_by=(*base.served_by, PICKED),
        version=version,
    )
    return Change(
        ChatId(chat_id),
        expected,
        50.0,
        chat=new,
        claim=claim,
        release=AgentId("ann"),
        require_empty=require_empty,
        remove=(QUEUE,),
        push=QueuePush("queue/h", 3.0),
        cancel=("c/idle", "q1/wait"),
        schedule=(
            Timer(f"{chat_id}/transfer", 70.0, chat_id, "auto_transfer", 2, {"agent_id": PICKED}),
        ),
        message=message("m-refused", chat_id, "must not be stored", 50.0),
        sticky=Sticky("p-c", AgentId("zed"), 50.0, "offline"),
        events=(event("refused-1", chat_id, 3, agent_id=PICKED), event("refused-2", chat_id, 4)),
        tiebreak=0.875,
    )


def mixed_step(s: Storage, rng: random.Random, cid: ChatId, now: float) -> None:
    """One random operation on chat ``cid`` planned from what the store shows now."""
    current = s.chats.get(cid)
    tb = rng.random()
    op = rng.random()
    if op < 0.1:
        aid = AgentId(f"a{rng.randrange(4)}")
        load = s.agents.get(aid)
        assert load is not None
        status = (
            AgentStatus.ONLINE if load.agent.status is not AgentStatus.ONLINE else AgentStatus.AWAY
        )
        s.agents.put(attrs.evolve(load.agent, status=status), now, expected_version=load.version)
        return
    if current is None or not current.state.is_open:
        new = (
            chat(cid, state=ChatState.ACTIVE, agent_id=PICKED)
            if current is None
            else nxt(current, state=ChatState.ACTIVE, agent_id=PICKED, inactive=False)
        )
        expected = None if current is None else current.version
        try:
            s.apply(
                Change(
                    cid, expected, now, chat=new, claim=RankedClaim("g", LEAST_BUSY), tiebreak=tb
                )
            )
        except PreconditionFailed as exc:
            if exc.reason != "no_agent":
                raise
            queued = attrs.evolve(new, state=ChatState.QUEUED, agent_id=None)
            s.apply(Change(cid, expected, now, chat=queued, push=QueuePush(QUEUE, now)))
        return
    if current.state is ChatState.QUEUED:
        if op < 0.3:  # abandon
            s.apply(
                Change(
                    cid,
                    current.version,
                    now,
                    chat=nxt(current, state=ChatState.ABANDONED),
                    remove=(QUEUE,),
                )
            )
            return
        new = nxt(current, state=ChatState.ACTIVE, agent_id=PICKED)  # drain
        s.apply(
            Change(
                cid,
                current.version,
                now,
                chat=new,
                claim=RankedClaim("g", ROUND_ROBIN),
                remove=(QUEUE,),
                tiebreak=tb,
            )
        )
        return
    holder = current.agent_id
    assert holder is not None
    if op < 0.45:  # end
        s.apply(
            Change(
                cid,
                current.version,
                now,
                chat=nxt(current, state=ChatState.ENDED, end_reason=EndReason.AGENT),
                release=holder,
                tiebreak=tb,
            )
        )
    elif op < 0.65:  # transfer to the group, back to the queue when nobody is free
        new = nxt(current, agent_id=PICKED, inactive=False)
        try:
            s.apply(
                Change(
                    cid,
                    current.version,
                    now,
                    chat=new,
                    release=holder,
                    claim=RankedClaim("g", LEAST_BUSY, frozenset({holder})),
                    tiebreak=tb,
                )
            )
        except PreconditionFailed as exc:
            if exc.reason != "no_agent":
                raise
            back = nxt(current, state=ChatState.QUEUED, agent_id=None, inactive=False)
            s.apply(
                Change(
                    cid,
                    current.version,
                    now,
                    chat=back,
                    release=holder,
                    push=QueuePush(QUEUE, 0.0),
                    tiebreak=tb,
                )
            )
    elif op < 0.8:  # transfer to a named agent
        target = AgentId(f"a{rng.randrange(4)}")
        if target == holder:
            return
        new = nxt(current, agent_id=target, inactive=False)
        s.apply(
            Change(
                cid,
                current.version,
                now,
                chat=new,
                release=holder,
                claim=Claim(target),
                tiebreak=tb,
            )
        )
    elif not current.inactive:  # stops counting (back again only by a transfer or an end)
        s.apply(
            Change(
                cid, current.version, now, chat=nxt(current, inactive=True), inactive=(holder, True)
            )
        )


_CHANNELS = ("web", "whatsapp", "email")
_WEIGHTS: tuple[dict[str, int], ...] = (
    {},
    {},
    {"whatsapp": 2},
    {"whatsapp": 2, "email": 3},
    {"web": 1, "email": 2},
)
_CHANNEL_LIMITS: tuple[dict[str, int], ...] = (
    {},
    {},
    {"whatsapp": 1},
    {"web": 1, "email": 0},
    {"email": 2, "web": 3},
)
_KEEP_S = 4.0  # the longest fairness window of the capacity runs


class Pin:
    """Applies random changes to a storage and the same changes to a pure model of the
    loads (:mod:`chatmgmt.assignment._load`), comparing them after every step.

    ``capacity``: agents get random channel weights and limits, chats random channels, and
    claims random fairness caps (assignment times kept for :data:`_KEEP_S` seconds)."""

    def __init__(
        self,
        s: Storage,
        rng: random.Random,
        rankings: tuple[Ranking, ...],
        capacity: bool = False,
    ) -> None:
        self.s = s
        self.rng = rng
        self.rankings = rankings
        self.capacity = capacity
        self.model: dict[AgentId, AgentLoad] = {}
        self.chats: dict[ChatId, Chat] = {}
        self.held: dict[ChatId, AgentId] = {}
        self.n = 0

    def _terms(self) -> dict[str, Any]:
        """A claim's random channel and fairness terms (none without ``capacity``)."""
        if not self.capacity:
            return {}
        rng = self.rng
        return {
            "channel": rng.choice(_CHANNELS),
            "cap": rng.choice([0, 0, 1, 2, 3]),
            "window_s": rng.choice([1.5, 3.0, _KEEP_S]),
            "keep_s": _KEEP_S,
        }

    def _channels(self, a: Agent) -> Agent:
        if not self.capacity:
            return a
        rng = self.rng
        return attrs.evolve(
            a,
            channel_weights=rng.choice(_WEIGHTS),
            channel_limits=rng.choice(_CHANNEL_LIMITS),
            reception_limit=rng.choice([0, 1, 2, 3, 4, 5]),
        )

    def run(
        self,
        steps: int,
        ops: tuple[str, ...] = ("open", "check", "end", "transfer", "inactive", "agent"),
    ) -> None:
        """Register agents, then apply ``steps`` random changes of the kinds in ``ops``,
        comparing the stored loads and census with the model after each."""
        rng, s = self.rng, self.s
        for i in range(10):
            groups = ["g"] if i % 4 else ["g", "g2"]
            a = agent(
                f"ag-{i:02d}",
                groups=groups,
                limit=rng.choice([0, 1, 1, 2, 3]),
                tier=rng.choice([0, 1, 2]),
                order=rng.choice([0, 1, 2, 3]),
                status=rng.choice([AgentStatus.ONLINE] * 5 + [AgentStatus.AWAY, AgentStatus.BUSY]),
            )
            a = self._channels(a)
            now = rng.choice([0.0, 1.0, 2.0])
            tb = rng.choice([0.25, 0.5, rng.random()])
            self.model[a.id] = updated_agent(None, a, now, tb)
            assert s.agents.put(a, now, [], tb) == self.model[a.id]
        outsider = agent("outsider", groups=["elsewhere"], limit=9)
        self.model[outsider.id] = updated_agent(None, outsider, 0.0, 0.0)
        s.agents.put(outsider, 0.0)
        for step in range(steps):
            op = rng.choice(ops)
            now = float(rng.choice([3, 4, 5, step + 6]))
            tb = rng.choice([0.125, 0.75, rng.random()])
            getattr(self, f"_{op}")(now, tb)
            self.compare(f"step {step} ({op})")
        check_records(s, limits=False)

    def compare(self, where: str) -> None:
        """Assert every stored load and census equals the model's."""
        stored = {ld.agent.id: ld for ld in self.s.agents.list()}
        for aid, load in self.model.items():
            assert stored.get(aid) == load, (where, stored.get(aid), load)
        assert set(stored) == set(self.model), where
        for group in ("g", "g2", ""):
            assert self.s.agents.census(group) == expected_census(self.model.values(), group), (
                where,
                group,
            )

    def _fit(self, terms: dict[str, Any], now: float) -> Callable[[AgentLoad], bool]:
        """Whether a load fits a claim with ``terms`` at ``now`` (the pure rule)."""
        channel = terms.get("channel", "")
        cap, window_s = terms.get("cap", 0), terms.get("window_s", 0.0)
        return lambda load: fits(load, channel, now, cap, window_s)

    def _new_id(self) -> ChatId:
        self.n += 1
        return ChatId(f"pin-{self.n}")

    def _excluded(self) -> frozenset[AgentId]:
        return frozenset(self.rng.sample(sorted(self.model), self.rng.randint(0, 3)))

    def _open(self, now: float, tb: float) -> None:
        cid = self._new_id()
        ranking = self.rng.choice(self.rankings)
        excluded = self._excluded()
        hold = self.rng.random() < 0.85
        state = ChatState.ACTIVE if hold else ChatState.LEFT_MESSAGE
        terms = self._terms()
        channel = terms.get("channel", "web")
        new = chat(cid, state=state, agent_id=PICKED, channel=channel)
        want = expected_pick(
            self.model.values(), "g", ranking, excluded, self._fit(terms, now) if hold else None
        )
        claim = RankedClaim("g", ranking, excluded, hold, **terms)
        change = Change(cid, None, now, chat=new, claim=claim, tiebreak=tb)
        if want is None:
            refused("no_agent", lambda: self.s.apply(change))
            return
        applied = self.s.apply(change)
        assert applied.agent_id == want, (ranking, terms, applied.agent_id, want)
        assert applied.chat is not None and applied.chat.agent_id == want
        if hold:
            self.model[want] = claimed(self.model[want], cid, now, tb, claim.channel, claim.keep_s)
            self.held[cid] = want
        else:
            self.model[want] = touched(self.model[want], now, tb)
        self.chats[cid] = applied.chat

    def _check(self, now: float, tb: float) -> None:
        cid = self._new_id()
        aid = AgentId(self.rng.choice([*sorted(self.model), "ghost"]))
        force = self.rng.random() < 0.2
        terms = self._terms()
        new = chat(cid, state=ChatState.ACTIVE, agent_id=aid, channel=terms.get("channel", "web"))
        claim = Claim(aid, force=force, **terms)
        change = Change(cid, None, now, chat=new, claim=claim, tiebreak=tb)
        load = self.model.get(aid)
        if load is None or not (force or self._fit(terms, now)(load)):
            refused("agent_unavailable", lambda: self.s.apply(change))
            return
        assert self.s.apply(change).agent_id == aid
        if force:
            self.model[aid] = forced(load, cid, now, tb, claim.channel)
        else:
            self.model[aid] = claimed(load, cid, now, tb, claim.channel, claim.keep_s)
        self.held[cid] = aid
        self.chats[cid] = new

    def _end(self, now: float, tb: float) -> None:
        if not self.held:
            return self._open(now, tb)
        cid = self.rng.choice(sorted(self.held))
        aid = self.held.pop(cid)
        new = nxt(self.chats[cid], state=ChatState.ENDED)
        self.s.apply(Change(cid, new.version - 1, now, chat=new, release=aid, tiebreak=tb))
        self.model[aid] = released(self.model[aid], cid, now, tb)
        self.chats[cid] = new

    def _transfer(self, now: float, tb: float) -> None:
        if not self.held:
            return self._open(now, tb)
        cid = self.rng.choice(sorted(self.held))
        old = self.held[cid]
        ranking = self.rng.choice(self.rankings)
        excluded = self._excluded() | {old}
        new = nxt(self.chats[cid], agent_id=PICKED, inactive=False)
        terms = {**self._terms(), "channel": new.channel} if self.capacity else {}
        claim = RankedClaim("g", ranking, excluded, **terms)
        change = Change(
            cid,
            new.version - 1,
            now,
            chat=new,
            release=old,
            claim=claim,
            tiebreak=tb,
        )
        want = expected_pick(self.model.values(), "g", ranking, excluded, self._fit(terms, now))
        if want is None:
            refused("no_agent", lambda: self.s.apply(change))
            return
        applied = self.s.apply(change)
        assert applied.agent_id == want, (ranking, applied.agent_id, want)
        assert applied.chat is not None
        self.model[old] = released(self.model[old], cid, now, tb)
        self.model[want] = claimed(self.model[want], cid, now, tb, claim.channel, claim.keep_s)
        self.held[cid] = want
        self.chats[cid] = applied.chat

    def _inactive(self, now: float, tb: float) -> None:
        if not self.held:
            return self._open(now, tb)
        cid = self.rng.choice(sorted(self.held))
        aid = self.held[cid]
        flag = not self.chats[cid].inactive
        new = nxt(self.chats[cid], inactive=flag)
        self.s.apply(Change(cid, new.version - 1, now, chat=new, inactive=(aid, flag), tiebreak=tb))
        self.model[aid] = moved_inactive(self.model[aid], cid, flag)
        self.chats[cid] = new

    def _agent(self, now: float, tb: float) -> None:
        aid = self.rng.choice(sorted(a for a in self.model if a != "outsider"))
        old = self.model[aid]
        what = self.rng.choice(["status", "status", "limit", "tier", "channels"])
        a: Agent = old.agent
        if what == "channels":
            a = self._channels(a)
        elif what == "status":
            a = attrs.evolve(a, status=self.rng.choice(list(AgentStatus)))
        elif what == "limit":
            a = attrs.evolve(a, reception_limit=self.rng.choice([0, 1, 2, 3, 4]))
        else:
            a = attrs.evolve(a, tier=self.rng.choice([0, 1, 2, 3]))
        stale = old.version - 1
        try:
            self.s.agents.put(a, now, [], tb, expected_version=stale)
        except ConflictError:
            pass
        else:
            raise AssertionError(f"put from stale version {stale} of {aid!r} was not refused")
        self.model[aid] = updated_agent(old, a, now, tb)
        assert self.s.agents.put(a, now, [], tb, expected_version=old.version) == self.model[aid]
