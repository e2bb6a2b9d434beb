"""CTA-5007 ``catr`` renewal at the edge: a fresh token for a viewer whose CAT nears its end.

Pure: the caller passes the clock, the key ring and PlayGate's hard deadline. The renewed token
is the old one's claims map, re-read from the authenticated payload (so claims PlayGate only
checks, and the issuer's own choices, pass through unchanged), with:

- ``exp`` = ``now + expadd``, never past ``start + PLAYGATE_MAX_SESSION`` (``start`` is the old
  token's ``nbf``, else ``iat``): the cap every validator enforces on a renewable CAT's lifetime
  and for which revocations are kept, so no renewal chain outlives a revocation;
- ``iat`` = now (when it was minted, as @eyevinn/cat and Akamai's module do);
- ``nbf`` and ``cti`` kept (Akamai keeps ``cti``; @eyevinn/cat draws a new one). Kept here
  because the token id and the issue time are PlayGate's lineage: revoking the URL's token id,
  its user or its video still reaches every renewed token, as it reaches every session a URL
  opened (docs/sessions.md). A token without ``nbf`` gets its old start as ``nbf``.

Signed with the key that verified the old token, whose algorithm is pinned in the key ring: an
HMAC key always can; an ES256 key only with its private part (``d``) at this edge. Without it
the renewal is refused (``RenewalRefused``, the request itself is still served), never signed
with another key or algorithm.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from ..paths import Target
from ..protocol import CAT_HEADER, CAT_PARAM, RENEWAL_HEADER, TOKEN_PARAM, TOKEN_PREFIX
from ..token import _decode_b64
from . import cbor
from .claims import (
    EXP,
    IAT,
    NBF,
    PAYLOAD_TAGS,
    REPLAY_PROHIBITED,
    CatClaims,
    Renewal,
)
from .cose import CWT_TAG, open_cose
from .keys import CatKeyRing
from .verify import seal_cat

# Renew within this many seconds of exp when catr names no deadline: the window @eyevinn/cat
# and Akamai's EdgeWorkers example both use.
DEFAULT_DEADLINE = 60
_CWT_HEAD = bytes((0xD8, CWT_TAG))  # tag 61, the optional CWT tag, as it starts a message

# Where the old token travelled, as the renewal needs it ("automatic" follows it).
HEADER, PATH, QUERY = "header", "path", "query"
# A catr header or cookie name: an RFC 9110 token, and never a header the edge itself decides
# (the issuer is trusted with the key, not with steering the response: redirects, caching,
# cookies, CORS, framing).
_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]{1,64}")
_RESERVED = re.compile(
    r"(?i)(?:location|set-cookie|cache-control|expires|vary|connection|keep-alive|upgrade"
    r"|transfer-encoding|te|trailer|host|content-.*|access-control-.*|x-playgate-.*"
    r"|x-accel-.*|www-authenticate|strict-transport-security|referrer-policy)"
)


class RenewalRefused(NamedTuple):
    """A renewal was due but is not given, and why (logged with the token id).

    Not a denial, so not an error of the tree: the request is served with the token it
    carried, which then simply expires.
    """

    code: str  # machine-readable, for the X-PlayGate-Renewal response header
    why: str


class RenewedCat(NamedTuple):
    """A renewed token and how this response hands it over (never logged: log ``token_id``)."""

    token: str
    expires_at: int
    # "header" (``name``: the response header), "cookie" (``name``: the cookie) or "redirect"
    # (``location``: where the 302 sends the player).
    kind: str
    name: str
    location: str | None = None

    def __repr__(self) -> str:  # never the token
        return f"RenewedCat(kind={self.kind!r}, name={self.name!r}, expires_at={self.expires_at})"

    def set_cookie(self, now: float) -> str:
        """The ``Set-Cookie`` value: the token for this site's paths until it expires."""
        max_age = max(0, int(self.expires_at - now))
        attributes = f"Path=/; Max-Age={max_age}; Secure; HttpOnly; SameSite=None"
        return f"{self.name}={self.token}; {attributes}"


def seconds_until_due(claims: CatClaims, now: float) -> int:
    """Seconds before a renewal is due (0: due now); catr must be present."""
    renewal = claims.rules.renewal
    assert renewal is not None
    deadline = DEFAULT_DEADLINE if renewal.deadline is None else renewal.deadline
    return max(0, int(claims.expires_at - deadline - now))


def renewal_due(claims: CatClaims, now: float) -> bool:
    """True when the token carries catr and ``now`` is within its deadline of ``exp``."""
    renewal = claims.rules.renewal
    if renewal is None:
        return False
    deadline = DEFAULT_DEADLINE if renewal.deadline is None else renewal.deadline
    return now >= claims.expires_at - deadline


