"""Identity verification: mandatory mode, signatures with an expiry, several secrets (rotation)."""

from __future__ import annotations

import pytest

from chatmgmt.customers import sign_identity, trusted_partner_id, verify_identity
from chatmgmt.errors import IdentityVerificationError, SettingsError, ValidationError
from chatmgmt.model import CustomerInfo
from chatmgmt.settings import AutoSaveSettings, ChatSettings, UnverifiedIdentity

OLD = "old-secret-0123456789"
NEW = "new-secret-9876543210"
NOW = 1_764_000_000.0


def _settings(**kw: object) -> AutoSaveSettings:
    kw.setdefault("identity_secret", NEW)
    return AutoSaveSettings(**kw)  # type: ignore[arg-type]


def test_default_trusts_every_partner_id_as_given() -> None:
    # what docs/customers.md says plainly: no secret, no check
    info = CustomerInfo("someone-else")
    assert trusted_partner_id(info, None, AutoSaveSettings()) == "someone-else"
    assert trusted_partner_id(info, "garbage", AutoSaveSettings()) == "someone-else"


def test_signature_with_expiry_verifies_until_it_expires() -> None:
    sig = sign_identity("u1", NEW, expires_at=NOW + 60)
    assert sig.startswith(f"{int(NOW + 60)}.")
    assert verify_identity("u1", sig, NEW, now=NOW)
    assert verify_identity("u1", sig, NEW, now=NOW + 60)
    assert not verify_identity("u1", sig, NEW, now=NOW + 61)
    # the expiry is signed: moving it later breaks the signature
    forged = f"{int(NOW + 3600)}.{sig.partition('.')[2]}"
    assert not verify_identity("u1", forged, NEW, now=NOW)
    # another partner id, another secret: not valid
    assert not verify_identity("u2", sig, NEW, now=NOW)
    assert not verify_identity("u1", sig, OLD, now=NOW)


def test_signature_without_expiry_stays_valid_unless_expiry_is_required() -> None:
    sig = sign_identity("u1", NEW)
    assert verify_identity("u1", sig, NEW, now=NOW + 10**9)
    assert not verify_identity("u1", sig, NEW, now=NOW, require_expiry=True)
    info = CustomerInfo("u1")
    settings = _settings(require_identity_expiry=True)
    assert trusted_partner_id(info, sig, settings, now=NOW) is None
    fresh = sign_identity("u1", NEW, expires_at=NOW + 5)
    assert trusted_partner_id(info, fresh, settings, now=NOW) == "u1"


def test_expired_signature_follows_unverified_identity() -> None:
    info = CustomerInfo("u1")
    expired = sign_identity("u1", NEW, expires_at=NOW - 1)
    refuse = _settings(unverified_identity=UnverifiedIdentity.REFUSE)
    with pytest.raises(IdentityVerificationError):
        trusted_partner_id(info, expired, refuse, now=NOW)
    assert trusted_partner_id(info, expired, _settings(), now=NOW) is None


@pytest.mark.parametrize(
    "bad", ["", "  ", "x.y", "123.", ".abc", "1" * 500, "é" * 64, "-5.ab", "12.34.56"]
)
def test_malformed_signatures_do_not_verify(bad: str) -> None:
    assert not verify_identity("u1", bad, NEW, now=NOW)


def test_rotation_accepts_the_current_and_previous_secrets() -> None:
    info = CustomerInfo("u1")
    settings = _settings(previous_identity_secrets=(OLD,))
    assert trusted_partner_id(info, sign_identity("u1", NEW), settings) == "u1"
    assert trusted_partner_id(info, sign_identity("u1", OLD), settings) == "u1"
    other = "third-secret-abcdefghij"
    assert trusted_partner_id(info, sign_identity("u1", other), settings) is None
    # once the rotation is over, the old key no longer verifies
    assert trusted_partner_id(info, sign_identity("u1", OLD), _settings()) is None


def test_mandatory_verification_needs_a_secret_and_never_accepts() -> None:
    with pytest.raises(SettingsError) as info:
        ChatSettings.from_dict({"auto_save": {"require_verified_identity": True}})
    assert info.value.path == "auto_save.require_verified_identity"
    assert "identity_secret" in info.value.problem
    with pytest.raises(SettingsError) as info:
        ChatSettings.from_dict(
            {
                "auto_save": {
                    "require_verified_identity": True,
                    "identity_secret": NEW,
                    "unverified_identity": "accept",
                }
            }
        )
    assert info.value.path == "auto_save.unverified_identity"
    settings = ChatSettings.from_dict(
        {
            "auto_save": {
                "require_verified_identity": True,
                "identity_secret": NEW,
                "unverified_identity": "refuse",
            }
        }
    ).auto_save
    with pytest.raises(IdentityVerificationError):
        trusted_partner_id(CustomerInfo("victim"), None, settings)
    assert trusted_partner_id(CustomerInfo("u1"), sign_identity("u1", NEW), settings) == "u1"


def test_previous_secrets_need_a_current_one_and_are_checked() -> None:
    with pytest.raises(SettingsError) as info:
        AutoSaveSettings(previous_identity_secrets=(OLD,))
    assert info.value.path == "auto_save.previous_identity_secrets"
    with pytest.raises(SettingsError) as info:
        _settings(previous_identity_secrets=(OLD, "short"))
    assert info.value.path == "auto_save.previous_identity_secrets[1]"
    assert "short" not in str(info.value)
    with pytest.raises(SettingsError) as info:
        AutoSaveSettings(identity_secret="x" * 20 + "\x00")
    assert info.value.path == "auto_save.identity_secret"


@pytest.mark.parametrize("bad", [7, b"abc", 1.5, ["sig"]])
def test_a_signature_that_is_not_a_string_is_a_validation_error(bad: object) -> None:
    with pytest.raises(ValidationError, match=r"^identity_signature: must be a string or None"):
        trusted_partner_id(CustomerInfo("u1"), bad, _settings())  # type: ignore[arg-type]


def test_sign_identity_refuses_a_bad_expiry() -> None:
    for bad in [float("inf"), float("nan"), -1.0]:
        with pytest.raises(ValidationError, match="expires_at"):
            sign_identity("u1", NEW, expires_at=bad)
