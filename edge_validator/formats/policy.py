"""One PlayGate request as every format's scope, and the one judge of what a foreign token grants.

A signer request becomes a ``Policy``: a video scope (``/videos/<id>/``, a prefix ending in '/'),
the entry file under it, an expiry, a not-before, an optional client network and the token and
session ids. Each format maps that onto its own scope semantics (an nginx hash over the scope, an
Akamai ``acl`` of ``/videos/<id>/*``, a CloudFront resource ``https://host/videos/<id>/*``, a JWT
``sub``) and, when verifying, back onto an ``Access``. ``judge`` then applies PlayGate's rules to
every format alike: the path is normalized (ambiguous paths refused, never repaired), the scope is
compared segment by segment, expiry and not-before with the same leeway, the lifetime capped.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import re
from dataclasses import dataclass
from typing import NamedTuple

from ..core.addresses import ClientAddress, in_network
from ..core.decision import DEFAULT_LEEWAY, DEFAULT_MAX_TTL, Grant
from ..core.errors import (
    Expired,
    IpMismatch,
    LifetimeExceeded,
    MalformedToken,
    NotYetValid,
    OutOfScope,
)
from ..core.paths import Target, normalize_path
from ..core.token import Claims

VIDEO_PREFIX = "/videos/"
# The video ids the signer issues (signer.issuing.VIDEO_ID_RE), as the first segments of a path.
VIDEO_SCOPE_RE = re.compile(r"/videos/[A-Za-z0-9_-]{1,128}/")
# Entry files: plain names joined by '/', never a query, a fragment or a dot segment.
ENTRY_RE = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]*(/[A-Za-z0-9_-][A-Za-z0-9._-]*)*")
IDENTIFIER_RE = re.compile(r"[A-Za-z0-9_.:-]{1,128}")


@dataclass(frozen=True)
class Policy:
    """What one signer request grants, independent of the format that carries it."""

    scope: str
    expires_at: int
    not_before: int
    token_id: str
    entry: str = "master.m3u8"
    client_network: str | None = None
    session_id: str | None = None

    def __post_init__(self) -> None:
        if not VIDEO_SCOPE_RE.fullmatch(self.scope):
            raise ValueError("scope must be /videos/<id>/")
        if not ENTRY_RE.fullmatch(self.entry) or "/../" in f"/{self.entry}/":
            raise ValueError("entry must be a relative path of plain names")
        if self.expires_at <= self.not_before:
            raise ValueError("expires_at must be after not_before")
        for name in ("token_id", "session_id"):
            value = getattr(self, name)
            if value is not None and not IDENTIFIER_RE.fullmatch(value):
                raise ValueError(f"{name} must be 1-128 characters of A-Z a-z 0-9 _ . : -")
        if self.client_network is not None:
            ipaddress.ip_network(self.client_network, strict=True)

    @property
    def entry_path(self) -> str:
        return self.scope + self.entry

    def client_address(self) -> str | None:
        """The one address the policy is bound to, for formats that bind to an address only.

        nginx's ``$remote_addr``, Akamai's ``ip=``: a wider network cannot be expressed, so it
        is refused rather than silently dropped.
        """
        if self.client_network is None:
            return None
        net = ipaddress.ip_network(self.client_network, strict=True)
        if net.num_addresses != 1:
            raise ValueError("this format binds to one address, not a network")
        return str(net.network_address)


class Access(NamedTuple):
    """What an authentic foreign token grants, in PlayGate's terms.

    ``scope`` is a prefix ending in '/' (segment-safe), or with ``exact`` one path only (a
    token signed for one URL). ``not_before`` is 0 when the format carries no start time; then
    the lifetime is counted from the request time instead.
    """

    format: str
    key_id: str
    expires_at: int
    not_before: int
    scope: str
    exact: bool
    token_id: str | None = None
    session_id: str | None = None
    client_network: str | None = None


def derived_token_id(format_name: str, material: str) -> str:
    """A stable id for a token whose format carries none (secure_link, CloudFront, Media CDN
    path tokens): logs name it and the revocation API can revoke it. The signer computes the same
    id from what it emitted.

    Of the text without its trailing base64 padding: every material ends in its signature, and
    Media CDN's are accepted padded or not (Google's samples pad them), so re-padding a revoked
    token's signature must not make it another token."""
    canonical = material.rstrip("=")
    digest = hashlib.sha256(f"{format_name}\0{canonical}".encode()).digest()
    return f"{format_name}-{base64.urlsafe_b64encode(digest[:12]).decode()}"


