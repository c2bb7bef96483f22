"""The Redis adapter's reply decoding: script and command replies read back into the model
(an agent's load, a census hash, a queue's head, a stored version) and a refused unit of work
into its :class:`~chatmgmt.errors.PreconditionFailed`. Pure functions of the replies (bytes or
text: the client may decode them). Split from ``storage/redis.py``."""

from __future__ import annotations

import json
from typing import Any

import attrs

from ..errors import PreconditionFailed, StorageError
from ..model import Agent, AgentLoad, ChatId
from ..ports import Census, Change, Claim, QueueHead
from ._codec import decode, upgrade_chat
from ._redis_keys import _SEQ_WIDTH


def _s(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8")
    return str(value)


_AGENTS: dict[Any, Agent] = {}
"""Agents decoded from their stored JSON, by that JSON (an agent's configuration changes
rarely, its load on every claim; the frozen value is shared). Emptied when it holds 4,096."""


def _agent(raw: Any) -> Agent:
    agent = _AGENTS.get(raw)
    if agent is None:
        if len(_AGENTS) >= 4096:
            _AGENTS.clear()
        agent = _AGENTS[raw] = decode(raw, Agent)
    return agent


_NONE: frozenset[ChatId] = frozenset()


def _load(reply: Any) -> AgentLoad:
    """An agent's load from a script's ``agent_reply`` (numbers parsed straight from the
    reply's bytes or text: ``float`` and ``int`` read both)."""
    agent_json, last, idle, tb, chats, inactive, version, channels, recent = reply
    pairs = [_s(v) for v in channels] if channels else ()
    return AgentLoad(
        agent=_agent(agent_json),
        chats=frozenset(map(_s, chats)) if chats else _NONE,  # type: ignore[arg-type]
        inactive=frozenset(map(_s, inactive)) if inactive else _NONE,  # type: ignore[arg-type]
        last_assigned_at=float(last),
        idle_since=float(idle),
        tiebreak=float(tb),
        version=int(version),
        channels={ChatId(pairs[i]): pairs[i + 1] for i in range(0, len(pairs), 2)},
        recent=tuple(map(float, recent)),
    )


def _version(raw: Any) -> int | None:
    return None if raw is None or raw is False else int(_s(raw))


_CENSUS_FIELDS = tuple(a.name for a in attrs.fields(Census))


_CENSUS_KEYS: dict[Any, str] = {
    **{f: f for f in _CENSUS_FIELDS},
    **{f.encode(): f for f in _CENSUS_FIELDS},
}
"""A census field's name by its hash field as a reply holds it (bytes, or text when the client
decodes replies)."""


def _census_of(raw: Any) -> Census:
    """A census hash as HGETALL replies it (a flat list, or a dict in RESP3), or as the apply
    script replies it (that list joined by spaces); fields that are no census field are left
    out, missing ones are 0."""
    if not raw:
        return Census()
    if isinstance(raw, (bytes, str)):
        raw = raw.split()
    items = raw.items() if isinstance(raw, dict) else zip(raw[::2], raw[1::2], strict=True)
    counts = {}
    for key, value in items:
        field = _CENSUS_KEYS.get(key)
        if field is not None:
            counts[field] = int(value)
    return Census(**counts)


def _census(raw: Any) -> Census | None:
    """A script's census reply: the hash, or None when it was not read (Lua's false: None in
    RESP2, False in RESP3)."""
    return None if raw is None or raw is False else _census_of(raw)


def _head(queue: str, item: Any) -> QueueHead:
    """A queue's head from a script's ``queue_head`` reply (0: the queue is empty)."""
    if not isinstance(item, list):
        return QueueHead(queue)
    length, first, oldest, raw = item
    since = None
    if raw:
        data = upgrade_chat(json.loads(_s(raw)))
        value = data.get("queued_at")
        if value is None:
            value = data.get("created_at")
        since = None if value is None else float(value)
    return QueueHead(
        queue, int(length), ChatId(_s(first)[_SEQ_WIDTH:]), ChatId(_s(oldest)[_SEQ_WIDTH:]), since
    )


def _refusal(
    change: Change, reason: str, actual: Any, census: Census | None = None
) -> PreconditionFailed:
    chat_id = change.chat_id
    if reason == "exists":
        return PreconditionFailed(reason, chat_id, None, _version(actual))
    if reason in ("missing", "version"):
        return PreconditionFailed(reason, chat_id, change.expected_version, _version(actual))
    if reason == "queue_not_empty":
        return PreconditionFailed(reason, chat_id, queue=change.require_empty)
    claim = change.claim
    if reason == "agent_unavailable" and isinstance(claim, Claim):
        return PreconditionFailed(reason, chat_id, agent_id=claim.agent_id, census=census)
    if reason == "no_agent" and claim is not None and not isinstance(claim, Claim):
        return PreconditionFailed(reason, chat_id, queue=claim.group, census=census)
    raise StorageError(
        f"the apply script refused chat {chat_id!r} for an unknown reason {reason!r}"
    )
