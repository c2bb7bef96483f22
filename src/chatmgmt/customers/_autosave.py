"""Customer info auto-save: identity verification and the CRM merge rules (pure)."""

from __future__ import annotations

import hashlib
import hmac

from ..errors import IdentityVerificationError
from ..model import Customer, CustomerInfo, evolve
from ..settings import AutoSaveSettings, UnverifiedIdentity

__all__ = [
    "merge_customer",
    "should_save",
    "sign_identity",
    "trusted_partner_id",
    "verify_identity",
]


def sign_identity(partner_id: str, secret: str) -> str:
    """The signature a host's page passes with ``partner_id``: hex HMAC-SHA256 with the secret.

    >>> sign_identity("u_42", "0123456789abcdef")[:16]
    '739ea79d6b12befb'
    """
    return hmac.new(secret.encode(), partner_id.encode(), hashlib.sha256).hexdigest()


def verify_identity(partner_id: str, signature: str | None, secret: str) -> bool:
    """True when ``signature`` is the right HMAC of ``partner_id`` (constant-time compare)."""
    if not signature:
        return False
    expected = sign_identity(partner_id, secret)
    return hmac.compare_digest(expected.encode(), signature.strip().lower().encode())


def trusted_partner_id(
    info: CustomerInfo, signature: str | None, settings: AutoSaveSettings
) -> str | None:
    """The partner_id the library may trust for auto-save and sticky routing, or None.

    Without an identity secret every id is trusted. With one, an id whose signature does not
    verify is refused (:class:`~chatmgmt.errors.IdentityVerificationError`), treated as
    anonymous (None) or accepted, as ``settings.unverified_identity`` says.
    """
    pid = info.partner_id
    if not pid:
        return None
    secret = settings.identity_secret
    if secret is None or verify_identity(pid, signature, secret):
        return pid
    if settings.unverified_identity is UnverifiedIdentity.REFUSE:
        raise IdentityVerificationError(pid)
    if settings.unverified_identity is UnverifiedIdentity.ACCEPT:
        return pid
    return None


def should_save(partner_id: str | None, channel: str, settings: AutoSaveSettings) -> bool:
    """Whether auto-save applies: a trusted partner_id on a channel where it is on."""
    return bool(partner_id) and settings.enabled and channel in settings.channels


_FIELDS = ("name", "email", "phone", "ip")


def merge_customer(
    existing: Customer | None, info: CustomerInfo, partner_id: str, now: float
) -> tuple[Customer, tuple[str, ...]]:
    """The record after saving ``info``, and the names of the fields that changed.

    Non-empty incoming fields update; empty ones never erase; custom fields merge key by key
    (an empty incoming value never erases a key); a VIP level of 0 means "not given". For a new
    record every given field counts as changed. The result's version is the existing one + 1
    (1 for a new record) only when something changed.
    """
    base = existing if existing is not None else Customer(partner_id=partner_id, created_at=now)
    changes: dict[str, object] = {}
    for name in _FIELDS:
        value = getattr(info, name)
        if value and value != getattr(base, name):
            changes[name] = value
    if info.vip_level and info.vip_level != base.vip_level:
        changes["vip_level"] = info.vip_level
    merged_custom = dict(base.custom_fields)
    for key, value in info.custom_fields.items():
        if value:
            merged_custom[key] = value
    if merged_custom != dict(base.custom_fields):
        changes["custom_fields"] = merged_custom
    changed = tuple(changes)
    if info.channel not in base.channels:
        changes["channels"] = base.channels | {info.channel}
    if existing is not None and not changes:
        return existing, ()
    updated = evolve(base, **changes, updated_at=now, version=base.version + 1)
    return updated, changed
