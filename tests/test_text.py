"""Unstorable or unserializable text and ids are refused at the boundary, naming the field."""

from __future__ import annotations

import json
import sqlite3

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chatmgmt._text import (
    MAX_ID_CHARS,
    check_id,
    check_message_text,
    check_optional_id,
    check_text,
    id_problem,
    text_problem,
)
from chatmgmt.errors import ValidationError
from chatmgmt.model import Agent, CustomerInfo, Message, MessageRole

SURROGATE = json.loads('"\\ud800"')  # what a JSON body can carry


def _storable(value: str) -> bool:
    """What the adapters need: UTF-8 encodable, SQLite storable, JSON serializable, no NUL."""
    try:
        value.encode("utf-8")
        json.dumps(value, ensure_ascii=False).encode("utf-8")
        with sqlite3.connect(":memory:") as db:
            db.execute("create table t (v text)")
            db.execute("insert into t values (?)", (value,))
            (back,) = db.execute("select v from t").fetchone()
    except (UnicodeEncodeError, sqlite3.Error):
        return False
    return back == value and "\x00" not in value


@pytest.mark.parametrize("bad", [SURROGATE, "ok" + SURROGATE, "\udfff tail", "a\x00b", "\x00"])
def test_unstorable_text_is_refused_with_the_reason(bad: str) -> None:
    problem = text_problem(bad)
    assert problem is not None
    assert ("surrogate" in problem) != ("NUL" in problem)
    with pytest.raises(ValidationError, match=r"^comment: contains"):
        check_text("comment", bad)


@pytest.mark.parametrize("good", ["", "hello", "héllo wörld", "中文 😀", "line\nbreak\ttab"])
def test_ordinary_text_passes(good: str) -> None:
    assert text_problem(good) is None
    check_text("comment", good)


@given(st.text(alphabet=st.characters(codec=None), max_size=30))
def test_text_problem_agrees_with_what_storage_can_take(value: str) -> None:
    assert (text_problem(value) is None) == _storable(value)


@given(st.text(max_size=10).map(lambda s: s + SURROGATE) | st.text(max_size=10))
def test_text_problem_on_surrogates_property(value: str) -> None:
    has_surrogate = any(0xD800 <= ord(c) <= 0xDFFF for c in value)
    if has_surrogate:
        assert text_problem(value) is not None


@pytest.mark.parametrize(
    ("bad", "why"),
    [
        ("", "non-empty"),
        ("a\x00", "NUL"),
        ("\x00", "NUL"),
        ("a\nb", "control character (U+000A)"),
        ("a\x7f", "control character (U+007F)"),
        ("a\x85", "control character (U+0085)"),
        ("x" + SURROGATE, "surrogate"),
        ("x" * (MAX_ID_CHARS + 1), f"at most {MAX_ID_CHARS}"),
        (7, "must be a string, not int"),
        (b"agent", "must be a string, not bytes"),
    ],
)
def test_bad_ids_are_refused(bad: object, why: str) -> None:
    problem = id_problem(bad)
    assert problem is not None and why in problem
    with pytest.raises(ValidationError, match=r"^agent_id: ") as info:
        check_id("agent_id", bad)
    # the message can be printed and logged: no raw surrogate in it
    str(info.value).encode("utf-8")
    assert str(info.value).count("got") == 1, str(info.value)  # the value, said once


