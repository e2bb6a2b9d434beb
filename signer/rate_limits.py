"""Signer rate limits: per API key, and per viewer (the session id, else the client address);
revocations per API key.

One check per request, after it is parsed: the API key's bucket and the viewer's buckets are
counted together, all or nothing, in one store call (one Redis round trip). A request that is
refused, by any limit or for bad input, counts in no bucket.
"""

from __future__ import annotations

import collections
import logging
import math
import time
from typing import TYPE_CHECKING

from edge_validator.core.errors import RateLimited, StoreUnavailable
from edge_validator.state.settings import FAIL_OPEN, StateSettings
from edge_validator.state.store import RateBucket, StateStore

from .viewers import address_bucket

if TYPE_CHECKING:
    from .issuing import PlaybackRequest

log = logging.getLogger("playgate.signer")
API_KEY_BUCKET = "key"
REVOCATIONS_BUCKET = "revocations"


class RateLimiter:
    def __init__(self, store: StateStore, settings: StateSettings) -> None:
        self.store = store
        self.settings = settings
        self._outage_log = _LocalLog()

    def buckets(self, request: PlaybackRequest) -> list[RateBucket]:
        """The API key's bucket and every viewer name the request gives: a fresh session id per
        request must not dodge the address's bucket. Only the API key's applies when none is
        given. A limit of 0 is off."""
        key, viewer = self.settings.api_key_rate, self.settings.viewer_rate
        out: list[RateBucket] = []
        if key.limit:
            out.append((API_KEY_BUCKET, key.limit, key.window))
        if viewer.limit:
            if request.session_id is not None:
                out.append((f"session:{request.session_id}", viewer.limit, viewer.window))
            if request.client_network is not None:
                # parse_playback_request gives the unit; a request built by hand is parsed here.
                unit = request.client_unit or address_bucket(request.client_network)
                out.append((f"ip:{unit}", viewer.limit, viewer.window))
        return out

    async def check(self, caller: str, request: PlaybackRequest) -> None:
        """Count this request for ``caller`` and its viewer; RateLimited when a limit is spent."""
        buckets = self.buckets(request)
        if not buckets:
            return
        try:
            wait, worst = await self.store.hit_rate(caller, buckets)
        except StoreUnavailable as exc:
            log.warning("rate limits unchecked: %s", exc)
            if self.settings.failure_policy == FAIL_OPEN:
                return
            # fail-closed: the outage itself is the answer, a 503 to retry shortly.
            raise StoreUnavailable("rate limits are unavailable; retry shortly") from None
        if wait > 0:
            what = "API key" if buckets[worst][0] == API_KEY_BUCKET else "viewer"
            raise RateLimited(f"too many requests for this {what}", max(1, math.ceil(wait)))

    async def check_revocation(self, caller: str) -> None:
        """Count one revocation for ``caller``; RateLimited when its limit is spent. With Redis
        unreachable the revocation goes to the spool (or is a 503), counted meanwhile by this
        process (``_LocalLog``): a limit that gave way in an outage would let one key fill the
        spool (everyone's revocations then 503) and, once Redis is back, every validator."""
        rate = self.settings.revocation_rate
        if not rate.limit:
            return
        try:
            wait, _ = await self.store.hit_rate(
                caller, [(REVOCATIONS_BUCKET, rate.limit, rate.window)]
            )
        except StoreUnavailable as exc:
            log.warning("revocation rate limit counted by this process: %s", exc)
            wait = self._outage_log.hit(caller, rate.limit, rate.window, time.monotonic())
        if wait > 0:
            raise RateLimited("too many revocations for this API key", max(1, math.ceil(wait)))


class _LocalLog:
    """Sliding logs in this process's memory, one per caller (API keys: a bounded set): the
    revocation limit while Redis cannot count it. Each process counts its own, so with N
    workers a key gets at most N times its limit, never an unbounded number."""

    def __init__(self) -> None:
        self._logs: dict[str, collections.deque[float]] = {}

    def hit(self, caller: str, limit: int, window: float, now: float) -> float:
        """Seconds to wait before ``caller`` may make another (0: counted now)."""
        times = self._logs.setdefault(caller, collections.deque())
        while times and times[0] <= now - window:
            times.popleft()
        if len(times) >= limit:
            return times[0] + window - now
        times.append(now)
        return 0.0