def video_scope(decoded_path: str) -> str:
    """The ``/videos/<id>/`` prefix of a path, for formats whose MAC covers the scope only."""
    match = VIDEO_SCOPE_RE.match(decoded_path)
    if match is None:
        raise OutOfScope("the path is not under /videos/<id>/")
    return match.group(0)


def judge(
    access: Access,
    raw_path: str,
    client: ClientAddress | str | None,
    now: float,
    *,
    leeway: int = DEFAULT_LEEWAY,
    max_ttl: int = DEFAULT_MAX_TTL,
) -> str:
    """Apply PlayGate's rules to an authentic foreign token; return the decoded path.

    The same checks, in the same order and with the same errors, as ``Verifier.judge`` for
    PlayGate's own tokens.
    """
    decoded = normalize_path(raw_path)
    token_id = access.token_id
    if now > access.expires_at + leeway:
        raise Expired("the token has expired", token_id=token_id)
    if now + leeway < access.not_before:
        raise NotYetValid("the token is not valid yet", token_id=token_id)
    # Revocations are kept for max_ttl: a token that outlives them is refused. Without a start
    # time, what is left of its life must fit.
    start = access.not_before or now
    if access.expires_at - start > max_ttl + (0 if access.not_before else leeway):
        raise LifetimeExceeded("the token lives longer than allowed", token_id=token_id)
    covered = decoded == access.scope if access.exact else decoded.startswith(access.scope)
    if not covered or not (access.exact or access.scope.endswith("/")):
        raise OutOfScope("the token does not cover this path", token_id=token_id)
    network = access.client_network
    if network is not None and not in_network(client, network):
        raise IpMismatch("the token is bound to another client network", token_id=token_id)
    return decoded


_new_tuple = tuple.__new__


def foreign_grant(
    access: Access,
    opened: tuple[str, str, str, str],
    client: ClientAddress | str | None,
    now: float,
    *,
    leeway: int = DEFAULT_LEEWAY,
    max_ttl: int = DEFAULT_MAX_TTL,
) -> Grant:
    """Judge an authentic foreign token (``judge``) and make it a ``Grant`` like any other, so
    the same state checks (revocation by token id, video, session) run after it.

    ``opened``: the format, the signature-bearing text (the source of a derived token id), and
    the raw path and query the origin will see, the format's token removed.
    """
    format_name, material, origin_path, origin_query = opened
    decoded = judge(access, origin_path, client, now, leeway=leeway, max_ttl=max_ttl)
    scope = access.scope
    if access.exact and VIDEO_SCOPE_RE.match(decoded):
        # A token for one file: judged exactly above. Its claims name the file's video, so
        # revoking the video revokes it too (RevocationView reads /videos/<id>/ scopes).
        scope = video_scope(decoded)
    claims = Claims(
        key_id=access.key_id,
        expires_at=access.expires_at,
        not_before=access.not_before,
        scope=scope,
        token_id=access.token_id or derived_token_id(format_name, material),
        session_id=access.session_id,
        client_network=access.client_network,
    )
    # No PlayGate token: query-token manifest rewriting stays off.
    request = Target(None, origin_path, origin_query, False)
    return _new_tuple(Grant, (claims, decoded, request, now))


def query_params(query: str) -> dict[str, str]:
    """First value of each parameter; the formats' own parsers refuse duplicates."""
    found: dict[str, str] = {}
    for param in query.split("&") if query else ():
        name, _, value = param.partition("=")
        found.setdefault(name, value)
    return found


def query_without(query: str, name: str) -> str:
    """The query with the parameter ``name`` removed; refused when it appears twice."""
    kept = [p for p in query.split("&") if p.partition("=")[0] != name]
    if len(kept) < len(query.split("&")) - 1:
        raise MalformedToken(f"more than one {name}")
    return "&".join(kept)