def _id_rule(value: str) -> bool:
    """The id rule written out: non-empty, at most MAX_ID_CHARS, no control character
    (C0, DEL, C1), valid Unicode (UTF-8 encodable)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    controls = any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in value)
    return 0 < len(value) <= MAX_ID_CHARS and not controls


@pytest.mark.parametrize("code", range(0xA0))
def test_every_ascii_and_c1_character_in_an_id(code: int) -> None:
    # printable ASCII takes a short path in id_problem: it must agree with the rule for every
    # character, at every length around the limit
    for value in (chr(code), f"a{chr(code)}b", "x" * (MAX_ID_CHARS - 1) + chr(code)):
        assert (id_problem(value) is None) == _id_rule(value), repr(value)
    assert id_problem("x" * MAX_ID_CHARS + chr(code)) is not None


@given(st.text(max_size=MAX_ID_CHARS + 2))
def test_id_problem_agrees_with_the_rule(value: str) -> None:
    assert (id_problem(value) is None) == _id_rule(value)


def test_an_id_of_a_str_subclass_is_checked_too() -> None:
    class Name(str):
        pass

    assert id_problem(Name("agent-7")) is None
    assert id_problem(Name("a\nb")) is not None


def test_good_ids_and_optional_ids() -> None:
    for good in ["a", "agent-7", "用户_42", "x" * MAX_ID_CHARS, "a b"]:
        assert id_problem(good) is None
        check_id("id", good)
    check_optional_id("partner_id", None)
    check_optional_id("partner_id", "")
    with pytest.raises(ValidationError, match="partner_id"):
        check_optional_id("partner_id", "p\x00")


def test_message_text_limit_and_storability() -> None:
    check_message_text("", 10)
    check_message_text("x" * 10, 10)
    with pytest.raises(ValidationError, match=r"^text: is 11 characters long, the limit is 10"):
        check_message_text("x" * 11, 10)
    with pytest.raises(ValidationError, match=r"^text: contains a lone surrogate \(U\+D800\)"):
        check_message_text("hi " + SURROGATE, 10)
    with pytest.raises(ValidationError, match=r"^text: contains the NUL"):
        check_message_text("\x00", 10)
    with pytest.raises(ValidationError, match=r"^text: must be a string, got bytes"):
        check_message_text(b"hi", 10)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- the model


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("partner_id", SURROGATE),
        ("partner_id", "u\x00"),
        ("partner_id", "u\n1"),
        ("channel", "web\x00"),
        ("name", "Ada" + SURROGATE),
        ("email", "a\x00@example.com"),
        ("phone", SURROGATE),
        ("ip", "\x00"),
    ],
)
def test_customer_info_refuses_unstorable_fields(field: str, value: str) -> None:
    with pytest.raises(ValidationError, match=rf"^{field}: "):
        CustomerInfo(**{field: value})  # type: ignore[arg-type]


def test_customer_info_custom_fields_are_checked_key_and_value() -> None:
    with pytest.raises(ValidationError, match=r"^custom_fields\.plan: contains the NUL"):
        CustomerInfo("u1", custom_fields={"plan": "gold\x00"})
    with pytest.raises(ValidationError, match=r"^custom_fields key '\\ud800': contains a lone"):
        CustomerInfo("u1", custom_fields={SURROGATE: "x"})
    info = CustomerInfo(None, name="Zoë", custom_fields={"plan": "gold"})
    assert info.custom_fields == {"plan": "gold"}
    assert CustomerInfo(partner_id="").partner_id == ""


def test_agent_ids_refuse_nul_and_surrogates() -> None:
    for bad in ["\x00", "a\x00", SURROGATE, ""]:
        with pytest.raises(ValidationError, match=r"^id: "):
            Agent(bad)
    with pytest.raises(ValidationError, match=r"^display_name: "):
        Agent("a1", display_name="A" + SURROGATE)  # type: ignore[arg-type]
    assert Agent("a1", display_name="Ada").id == "a1"  # type: ignore[arg-type]


def test_message_fields_are_checked() -> None:
    def msg(**kw: object) -> Message:
        base: dict[str, object] = {
            "id": "m1",
            "chat_id": "c1",
            "role": MessageRole.CUSTOMER,
            "sender": "u1",
            "text": "hello",
            "time": 1.0,
        }
        base.update(kw)
        return Message(**base)  # type: ignore[arg-type]

    assert msg().text == "hello"
    for field, bad in [
        ("id", "m\x00"),
        ("chat_id", SURROGATE),
        ("sender", "u" + SURROGATE),
        ("text", "hi\x00"),
        ("text", SURROGATE),
    ]:
        with pytest.raises(ValidationError, match=rf"^{field}: "):
            msg(**{field: bad})
