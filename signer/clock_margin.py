"""The not-before margin: a token starts a few seconds before it is issued.

A validator whose clock runs behind the signer's by more than its leeway refuses a fresh URL as
``not_yet_valid``: every viewer's first request fails until its clock catches up. The signer
therefore sets ``not_before`` ``PLAYGATE_NOT_BEFORE_MARGIN`` seconds back (default 5), so such a
validator accepts fresh URLs up to margin + leeway seconds behind. The expiry stays what the
caller asked for, unless that would make the token live longer than ``PLAYGATE_MAX_TTL``
(which validators refuse): then the expiry gives way, by at most the margin.

``not_before`` is also the scale video and user revocations are judged on (a revocation covers
tokens with ``not_before`` at or before its ``revoked_at``), so a revocation's stamp is set
back by the same margin (``signer/revoking.py``): tokens issued before it stay covered, tokens
issued after the answer stay clear. Set the same margin on every signer.
"""

from __future__ import annotations

from .issuing import PlaybackRequest


def backdated(
    request: PlaybackRequest, now: float, margin: int, max_ttl: int
) -> tuple[PlaybackRequest, float]:
    """The request and issue time to sign with: ``not_before`` is now - margin, the expiry
    is now + ttl_seconds, capped at not_before + max_ttl."""
    if not margin:
        return request, now
    ttl = min(request.ttl_seconds + margin, max_ttl)
    return request.with_ttl(ttl), now - margin
