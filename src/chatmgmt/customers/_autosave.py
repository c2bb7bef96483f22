"""Customer info auto-save: identity verification and the CRM merge rules (pure)."""

from __future__ import annotations

import hashlib
import hmac
import math
import time
from itertools import compress
from typing import Any

from ..errors import IdentityVerificationError, ValidationError
from ..model import Customer, CustomerInfo, copier, evolve
from ..settings import AutoSaveSettings, UnverifiedIdentity

__all__ = [
    "merge_customer",
    "should_save",
    "sign_identity",
    "trusted_partner_id",
    "verify_identity",
]


_MAX_SIGNATURE = 200


def _mac(secret: str, message: str) -> str:
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


def sign_identity(partner_id: str, secret: str, *, expires_at: float | None = None) -> str:
    """The signature a host's page passes with ``partner_id``.

    Without ``expires_at``: the hex HMAC-SHA256 of ``partner_id`` with the secret; it never
    expires. With ``expires_at`` (Unix seconds, rounded down to an integer): ``"<expires>.<hex
    HMAC-SHA256 of "partner_id\n<expires>">"``; it verifies only until that time.

    >>> sign_identity("u_42", "0123456789abcdef")[:16]
    '739ea79d6b12befb'
    >>> sign_identity("u_42", "0123456789abcdef", expires_at=1764000000)[:11]
    '1764000000.'
    """
    if expires_at is None:
        return _mac(secret, partner_id)
    if isinstance(expires_at, bool) or not math.isfinite(expires_at) or expires_at < 0:
        raise ValidationError(f"expires_at: must be a finite Unix time >= 0, got {expires_at!r}")
    expires = int(expires_at)
    mac = _mac(secret, f"{partner_id}\n{expires}")
    return f"{expires}.{mac}"


def verify_identity(
    partner_id: str,
    signature: str | None,
    secret: str,
    *,
    now: float | None = None,
    require_expiry: bool = False,
) -> bool:
    """True when ``signature`` is a valid signature of ``partner_id`` made with ``secret``.

    A signature with an expiry verifies only while ``now`` (Unix seconds; default: the system
    clock) is not past it; one without an expiry verifies forever unless ``require_expiry``.
    Comparison is constant-time; a malformed signature is simply not valid.
    """
    if not isinstance(signature, str) or not signature:
        return False
    text = signature.strip().lower()
    if len(text) > _MAX_SIGNATURE or not text.isascii():
        return False
    head, dot, mac = text.rpartition(".")
    if not dot:
        if require_expiry:
            return False
        return hmac.compare_digest(_mac(secret, partner_id).encode(), text.encode())
    if not head.isdigit():
        return False
    expires = int(head)
    current = time.time() if now is None else now
    valid = hmac.compare_digest(_mac(secret, f"{partner_id}\n{expires}").encode(), mac.encode())
    return valid and current <= expires


def trusted_partner_id(
    info: CustomerInfo,
    signature: str | None,
    settings: AutoSaveSettings,
    *,
    now: float | None = None,
) -> str | None:
    """The partner_id the library may trust for auto-save and sticky routing, or None.

    Without an identity secret every id is trusted (the default: see ``docs/customers.md``).
    With one, the signature must verify with ``identity_secret`` or one of
    ``previous_identity_secrets`` (a rotation), and not be expired at ``now`` (Unix seconds; the
    core passes its clock's time, the default is the system clock). An id whose signature does
    not verify is refused (:class:`~chatmgmt.errors.IdentityVerificationError`), treated as
    anonymous (None) or accepted, as ``settings.unverified_identity`` says.
    ``signature`` must be a string or None (:class:`~chatmgmt.errors.ValidationError`).
    """
    if signature is not None and not isinstance(signature, str):
        raise ValidationError(
            f"identity_signature: must be a string or None, got {type(signature).__name__}"
        )
    pid = info.partner_id
    if not pid:
        return None
    secret = settings.identity_secret
    if secret is None:
        return pid
    verified = False
    for key in (secret, *settings.previous_identity_secrets):
        # every key is tried: the time taken does not say which one matched
        verified |= verify_identity(
            pid, signature, key, now=now, require_expiry=settings.require_identity_expiry
        )
    if verified:
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
_NEW_FIELDS = (*_FIELDS, "vip_level", "custom_fields")
_BLANK = Customer(partner_id="blank")
"""A new record before the first save: every field at its default."""
_new_record = copier(
    Customer,
    "partner_id",
    "name",
    "email",
    "phone",
    "vip_level",
    "ip",
    "custom_fields",
    "channels",
    "created_at",
    "updated_at",
    "version",
)
_CHANNEL_SETS: dict[frozenset[str], frozenset[str]] = {}


