"""Customer info auto-save: merge rules (properties), identity verification, the manager path."""

from __future__ import annotations

import hmac
import threading
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

import chatmgmt.customers._autosave as autosave_module
from chatmgmt import ChatManager, ChatSettings, CustomerInfo
from chatmgmt.customers import (
    merge_customer,
    should_save,
    sign_identity,
    trusted_partner_id,
    verify_identity,
)
from chatmgmt.errors import IdentityVerificationError
from chatmgmt.model import Customer
from chatmgmt.settings import AutoSaveSettings, UnverifiedIdentity
from chatmgmt.storage import MemoryStorage
from chatmgmt.testing import ManualClock, RecordingEventSink
from chatmgmt.testing._strategies import customer_infos

SECRET = "tenant-secret-0123456789"
NOW = 1_700_000_000.0

# --------------------------------------------------------------------------- merge rules

_values = st.sampled_from(["", "", "Ada", "Bob", "x@y.z", "+1 555"])
_infos = st.builds(
    CustomerInfo,
    partner_id=st.just("u_1"),
    channel=st.sampled_from(["web", "app", "wechat"]),
    name=_values,
    email=_values,
    phone=_values,
    vip_level=st.integers(min_value=0, max_value=3),
    ip=st.sampled_from(["", "203.0.113.7"]),
    custom_fields=st.dictionaries(st.sampled_from(["plan", "lang", "tz"]), _values, max_size=3),
)
_existing = st.none() | st.builds(
    Customer,
    partner_id=st.just("u_1"),
    name=_values,
    email=_values,
    phone=_values,
    vip_level=st.integers(min_value=0, max_value=3),
    ip=st.sampled_from(["", "198.51.100.1"]),
    custom_fields=st.dictionaries(
        st.sampled_from(["plan", "lang", "tz"]), st.sampled_from(["a", "b"]), max_size=3
    ),
    channels=st.frozensets(st.sampled_from(["web", "app"])),
    created_at=st.just(NOW - 100),
    updated_at=st.just(NOW - 100),
    version=st.integers(min_value=1, max_value=9),
)

_SCALARS = ("name", "email", "phone", "ip")


@hsettings(max_examples=150)
@given(_existing, _infos)
def test_non_empty_incoming_updates_and_empty_never_erases(
    existing: Customer | None, info: CustomerInfo
) -> None:
    merged, _changed = merge_customer(existing, info, "u_1", NOW)
    for name in _SCALARS:
        incoming = getattr(info, name)
        before = getattr(existing, name) if existing is not None else ""
        assert getattr(merged, name) == (incoming or before), name
    before_vip = existing.vip_level if existing is not None else 0
    assert merged.vip_level == (info.vip_level or before_vip)
    assert merged.partner_id == "u_1"


@hsettings(max_examples=150)
@given(_existing, _infos)
def test_custom_fields_merge_key_by_key(existing: Customer | None, info: CustomerInfo) -> None:
    merged, _ = merge_customer(existing, info, "u_1", NOW)
    before = dict(existing.custom_fields) if existing is not None else {}
    expected = {**before, **{k: v for k, v in info.custom_fields.items() if v}}
    assert dict(merged.custom_fields) == expected


@hsettings(max_examples=150)
@given(_existing, _infos)
def test_version_bumps_only_when_something_changed(
    existing: Customer | None, info: CustomerInfo
) -> None:
    merged, changed = merge_customer(existing, info, "u_1", NOW)
    if existing is None:
        assert merged.version == 1
        assert merged.created_at == NOW
        assert info.channel in merged.channels
        return
    differs = attrs.evolve(merged, updated_at=0.0, version=0) != attrs.evolve(
        existing, updated_at=0.0, version=0
    )
    if differs:
        assert merged.version == existing.version + 1
        assert merged.updated_at == NOW
    else:
        assert merged == existing  # untouched, same version, same timestamp
        assert changed == ()
    for name in changed:
        assert getattr(merged, name) != getattr(existing, name)
    assert merged.created_at == existing.created_at


@hsettings(max_examples=150)
@given(_existing, _infos)
def test_resaving_the_same_info_is_idempotent(
    existing: Customer | None, info: CustomerInfo
) -> None:
    once, _ = merge_customer(existing, info, "u_1", NOW)
    twice, changed = merge_customer(once, info, "u_1", NOW + 5)
    assert twice == once
    assert changed == ()


def test_new_record_reports_every_given_field() -> None:
    info = CustomerInfo(partner_id="u_1", name="Ada", email="", vip_level=2)
    merged, changed = merge_customer(None, info, "u_1", NOW)
    assert set(changed) == {"name", "vip_level"}
    assert merged.channels == frozenset({"web"})


