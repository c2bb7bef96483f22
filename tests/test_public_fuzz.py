"""Random input thrown at the public API: only the library's own errors escape.

Random text (lone surrogates, NUL, control and format characters, huge strings), ids, settings
dicts and payloads go to the manager's methods, ``ChatSettings.from_dict``, the webhook signer
and verifier and the sensitive-word filter. What may escape is a
:class:`~chatmgmt.errors.ChatMgmtError`, or a ``TypeError`` when an argument is not of its
documented type; nothing else. After every example the manager still opens and ends a chat.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chatmgmt import AgentStatus, ChatManager, ChatSettings, CustomerInfo
from chatmgmt.errors import ChatMgmtError
from chatmgmt.model import Agent, EndReason, MessageRole
from chatmgmt.moderation import SensitiveWordFilter
from chatmgmt.storage import MemoryStorage
from chatmgmt.testing import make_agent, sequential_ids
from chatmgmt.webhook import Signer, verify

START = 1_700_000_000.0
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

# ----------------------------------------------------------------------------- strategies

_nasty_chars = st.sampled_from(
    ["\x00", "\ud800", "\udfff", "\ufeff", "\u200b", "\u202e", "\n", "\t", "{", "}", ":", "%"]
)
texts = st.one_of(
    st.text(max_size=40),
    st.lists(st.one_of(_nasty_chars, st.characters()), max_size=30).map("".join),
    st.sampled_from(["", " ", "x" * 200_001, "\ud800" * 3, "a\x00b", "\U0010ffff"]),
)
short_texts = st.one_of(
    st.text(max_size=20),
    st.lists(st.one_of(_nasty_chars, st.characters()), max_size=12).map("".join),
)
ids = st.one_of(texts, st.sampled_from(["c1", "ann", "missing", "a:b", "{tag}"]))
wrong = st.one_of(st.none(), st.integers(), st.binary(max_size=8), st.floats(), st.lists(st.none()))
"""Values of the wrong type for a str parameter (a TypeError is allowed for these)."""
json_values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(2**70), max_value=2**70),
        st.floats(),
        texts,
    ),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(texts, inner, max_size=4)),
    max_leaves=12,
)
numbers = st.one_of(st.floats(), st.integers(min_value=-(2**70), max_value=2**70))

_DEFAULTS = ChatSettings().to_dict()


def _paths(tree: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(tree, dict):
        for key, value in tree.items():
            out.extend(_paths(value, (*prefix, key)))
    return out


_SETTING_PATHS = _paths(_DEFAULTS)


@st.composite
def settings_dicts(draw: st.DrawFn) -> Any:
    """The default settings with a few leaves (or sections) replaced by random JSON values,
    or a random JSON value altogether."""
    if draw(st.integers(0, 9)) == 0:
        return draw(json_values)
    data: dict[str, Any] = ChatSettings().to_dict()
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(_SETTING_PATHS))
        node: Any = data
        for key in path[:-1]:
            node = node.get(key) if isinstance(node, dict) else None
        if isinstance(node, dict):  # an earlier replacement may have cut this path
            node[path[-1]] = draw(json_values)
    return data


# ----------------------------------------------------------------------------- the check


def _wrong_type(*args: Any) -> bool:
    return any(not isinstance(a, str) for a in args)


def _only_ours(fn: Callable[[], object], *, type_error: bool = False) -> None:
    """Run ``fn``; a ChatMgmtError (or a TypeError when allowed) is fine, nothing else."""
    try:
        fn()
    except ChatMgmtError:
        pass
    except TypeError:
        if not type_error:
            raise


def _manager() -> ChatManager:
    manager = ChatManager(MemoryStorage(), ids=sequential_ids())
    manager.register_agent(make_agent("ann", limit=50), now=START)
    return manager


def _still_works(manager: ChatManager) -> None:
    """A normal open, message and end still succeed (once ann is online with room again: a
    fuzzed call may legitimately have set her limit to 0)."""
    manager.set_agent_status("ann", AgentStatus.ONLINE, now=START + 10)
    manager.set_reception_limit("ann", 50, now=START + 10)
    chat = manager.open_chat(CustomerInfo(partner_id="ok"), now=START + 10)
    manager.send_message(chat.id, "still here", now=START + 11)
    manager.end_chat(chat.id, reason=EndReason.AGENT, by="ann", now=START + 12)


_FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# ----------------------------------------------------------------------------- the tests


@_FUZZ
@given(
    partner=st.one_of(st.none(), ids, wrong),
    name=st.one_of(texts, wrong),
    channel=st.one_of(ids, wrong),
    group=st.one_of(ids, wrong),
    designated=st.one_of(st.none(), ids),
    chat_id=st.one_of(st.none(), ids),
    signature=st.one_of(st.none(), texts, wrong),
    attributes=st.one_of(st.none(), st.dictionaries(texts, json_values, max_size=3)),
)
def test_open_chat(
    partner: Any,
    name: Any,
    channel: Any,
    group: Any,
    designated: Any,
    chat_id: Any,
    signature: Any,
    attributes: Any,
) -> None:
    manager = _manager()

    def run() -> None:
        customer = CustomerInfo(partner_id=partner, name=name, channel=channel)
        manager.open_chat(
            customer,
            skill_group=group,
            designated_agent=designated,
            chat_id=chat_id,
            identity_signature=signature,
            attributes=attributes,
            now=START,
        )

    wrong_type = _wrong_type(name, channel, group) or not isinstance(partner, (str, type(None)))
    wrong_type |= not isinstance(signature, (str, type(None)))
    _only_ours(run, type_error=wrong_type)
    _still_works(manager)


@_FUZZ
@given(
    calls=st.lists(
        st.tuples(
            st.sampled_from(
                [
                    "send_message",
                    "transfer",
                    "end_chat",
                    "rate",
                    "submit_message",
                    "register_agent",
                    "set_reception_limit",
                    "get_chat",
                    "assign",
                    "reply_offline_message",
                    "invite_rating",
                    "queue_status",
                    "set_inactive",
                    "purge",
                    "accept_offer",
                    "decline_offer",
                    "take_chat",
                ]
            ),
            st.one_of(ids, st.just("<chat>")),
            st.one_of(texts, wrong),
            st.one_of(json_values, numbers),
        ),
        min_size=1,
        max_size=6,
    )
)
def test_manager_calls(calls: list[tuple[str, str, Any, Any]]) -> None:
    manager = _manager()
    chat = manager.open_chat(CustomerInfo(partner_id="p1"), now=START)
    for name, target, text, payload in calls:
        chat_id = chat.id if target == "<chat>" else target
        wrong_type = not isinstance(text, str) or not isinstance(chat_id, str)
        if name in ("rate", "set_reception_limit", "submit_message"):
            wrong_type = True  # payload is any JSON value: a non-int level is a wrong type
        _only_ours(
            functools.partial(_call, manager, name, chat_id, text, payload), type_error=wrong_type
        )
    _still_works(manager)


def _call(manager: ChatManager, name: str, chat_id: Any, text: Any, payload: Any) -> object:
    """One manager call named ``name`` with fuzzed arguments."""
    later = START + 1
    if name == "send_message":
        role = MessageRole.AGENT
        return manager.send_message(chat_id, text, role=role, sender="ann", now=later)
    if name == "transfer":
        return manager.transfer(chat_id, to_agent=text, now=later)
    if name == "end_chat":
        return manager.end_chat(chat_id, by=text, now=later)
    if name == "rate":
        return manager.rate(chat_id, payload, comment=text, now=later)
    if name == "submit_message":
        values = payload if isinstance(payload, dict) else {"message": text}
        return manager.submit_message(chat_id, values, now=later)
    if name == "register_agent":
        return manager.register_agent(Agent(text, reception_limit=3), now=START)
    if name == "set_reception_limit":
        return manager.set_reception_limit("ann", payload, now=START)
    if name == "get_chat":
        return manager.get_chat(chat_id)
    if name == "assign":
        return manager.assign(chat_id, text, now=later)
    if name == "reply_offline_message":
        return manager.reply_offline_message(chat_id, "ann", text, now=later)
    if name == "invite_rating":
        return manager.invite_rating(chat_id, by=text, now=later)
    if name == "queue_status":
        return manager.queue_status(chat_id, now=later)
    if name == "set_inactive":
        return manager.set_inactive(chat_id, now=later)
    if name == "accept_offer":
        return manager.accept_offer(chat_id, text, now=later)
    if name == "decline_offer":
        return manager.decline_offer(chat_id, "ann", reason=text, now=later)
    if name == "take_chat":
        return manager.take_chat(text, chat_id=chat_id if payload else None, now=later)
    assert name == "purge"
    return manager.purge(now=START + 1e9, limit=3)


@_FUZZ
@given(data=settings_dicts())
def test_settings_from_dict(data: Any) -> None:
    try:
        parsed = ChatSettings.from_dict(data)
    except ChatMgmtError:
        _only_ours(lambda: ChatManager(settings=data), type_error=not isinstance(data, dict))
        return
    assert ChatSettings.from_dict(parsed.to_dict()) == parsed
    manager = ChatManager(settings=parsed, ids=sequential_ids())
    manager.register_agent(make_agent("ann", limit=5), now=START)
    chat = manager.open_chat(CustomerInfo(partner_id="ok"), now=START)
    # whatever the settings say (queueing, forms, moderation), the calls end cleanly
    _only_ours(lambda: manager.send_message(chat.id, "hello", now=START + 1))
    _only_ours(lambda: manager.end_chat(chat.id, now=START + 2))
    _only_ours(lambda: manager.tick(now=START + 1e6))


@_FUZZ
@given(
    body=st.one_of(st.binary(max_size=64), texts),
    msg_id=st.one_of(texts, wrong),
    timestamp=st.one_of(st.integers(min_value=-(2**40), max_value=2**40), wrong),
    headers=st.dictionaries(
        st.one_of(st.sampled_from(["webhook-id", "webhook-timestamp", "webhook-signature"]), texts),
        st.one_of(texts, wrong),
        max_size=4,
    ),
    secret=st.one_of(st.just(SECRET), texts, st.lists(texts, max_size=3), wrong),
)
def test_webhook_sign_and_verify(
    body: Any, msg_id: Any, timestamp: Any, headers: Any, secret: Any
) -> None:
    wrong_type = not isinstance(secret, (str, list)) or (
        isinstance(secret, list) and _wrong_type(*secret)
    )
    _only_ours(lambda: verify(body, headers, secret, now=START), type_error=wrong_type)
    signer = Signer(SECRET)
    raw = body if isinstance(body, bytes) else body.encode("utf-8", "surrogatepass")
    bad_args = not isinstance(msg_id, str) or not isinstance(timestamp, int)
    _only_ours(lambda: signer.headers(msg_id, raw, timestamp), type_error=bad_args)
    if not bad_args:
        try:
            signed = signer.headers(msg_id, raw, timestamp)
        except ChatMgmtError:
            return
        now = float(timestamp) if math.isfinite(float(timestamp)) else START
        _only_ours(lambda: verify(raw, signed, SECRET, now=now))


@_FUZZ
@given(
    words=st.lists(
        st.one_of(short_texts, st.just("bad word"), st.just("refund guaranteed")), max_size=5
    ),
    allow=st.lists(short_texts, max_size=3),
    text=texts,
)
def test_moderation_check(words: list[str], allow: list[str], text: str) -> None:
    try:
        word_filter = SensitiveWordFilter(customer=words, agent=words, allow=allow)
    except ChatMgmtError:
        return
    for role in MessageRole:
        _only_ours(lambda role=role: word_filter.check(text, role))  # type: ignore[misc]


@pytest.mark.parametrize("value", ["\ud800", "a\x00b", "x" * 200_001, "\udc80x"])
def test_bad_text_everywhere_is_refused_cleanly(value: str) -> None:
    """The same hostile strings given to each text parameter in turn: a ChatMgmtError or
    success, never a raw UnicodeEncodeError or a crash later (the outbox stays serializable)."""
    manager = _manager()
    chat = manager.open_chat(CustomerInfo(partner_id="p"), now=START)
    _only_ours(lambda: manager.send_message(chat.id, value, now=START + 1))
    _only_ours(lambda: manager.send_message(chat.id, "hi", sender=value, now=START + 1))
    _only_ours(lambda: manager.transfer(chat.id, to_group=value, now=START + 1))
    _only_ours(lambda: manager.end_chat(chat.id, by=value, now=START + 1))
    _only_ours(lambda: manager.decline_offer(chat.id, "ann", reason=value, now=START + 1))
    _only_ours(lambda: manager.take_chat(value, now=START + 1))
    _only_ours(lambda: manager.open_chat(CustomerInfo(partner_id=value), now=START))
    _only_ours(lambda: manager.open_chat(CustomerInfo(), chat_id=value, now=START))
    _only_ours(lambda: manager.open_chat(CustomerInfo(), attributes={value: value}, now=START))
    for event in manager.storage.outbox.events():
        json.dumps(dict(event.data), ensure_ascii=False).encode("utf-8")
    _still_works(manager)
