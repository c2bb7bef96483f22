"""The URL guard at connect time: resolve the host once and check every address.

The rules are the pure :class:`~chatmgmt.webhook.UrlPolicy`; this module adds the one piece of
I/O they need, the name resolution (``socket.getaddrinfo`` unless a resolver is injected).
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Sequence

import attrs

from ..errors import DeliveryError, UnsafeURLError
from ..settings import WebhookSettings
from ..webhook import CheckedUrl, UrlPolicy

__all__ = ["Resolver", "UrlGuard", "check_url", "system_resolver"]

Resolver = Callable[[str, int], Sequence[str]]
"""Resolves ``(host, port)`` to IP address strings (default: :func:`system_resolver`)."""


def system_resolver(host: str, port: int) -> list[str]:
    """Resolve ``host`` with ``socket.getaddrinfo`` (blocking); raise
    :class:`~chatmgmt.errors.DeliveryError` when it cannot be resolved now (a network failure,
    retried), :class:`~chatmgmt.errors.UnsafeURLError` when the name can never resolve."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except UnicodeError as exc:
        raise UnsafeURLError(f"host {host!r} is not a valid name: {exc}") from None
    except OSError as exc:
        raise DeliveryError(f"cannot resolve host {host!r}: {exc}") from None
    return [str(info[4][0]) for info in infos]


@attrs.frozen
class UrlGuard:
    """Checks endpoint URLs and resolves them once (see :class:`~chatmgmt.webhook.UrlPolicy`).

    >>> UrlGuard(allow_http=True).check("http://93.184.215.14/hook").ip
    '93.184.215.14'
    """

    allow_hosts: tuple[str, ...] = ()
    allow_http: bool = False
    resolver: Resolver | None = attrs.field(default=None, repr=False, eq=False)

    @classmethod
    def from_settings(cls, settings: WebhookSettings, resolver: Resolver | None = None) -> UrlGuard:
        """The guard configured by ``settings.allow_hosts`` and ``settings.allow_http``."""
        return cls(tuple(settings.allow_hosts), settings.allow_http, resolver)

    @property
    def policy(self) -> UrlPolicy:
        """The pure rules this guard applies."""
        return UrlPolicy(self.allow_hosts, self.allow_http)

    def check(self, url: str) -> CheckedUrl:
        """Parse, resolve and check ``url``; raise :class:`~chatmgmt.errors.UnsafeURLError`."""
        policy = self.policy
        parsed = policy.parse(url)
        if parsed.literal is not None:
            addresses: Sequence[str] = [parsed.literal]
        else:
            addresses = list((self.resolver or system_resolver)(parsed.host, parsed.port))
        return policy.pin(parsed, addresses)


def check_url(
    url: str,
    *,
    allow_hosts: Sequence[str] = (),
    allow_http: bool = False,
    resolver: Resolver | None = None,
) -> CheckedUrl:
    """Check one URL with a :class:`UrlGuard` built from the arguments."""
    return UrlGuard(tuple(allow_hosts), allow_http, resolver).check(url)
