"""The storage codec (``storage/_codec.py``): the fast path (generated encoders and decoders,
orjson) stores the same JSON values as the reference path (the cattrs converter and ``json`` of
earlier releases), rows of either path decode on both, and what the fast path cannot write
exactly goes the reference way."""

from __future__ import annotations

import datetime as dt
import enum
import json
import math
import types
import typing
import uuid
from typing import Any

import attrs
import cattrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chatmgmt._text import text_problem
from chatmgmt.model import (
    Agent,
    AgentId,
    AgentLoad,
    AgentStatus,
    Chat,
    ChatId,
    ChatSla,
    ChatState,
    Customer,
    CustomerInfo,
    EndReason,
    Event,
    Message,
    MessageId,
    MessageRole,
    SlaClock,
    Sticky,
    Timer,
    evolve,
)
from chatmgmt.storage import _codec, _codec_fast
from chatmgmt.storage._codec import decode, encode
from chatmgmt.testing._strategies import agents, chats, customer_infos

REF = _codec._converter  # the reference path: what earlier releases wrote and read
HOT = (Agent, AgentLoad, Chat, Customer, Event, Message, Sticky, Timer)

# --------------------------------------------------------------------------- helpers


def same(a: Any, b: Any) -> bool:
    """Equal plain values, where NaN equals NaN, -0.0 differs from 0.0 and 1 differs from 1.0
    or True (what a JSON reader can tell apart)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return (math.isnan(a) and math.isnan(b)) or (
            a == b and math.copysign(1, a) == math.copysign(1, b)
        )
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def plain_of(value: Any) -> Any:
    """A model value as plain values (a frozenset as a sorted list), for a NaN-aware
    comparison."""
    return attrs.asdict(value, value_serializer=_sorted_sets)


def _sorted_sets(_inst: Any, _field: Any, value: Any) -> Any:
    return sorted(value) if isinstance(value, frozenset) else value


def normal(cls: Any, data: Any) -> Any:
    """A row's plain values with the lists of typed frozenset fields sorted: the reference path
    wrote those in the set's own order (the same set once read), the fast path sorts them."""
    if not attrs.has(cls) or not isinstance(data, dict):
        return data
    hints = typing.get_type_hints(cls)
    for field in attrs.fields(cls):
        tp = hints[field.name]
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if typing.get_origin(tp) in (typing.Union, types.UnionType) and len(args) == 1:
            tp = args[0]
        if field.name in data:
            if typing.get_origin(tp) is frozenset and isinstance(data[field.name], list):
                data[field.name] = sorted(data[field.name])
            else:
                data[field.name] = normal(tp, data[field.name])
    return data


def check_value(value: Any) -> str:
    """Everything the codec promises about one value; returns the row."""
    cls = type(value)
    row = encode(value)
    old = REF.dumps(value)
    assert row.isascii()
    # the same JSON values as the reference path wrote
    assert same(normal(cls, json.loads(row)), normal(cls, json.loads(old))), (row, old)
    # read back as the value the reference path reads back, by today's reader and by an older
    # one; and an older row (the reference path's) read by today's reader
    expected = plain_of(REF.loads(old, cls))
    assert same(plain_of(decode(row, cls)), expected)
    assert same(plain_of(REF.loads(row, cls)), expected)
    assert same(plain_of(decode(old, cls)), expected)
    assert same(plain_of(decode(row.encode(), cls)), expected)  # bytes, as Redis gives them
    return row


def fast(row: str) -> bool:
    """Whether ``row`` was written by the fast path (compact: no blank after the first key,
    where ``json.dumps`` writes one)."""
    return not row[row.index(":") :].startswith(": ")


# hostile free-form values: every character (lone surrogates too), big and small integers,
# NaN, infinities, -0.0, nested lists and dicts
_chars = st.characters(min_codepoint=0, max_codepoint=0x10FFFF, exclude_categories=())
_text = st.text(_chars, max_size=12) | st.sampled_from(
    ['say "hi": now', "C:\\x\\U0001f600 ü", "\\u00e9", "\u2028\u2029", "😀张伟", "\x00\x7f\x1f"]
)
_storable = _text.filter(lambda s: text_problem(s) is None)  # what a text field accepts
_number = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.1, 1e16, 5e-324, 1.7976931348623157e308, -0.0, 1733580000.123456]),
)
_json = st.recursive(
    st.none() | st.booleans() | _number | _text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_text, inner, max_size=4),
    max_leaves=12,
)
_mapping = st.dictionaries(_text, _json, max_size=4)
_finite = st.floats(allow_nan=False, allow_infinity=False)
_time = st.one_of(_finite, st.sampled_from([math.nan, math.inf, -math.inf, -0.0]))


