"""Signing and verifying webhooks per the Standard Webhooks specification.

Signed content is ``{webhook-id}.{webhook-timestamp}.{body}``; the signature is
``v1,<base64 HMAC-SHA256>`` with the key taken from a ``whsec_<base64>`` secret. During a key
rotation an endpoint holds several secrets and each request carries one signature per secret
(space-separated); a receiver accepts the request when any of them matches any of its secrets.

Secrets never appear in a repr, a log line or an error message: :class:`Signer` keeps only the
decoded keys, in a private slot, and its repr shows how many it holds.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import math
import random
import time
from collections.abc import Iterable, Mapping, Sequence

from ..errors import ValidationError, WebhookVerificationError

__all__ = ["Signer", "generate_secret", "verify"]

_PREFIX = "whsec_"
_MAX_ID = 256
_MAX_SIGNATURES = 32


def _decode_secret(secret: str, index: int) -> bytes:
    # one parser for the settings (WebhookEndpoint.secrets) and the signer: same rule, same words
    from .._secrets import decode_webhook_secret

    try:
        return decode_webhook_secret(secret)
    except ValueError as exc:
        raise ValidationError(f"webhook secret #{index} {exc} (the value is not shown)") from None


def _keys(secrets: str | Iterable[str]) -> tuple[bytes, ...]:
    items = [secrets] if isinstance(secrets, str) else list(secrets)
    return tuple(_decode_secret(s, i) for i, s in enumerate(items))


def _sign(key: bytes, content: bytes) -> bytes:
    return hmac.digest(key, content, hashlib.sha256)


class Signer:
    """Signs webhook requests with one or more ``whsec_...`` secrets.

    >>> signer = Signer("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
    >>> signer.headers("msg_p5jXN8AQM9LWM0D4loKWxJek", b'{"test": 2432232314}', 1614265330)[
    ...     "webhook-signature"]
    'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE='
    >>> signer
    Signer(<1 secret>)
    """

    __slots__ = ("_keys",)

    def __init__(self, secrets: str | Sequence[str]) -> None:
        self._keys = _keys(secrets)

    def __repr__(self) -> str:
        n = len(self._keys)
        return f"Signer(<{n} secret{'' if n == 1 else 's'}>)"

    __str__ = __repr__

    def __reduce__(self) -> str | tuple[object, ...]:
        raise TypeError("a Signer holds secrets and is not picklable")

    @property
    def key_count(self) -> int:
        """How many secrets (hence signatures per request) this signer holds."""
        return len(self._keys)

    def signature(self, msg_id: str, body: bytes, timestamp: int) -> str:
        """The ``webhook-signature`` value: one ``v1,<base64>`` per secret, space-separated.

        Raises ``TypeError`` for arguments of the wrong type and
        :class:`~chatmgmt.errors.ValidationError` for a ``msg_id`` that cannot be encoded as
        UTF-8 (a lone surrogate) or a timestamp that is not finite."""
        if not isinstance(body, (bytes, bytearray, memoryview)):
            raise TypeError(f"body must be bytes, got {type(body).__name__}")
        content = b"%s.%d.%s" % (_checked_id(msg_id), _checked_time(timestamp), bytes(body))
        return " ".join(
            "v1," + base64.b64encode(_sign(key, content)).decode("ascii") for key in self._keys
        )

    def headers(self, msg_id: str, body: bytes, timestamp: int) -> dict[str, str]:
        """The three Standard Webhooks headers for one attempt.

        ``msg_id`` is stable across retries (the receiver's idempotency key); ``timestamp`` is
        the attempt's integer Unix time. Without secrets there is no ``webhook-signature``.
        """
        _checked_id(msg_id)
        out = {"webhook-id": msg_id, "webhook-timestamp": str(_checked_time(timestamp))}
        if self._keys:
            out["webhook-signature"] = self.signature(msg_id, body, _checked_time(timestamp))
        return out


def _checked_id(msg_id: object) -> bytes:
    """``msg_id`` as UTF-8 bytes (``TypeError`` when not a string, ``ValidationError`` when it
    cannot be encoded)."""
    if not isinstance(msg_id, str):
        raise TypeError(f"msg_id must be a string, got {type(msg_id).__name__}")
    try:
        return msg_id.encode("utf-8")
    except UnicodeEncodeError:
        raise ValidationError("msg_id: not valid Unicode text (a lone surrogate)") from None


def _checked_time(timestamp: object) -> int:
    """``timestamp`` as integer Unix seconds (``TypeError`` when not a number,
    ``ValidationError`` when not finite)."""
    if isinstance(timestamp, bool) or not isinstance(timestamp, (int, float)):
        raise TypeError(f"timestamp must be Unix seconds, got {type(timestamp).__name__}")
    if isinstance(timestamp, float) and not math.isfinite(timestamp):
        raise ValidationError(f"timestamp: must be finite Unix seconds, got {timestamp!r}")
    return int(timestamp)


def _header(headers: Mapping[str, str], name: str) -> str:
    found: str | None = None
    for key, value in headers.items():
        if isinstance(key, str) and key.lower() == name:
            found = value
    if not isinstance(found, str) or not found.strip():
        raise WebhookVerificationError(f"missing or empty {name} header")
    return found.strip()


def verify(
    body: bytes | str,
    headers: Mapping[str, str],
    secrets: str | Sequence[str],
    *,
    tolerance_s: float = 300,
    now: float | None = None,
) -> None:
    """Check a received webhook; raise :class:`~chatmgmt.errors.WebhookVerificationError` if bad.

    ``body`` is the raw request body exactly as received (bytes, or str encoded as UTF-8);
    ``headers`` the request headers (names compared case-insensitively); ``secrets`` one
    ``whsec_...`` secret or several (rotation). The timestamp must lie within ``tolerance_s`` of
    ``now`` (Unix seconds, default: the system clock). Any malformed header, stale or future
    timestamp, or signature that matches none of the secrets raises; comparison is constant-time.
    """
    keys = _keys(secrets)
    if not keys:
        raise WebhookVerificationError("no secret to verify with")
    try:
        raw = body.encode("utf-8") if isinstance(body, str) else bytes(body)
    except UnicodeEncodeError:
        raise WebhookVerificationError("body: not valid Unicode text") from None
    msg_id = _header(headers, "webhook-id")
    if len(msg_id) > _MAX_ID or any(c.isspace() for c in msg_id):
        raise WebhookVerificationError("malformed webhook-id header")
    ts_text = _header(headers, "webhook-timestamp")
    if not ts_text.isascii() or not ts_text.isdigit() or len(ts_text) > 12:
        raise WebhookVerificationError("malformed webhook-timestamp header (integer seconds)")
    timestamp = int(ts_text)
    current = time.time() if now is None else now
    if timestamp < current - tolerance_s:
        raise WebhookVerificationError("webhook-timestamp is too old")
    if timestamp > current + tolerance_s:
        raise WebhookVerificationError("webhook-timestamp is in the future")
    entries = _header(headers, "webhook-signature").split()
    if len(entries) > _MAX_SIGNATURES:
        raise WebhookVerificationError("too many signatures in webhook-signature")
    candidates: list[bytes] = []
    for entry in entries:
        version, sep, value = entry.partition(",")
        if not sep or not version or not value:
            raise WebhookVerificationError("malformed webhook-signature header")
        if version != "v1":
            continue
        try:
            candidates.append(base64.b64decode(value, validate=True))
        except (binascii.Error, ValueError):
            raise WebhookVerificationError("malformed v1 signature (not base64)") from None
    if not candidates:
        raise WebhookVerificationError("no v1 signature in webhook-signature")
    content = b"%s.%d.%s" % (msg_id.encode(), timestamp, raw)
    matched = False
    for key in keys:
        expected = _sign(key, content)
        for candidate in candidates:
            # no early exit: every comparison runs, each in constant time
            matched |= hmac.compare_digest(expected, candidate)
    if not matched:
        raise WebhookVerificationError("no signature matches the secret(s)")


def generate_secret(rng: random.Random | None = None, nbytes: int = 32) -> str:
    """A fresh ``whsec_`` secret of ``nbytes`` random bytes (24..64).

    Uses the OS's cryptographic source unless ``rng`` is given (tests only: a seeded
    ``random.Random`` is not a secure source).
    """
    if not 24 <= nbytes <= 64:
        raise ValidationError("a webhook secret has 24..64 random bytes")
    if rng is None:
        import secrets as _secrets

        raw = _secrets.token_bytes(nbytes)
    else:
        raw = rng.getrandbits(8 * nbytes).to_bytes(nbytes, "big")
    return _PREFIX + base64.b64encode(raw).decode("ascii")
