"""The URL policy: endpoint URLs that an admin types in must not reach inside the network.

Pure functions and values only; resolving a host name is I/O and happens in
:class:`chatmgmt.delivery.UrlGuard`, which feeds the addresses it got back to
:meth:`UrlPolicy.pin`.

:meth:`UrlPolicy.parse` parses the URL and refuses what no resolution can make safe: a scheme
other than https (or http with ``allow_http``), credentials in the URL, an invalid host name,
ambiguous IP literals (decimal ``2130706433``, hex ``0x7f.1``, octal ``0177.0.0.1``, short forms
``127.1``). :meth:`UrlPolicy.pin` then refuses the URL when any of the host's addresses is not a
public unicast address — every special-purpose range of the IANA IPv4 and IPv6 registries, as
:mod:`ipaddress` knows them (private, loopback, link-local with the cloud metadata addresses
169.254.169.254 and 169.254.170.2, CGNAT 100.64/10, unique-local fc00::/7, the deprecated
site-local fec0::/10, multicast, reserved, unspecified), and IPv6 forms embedding such an IPv4
address (IPv4-mapped, 6to4, Teredo, NAT64) — and returns a :class:`CheckedUrl` carrying the
address it checked. The transports connect to that address (keeping the Host header and the TLS
server name), so a second DNS answer cannot swap it (DNS rebinding).

``allow_hosts`` is the operator's allow-list: host names (exact, case-insensitive) or IP
networks in CIDR form (``127.0.0.1/32``, ``10.0.0.0/8``) that pass even though private.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from urllib.parse import urlsplit

import attrs

from ..errors import DeliveryError, UnsafeURLError
from ..settings import WebhookSettings

__all__ = ["CheckedUrl", "ParsedUrl", "UrlPolicy", "split_url", "unsafe_reason"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_NUMERIC_LABEL = re.compile(r"^(0x[0-9a-f]*|[0-9]+)$", re.IGNORECASE)
_HOST_CHARS = re.compile(r"^[a-z0-9.-]+$", re.IGNORECASE)
_DOTTED_QUAD = re.compile(r"(0|[1-9][0-9]{0,2})(\.(0|[1-9][0-9]{0,2})){3}")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.IPv6Network("64:ff9b:1::/48")
# Pythons before 3.12.4 (and 3.11.10) read an older IANA registry in ``ipaddress``: these
# special-purpose ranges, not globally reachable, are missing from their tables
_OLD_TABLES = (
    ipaddress.ip_network("192.0.0.0/24"),  # IETF protocol assignments (dummy 192.0.0.8, ...)
    ipaddress.ip_network("3fff::/20"),  # documentation (2024)
    ipaddress.ip_network("5f00::/16"),  # SRv6 SIDs (2025)
)
_GLOBAL_ANYCAST = (ipaddress.ip_address("192.0.0.9"), ipaddress.ip_address("192.0.0.10"))


@attrs.frozen
class ParsedUrl:
    """A URL taken apart: ``host`` lower-case without a trailing dot, ``port`` filled in,
    ``target`` the path and query, ``literal`` the host when it is an IP address literal."""

    url: str
    scheme: str
    host: str
    port: int
    target: str
    literal: str | None = None


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
    if ip in _NAT64 or ip in _NAT64_LOCAL:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def unsafe_reason(ip: IPAddress) -> str | None:
    """Why ``ip`` may not be a webhook target, or None when it is a public unicast address.

    Derived from :mod:`ipaddress`'s view of the IANA special-purpose registries: an address
    passes only when it is global (``is_global``) and none of the other properties hold.
    """
    if isinstance(ip, ipaddress.IPv6Address):
        inner = _embedded_v4(ip)
        if inner is not None:
            why = unsafe_reason(inner)
            return f"embeds {inner} which is {why}" if why else None
        if ip.is_site_local:
            return "site-local (deprecated fec0::/10)"
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
    if not ip.is_global or (
        ip not in _GLOBAL_ANYCAST
        and any(ip.version == net.version and ip in net for net in _OLD_TABLES)
    ):
        return "not globally routable (a special-purpose range, e.g. CGNAT 100.64.0.0/10)"
    return None


def split_url(url: str) -> ParsedUrl:
    """Take an http(s) URL apart without any safety check (for a transport without a guard);
    raise :class:`~chatmgmt.errors.DeliveryError` when it is not one."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise DeliveryError(f"not a valid URL: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        raise DeliveryError(f"not an http(s) URL: {url!r}")
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    host = parts.hostname
    return ParsedUrl(url, scheme, host, port or (443 if scheme == "https" else 80), target)


@attrs.frozen
class UrlPolicy:
    """Which endpoint URLs may be delivered to (see the module docstring); pure.

    >>> UrlPolicy(allow_http=True).check_literal("http://93.184.215.14/hook").ip
    '93.184.215.14'
    """

    allow_hosts: tuple[str, ...] = ()
    allow_http: bool = False

    @classmethod
    def from_settings(cls, settings: WebhookSettings) -> UrlPolicy:
        """The policy configured by ``settings.allow_hosts`` and ``settings.allow_http``."""
        return cls(tuple(settings.allow_hosts), settings.allow_http)

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

    def parse(self, url: str) -> ParsedUrl:
        """Parse ``url`` and refuse what no address can make safe; raise
        :class:`~chatmgmt.errors.UnsafeURLError`."""
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
        elif literal.version == 4 and not _DOTTED_QUAD.fullmatch(host):
            raise UnsafeURLError(f"host {host!r} is an ambiguous IP literal")
        return ParsedUrl(url, scheme, host, port, target, str(literal) if literal else None)

    def pin(self, parsed: ParsedUrl, addresses: Sequence[str]) -> CheckedUrl:
        """Check every address ``parsed.host`` resolved to and pin the first; raise
        :class:`~chatmgmt.errors.UnsafeURLError` when one of them is not allowed."""
        host = parsed.host
        if not addresses:
            raise UnsafeURLError(f"host {host!r} did not resolve")
        name_allowed = self._allowed_name(host)
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
        return CheckedUrl(parsed.url, parsed.scheme, host, parsed.port, chosen, parsed.target)

    def check_literal(self, url: str) -> CheckedUrl:
        """Check a URL whose host is an IP literal completely (no resolution needed)."""
        parsed = self.parse(url)
        if parsed.literal is None:
            raise UnsafeURLError(f"host {parsed.host!r} is a name: it must be resolved first")
        return self.pin(parsed, [parsed.literal])

    def refusal(self, url: str) -> str | None:
        """Why ``url`` can never be delivered to under this policy (its form, or an IP literal
        that is not allowed), or None when it may be (names are checked again at connect
        time, once resolved)."""
        try:
            parsed = self.parse(url)
            if parsed.literal is not None:
                self.pin(parsed, [parsed.literal])
        except UnsafeURLError as exc:
            return str(exc)
        return None
