"""Forwarding headers are believed only from configured proxies."""

from __future__ import annotations

import ipaddress

import pytest

from edge_validator.client_address import client_address

PROXIES = (ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("::1/128"))


@pytest.mark.parametrize(
    ("peer", "xff", "real_ip", "proxies", "expected"),
    [
        ("198.51.100.1", "1.2.3.4", "5.6.7.8", (), "198.51.100.1"),  # nothing trusted
        ("198.51.100.1", "1.2.3.4", None, PROXIES, "198.51.100.1"),  # untrusted peer
        ("10.0.0.2", None, "203.0.113.5", PROXIES, "203.0.113.5"),
        ("10.0.0.2", "6.6.6.6, 203.0.113.5", None, PROXIES, "203.0.113.5"),
        ("10.0.0.2", "203.0.113.5, 10.0.0.9", None, PROXIES, "203.0.113.5"),
        ("10.0.0.2", "garbage, 203.0.113.5", None, PROXIES, "203.0.113.5"),
        ("10.0.0.2", "203.0.113.5, garbage", None, PROXIES, None),
        ("10.0.0.2", None, "not-an-ip", PROXIES, None),
        ("10.0.0.2", "10.0.0.3", None, PROXIES, None),  # only proxies: cannot tell
        ("10.0.0.2", None, None, PROXIES, "10.0.0.2"),
        ("::ffff:198.51.100.1", None, None, (), "198.51.100.1"),
        ("::1", "2001:db8::7", None, PROXIES, "2001:db8::7"),
        (None, "1.2.3.4", None, PROXIES, None),
    ],
)
def test_client_address(
    peer: str | None,
    xff: str | None,
    real_ip: str | None,
    proxies: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...],
    expected: str | None,
) -> None:
    assert client_address(peer, xff, real_ip, proxies) == expected
