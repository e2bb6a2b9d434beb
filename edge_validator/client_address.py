"""Which address a request came from, trusting forwarding headers only from known proxies."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from .config import Network


def _parse(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _trusted(
    address: ipaddress.IPv4Address | ipaddress.IPv6Address, proxies: Sequence[Network]
) -> bool:
    return any(address in net for net in proxies)


def client_address(
    peer: str | None,
    forwarded_for: str | None,
    real_ip: str | None,
    proxies: Sequence[Network],
) -> str | None:
    """The viewer's address, or None when it cannot be told without guessing.

    The peer is believed unless it is a trusted proxy. From a trusted proxy, ``X-Real-IP`` wins;
    otherwise ``X-Forwarded-For`` is read right to left, skipping trusted proxies. A malformed
    entry yields None (deny for IP-bound tokens), never a guess.
    """
    peer_address = _parse(peer) if peer else None
    if peer_address is None:
        return None
    if not proxies or not _trusted(peer_address, proxies):
        return str(peer_address)
    if real_ip:
        parsed = _parse(real_ip)
        return str(parsed) if parsed is not None else None
    if not forwarded_for:
        return str(peer_address)
    for hop in reversed(forwarded_for.split(",")):
        parsed = _parse(hop)
        if parsed is None:
            return None
        if not _trusted(parsed, proxies):
            return str(parsed)
    return None
