"""Which address a request came from, trusting a forwarding header only from known proxies."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from .config import Network

FORWARDED_FOR = "x-forwarded-for"
REAL_IP = "x-real-ip"
CLIENT_IP_HEADERS = (FORWARDED_FOR, REAL_IP)


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
    header_values: Sequence[str],
    proxies: Sequence[Network],
    header: str = FORWARDED_FOR,
) -> str | None:
    """The viewer's address, or None when it cannot be told without guessing.

    The peer is believed unless it is a trusted proxy. From a trusted proxy, exactly one header
    is read, the one configured (never "whichever is present", or a viewer could add the other):
    ``X-Forwarded-For``, all its lines joined, walked right to left past trusted proxies; or
    ``X-Real-IP``, which the proxy must overwrite, and which must appear once. A malformed
    entry yields None (an IP-bound token is then denied), never a guess.
    """
    peer_address = _parse(peer) if peer else None
    if peer_address is None:
        return None
    if not proxies or not _trusted(peer_address, proxies):
        return str(peer_address)
    if not header_values:
        return str(peer_address)
    if header == REAL_IP:
        parsed = _parse(header_values[0]) if len(header_values) == 1 else None
        return str(parsed) if parsed is not None else None
    for hop in reversed(",".join(header_values).split(",")):
        parsed = _parse(hop)
        if parsed is None:
            return None
        if not _trusted(parsed, proxies):
            return str(parsed)
    return None
