"""The transports' timeout error (the rest of the tree is :mod:`chatmgmt.errors`)."""

from __future__ import annotations

from ..errors import DeliveryError

__all__ = ["DeliveryTimeoutError"]


class DeliveryTimeoutError(DeliveryError, TimeoutError):
    """The receiver did not answer within the request's timeout (a total deadline for the
    attempt: connect, send, response head and body)."""
