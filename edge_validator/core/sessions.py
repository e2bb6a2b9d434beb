"""Playback sessions: what an edge mints when a start token opens playback (pure, no I/O).

A URL has two lifetimes. The start token's own (``ttl_seconds``, its start window) only lets a
player *start*: the first manifest it fetches with it is answered with a redirect to the same
path under a session token (``/s/<session>/...`` or ``?session=``). Players resolve relative
URIs against the URL a redirect ends at, so every later playlist and segment carries the session
token with no player code. The session token is the v1 format MACed under the session context
(``keyring.SESSION_CONTEXT``), so neither kind ever verifies as the other.
"""

from __future__ import annotations

import functools
import ipaddress
import secrets

from .addresses import ClientAddress
from .decision import Grant
from .keyring import KeyRing
from .protocol import SESSION_PARAM, SESSION_PREFIX, is_manifest
from .token import Claims, seal

# An unbound start token's session is narrowed to the viewer's network of this size: a session
# token lives for hours, so a leaked one should not play from anywhere, while a /24 or a /64
# survives carrier NAT pools and IPv6 privacy-address rotation within one access network.
IPV4_SESSION_PREFIX = 24
IPV6_SESSION_PREFIX = 64


def opens_session(grant: Grant) -> bool:
    """A start token that asks for sessions, fetching a manifest: answer with a session."""
    return not grant.target.session and grant.claims.session_seconds > 0 and is_manifest(grant.path)


@functools.lru_cache(maxsize=4096)  # ipaddress costs more than sealing the session
def viewer_network(client: ClientAddress | None) -> str | None:
    """The viewer's /24 (IPv4) or /64 (IPv6), or None when the address is unknown."""
    if client is None:
        return None
    prefix = IPV4_SESSION_PREFIX if len(client.packed) == 4 else IPV6_SESSION_PREFIX
    return str(ipaddress.ip_network((client.packed, prefix), strict=False))


def new_session_id() -> str:
    return secrets.token_urlsafe(12)


def session_claims(
    grant: Grant,
    client: ClientAddress | None,
    *,
    max_session: int,
    narrow: bool = True,
    session_id: str | None = None,
) -> Claims:
    """The session a start token opens at ``grant.now``.

    Lineage: the token id stays the start token's (revoking it ends every session it opened;
    logs name both ids), and ``not_before`` stays its issue time, so video and user revocations
    judge a session by when its URL was issued. The session ends ``session_seconds`` after it
    starts and never more than ``max_session`` after that issue time, which is also what every
    validator enforces. Use limits count starts, so the session has none; stream limits count
    sessions, by session id.
    """
    start = grant.claims
    network = start.client_network
    if network is None and narrow:
        network = viewer_network(client)
    return Claims(
        key_id=start.key_id,
        expires_at=min(int(grant.now) + start.session_seconds, start.not_before + max_session),
        not_before=start.not_before,
        scope=start.scope,
        token_id=start.token_id,
        session_id=start.session_id or session_id or new_session_id(),
        client_network=network,
        user_id=start.user_id,
        max_uses=0,
        max_streams=start.max_streams,
    )


def seal_session(claims: Claims, sessions: KeyRing) -> str:
    """Sign session claims with the key that signed the start token, under the session context."""
    return seal(claims, sessions)


def session_location(grant: Grant, session_token: str) -> str:
    """Where the player goes next: the same path and query, carrying the session token.

    An absolute path (no scheme or host): it resolves against the URL the player asked, which is
    this edge's public address whatever proxies sit in front.
    """
    target = grant.target
    if target.token_in_query:
        query = f"{target.query}&" if target.query else ""
        return f"{target.path}?{query}{SESSION_PARAM}={session_token}"
    query = f"?{target.query}" if target.query else ""
    return f"{SESSION_PREFIX}{session_token}{target.path}{query}"
