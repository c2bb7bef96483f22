"""Leave a message: when the form is offered, and validating a submission."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chatmgmt.errors import FormValidationError, ValidationError
from chatmgmt.lifecycle import (
    OfferReason,
    should_offer_submission,
    submission_form,
    validate_fields,
    validate_submission,
)
from chatmgmt.model import ReceptionMode
from chatmgmt.settings import FieldType, FormField, SubmissionSettings

RT = ReceptionMode.REAL_TIME
AO = ReceptionMode.ALWAYS_ON


FORM = (
    FormField("name", FieldType.TEXT, max_length=10),
    FormField("email", FieldType.EMAIL, required=True, max_length=254),
    FormField("phone", FieldType.PHONE),
    FormField("topic", FieldType.SELECT, options=("billing", "tech")),
    FormField("products", FieldType.MULTI_SELECT, options=("a", "b", "c")),
    FormField("files", FieldType.ATTACHMENTS, max_length=3),
    FormField("message", FieldType.TEXT, required=True, max_length=2000),
)


def offer(s: SubmissionSettings | None = None, mode: ReceptionMode = RT, **kw: Any) -> Any:
    args: dict[str, Any] = {
        "agents_online": 3,
        "off_duty": False,
        "queue_length": 0,
        "waited_s": 0.0,
    }
    args.update(kw)
    channel = args.pop("channel", "web")
    group = args.pop("group", None)
    return should_offer_submission(s or SubmissionSettings(), mode, channel, group, **args)


# --------------------------------------------------------------------------- offering


def test_offered_when_no_agent_online_or_off_duty() -> None:
    assert offer() is None
    assert offer(agents_online=0) is OfferReason.NO_AGENT_ONLINE
    assert offer(off_duty=True, agents_online=0) is OfferReason.OFF_DUTY
    assert offer(off_duty=True) is OfferReason.OFF_DUTY
    s = SubmissionSettings(when_no_agent_online=False, when_off_duty=False)
    assert offer(s, agents_online=0, off_duty=True) is None


def test_queue_and_wait_limits() -> None:
    s = SubmissionSettings(when_queue_longer_than=5, when_waited_longer_than_s=60)
    assert offer(s, queue_length=5, waited_s=60) is None
    assert offer(s, queue_length=6) is OfferReason.QUEUE_TOO_LONG
    assert offer(s, waited_s=60.5) is OfferReason.WAITED_TOO_LONG
    # 0 means never
    assert offer(queue_length=10_000, waited_s=1e9) is None


def test_never_offered_in_always_on_mode_or_when_disabled() -> None:
    assert offer(mode=AO, agents_online=0, off_duty=True) is None
    assert offer(SubmissionSettings(enabled=False), agents_online=0) is None


def test_reason_is_a_string() -> None:
    assert offer(agents_online=0) == "no_agent_online"


def test_channel_beats_group_beats_global() -> None:
    s = SubmissionSettings(
        when_queue_longer_than=10,
        groups={"vip": {"when_queue_longer_than": 2, "enabled": True}},
        channels={"app": {"when_queue_longer_than": 4}, "email": {"enabled": False}},
    )
    assert offer(s, queue_length=3) is None
    assert offer(s, queue_length=3, group="vip") is OfferReason.QUEUE_TOO_LONG
    assert offer(s, queue_length=3, group="vip", channel="app") is None
    assert offer(s, queue_length=5, group="vip", channel="app") is OfferReason.QUEUE_TOO_LONG
    assert offer(s, agents_online=0, channel="email") is None


def test_form_per_group() -> None:
    short = [{"name": "email", "type": "email", "required": True}]
    s = SubmissionSettings(groups={"sales": {"fields": short}})
    assert [f.name for f in submission_form(s, group="sales")] == ["email"]
    assert validate_submission(s, {"email": "a@b.co"}, group="sales") == {"email": "a@b.co"}


def test_default_form() -> None:
    s = SubmissionSettings()
    assert [f.name for f in submission_form(s)] == ["name", "email", "message"]
    ok = validate_submission(s, {"email": " ada@example.com ", "message": "call me"})
    assert ok == {"email": "ada@example.com", "message": "call me"}


# --------------------------------------------------------------------------- validation


def test_valid_submission_is_cleaned() -> None:
    out = validate_fields(
        FORM,
        {
            "name": "  Ada ",
            "email": "ada@example.com",
            "phone": "+44 (20) 7946-0958",
            "topic": "tech",
            "products": ["a", "c"],
            "files": ["f1", "f2"],
            "message": "Hello",
        },
    )
    assert out == {
        "name": "Ada",
        "email": "ada@example.com",
        "phone": "+44 (20) 7946-0958",
        "topic": "tech",
        "products": ("a", "c"),
        "files": 2,
        "message": "Hello",
    }


def test_blank_optional_fields_are_left_out() -> None:
    out = validate_fields(
        FORM, {"email": "a@b.co", "message": "m", "name": "  ", "products": [], "files": 0}
    )
    assert out == {"email": "a@b.co", "message": "m"}


def test_one_error_lists_every_bad_field() -> None:
    with pytest.raises(FormValidationError) as info:
        validate_fields(
            FORM,
            {
                "name": "x" * 11,
                "email": "not-an-email",
                "phone": "12ab",
                "topic": "sales",
                "products": ["a", "z"],
                "files": 4,
                "message": "   ",
                "extra": "?",
            },
        )
    err = info.value
    assert set(err.fields) == {
        "name",
        "email",
        "phone",
        "topic",
        "products",
        "files",
        "message",
        "extra",
    }
    assert err.fields["message"] == "is required"
    assert "10" in err.fields["name"]
    assert "'z'" in err.fields["products"]
    assert "3" in err.fields["files"]
    assert isinstance(err, ValidationError) and isinstance(err, ValueError)
    assert "8 invalid field(s)" in str(err)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("email", 42),
        ("email", "a@b"),
        ("email", "a b@c.de"),
        ("phone", "123"),
        ("phone", "1" * 16),
        ("phone", "+1 555 0100 x"),
        ("topic", ["tech"]),
        ("products", "a"),
        ("products", ["a", "a"]),
        ("files", True),
        ("files", -1),
        ("files", "two"),
        ("name", 3),
    ],
)
def test_bad_values(field: str, value: Any) -> None:
    with pytest.raises(FormValidationError) as info:
        validate_fields(FORM, {"email": "a@b.co", "message": "m", field: value})
    assert set(info.value.fields) == {field}


@pytest.mark.parametrize(
    "phone", ["+1 555 010 0100", "020-7946-0958", "13800138000", "(555) 0100.123"]
)
def test_phones(phone: str) -> None:
    assert validate_fields(FORM, {"email": "a@b.co", "message": "m", "phone": phone})["phone"]


# --------------------------------------------------------------------------- laws

texts = st.text(alphabet="ab@. +19()-xé\n", max_size=30) | st.sampled_from(
    ["a@b.co", "tech", "+1 555 0100 99"]
)


@given(st.dictionaries(st.sampled_from([f.name for f in FORM] + ["x"]), texts | st.integers()))
def test_validation_either_cleans_or_lists_bad_fields(values: dict[str, Any]) -> None:
    try:
        out = validate_fields(FORM, values)
    except FormValidationError as err:
        assert err.fields
        assert set(err.fields) <= set(values) | {f.name for f in FORM if f.required}
    else:
        assert set(out) <= set(values)
        for f in FORM:
            if f.required:
                assert f.name in out
        # cleaning is idempotent
        again = {k: list(v) if isinstance(v, tuple) else v for k, v in out.items()}
        assert validate_fields(FORM, again) == out


@given(
    st.integers(min_value=0, max_value=5),
    st.booleans(),
    st.integers(min_value=0, max_value=50),
    st.floats(min_value=0, max_value=1e4),
)
def test_always_on_never_offers(online: int, off: bool, qlen: int, waited: float) -> None:
    s = SubmissionSettings(when_queue_longer_than=1, when_waited_longer_than_s=1)
    assert (
        offer(s, AO, agents_online=online, off_duty=off, queue_length=qlen, waited_s=waited) is None
    )
