"""Which address a request came from, trusting a forwarding header only from known proxies."""

from __future__ import annotations

import functools
from collections.abc import Sequence

from ..core.addresses import ClientAddress, Network
from ..core.protocol import FORWARDED_FOR, REAL_IP


def _trusted(address: ClientAddress, proxies: Sequence[Network]) -> bool:
    return any(net.holds(address) for net in proxies)


@functools.lru_cache(maxsize=1024)
def _peer(peer: str, proxies: tuple[Network, ...]) -> tuple[ClientAddress | None, bool]:
    """The peer's address and whether it is a trusted proxy, judged once per peer: every
    request of a keep-alive connection, and every connection through a proxy, comes from the
    same one (parsing it and testing the proxies cost more than the rest of ``viewer``)."""
    address = ClientAddress.parse(peer)
    return address, address is not None and bool(proxies) and _trusted(address, proxies)


def client_address(
    peer: str | None,
    header_values: Sequence[str],
    proxies: tuple[Network, ...],
    header: str = FORWARDED_FOR,
) -> ClientAddress | None:
    """The viewer's address, or None when it cannot be told without guessing.

    The peer is believed unless it is a trusted proxy. From a trusted proxy, exactly one header
    is read, the one configured (never "whichever is present", or a viewer could add the other):
    ``X-Forwarded-For``, all its lines joined, walked right to left past trusted proxies; or
    ``X-Real-IP``, which the proxy must overwrite, and which must appear once. A malformed
    entry yields None (an IP-bound token is then denied), never a guess.
    """
    if not peer:
        return None
    peer_address, trusted = _peer(peer, proxies)
    if peer_address is None or not trusted:
        return peer_address
    if not header_values:
        return peer_address
    if header == REAL_IP:
        return ClientAddress.parse(header_values[0].strip()) if len(header_values) == 1 else None
    for hop in reversed(",".join(header_values).split(",")):
        parsed = ClientAddress.parse(hop.strip())
        if parsed is None:
            return None
        if not _trusted(parsed, proxies):
            return parsed
    return None
