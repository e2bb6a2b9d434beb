"""Revocation requests: exactly one target, kept as long as a token it targets could live."""

from __future__ import annotations

import math
from typing import Any

from edge_validator.core.decision import MAX_LEEWAY
from edge_validator.core.errors import InvalidField
from edge_validator.state.revocations import KINDS, TARGET_RE, Revocation

from .issuing import VIDEO_ID_RE, iso_time


def parse_revocation(doc: object, now: float, retention: int, margin: int = 0) -> Revocation:
    """``{"token_id"|"session_id"|"video_id"|"user_id": "..."}``; anything else is a 422.

    ``margin``: the signer's not-before margin (clock_margin.py), by which tokens' not_before,
    and so this stamp, is set back."""
    if not isinstance(doc, dict):
        raise InvalidField("body", "must be a JSON object")
    unknown = sorted(set(doc) - set(KINDS))
    if unknown:
        raise InvalidField(unknown[0], "unknown field")
    if len(doc) != 1:
        raise InvalidField("body", f"name exactly one of {', '.join(KINDS)}")
    ((kind, value),) = doc.items()
    pattern = VIDEO_ID_RE if kind == "video_id" else TARGET_RE
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise InvalidField(kind, f"must match {pattern.pattern}")
    # Kept until every token issued up to now, and every session such a token opened, has
    # expired: ``retention`` is max(PLAYGATE_MAX_TTL, PLAYGATE_MAX_SESSION).
    # Stamped with the whole second: a token's ``not_before`` is its issue second, so within
    # one second issue order is unknown. The API answers only once that second is over
    # (``settle_seconds``), so every token issued before the answer is covered and every token
    # issued after it has a later ``not_before``, which a video or user revocation never covers.
    return Revocation(kind, value, float(math.floor(now) - margin), now + retention + MAX_LEEWAY)


def settle_seconds(rev: Revocation, now: float, margin: int = 0) -> float:
    """How long to wait before answering: until the revocation's second is over (0 for token
    and session revocations, which cover their id whenever it was issued)."""
    if rev.kind in ("token_id", "session_id"):
        return 0.0
    return max(0.0, min(1.0, rev.revoked_at + margin + 1 - now))


def revocation_json(rev: Revocation) -> dict[str, Any]:
    # ISO 8601, as playback URLs' expires_at; a revocation covers tokens issued at or before
    # revoked_at, so its milliseconds are kept (truncated: never later than the real instant).
    return {
        "kind": rev.kind,
        "value": rev.value,
        "revoked_at": iso_time(rev.revoked_at),
        "expires_at": iso_time(math.ceil(rev.expires_at)),
    }
