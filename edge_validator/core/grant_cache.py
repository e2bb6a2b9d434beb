"""The grant cache: how long the nginx edge may keep an allow (pure; the clock is in the grant).

nginx keys a kept allow by token, video scope (the first ``GRANT_SCOPE_SEGMENTS`` path
segments) and client address, so an allow may only be kept when the token covers that whole
scope. Tokens whose every use must be counted (use or stream limits) are never kept.
"""

from __future__ import annotations

from .cat.claims import CatClaims
from .cat.renewal import seconds_until_due
from .decision import Grant
from .paths import in_scope
from .protocol import GRANT_SCOPE_SEGMENTS


def grant_scope(path: str) -> str | None:
    """The leading segments of a decoded path (``/videos/demo/``), or None when too short."""
    parts = path.split("/", GRANT_SCOPE_SEGMENTS + 1)
    if len(parts) < GRANT_SCOPE_SEGMENTS + 2 or not all(parts[1:]):
        return None
    return "/" + "/".join(parts[1 : GRANT_SCOPE_SEGMENTS + 1]) + "/"


def grant_cache_seconds(grant: Grant, limit: int) -> int:
    """Seconds nginx may keep this allow: 0 unless safe, never past ``limit`` or expiry.

    ``limit`` is the operator's bound (PLAYGATE_GRANT_CACHE_SECONDS), at most the revocation
    staleness bound, since a kept allow does not see a revocation.
    """
    claims = grant.claims
    if limit <= 0 or claims.max_uses or claims.max_streams:
        return 0
    # A foreign format's grant (edge_validator.formats) has no PlayGate token, and nginx keys a
    # kept allow by the PlayGate token: it must never be kept.
    if grant.target.token is None:
        return 0
    scope = grant_scope(grant.path)
    if scope is None or not in_scope(scope, claims.scope):
        return 0
    seconds = min(limit, grant.seconds_left())
    if isinstance(claims, CatClaims):
        rules = claims.rules
        if rules.path_exact is not None:
            # A kept allow covers every path of the video scope; this CAT covers one path.
            return 0
        if rules.renewal is not None:
            # Never kept into the renewal window: every request there must reach the validator.
            seconds = min(seconds, seconds_until_due(claims, grant.now))
    return max(0, seconds)