@hsettings(max_examples=50)
@given(customer_infos())
def test_merge_accepts_any_valid_customer_info(info: CustomerInfo) -> None:
    merged, _ = merge_customer(None, info, "p", NOW)
    assert merged.partner_id == "p"


@hsettings(max_examples=50)
@given(customer_infos())
def test_a_new_record_is_the_one_customers_constructor_builds(info: CustomerInfo) -> None:
    # merge_customer copies a blank record instead of running Customer's validators and
    # converter: the result must be the same value, with a custom_fields dict of its own
    merged, changed = merge_customer(None, info, "p", NOW)
    given_fields = {name: getattr(merged, name) for name in changed}
    expected = Customer(
        partner_id="p",
        created_at=NOW,
        updated_at=NOW,
        version=1,
        channels=frozenset({info.channel}),
        **given_fields,
    )
    assert merged == expected
    assert type(merged) is Customer
    again, _ = merge_customer(None, info, "q", NOW)
    assert again.custom_fields is not merged.custom_fields


@pytest.mark.parametrize("bad", ["", None, 7])
def test_a_new_record_still_refuses_an_empty_partner_id(bad: Any) -> None:
    with pytest.raises(ValueError, match="partner_id"):
        merge_customer(None, CustomerInfo(name="Ada"), bad, NOW)


# --------------------------------------------------------------------------- identity


def test_sign_and_verify() -> None:
    sig = sign_identity("u_42", SECRET)
    assert len(sig) == 64 and int(sig, 16) >= 0
    assert verify_identity("u_42", sig, SECRET)
    assert verify_identity("u_42", sig.upper(), SECRET)  # hex is case-insensitive
    assert not verify_identity("u_43", sig, SECRET)
    assert not verify_identity("u_42", sig, SECRET + "x")
    assert not verify_identity("u_42", sig[:-1] + ("0" if sig[-1] != "0" else "1"), SECRET)
    assert not verify_identity("u_42", None, SECRET)
    assert not verify_identity("u_42", "", SECRET)
    assert not verify_identity("u_42", "not hex at all ☃", SECRET)


def test_signature_is_the_standard_hmac_sha256() -> None:
    """A host can sign with any HMAC implementation: hex HMAC-SHA256 of the id, UTF-8."""
    import hashlib

    expected = hmac.new(SECRET.encode(), "用户_42".encode(), hashlib.sha256).hexdigest()
    assert sign_identity("用户_42", SECRET) == expected


def test_verification_compares_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[Any, Any]] = []
    real = hmac.compare_digest

    def spy(a: Any, b: Any) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(autosave_module.hmac, "compare_digest", spy)
    assert verify_identity("u_42", sign_identity("u_42", SECRET), SECRET)
    assert not verify_identity("u_42", "0" * 64, SECRET)
    assert len(calls) == 2


def _auto(**kwargs: Any) -> AutoSaveSettings:
    return AutoSaveSettings(identity_secret=SECRET, **kwargs)


@pytest.mark.parametrize("mode", list(UnverifiedIdentity))
def test_trusted_partner_id_modes(mode: UnverifiedIdentity) -> None:
    info = CustomerInfo(partner_id="u_42")
    settings = _auto(unverified_identity=mode)
    assert trusted_partner_id(info, sign_identity("u_42", SECRET), settings) == "u_42"
    if mode is UnverifiedIdentity.REFUSE:
        with pytest.raises(IdentityVerificationError):
            trusted_partner_id(info, "bad", settings)
    elif mode is UnverifiedIdentity.ANONYMOUS:
        assert trusted_partner_id(info, "bad", settings) is None
    else:
        assert trusted_partner_id(info, "bad", settings) == "u_42"


def test_without_a_secret_every_id_is_trusted() -> None:
    settings = AutoSaveSettings(unverified_identity=UnverifiedIdentity.REFUSE)
    assert trusted_partner_id(CustomerInfo(partner_id="u_1"), None, settings) == "u_1"
    assert trusted_partner_id(CustomerInfo(), None, settings) is None


def test_should_save() -> None:
    settings = AutoSaveSettings(channels=("web",))
    assert should_save("u_1", "web", settings)
    assert not should_save("u_1", "app", settings)
    assert not should_save(None, "web", settings)
    assert not should_save("", "web", settings)
    assert not should_save("u_1", "web", AutoSaveSettings(enabled=False))


# --------------------------------------------------------------------------- through the manager


def _manager(data: dict[str, Any] | None = None) -> tuple[ChatManager, RecordingEventSink]:
    sink = RecordingEventSink()
    manager = ChatManager(
        MemoryStorage(),
        ChatSettings.from_dict(data or {}),
        clock=ManualClock(NOW),
        event_sink=sink,
    )
    return manager, sink


def _outbox_types(manager: ChatManager) -> list[str]:
    storage = manager.storage
    assert isinstance(storage, MemoryStorage)
    return [e.type for e in storage.outbox.events()]


