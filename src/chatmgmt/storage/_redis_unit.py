"""The Redis adapter's operations, first part: the unit of work (``apply``: the plan its one
Lua script runs), customers, chats (reads, purge and the retention index's backfill) and the
namespace's deletion, as generators of Redis commands that the sync and async drivers run (one
copy for both faces). :class:`~chatmgmt.storage._redis_ops._Ops` adds the other ports. Split
from ``storage/redis.py``."""

from __future__ import annotations

from typing import Any

import orjson

from ..errors import ConflictError, NotFoundError
from ..model import AgentId, Chat, ChatState, Customer, Message, Sticky
from ..ports import Applied, Change, Claim, QueueHead, RankedClaim, retention_start
from ._codec import decode, encode
from ._redis_driver import _Call, _Gen, _ScanDelete, _Script
from ._redis_keys import _enc, _exact, _glob_escape, _num, _rid, key_prefix
from ._redis_replies import _census, _head, _load, _refusal, _s


def _claim_terms(plan: dict[str, Any], claim: Claim | RankedClaim) -> dict[str, Any]:
    """The claim's channel and fairness terms in the plan (only those set)."""
    if claim.channel:
        plan["c"] = claim.channel
    if claim.cap > 0:
        plan["cap"] = str(int(claim.cap))
        plan["w"] = _num(claim.window_s)
    if claim.keep_s > 0:
        plan["k"] = _num(claim.keep_s)
    return plan


_plan_json = orjson.dumps
"""A unit's plan as the apply script reads it: compact UTF-8 JSON (orjson: ~0.3 µs per plan,
where the standard library's encoder took ~3.7 µs)."""


def _events(events: Any) -> tuple[str, ...]:
    return tuple(encode(e) for e in events)


