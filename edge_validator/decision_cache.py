"""How long nginx may reuse an allow decision (pure; the clock is a parameter).

nginx keys a reused decision by token, video scope (the first two path segments) and client
address, so a decision may only be reused when the token covers that whole scope. Tokens whose
every use must be counted (use or stream limits) are never reused.
"""

from __future__ import annotations

from .decision import Grant
from .paths import in_scope

ACCEL_EXPIRES_HEADER = "X-Accel-Expires"


def cache_scope(path: str) -> str | None:
    """The first two segments of a decoded path (``/videos/demo/``), or None when too short."""
    parts = path.split("/", 3)
    if len(parts) < 4 or not parts[1] or not parts[2] or not parts[3]:
        return None
    return f"/{parts[1]}/{parts[2]}/"


def decision_cache_seconds(grant: Grant, now: float, limit: int) -> int:
    """Seconds nginx may reuse this allow: 0 unless safe, never past ``limit`` or expiry.

    ``limit`` is the operator's bound (PLAYGATE_GRANT_CACHE_SECONDS); keep it at or below the
    revocation staleness bound, since a reused allow does not see a revocation.
    """
    claims = grant.claims
    if limit <= 0 or claims.max_uses or claims.max_streams:
        return 0
    scope = cache_scope(grant.path)
    if scope is None or not in_scope(scope, claims.scope):
        return 0
    return max(0, min(limit, grant.seconds_left(now)))