def test_open_chat_saves_the_customer_and_emits_created_then_updated() -> None:
    manager, sink = _manager()
    manager.open_chat(CustomerInfo(partner_id="u_1", name="Ada", custom_fields={"plan": "pro"}))
    saved = manager.customer("u_1")
    assert saved is not None and saved.name == "Ada" and saved.version == 1
    manager.open_chat(CustomerInfo(partner_id="u_1", email="ada@example.com", name=""))
    saved = manager.customer("u_1")
    assert saved is not None
    assert (saved.name, saved.email, saved.version) == ("Ada", "ada@example.com", 2)
    assert dict(saved.custom_fields) == {"plan": "pro"}
    types = _outbox_types(manager)
    assert types.count("customer.created") == 1 and types.count("customer.updated") == 1
    assert sink.of_type("customer.updated")[0].data["changed"] == ["email"]
    # nothing new: no event, no version bump
    manager.open_chat(CustomerInfo(partner_id="u_1", name="Ada"))
    assert _outbox_types(manager).count("customer.updated") == 1
    assert manager.customer("u_1").version == 2  # type: ignore[union-attr]


def test_no_partner_id_saves_nothing_but_the_chat_opens() -> None:
    manager, _ = _manager()
    chat = manager.open_chat(CustomerInfo(name="visitor"))
    assert manager.get_chat(chat.id) == chat
    types = _outbox_types(manager)
    assert "customer.created" not in types and "chat.started" in types


def test_auto_save_off_on_a_channel_saves_nothing_but_the_chat_opens() -> None:
    manager, _ = _manager({"auto_save": {"channels": ["web"]}})
    chat = manager.open_chat(CustomerInfo(partner_id="u_1", channel="app", name="Ada"))
    assert manager.get_chat(chat.id).customer.partner_id == "u_1"
    assert manager.customer("u_1") is None
    assert "customer.created" not in _outbox_types(manager)
    manager.open_chat(CustomerInfo(partner_id="u_1", channel="web", name="Ada"))
    assert manager.customer("u_1") is not None


def test_auto_save_disabled_saves_nothing() -> None:
    manager, _ = _manager({"auto_save": {"enabled": False}})
    manager.open_chat(CustomerInfo(partner_id="u_1", name="Ada"))
    assert manager.customer("u_1") is None


def _identity(mode: str) -> dict[str, Any]:
    return {"auto_save": {"identity_secret": SECRET, "unverified_identity": mode}}


def test_refuse_mode_raises_and_opens_nothing() -> None:
    manager, _ = _manager(_identity("refuse"))
    with pytest.raises(IdentityVerificationError) as info:
        manager.open_chat(CustomerInfo(partner_id="u_1"), identity_signature="forged")
    assert info.value.partner_id == "u_1"
    assert manager.customer("u_1") is None
    assert manager.list_chats() == []
    assert _outbox_types(manager) == []
    # a good signature opens and saves
    manager.open_chat(
        CustomerInfo(partner_id="u_1"), identity_signature=sign_identity("u_1", SECRET)
    )
    assert manager.customer("u_1") is not None


def test_anonymous_mode_opens_the_chat_without_saving_or_trusting_the_id() -> None:
    manager, _ = _manager(_identity("anonymous"))
    chat = manager.open_chat(CustomerInfo(partner_id="u_1", name="Mallory"))
    assert manager.customer("u_1") is None
    assert chat.customer.partner_id is None  # not trusted for sticky routing either
    assert chat.unverified_partner_id == "u_1"
    assert "customer.created" not in _outbox_types(manager)


def test_accept_mode_saves_the_unverified_id() -> None:
    manager, _ = _manager(_identity("accept"))
    chat = manager.open_chat(CustomerInfo(partner_id="u_1", name="Ada"), identity_signature="x")
    assert manager.customer("u_1") is not None
    assert chat.customer.partner_id == "u_1"


def test_concurrent_first_messages_give_one_record_and_one_created_event() -> None:
    manager, sink = _manager()
    barrier = threading.Barrier(16)
    errors: list[BaseException] = []

    def worker(i: int) -> None:
        try:
            barrier.wait()
            manager.open_chat(
                CustomerInfo(partner_id="u_1", name="Ada", custom_fields={f"k{i}": "v"})
            )
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    storage = manager.storage
    assert isinstance(storage, MemoryStorage)
    assert list(storage.database.space("default").customers) == ["u_1"]
    saved = manager.customer("u_1")
    assert saved is not None
    assert dict(saved.custom_fields) == {f"k{i}": "v" for i in range(16)}  # no lost update
    types = _outbox_types(manager)
    assert types.count("customer.created") == 1
    assert types.count("customer.updated") == 15
    assert saved.version == 16
    assert len(sink.of_type("customer.created")) == 1
    assert len(manager.list_chats()) == 16