@st.composite
def hostile_chats(draw: st.DrawFn) -> Chat:
    chat = draw(chats())
    return evolve(
        chat,
        attributes=draw(_mapping),
        route_reason=draw(_mapping),
        satisfaction=draw(st.none() | _mapping),
        submission=draw(st.none() | _mapping),
        timers_fired=draw(_mapping),
        bot=draw(st.none() | _mapping),
        tags=draw(st.frozensets(_text.filter(lambda s: s.isprintable()), max_size=3)),
        observers=draw(st.frozensets(st.sampled_from(["s1", "s2", "张"]), max_size=2)),
        excluded=draw(st.frozensets(st.sampled_from(["a1", "a2"]), max_size=2).map(frozenset)),
        served_by=tuple(draw(st.lists(st.sampled_from(["a1", "a2", "ä"]), max_size=3))),
        position_event=draw(st.none() | st.tuples(st.integers(0, 99), _time)),
        offer_expires_at=draw(st.none() | _time),
        updated_at=draw(_time),
        last_customer_message_at=draw(st.none() | _time),
    )


# --------------------------------------------------------------------------- the fast path


def test_every_hot_type_has_generated_functions() -> None:
    for cls in HOT:
        assert cls in _codec._ENCODERS and cls in _codec._DECODERS


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(hostile_chats())
def test_chat_stores_the_reference_values(chat: Chat) -> None:
    check_value(chat)


@settings(max_examples=60, deadline=None)
@given(chats())
def test_valid_chats_take_the_fast_path_and_read_back_equal(chat: Chat) -> None:
    row = check_value(chat)
    assert fast(row)
    assert decode(row, Chat) == chat


@settings(max_examples=60, deadline=None)
@given(agents(), st.dictionaries(st.sampled_from(["web", "app"]), st.integers(1, 3)))
def test_agents_and_loads(agent: Agent, weights: dict[str, int]) -> None:
    check_value(agent)
    assert "channel_limits" not in json.loads(encode(agent))  # written only when set
    weighted = attrs.evolve(agent, channel_weights=weights, channel_limits=weights)
    assert ("channel_weights" in json.loads(encode(weighted))) == bool(weights)
    load = AgentLoad(
        weighted,
        frozenset({ChatId("c1"), ChatId("c2")}),
        frozenset({ChatId("c2")}),
        last_assigned_at=1733580000.25,
        tiebreak=0.0938595867742349,
        version=3,
        channels={ChatId("c1"): "web"} if weights else {},
        recent=(1.5, 2.25) if weights else (),
    )
    row = check_value(load)
    assert ("recent" in json.loads(row)) == bool(weights)
    assert decode(row, AgentLoad) == load
    assert decode(check_value(AgentLoad(agent)), AgentLoad) == AgentLoad(agent)


@settings(max_examples=60, deadline=None)
@given(customer_infos(), st.none() | _finite, _mapping, _storable, _time)
def test_other_hot_types(
    info: CustomerInfo, invited: float | None, data: dict[str, Any], text: str, at: float
) -> None:
    customer = Customer(
        info.partner_id or "u1",
        name=info.name,
        custom_fields=info.custom_fields,
        channels=frozenset({"web", info.channel}),
        created_at=1.0,
        updated_at=2.5,
        version=4,
        last_invited_at=invited,
    )
    assert ("last_invited_at" in json.loads(check_value(customer))) == (invited is not None)
    check_value(Event("evt_1", "chat.assigned", at, data, chat_id="c1", seq=2))
    check_value(Timer("c1:inactivity", at, "c1", "inactivity", 3, data))
    check_value(Sticky("u1", AgentId("a1"), at, "closed"))
    message = evolve(
        Message(MessageId("m1"), ChatId("c1"), MessageRole.CUSTOMER, "", "hi", 1.0),
        text=text,
        time=at,
        flags=frozenset({"masked", "张"}),
    )
    check_value(message)


# --------------------------------------------------------------------------- exactness


