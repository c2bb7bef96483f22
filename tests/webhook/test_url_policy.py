"""The pure URL policy: special-purpose addresses refused, decisions without any I/O."""

from __future__ import annotations

import ipaddress

import pytest

from chatmgmt.errors import DeliveryError, UnsafeURLError
from chatmgmt.webhook import UrlPolicy, split_url, unsafe_reason

# one address of each special-purpose range of the IANA IPv4 and IPv6 registries that is not
# globally reachable, and IPv6 forms embedding such IPv4 addresses
SPECIAL = [
    "0.1.2.3", "10.0.0.1", "100.64.0.1", "127.0.0.1", "169.254.169.254", "169.254.170.2",
    "172.16.0.1", "192.0.0.1", "192.0.0.8", "192.0.0.170", "192.0.2.1", "192.168.1.1",
    "198.18.0.1", "198.51.100.1", "203.0.113.1", "240.0.0.1", "255.255.255.255", "224.0.0.1",
    "::", "::1", "::ffff:10.0.0.1", "64:ff9b::a00:1", "64:ff9b:1::a00:1", "100::1", "2001::1",
    "2001:2::1", "2001:10::1", "2001:db8::1", "2002:a00:1::1", "fc00::1", "fd12::1", "fe80::1",
    "fec0::1", "ff02::1", "3fff::1", "5f00::1",
]  # fmt: skip
PUBLIC = ["93.184.215.14", "8.8.8.8", "192.0.0.9", "2606:4700::1111", "2001:4860:4860::8888"]


@pytest.mark.parametrize("address", SPECIAL)
def test_special_purpose_addresses_are_refused(address: str) -> None:
    assert unsafe_reason(ipaddress.ip_address(address)) is not None
    host = f"[{address}]" if ":" in address else address
    policy = UrlPolicy(allow_http=True)
    assert policy.refusal(f"http://{host}/h") is not None
    with pytest.raises(UnsafeURLError):
        policy.check_literal(f"http://{host}/h")


@pytest.mark.parametrize("address", PUBLIC)
def test_public_unicast_addresses_pass(address: str) -> None:
    assert unsafe_reason(ipaddress.ip_address(address)) is None
    host = f"[{address}]" if ":" in address else address
    assert UrlPolicy().check_literal(f"https://{host}/h").ip == address


def test_allow_hosts_lets_a_private_range_through() -> None:
    policy = UrlPolicy(("10.0.0.0/8", "hooks.internal"), allow_http=True)
    assert policy.check_literal("http://10.1.2.3/h").ip == "10.1.2.3"
    parsed = policy.parse("http://hooks.internal:8080/x?y=1")
    assert (parsed.host, parsed.port, parsed.target, parsed.literal) == (
        "hooks.internal",
        8080,
        "/x?y=1",
        None,
    )
    assert policy.pin(parsed, ["192.168.0.7"]).ip == "192.168.0.7"  # the name is allowed


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("ftp://example.com/", "scheme"),
        ("http://example.com/", "plain http"),
        ("https://u:p@example.com/", "credentials"),
        ("https://2130706433/", "ambiguous"),
        ("https://0x7f.1/", "ambiguous"),
        ("https://127.1/", "ambiguous"),
        ("https://example.com:99999/", "not a valid URL"),
        ("https:///nohost", "no host"),
    ],
)
def test_refusals_say_why(url: str, why: str) -> None:
    reason = UrlPolicy().refusal(url)
    assert reason is not None and why in reason


def test_a_name_is_refused_only_once_resolved() -> None:
    policy = UrlPolicy()
    assert policy.refusal("https://hooks.example.com/h") is None
    parsed = policy.parse("https://hooks.example.com/h")
    with pytest.raises(UnsafeURLError, match=r"resolves to 10\.0\.0\.1, which is private"):
        policy.pin(parsed, ["93.184.215.14", "10.0.0.1"])  # any bad address refuses it
    with pytest.raises(UnsafeURLError, match="did not resolve"):
        policy.pin(parsed, [])
    assert policy.pin(parsed, ["93.184.215.14"]).host_header == "hooks.example.com"


def test_split_url_without_checks() -> None:
    assert split_url("http://127.0.0.1:81/a?b").target == "/a?b"
    with pytest.raises(DeliveryError):
        split_url("file:///etc/passwd")
    with pytest.raises(DeliveryError):
        split_url("http://h:99999/")
