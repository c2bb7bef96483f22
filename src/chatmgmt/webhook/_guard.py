"""The URL guard: endpoint URLs that an admin types in must not reach inside the network.

:meth:`UrlGuard.check` parses the URL, refuses ambiguous IP literals (decimal ``2130706433``,
hex ``0x7f.1``, octal ``0177.0.0.1``, short forms ``127.1``), resolves the host **once** and
refuses it when any address is private, loopback, link-local (cloud metadata 169.254.169.254,
169.254.170.2), CGNAT (100.64/10), unique-local (fc00::/7), multicast, reserved, unspecified or
an IPv6 form embedding such an IPv4 address (IPv4-mapped, 6to4, Teredo, NAT64). It returns a
:class:`CheckedUrl` carrying the address it checked; the transports connect to that address
(keeping the Host header and TLS server name) so a second DNS answer cannot swap it (DNS
rebinding). Redirects are never followed, so they cannot lead around the guard either.

``allow_hosts`` is the operator's allow-list: host names (exact, case-insensitive) or IP
networks in CIDR form (``127.0.0.1/32``, ``10.0.0.0/8``) that pass even though private.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable, Sequence
from urllib.parse import urlsplit

import attrs

from ..errors import UnsafeURLError
from ..settings import WebhookSettings

__all__ = ["CheckedUrl", "Resolver", "UrlGuard", "check_url"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Sequence[str]]
"""Resolves ``(host, port)`` to IP address strings (default: ``socket.getaddrinfo``)."""

_NUMERIC_LABEL = re.compile(r"^(0x[0-9a-f]*|[0-9]+)$", re.IGNORECASE)
_HOST_CHARS = re.compile(r"^[a-z0-9.-]+$", re.IGNORECASE)
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


def _system_resolver(host: str, port: int) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise UnsafeURLError(f"cannot resolve host {host!r}: {exc}") from None
    return [str(info[4][0]) for info in infos]


@attrs.frozen
class CheckedUrl:
    """A URL that passed the guard, with the address to connect to.

    ``host`` is the name for the Host header and the TLS server name; ``ip`` the checked
    address; ``target`` the path and query to request.
    """

    url: str
    scheme: str
    host: str
    port: int
    ip: str
    target: str

    @property
    def host_header(self) -> str:
        """The Host header value (with the port unless it is the scheme's default)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return host if self.port == default else f"{host}:{self.port}"

    @property
    def ip_url(self) -> str:
        """The URL with the checked address in place of the host name."""
        ip = f"[{self.ip}]" if ":" in self.ip else self.ip
        return f"{self.scheme}://{ip}:{self.port}{self.target}"


def _embedded_v4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def unsafe_reason(ip: IPAddress) -> str | None:
    """Why ``ip`` may not be a webhook target, or None when it is a public unicast address."""
    if isinstance(ip, ipaddress.IPv6Address):
        inner = _embedded_v4(ip)
        if inner is not None:
            why = unsafe_reason(inner)
            return f"embeds {inner} which is {why}" if why else None
    checks = (
        ("loopback", ip.is_loopback),
        ("link-local (incl. cloud metadata)", ip.is_link_local),
        ("multicast", ip.is_multicast),
        ("unspecified", ip.is_unspecified),
        ("private", ip.is_private),
        ("reserved", ip.is_reserved),
    )
    for name, hit in checks:
        if hit:
            return name
    if not ip.is_global:
        return "not globally routable (e.g. CGNAT 100.64.0.0/10)"
    return None


@attrs.frozen
class UrlGuard:
    """Checks endpoint URLs and resolves them once (see the module docstring).

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

    def _allowed_name(self, host: str) -> bool:
        return any(host == entry.lower().strip("[]") for entry in self.allow_hosts)

    def _allowed_ip(self, ip: IPAddress) -> bool:
        for entry in self.allow_hosts:
            try:
                net = ipaddress.ip_network(entry.strip("[]"), strict=False)
            except ValueError:
                continue
            if ip.version == net.version and ip in net:
                return True
        return False

    def check(self, url: str) -> CheckedUrl:
        """Parse, resolve and check ``url``; raise :class:`~chatmgmt.errors.UnsafeURLError`."""
        try:
            parts = urlsplit(url)
            port_value = parts.port
        except ValueError as exc:
            raise UnsafeURLError(f"not a valid URL: {exc}") from None
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https"):
            raise UnsafeURLError(f"scheme {scheme!r} is not allowed (https only)")
        if scheme == "http" and not self.allow_http:
            raise UnsafeURLError("plain http is not allowed (use https, or set allow_http)")
        if parts.username is not None or parts.password is not None:
            raise UnsafeURLError("credentials in the URL are not allowed")
        host = (parts.hostname or "").lower().rstrip(".")
        if not host:
            raise UnsafeURLError("the URL has no host")
        port = port_value if port_value is not None else (443 if scheme == "https" else 80)
        target = parts.path or "/"
        if parts.query:
            target += "?" + parts.query
        literal: IPAddress | None
        try:
            literal = ipaddress.ip_address(host.split("%")[0])
        except ValueError:
            literal = None
        if literal is None:
            if ":" in host or not _HOST_CHARS.match(host):
                raise UnsafeURLError(f"host {host!r} is not a valid host name")
            labels = host.split(".")
            if _NUMERIC_LABEL.match(labels[-1]) or all(_NUMERIC_LABEL.match(x) for x in labels):
                raise UnsafeURLError(
                    f"host {host!r} is an ambiguous IP literal (decimal, hex, octal or short "
                    "form); write the address in dotted-quad form"
                )
        elif literal.version == 4 and not re.fullmatch(
            r"(0|[1-9][0-9]{0,2})(\.(0|[1-9][0-9]{0,2})){3}", host
        ):
            raise UnsafeURLError(f"host {host!r} is an ambiguous IP literal")
        name_allowed = self._allowed_name(host)
        if literal is not None:
            addresses = [str(literal)]
        else:
            resolve = self.resolver or _system_resolver
            addresses = list(resolve(host, port))
            if not addresses:
                raise UnsafeURLError(f"host {host!r} did not resolve")
        chosen: str | None = None
        for address in addresses:
            try:
                ip = ipaddress.ip_address(address.split("%")[0])
            except ValueError:
                raise UnsafeURLError(f"host {host!r} resolved to a non-IP {address!r}") from None
            why = unsafe_reason(ip)
            if why is not None and not (name_allowed or self._allowed_ip(ip)):
                raise UnsafeURLError(
                    f"host {host!r} resolves to {ip}, which is {why}; add it to "
                    "webhooks.allow_hosts if this is intended"
                )
            if chosen is None:
                chosen = str(ip)
        assert chosen is not None
        return CheckedUrl(url, scheme, host, port, chosen, target)


def check_url(
    url: str,
    *,
    allow_hosts: Sequence[str] = (),
    allow_http: bool = False,
    resolver: Resolver | None = None,
) -> CheckedUrl:
    """Check one URL with a :class:`UrlGuard` built from the arguments."""
    return UrlGuard(tuple(allow_hosts), allow_http, resolver).check(url)