class _UnitOps:
    """The unit of work, customers, chats and the namespace's deletion of one namespace, as
    generators of Redis calls (see :class:`~chatmgmt.storage._redis_ops._Ops`)."""

    def __init__(self, namespace: str) -> None:
        self.namespace = namespace
        self.prefix = key_prefix(namespace)
        self.retention_indexed = False

    def key(self, *parts: str) -> str:
        return ":".join((self.prefix, *parts))

    # the unit of work
    def apply(self, change: Change) -> _Gen[Applied]:
        """See :meth:`chatmgmt.ports.Storage.apply` (one Lua script)."""
        change.check()
        chat_id = change.chat_id
        plan: dict[str, Any] = {
            "id": chat_id,
            "now": _exact(change.now),
            "tb": _exact(change.tiebreak),
        }
        if change.expected_version is not None:
            plan["exp"] = str(int(change.expected_version))
        chat = change.chat
        if chat is not None:
            plan["ver"] = str(int(chat.version))
            plan["state"] = ChatState(chat.state).value
            start = retention_start(chat)
            if start is not None:
                plan["ret"] = _exact(start)
        claim = change.claim
        if isinstance(claim, Claim):
            plan["claim"] = _claim_terms({"a": claim.agent_id, "f": claim.force}, claim)
        elif claim is not None:
            terms: dict[str, Any] = {"g": _enc(claim.group), "r": _rid(claim.ranking)}
            if claim.excluded:  # (each part the script decodes costs it ~1k instructions)
                terms["x"] = sorted(claim.excluded)
            if not claim.hold:
                terms["t"] = True
            plan["claim"] = _claim_terms(terms, claim)
        if change.release is not None:
            plan["rel"] = change.release
        if change.inactive is not None:
            aid, flag = change.inactive
            plan["inact"] = [aid, "1" if flag else "0"]
        if change.require_empty is not None:
            plan["empty"] = _enc(change.require_empty)
        if change.remove:
            plan["rm"] = [_enc(q) for q in change.remove]
        if change.push is not None:
            plan["push"] = [_enc(change.push.queue), _exact(change.push.score)]
        if change.cancel:
            plan["cancel"] = list(change.cancel)
        if change.schedule:
            plan["sched"] = [part for t in change.schedule for part in (_exact(t.due_at), t.key)]
        if change.message is not None:
            plan["msg"] = True
        if change.more_messages:
            plan["more"] = str(len(change.more_messages))
        if change.sticky is not None:
            plan["sticky"] = change.sticky.partner_id
        if change.census is not None:
            plan["cen"] = _enc(change.census)
        watch = change.watch
        if watch or change.release is not None:
            plan["hd"] = [_enc(q) for q in watch]
        reply = yield _Script(
            "apply",
            (
                _plan_json(plan),
                "" if chat is None else encode(chat),
                "" if change.message is None else encode(change.message),
                "" if change.sticky is None else encode(change.sticky),
                *(encode(t) for t in change.schedule),
                *(encode(m) for m in change.more_messages),
                *_events(change.events),
            ),
        )
        if int(reply[0]) == 0:
            raise _refusal(
                change, _s(reply[1]), reply[3], _census(reply[6] if len(reply) > 6 else None)
            )
        _, picked, census_raw, heads_raw, released_raw = reply
        census = _census(census_raw)
        heads: tuple[QueueHead, ...] = ()
        if heads_raw is None or heads_raw is False:  # not read
            pass
        elif heads_raw == 0:  # every watched queue is empty
            heads = tuple(QueueHead(q) for q in watch)
        else:
            heads = tuple(_head(q, item) for q, item in zip(watch, heads_raw, strict=True))
        released = None if not released_raw else _load(released_raw)
        agent_id = None
        ranked = None
        if isinstance(claim, Claim):
            agent_id = claim.agent_id
        elif claim is not None:
            agent_id = ranked = AgentId(_s(picked))
        events = change.events
        if ranked is not None or census is not None:
            # the JSON went to the script before the pick: an owned change is bound in place
            chat, events, _ = change.bound(ranked, census, in_place=change.owned)
        return Applied(chat, agent_id, events, census=census, heads=heads, released=released)

    # customers
    def customers_get(self, partner_id: str) -> _Gen[Customer | None]:
        """See :meth:`chatmgmt.ports.CustomerStore.get`."""
        raw = yield _Call(("HGET", self.key("cu"), partner_id))
        return None if raw is None else decode(raw, Customer)

    def customers_create(self, customer: Customer, events: Any = ()) -> _Gen[None]:
        """See :meth:`chatmgmt.ports.CustomerStore.create`."""
        reply = yield _Script(
            "customer_create",
            (customer.partner_id, str(customer.version), encode(customer), *_events(events)),
        )
        if int(reply[0]) == 0:
            raise ConflictError("customer", customer.partner_id, None, int(_s(reply[1])))

    def customers_replace(
        self, customer: Customer, expected_version: int, events: Any = ()
    ) -> _Gen[None]:
        """See :meth:`chatmgmt.ports.CustomerStore.replace`."""
        reply = yield _Script(
            "customer_replace",
            (
                customer.partner_id,
                str(customer.version),
                encode(customer),
                str(int(expected_version)),
                *_events(events),
            ),
        )
        status = int(reply[0])
        if status == -1:
            raise NotFoundError("customer", customer.partner_id)
        if status == 0:
            raise ConflictError(
                "customer", customer.partner_id, expected_version, int(_s(reply[1]))
            )

    # chats
    def chats_get(self, chat_id: str) -> _Gen[Chat | None]:
        """See :meth:`chatmgmt.ports.ChatStore.get`."""
        raw = yield _Call(("HGET", self.key("ch"), chat_id))
        return None if raw is None else decode(raw, Chat)

    def chats_messages(self, chat_id: str) -> _Gen[list[Message]]:
        """See :meth:`chatmgmt.ports.ChatStore.messages`."""
        raw = yield _Call(("LRANGE", self.key("msg", _enc(chat_id)), 0, -1))
        return [decode(r, Message) for r in raw]

    def chats_list(
        self, state: ChatState | None = None, agent_id: str | None = None
    ) -> _Gen[list[Chat]]:
        """See :meth:`chatmgmt.ports.ChatStore.list` (paged reads, in creation order)."""
        index = self.key("chall") if state is None else self.key("chl", ChatState(state).value)
        out: list[Chat] = []
        start = 0
        page = 500
        while True:
            ids = yield _Call(("ZRANGE", index, start, start + page - 1))
            if not ids:
                return out
            raws = yield _Call(("HMGET", self.key("ch"), *ids))
            for raw in raws:
                if raw is None:
                    continue
                chat = decode(raw, Chat)
                if (state is None or chat.state is state) and (
                    agent_id is None or chat.agent_id == agent_id
                ):
                    out.append(chat)
            if len(ids) < page:
                return out
            start += page

    def chats_sticky(self, partner_id: str) -> _Gen[Sticky | None]:
        """See :meth:`chatmgmt.ports.ChatStore.sticky`."""
        raw = yield _Call(("HGET", self.key("st"), partner_id))
        return None if raw is None else decode(raw, Sticky)

    def chats_purge(self, before: float, limit: int) -> _Gen[int]:
        """See :meth:`chatmgmt.ports.ChatStore.purge` (one script; the first call on a
        namespace written before the retention index existed fills the index first)."""
        if limit <= 0:
            return 0
        if not self.retention_indexed:
            indexed = yield _Call(("EXISTS", self.key("retv")))
            if not int(indexed):
                yield from self._backfill_retention()
            self.retention_indexed = True
        reply = yield _Script("chat_purge", (_num(before), str(int(limit))))
        return int(reply)

    def _backfill_retention(self) -> _Gen[None]:
        """Index the chats that are over by their retention start (``ZADD NX``: what
        ``apply`` indexed since stays); the purge script checks every entry again."""
        page = 500
        for state in (ChatState.ENDED, ChatState.ABANDONED, ChatState.LEFT_MESSAGE):
            start = 0
            while True:
                ids = yield _Call(("ZRANGE", self.key("chl", state.value), start, start + page - 1))
                if not ids:
                    break
                raws = yield _Call(("HMGET", self.key("ch"), *ids))
                pairs: list[Any] = []
                for raw in raws:
                    if raw is None:
                        continue
                    chat = decode(raw, Chat)
                    begins = retention_start(chat)
                    if begins is not None:
                        pairs.extend((_num(begins), chat.id))
                if pairs:
                    yield _Call(("ZADD", self.key("ret"), "NX", *pairs))
                if len(ids) < page:
                    break
                start += page
        yield _Call(("SET", self.key("retv"), "1"))

    # maintenance
    def delete_namespace(self) -> _Gen[int]:
        """Delete every key of the namespace; returns how many."""
        return int((yield _ScanDelete(_glob_escape(self.prefix) + ":*")))
