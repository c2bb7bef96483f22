"""The Redis adapter's operations: :class:`_Ops`, every storage operation of one namespace as
a generator of Redis commands, run by the sync and async drivers (one copy for both faces). The
unit of work, customers and chats come from :class:`~chatmgmt.storage._redis_unit._UnitOps`;
agents, queues, the outbox, timers and counters are here. Split from ``storage/redis.py``."""

from __future__ import annotations

from typing import Any

import attrs

from ..errors import ConflictError
from ..model import Agent, AgentLoad, ChatId, Event, Timer
from ..ports import Census, GroupCensus, OutboxEntry, QueueHead
from ._codec import decode, encode
from ._redis_driver import _Call, _Gen, _Script
from ._redis_keys import _SEQ_WIDTH, _STREAM_ID, _enc, _num
from ._redis_replies import _CENSUS_FIELDS, _census_of, _head, _load, _s, _version
from ._redis_unit import _events, _UnitOps


class _Ops(_UnitOps):
    """Every storage operation of one namespace, as a generator of Redis calls.

    Methods are named ``<port>_<method>`` with the port method's parameters and defaults; the
    faces are generated from them (:data:`_PORTS`).
    """

    # agents
    def agents_put(
        self,
        agent: Agent,
        now: float,
        events: Any = (),
        tiebreak: float = 0.0,
        expected_version: int | None = None,
    ) -> _Gen[AgentLoad]:
        """See :meth:`chatmgmt.ports.AgentStore.put` (compare-and-set in the script)."""
        groups = sorted({_enc(g) for g in agent.skill_groups} | {""})
        reply = yield _Script(
            "agent_put",
            (
                _enc(agent.id),
                agent.id,
                encode(agent),
                agent.status.value,
                str(agent.reception_limit),
                str(agent.tier),
                str(agent.account_order),
                _num(now),
                _num(tiebreak),
                "" if expected_version is None else str(int(expected_version)),
                str(len(groups)),
                *groups,
                *_events(events),
            ),
        )
        if int(reply[0]) == 0:
            raise ConflictError("agent", agent.id, expected_version, _version(reply[1]))
        return _load(reply[1])

    def agents_census(self, group: str) -> _Gen[Census]:
        """See :meth:`chatmgmt.ports.AgentStore.census` (one hash read)."""
        raw = yield _Call(("HGETALL", self.key("cen", _enc(group))))
        return _census_of(raw)

    def agents_censuses(self, groups: Any) -> _Gen[list[GroupCensus]]:
        """See :meth:`chatmgmt.ports.AgentStore.censuses` (one script: per group its census
        hash, and ``held`` and ``free`` summed over its agents)."""
        names = list(groups)
        if not names:
            return []
        reply = yield _Script("agent_censuses", tuple(_enc(g) for g in names))
        out = []
        for raw, held, free in reply:
            flat = [_s(v) for v in raw]
            counts = {flat[i]: int(flat[i + 1]) for i in range(0, len(flat), 2)}
            c = Census(**{f: counts.get(f, 0) for f in _CENSUS_FIELDS})
            out.append(GroupCensus(**attrs.asdict(c), held=int(held), free=int(free)))
        return out

    def agents_get(self, agent_id: str) -> _Gen[AgentLoad | None]:
        """See :meth:`chatmgmt.ports.AgentStore.get`."""
        reply = yield _Script("agent_get", (_enc(agent_id),))
        return None if not reply else _load(reply)

    def agents_list(self, group: str | None = None) -> _Gen[list[AgentLoad]]:
        """See :meth:`chatmgmt.ports.AgentStore.list`."""
        reply = yield _Script("agent_list", (_enc(group or ""),))
        loads = [_load(r) for r in reply]
        loads.sort(key=lambda ld: (ld.agent.account_order, ld.agent.id))
        return loads

    # queues
    def queues_peek(self, queue: str, limit: int) -> _Gen[list[tuple[ChatId, float]]]:
        """See :meth:`chatmgmt.ports.QueueStore.peek`."""
        if limit <= 0:
            return []
        raw = yield _Call(("ZRANGE", self.key("q", _enc(queue)), 0, limit - 1, "WITHSCORES"))
        if raw and not isinstance(raw[0], (list, tuple)):  # RESP2 without a response callback
            raw = list(zip(raw[::2], raw[1::2], strict=True))
        return [(ChatId(_s(m)[_SEQ_WIDTH:]), float(_s(score))) for m, score in raw]

    def queues_position(self, queue: str, chat_id: str) -> _Gen[int | None]:
        """See :meth:`chatmgmt.ports.QueueStore.position`."""
        reply = yield _Script("queue_position", (_enc(queue), chat_id))
        return None if reply is None else int(reply)

    def queues_length(self, queue: str) -> _Gen[int]:
        """See :meth:`chatmgmt.ports.QueueStore.length`."""
        reply = yield _Call(("ZCARD", self.key("q", _enc(queue))))
        return int(reply)

    def queues_heads(self, queues: Any) -> _Gen[list[QueueHead]]:
        """See :meth:`chatmgmt.ports.QueueStore.heads` (one script: per queue its length, its
        first member, its oldest, the smallest insertion number, O(length), and that chat's
        record, for when it started waiting)."""
        names = list(queues)
        if not names:
            return []
        reply = yield _Script("queue_heads", tuple(_enc(q) for q in names))
        return [_head(queue, item) for queue, item in zip(names, reply, strict=True)]

    # outbox
    def outbox_append(self, events: Any) -> _Gen[None]:
        """See :meth:`chatmgmt.ports.Outbox.append`."""
        if events:
            yield _Script("outbox_append", _events(events))

    def outbox_claim(
        self, consumer: str, limit: int, now: float, lease_s: float
    ) -> _Gen[list[OutboxEntry]]:
        """See :meth:`chatmgmt.ports.Outbox.claim`."""
        if limit <= 0:
            return []
        reply = yield _Script(
            "outbox_claim", (consumer, str(int(limit)), _num(now), _num(now + lease_s))
        )
        return [OutboxEntry(_s(r[0]), decode(r[1], Event), int(r[2])) for r in reply]

    def outbox_ack(self, entry_ids: Any) -> _Gen[None]:
        """See :meth:`chatmgmt.ports.Outbox.ack`."""
        ids = tuple(e for e in entry_ids if isinstance(e, str) and _STREAM_ID.match(e))
        if ids:
            yield _Script("outbox_ack", ids)

    def outbox_pending(self) -> _Gen[int]:
        """See :meth:`chatmgmt.ports.Outbox.pending`."""
        reply = yield _Call(("XLEN", self.key("ob")))
        return int(reply)

    def outbox_events(self) -> _Gen[list[Event]]:
        """Every unacknowledged event, oldest first (a testing convenience)."""
        raw = yield _Call(("XRANGE", self.key("ob"), "-", "+"))
        return [decode(fields[b"e" if b"e" in fields else "e"], Event) for _id, fields in raw]

    # timers
    def timers_cancel(self, key: str, due_at: float | None = None) -> _Gen[None]:
        """See :meth:`chatmgmt.ports.TimerStore.cancel`."""
        yield _Script("timer_cancel", (key, "" if due_at is None else _num(due_at)))

    def timers_claim_due(self, now: float, limit: int, lease_s: float) -> _Gen[list[Timer]]:
        """See :meth:`chatmgmt.ports.TimerStore.claim_due`."""
        if limit <= 0:
            return []
        reply = yield _Script("timer_claim_due", (_num(now), str(int(limit)), _num(now + lease_s)))
        return [attrs.evolve(decode(r[0], Timer), due_at=float(_s(r[1]))) for r in reply]

    def timers_get(self, key: str) -> _Gen[Timer | None]:
        """The timer with ``key``, or None (a testing convenience)."""
        score = yield _Call(("ZSCORE", self.key("tm", "z"), key))
        if score is None:  # a namespace of data version 3 or older not written since
            member = yield _Call(("HGET", self.key("tm", "m"), key))
            if member is not None:
                score = yield _Call(("ZSCORE", self.key("tm", "z"), member))
        raw = yield _Call(("HGET", self.key("tm", "d"), key))
        if raw is None or score is None:
            return None
        return attrs.evolve(decode(raw, Timer), due_at=float(_s(score)))

    # counters
    def counters_hit(self, key: str, now: float, window_s: float) -> _Gen[int]:
        """See :meth:`chatmgmt.ports.RateCounter.hit`."""
        reply = yield _Script(
            "counter_hit", (_enc(key), _num(now), _num(now - window_s), _num(now + window_s))
        )
        return int(reply)