@pytest.mark.parametrize(
    "x", [0.1, 1e16, 1e-7, 5e-324, 1.7976931348623157e308, -0.0, 1733580000.123456, 2.0**53 + 2]
)
def test_floats_survive_exactly(x: float) -> None:
    timer = Timer("k", x, "c1", "inactivity", payload={"x": x, "l": [x]})
    row = encode(timer)
    assert fast(row)
    back = decode(row, Timer)
    for y in (back.due_at, back.payload["x"], back.payload["l"][0]):
        assert same(y, x)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_nan_and_infinities_go_the_reference_way(bad: float) -> None:
    timer = Timer("k", bad, "c1", "inactivity")
    row = check_value(timer)
    assert row == REF.dumps(timer)  # byte for byte what earlier releases wrote
    assert same(decode(row, Timer).due_at, bad)
    event = Event("e", "t", 1.0, {"deep": [{"x": bad}]})
    row = check_value(event)
    assert row == REF.dumps(event)
    assert same(decode(row, Event).data["deep"][0]["x"], bad)


def test_integers_beyond_64_bits_survive_exactly() -> None:
    for n in (2**64, -(2**63) - 1, 10**30):
        event = Event("e", "t", 1.0, {"n": n})
        row = check_value(event)
        assert decode(row, Event).data["n"] == n
    # at the edges orjson writes and reads them itself
    for n in (2**64 - 1, -(2**63)):
        row = check_value(Event("e", "t", 1.0, {"n": n}))
        assert fast(row) and decode(row, Event).data["n"] == n


def test_unicode_is_stored_as_ascii_escapes_like_before() -> None:
    text = 'é 张伟 😀 \u2028 "quoted": \\ \x00 \x1f'
    message = evolve(
        Message(MessageId("m1"), ChatId("c1"), MessageRole.CUSTOMER, "", "x", 1.0), text=text
    )
    row = encode(message)
    assert row.isascii() and fast(row)
    assert "\\u00e9" in row and "\\u5f20\\u4f1f" in row and "\\ud83d\\ude00" in row
    assert json.loads(row)["text"] == text
    assert decode(row, Message) == message
    # the same escapes json.dumps writes
    assert json.loads(row) == normal(Message, json.loads(REF.dumps(message)))
    assert row == json.dumps(normal(Message, REF.unstructure(message)), separators=(",", ":"))


def test_lone_surrogates_go_the_reference_way() -> None:
    chat = evolve(_chat(), attributes={"x": "\ud800 half"})
    row = check_value(chat)
    assert row == REF.dumps(chat)
    assert decode(row, Chat).attributes == {"x": "\ud800 half"}


def test_values_that_are_not_plain_json_go_the_reference_way() -> None:
    chat = _chat()
    for attributes in (
        {1: "int key"},
        {
            "when": dt.datetime(
                2026, 1, 2, 3, 4, 5, 123456, tzinfo=dt.timezone(dt.timedelta(hours=5, minutes=30))
            )
        },
        {"set": frozenset({"b", "a"}), "plain set": {2, 1}},
        {"raw": b"\x00\xff"},
        {"state": ChatState.ACTIVE, "reason": EndReason.AGENT},
        types.MappingProxyType({"proxied": 1.5}),
    ):
        value = evolve(chat, attributes=attributes)
        assert encode(value) == REF.dumps(value) or check_value(value)
        check_value(value)


@pytest.mark.parametrize(
    "attributes",
    [
        {"object": object()},
        {"uuid": uuid.UUID(int=7)},  # orjson alone would write these two
        {"deep": [{"time": dt.time(3, 4)}]},
    ],
)
def test_what_the_reference_path_refuses_is_still_refused(attributes: dict[str, Any]) -> None:
    value = evolve(_chat(), attributes=attributes)
    with pytest.raises(TypeError):
        REF.dumps(value)
    with pytest.raises(TypeError):
        encode(value)


# --------------------------------------------------------------------------- old rows


def _chat() -> Chat:
    return Chat(
        id=ChatId("c1"),
        customer=CustomerInfo(partner_id="u1", name="Zoë"),
        channel="web",
        skill_group="g",
        state=ChatState.ACTIVE,
        agent_id=AgentId("a1"),
        created_at=10.0,
        updated_at=12.5,
        assigned_at=10.0,
        served_by=(AgentId("a1"),),
        route_reason={"via": "default", "eligible": 5, "ineligible": {"full": 0}},
        attributes={"lang": "en"},
        sla=ChatSla("gold", first_response=SlaClock(60.0, started_at=10.0, due_at=70.0)),
        version=3,
    )