def renewed_expiry(claims: CatClaims, now: float, max_session: int) -> int:
    """``now + expadd``, capped at the token's start plus PLAYGATE_MAX_SESSION."""
    renewal = claims.rules.renewal
    assert renewal is not None
    return min(int(now) + renewal.expadd, claims.not_before + max_session)


def renew(
    claims: CatClaims,
    target: Target,
    keyring: CatKeyRing,
    now: float,
    *,
    max_session: int,
    in_header: bool = False,
    query_param: str = CAT_PARAM,
) -> RenewedCat | RenewalRefused | None:
    """The renewed token for a request allowed with ``claims``; None when none is due.

    ``target``: the request's token, path and query without the token; ``in_header``: the
    token came in its request header; ``query_param``: the parameter a query-carried token came
    in, which a redirect keeps.
    """
    renewal = claims.rules.renewal
    if renewal is None or target.token is None or not renewal_due(claims, now):
        return None
    if claims.rules.replay == REPLAY_PROHIBITED:
        # The renewed token keeps its cti, which its one use has spent.
        return RenewalRefused("one_time", "a one-time token (catreplay 1) is not renewed")
    expires_at = renewed_expiry(claims, now, max_session)
    if expires_at <= claims.expires_at:
        return RenewalRefused("max_session", "the token is PLAYGATE_MAX_SESSION past its start")
    carried = HEADER if in_header else QUERY if target.token_in_query else PATH
    kind = _kind(renewal, carried)
    if kind is None:
        # The player would send the old header and the new URL token: two tokens, refused.
        return RenewalRefused(
            "header_redirect", "a header-carried token cannot be renewed by a redirect"
        )
    name = renewal.name or CAT_HEADER
    if not _NAME.fullmatch(name) or (kind == "header" and _RESERVED.fullmatch(name)):
        return RenewalRefused("bad_name", "the catr header or cookie name is not allowed")
    raw = _decode_b64(target.token)
    opened = open_cose(raw, keyring)  # authentic already; re-read for the full claims map
    if not opened.key.can_sign:
        return RenewalRefused(
            "no_signing_key",
            f"CAT key {opened.key.key_id!r} cannot sign here (ES256 without its private "
            "part): renewal needs the signing key at the edge",
        )
    doc = cbor.decode(opened.payload, tags=PAYLOAD_TAGS, max_depth=5, max_items=256)
    assert isinstance(doc, dict)  # parse_claims accepted this very payload
    doc.setdefault(NBF, claims.not_before)
    doc[IAT] = int(now)
    doc[EXP] = expires_at
    token = seal_cat(doc, opened.key, cwt_tag=raw[:2] == _CWT_HEAD)
    location = _location(target, token, query_param) if kind == "redirect" else None
    return RenewedCat(token, expires_at, kind, name, location)


def _kind(renewal: Renewal, carried: str) -> str | None:
    """How the renewed token is handed over; None for a redirect of a header-carried token."""
    if renewal.type == "automatic":
        # The way the token came: a header gets a header, a URL token a redirect to a new URL.
        return "header" if carried == HEADER else "redirect"
    if renewal.type == "redirect" and carried == HEADER:
        return None
    return renewal.type


def _location(target: Target, token: str, query_param: str) -> str:
    """The same path and query, carrying the renewed token where the old one was.

    An absolute path, as for the session redirect: it resolves against the URL the player asked.
    """
    if target.token_in_query:
        query = f"{target.query}&" if target.query else ""
        return f"{target.path}?{query}{query_param}={token}"
    query = f"?{target.query}" if target.query else ""
    return f"{TOKEN_PREFIX}{token}{target.path}{query}"


def query_param_of(raw_target: str) -> str:
    """Which parameter a query-carried token came in: ``CAT`` or ``token``."""
    query = raw_target.partition("?")[2]
    return CAT_PARAM if f"&{query}".find(f"&{CAT_PARAM}=") >= 0 else TOKEN_PARAM


def renewal_headers(outcome: RenewedCat | RenewalRefused, now: float) -> dict[str, str]:
    """Response headers for a renewal given as a header or cookie, or refused (a redirect is
    the adapter's own response)."""
    if isinstance(outcome, RenewalRefused):
        return {RENEWAL_HEADER: f"refused; {outcome.code}"}
    headers = {RENEWAL_HEADER: outcome.kind}
    if outcome.kind == "header":
        headers[outcome.name] = outcome.token
    elif outcome.kind == "cookie":
        headers["Set-Cookie"] = outcome.set_cookie(now)
    return headers
