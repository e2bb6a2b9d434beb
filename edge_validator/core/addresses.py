"""Client addresses and networks, parsed once per request with ``inet_pton`` (the standard
library's ``ipaddress`` costs more than verifying a token).

IPv4-mapped IPv6 addresses (``::ffff:a.b.c.d``, how a dual-stack socket reports IPv4 peers) are
judged as IPv4: one spelling per address.
"""

from __future__ import annotations

import functools
import socket
from typing import NamedTuple

V4_MAPPED_PREFIX = b"\x00" * 10 + b"\xff\xff"
_new_tuple = tuple.__new__


class ClientAddress(NamedTuple):
    """A viewer's address: canonical text (for logs and rate-limit buckets) and packed bytes."""

    text: str
    packed: bytes  # 4 bytes for IPv4, 16 for IPv6

    @classmethod
    def parse(cls, text: str) -> ClientAddress | None:
        """The address ``text`` spells exactly, or None when it is not one."""
        try:
            # IPv4 first: inet_pton accepts only the canonical dotted quad, so the text is kept.
            return _new_tuple(cls, (text, socket.inet_pton(socket.AF_INET, text)))
        except OSError:
            pass
        packed = packed_ip(text)
        if packed is None:
            return None
        family = socket.AF_INET if len(packed) == 4 else socket.AF_INET6
        return _new_tuple(cls, (socket.inet_ntop(family, packed), packed))


class Network(NamedTuple):
    """A network as integers: address length in bytes, mask, and network address."""

    size: int
    mask: int
    address: int

    def holds(self, client: ClientAddress) -> bool:
        packed = client.packed
        return (
            len(packed) == self.size and int.from_bytes(packed, "big") & self.mask == self.address
        )


def packed_ip(text: str) -> bytes | None:
    """4 bytes for IPv4 (and IPv4-mapped IPv6), 16 for IPv6, None when not an address."""
    try:
        return socket.inet_pton(socket.AF_INET, text)
    except OSError:
        pass
    try:
        packed = socket.inet_pton(socket.AF_INET6, text)
    except OSError:
        return None
    return packed[12:] if packed.startswith(V4_MAPPED_PREFIX) else packed


@functools.lru_cache(maxsize=4096)
def parse_network(cidr: str) -> Network | None:
    """``address/prefix`` as a Network, parsed once per CIDR; None when it is not one."""
    address, slash, prefix_text = cidr.partition("/")
    packed = packed_ip(address)
    if packed is None or not slash or not prefix_text.isdigit():
        return None
    bits = len(packed) * 8
    prefix = int(prefix_text)
    if prefix > bits:
        return None
    mask = ((1 << prefix) - 1) << (bits - prefix)
    return Network(len(packed), mask, int.from_bytes(packed, "big") & mask)


def in_network(client: ClientAddress | str | None, cidr: str) -> bool:
    """True when ``client`` (parsed, or as text) lies in ``cidr``. Unknown never matches."""
    if isinstance(client, str):
        client = ClientAddress.parse(client)
    network = parse_network(cidr)
    return client is not None and network is not None and network.holds(client)
