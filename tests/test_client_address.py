"""Forwarding headers are believed only from configured proxies, and only the configured one."""

from __future__ import annotations

import ipaddress

import pytest
from edge_validator.client_address import FORWARDED_FOR, REAL_IP, client_address

PROXIES = (ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("::1/128"))
NONE: tuple[ipaddress.IPv4Network, ...] = ()


@pytest.mark.parametrize(
    ("peer", "values", "header", "proxies", "expected"),
    [
        ("198.51.100.1", ["1.2.3.4"], FORWARDED_FOR, NONE, "198.51.100.1"),  # nothing trusted
        ("198.51.100.1", ["1.2.3.4"], FORWARDED_FOR, PROXIES, "198.51.100.1"),  # untrusted peer
        ("10.0.0.2", ["203.0.113.5"], REAL_IP, PROXIES, "203.0.113.5"),
        ("10.0.0.2", ["203.0.113.5", "6.6.6.6"], REAL_IP, PROXIES, None),  # twice: ambiguous
        ("10.0.0.2", ["not-an-ip"], REAL_IP, PROXIES, None),
        ("10.0.0.2", ["6.6.6.6, 203.0.113.5"], FORWARDED_FOR, PROXIES, "203.0.113.5"),
        ("10.0.0.2", ["203.0.113.5, 10.0.0.9"], FORWARDED_FOR, PROXIES, "203.0.113.5"),
        ("10.0.0.2", ["garbage, 203.0.113.5"], FORWARDED_FOR, PROXIES, "203.0.113.5"),
        ("10.0.0.2", ["203.0.113.5, garbage"], FORWARDED_FOR, PROXIES, None),
        # A viewer's own line first, the proxy's appended line last: the proxy's line wins.
        ("10.0.0.2", ["6.6.6.6", "203.0.113.5"], FORWARDED_FOR, PROXIES, "203.0.113.5"),
        ("10.0.0.2", ["10.0.0.3"], FORWARDED_FOR, PROXIES, None),  # only proxies: cannot tell
        ("10.0.0.2", [], FORWARDED_FOR, PROXIES, "10.0.0.2"),
        ("::ffff:198.51.100.1", [], FORWARDED_FOR, NONE, "198.51.100.1"),
        ("::1", ["2001:db8::7"], FORWARDED_FOR, PROXIES, "2001:db8::7"),
        (None, ["1.2.3.4"], FORWARDED_FOR, PROXIES, None),
    ],
)
def test_client_address(
    peer: str | None,
    values: list[str],
    header: str,
    proxies: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...],
    expected: str | None,
) -> None:
    assert client_address(peer, values, proxies, header) == expected