def _channels(known: frozenset[str], channel: str) -> frozenset[str]:
    """``known`` with ``channel``: one shared value per set of channels (most records hold the
    same one or two), so a record keeps no frozenset of its own for the collector to walk."""
    channels = known | {channel}
    shared = _CHANNEL_SETS.get(channels)
    if shared is None and len(_CHANNEL_SETS) < 1024:
        shared = _CHANNEL_SETS[channels] = channels
    return shared if shared is not None else channels


_FIRST_CHANNELS: dict[str, frozenset[str]] = {}


def _first_channels(channel: str) -> frozenset[str]:
    """``_channels`` of the blank record (no channel yet), remembered in
    :data:`_FIRST_CHANNELS` per channel (bounded) for the next new record to read."""
    shared = _channels(_BLANK.channels, channel)
    if len(_FIRST_CHANNELS) < 1024:
        _FIRST_CHANNELS[channel] = shared
    return shared


def created_record(
    info: CustomerInfo, partner_id: str, now: float
) -> tuple[Customer, tuple[str, ...]]:
    """:func:`merge_customer` of a new record: the merge rules against the blank record, whose
    text fields are empty, VIP level 0 and custom fields none, so every given (non-empty)
    value is taken and counts as changed, and an empty one leaves the default it equals."""
    custom = info.custom_fields
    merged_custom = {k: v for k, v in custom.items() if v} if custom else {}
    given = (info.name, info.email, info.phone, info.ip, info.vip_level, merged_custom)
    changed = tuple(compress(_NEW_FIELDS, given))  # the names of the given values, in order
    if type(partner_id) is not str or not partner_id:  # the constructor says what is wrong
        Customer(partner_id=partner_id)
    channels = _FIRST_CHANNELS.get(info.channel)  # usually known: no call
    if channels is None:
        channels = _first_channels(info.channel)
    # Customer's one check (a non-empty partner id) done above; every other value comes checked
    # from CustomerInfo, and ``merged_custom`` is a new dict of its own: a copy of the blank
    # record skips the validators and the converter (~2x cheaper)
    new = _new_record(
        _BLANK,
        partner_id,
        info.name,
        info.email,
        info.phone,
        info.vip_level,
        info.ip,
        merged_custom,
        channels,
        now,
        now,
        1,
    )
    return new, changed


def merge_customer(
    existing: Customer | None, info: CustomerInfo, partner_id: str, now: float
) -> tuple[Customer, tuple[str, ...]]:
    """The record after saving ``info``, and the names of the fields that changed.

    Non-empty incoming fields update; empty ones never erase; custom fields merge key by key
    (an empty incoming value never erases a key); a VIP level of 0 means "not given". For a new
    record every given field counts as changed. The result's version is the existing one + 1
    (1 for a new record) only when something changed.
    """
    if existing is None:
        return created_record(info, partner_id, now)
    changes: dict[str, Any] = {}
    for name in _FIELDS:
        value = getattr(info, name)
        if value and value != getattr(existing, name):
            changes[name] = value
    vip = info.vip_level
    if vip and vip != existing.vip_level:
        changes["vip_level"] = vip
    incoming = info.custom_fields
    if incoming:
        known = existing.custom_fields
        merged_custom = dict(known)
        for key, value in incoming.items():
            if value:
                merged_custom[key] = value
        if merged_custom != known:
            changes["custom_fields"] = merged_custom
    changed = tuple(changes)
    if info.channel not in existing.channels:
        changes["channels"] = _channels(existing.channels, info.channel)
    if not changes:
        return existing, ()
    updated = evolve(existing, **changes, updated_at=now, version=existing.version + 1)
    return updated, changed
