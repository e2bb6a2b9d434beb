"""Forwarding headers are believed only from configured proxies, and only the configured one."""

from __future__ import annotations

import pytest

from edge_validator.asgi.client_address import client_address
from edge_validator.core.addresses import Network
from edge_validator.core.protocol import FORWARDED_FOR, REAL_IP
from edge_validator.env import networks

PROXIES = networks("10.0.0.0/8,::1/128")
NONE: tuple[Network, ...] = ()


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
    proxies: tuple[Network, ...],
    expected: str | None,
) -> None:
    found = client_address(peer, values, proxies, header)
    assert (found.text if found else None) == expected


def test_trusted_proxies_accept_host_bits_and_mapped_networks() -> None:
    proxies = networks("10.1.2.3/8, ::ffff:192.0.2.0/120")
    assert client_address("10.9.9.9", ["203.0.113.5"], proxies) == (
        "203.0.113.5",
        bytes([203, 0, 113, 5]),
    )
    assert client_address("192.0.2.7", ["203.0.113.6"], proxies) == (
        "203.0.113.6",
        bytes([203, 0, 113, 6]),
    )