def test_rows_written_before_fields_existed_take_their_defaults() -> None:
    chat = _chat()
    data = json.loads(encode(chat))
    for later in ("tags", "observers", "sla", "hold", "position_event", "offer_expires_at", "bot"):
        del data[later]
    del data["customer"]["custom_fields"]
    expected = evolve(chat, sla=None)
    for row in (json.dumps(data), json.dumps(data, separators=(",", ":"))):
        assert decode(row, Chat) == expected == REF.loads(row, Chat)


def test_a_chat_row_from_before_the_typed_fields_is_upgraded() -> None:
    chat = evolve(_chat(), queue="q:g", queued_at=9.0, sticky_waited=True, sla=None)
    data = json.loads(encode(chat))
    attributes = dict(data["attributes"])
    for key, field in _codec.LEGACY_CHAT_KEYS.items():
        if field in data:
            attributes[key] = data.pop(field)
    data["attributes"] = attributes
    for row in (json.dumps(data), json.dumps(data, separators=(",", ":"))):
        assert decode(row, Chat) == chat == REF.loads(row, Chat)


def test_integers_in_float_fields_read_as_floats() -> None:
    # Lua's cjson writes 10.0 as 10
    row = encode(_chat()).replace('"created_at":10.0', '"created_at":10')
    assert '"created_at":10,' in row
    back = decode(row, Chat)
    assert type(back.created_at) is float and back == _chat()


def test_a_row_that_does_not_fit_raises_as_before() -> None:
    good = json.loads(encode(_chat()))
    for broken in (
        "{}",
        "null",
        json.dumps({**good, "state": "no such state"}),
        json.dumps({**good, "position_event": [1, 2.0, 3]}),
        json.dumps({**good, "attributes": [["a", 1]]}),
    ):
        with pytest.raises(Exception) as ours:  # the reference's own error
            decode(broken, Chat)
        with pytest.raises(Exception) as theirs:
            REF.loads(broken, Chat)
        assert type(ours.value) is type(theirs.value)
        assert isinstance(ours.value, (cattrs.BaseValidationError, ValueError, TypeError))


def test_values_the_library_builds_never_take_the_reference_path(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    agent = Agent(AgentId("a1"), "Ann", frozenset({"g"}), 3, status=AgentStatus.ONLINE)
    values = [
        _chat(),
        agent,
        AgentLoad(agent, frozenset({ChatId("c1")}), last_assigned_at=2.5),
        Customer("u1", name="张伟", channels=frozenset({"web"}), created_at=1.0),
        Event("evt_1", "chat.ended", 3.5, {"chat_id": "c1", "reason": EndReason.AGENT}, "c1"),
        Timer("c1:inactivity", 9.5, "c1", "inactivity", payload={"basis": [1.5]}),
        Message(MessageId("m1"), ChatId("c1"), MessageRole.AGENT, "a1", "您好 😀", 4.0),
        Sticky("u1", AgentId("a1"), 5.0, "closed"),
    ]
    rows = [(encode(v), v) for v in values]

    def refused(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the reference path was taken")

    monkeypatch.setattr(REF, "dumps", refused)
    monkeypatch.setattr(REF, "loads", refused)
    # nor the decoders' slower path for rows that lack fields
    for generated in _codec_fast._DECODERS.values():
        monkeypatch.setitem(generated.__globals__, "sparse", refused)
    for row, value in rows:
        assert encode(value) == row
        assert decode(row, type(value)) == value
        assert decode(row.encode(), type(value)) == value


class _Plain(enum.Enum):
    A = 1


@attrs.frozen
class _WithPlainEnum:
    e: _Plain


@attrs.frozen
class _WithDatetime:
    at: dt.datetime


@pytest.mark.parametrize("cls", [_WithPlainEnum, _WithDatetime])
def test_the_generator_refuses_a_field_it_cannot_write_exactly(cls: type) -> None:
    # a model field of such a type would fail at import, not write a different JSON
    with pytest.raises(TypeError, match="no fast codec"):
        _codec_fast.encoder(cls)
