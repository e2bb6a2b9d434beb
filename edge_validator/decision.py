"""The decision, as a pure function: no I/O, no globals, an explicit clock."""

from __future__ import annotations

import functools
import socket
from typing import NamedTuple

from .errors import Expired, IpMismatch, LifetimeExceeded, NotYetValid, OutOfScope
from .keyring import KeyRing
from .paths import normalize_path, split_target
from .token import V4_MAPPED_PREFIX, Claims, open_token

DEFAULT_LEEWAY = 5
# NamedTuple's own __new__ is Python code; building the tuple directly saves a frame per request.
_new_tuple = tuple.__new__


class Grant(NamedTuple):
    """A verified permission to fetch ``path`` (decoded, token stripped)."""

    claims: Claims
    path: str

    @property
    def token_id(self) -> str:
        return self.claims.token_id

    def seconds_left(self, now: float) -> int:
        return max(0, int(self.claims.expires_at - now))


def _packed_ip(text: str) -> bytes | None:
    try:
        return socket.inet_pton(socket.AF_INET, text)
    except OSError:
        pass
    try:
        packed = socket.inet_pton(socket.AF_INET6, text)
    except OSError:
        return None
    # A dual-stack socket reports IPv4 peers as ::ffff:a.b.c.d; judge them as IPv4.
    return packed[12:] if packed.startswith(V4_MAPPED_PREFIX) else packed


@functools.lru_cache(maxsize=4096)
def _network(cidr: str) -> tuple[int, int, int] | None:
    """(address length, mask, network) of a CIDR from a verified token; parsed once per CIDR."""
    address, _, prefix_text = cidr.partition("/")
    network = _packed_ip(address)
    if network is None:
        return None
    bits = len(network) * 8
    prefix = int(prefix_text)
    if not 0 <= prefix <= bits:
        return None
    mask = ((1 << prefix) - 1) << (bits - prefix)
    return len(network), mask, int.from_bytes(network, "big")


def ip_in_network(client_ip: str | None, cidr: str) -> bool:
    """True when ``client_ip`` lies in ``cidr``. An unknown or unparsable address never matches."""
    if not client_ip:
        return False
    packed = _packed_ip(client_ip)
    network = _network(cidr)
    if packed is None or network is None or len(packed) != network[0]:
        return False
    return int.from_bytes(packed, "big") & network[1] == network[2]


def verify(
    token: str | None,
    path: str,
    client_ip: str | None,
    now: float,
    keyring: KeyRing,
    *,
    leeway: int = DEFAULT_LEEWAY,
    max_lifetime: int | None = None,
) -> Grant:
    """Decide whether ``token`` lets ``client_ip`` fetch the raw ``path`` at time ``now``."""
    decoded = normalize_path(path)
    claims = open_token(token, keyring)  # raises MissingToken for None or ""
    if now > claims.expires_at + leeway:
        raise Expired("the token has expired", token_id=claims.token_id)
    if now + leeway < claims.not_before:
        raise NotYetValid("the token is not valid yet", token_id=claims.token_id)
    # Revocations are kept for the longest lifetime the signer issues; a longer-lived token
    # (an old setting, a hand-made one) would outlive its revocation, so it is refused.
    if max_lifetime is not None and claims.expires_at - claims.not_before > max_lifetime:
        raise LifetimeExceeded("the token lives longer than allowed", token_id=claims.token_id)
    # The scope ends in '/' (checked when the token was parsed): a prefix test is segment-wise.
    if not decoded.startswith(claims.scope):
        raise OutOfScope("the token does not cover this path", token_id=claims.token_id)
    if claims.client_network is not None and not ip_in_network(client_ip, claims.client_network):
        raise IpMismatch("the token is bound to another client network", token_id=claims.token_id)
    return _new_tuple(Grant, (claims, decoded))


def verify_target(
    target: str,
    client_ip: str | None,
    now: float,
    keyring: KeyRing,
    *,
    leeway: int = DEFAULT_LEEWAY,
    max_lifetime: int | None = None,
) -> tuple[Grant, str]:
    """Split a raw request target, verify it, and return the grant and the remaining query."""
    token, path, query = split_target(target)
    grant = verify(token, path, client_ip, now, keyring, leeway=leeway, max_lifetime=max_lifetime)
    return grant, query
