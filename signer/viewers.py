"""The unit a viewer is rate-limited by, from the network a playback request binds to."""

from __future__ import annotations

import ipaddress

# The unit a viewer holds: one IPv4 address; one IPv6 /64 (a subscriber line holds a whole /64,
# so per-address buckets would give every line 2^64 of them).
_UNIT = {4: 32, 6: 64}


def address_bucket(network: str) -> str:
    """The viewer a network names, whatever its width: the unit holding its first address.

    Keyed by the network's text, every wider CIDR around one address (``/31``, ``/30``, ...)
    had a fresh bucket; here every network starting at the same address, every spelling and
    every width, shares one.
    """
    return viewer_unit(ipaddress.ip_network(network))


def viewer_unit(network: ipaddress.IPv4Network | ipaddress.IPv6Network) -> str:
    """``address_bucket`` of a network already parsed."""
    unit = _UNIT[network.version]
    return str(ipaddress.ip_network((network.network_address, unit), strict=False))
