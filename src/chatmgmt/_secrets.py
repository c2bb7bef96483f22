"""Webhook secrets (``whsec_`` + base64): one parser for the settings and the signer (pure).

:func:`webhook_secret_problem` says why a value is not a usable secret (never showing the value);
:func:`decode_webhook_secret` gives the key bytes. :class:`~chatmgmt.settings.WebhookEndpoint`
and :class:`~chatmgmt.webhook.Signer` both use them, so a secret the settings accept is one the
signer can use, and the error says the same thing in both places.
"""

from __future__ import annotations

import base64
import binascii
import re

__all__ = ["WEBHOOK_SECRET_PREFIX", "decode_webhook_secret", "webhook_secret_problem"]

WEBHOOK_SECRET_PREFIX = "whsec_"
"""The prefix of a Standard Webhooks secret."""

_ALPHABET = re.compile(r"[A-Za-z0-9+/]*={0,2}")
_RULE = "a webhook secret is 'whsec_' followed by the standard base64 of the key, e.g. whsec_YQ=="


def webhook_secret_problem(secret: object) -> str | None:
    """Why ``secret`` is not a usable ``whsec_`` secret, or None; the value is never shown.

    >>> webhook_secret_problem("whsec_YQ==") is None
    True
    >>> webhook_secret_problem("whsec_aaaaa")
    "the part after 'whsec_' is not valid base64 (its length does not fit: a character is \
missing or extra); a webhook secret is 'whsec_' followed by the standard base64 of the key, \
e.g. whsec_YQ=="
    """
    if not isinstance(secret, str):
        return f"must be a string, got {type(secret).__name__}; {_RULE}"
    if not secret.startswith(WEBHOOK_SECRET_PREFIX):
        return f"does not start with 'whsec_'; {_RULE}"
    raw = secret[len(WEBHOOK_SECRET_PREFIX) :]
    if not raw.rstrip("="):
        return f"has no key after 'whsec_'; {_RULE}"
    if not _ALPHABET.fullmatch(raw):
        return (
            "the part after 'whsec_' has characters outside the base64 alphabet "
            f"(A-Z, a-z, 0-9, +, / and = padding at the end); {_RULE}"
        )
    try:
        base64.b64decode(raw + "=" * (-len(raw) % 4), validate=True)
    except (binascii.Error, ValueError):
        return (
            "the part after 'whsec_' is not valid base64 (its length does not fit: a character "
            f"is missing or extra); {_RULE}"
        )
    return None


def decode_webhook_secret(secret: str) -> bytes:
    """The key of a ``whsec_`` secret; ValueError (saying why, not showing it) when unusable.

    Padding may be left out: ``whsec_YQ`` and ``whsec_YQ==`` are the same key.
    """
    problem = webhook_secret_problem(secret)
    if problem is not None:
        raise ValueError(problem)
    raw = secret[len(WEBHOOK_SECRET_PREFIX) :]
    return base64.b64decode(raw + "=" * (-len(raw) % 4), validate=True)
