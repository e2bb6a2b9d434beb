"""Signer rate limits: per API key, and per viewer (the session id, else the client address)."""

from __future__ import annotations

import logging
import math

from edge_validator.state.settings import FAIL_OPEN, RateLimit, StateSettings
from edge_validator.state.store import StateStore, StoreUnavailable

from .errors import RateLimited
from .issuing import PlaybackRequest

log = logging.getLogger("playgate.signer")


class StateBusy(RateLimited):
    """Rate limits cannot be checked right now and the policy is fail-closed."""

    reason = "state_unavailable"


class RateLimiter:
    def __init__(self, store: StateStore, settings: StateSettings) -> None:
        self.store = store
        self.settings = settings

    async def _hit(self, bucket: str, rate: RateLimit, what: str) -> None:
        if rate.limit == 0:
            return
        try:
            wait = await self.store.hit_rate(bucket, rate.limit, rate.window)
        except StoreUnavailable as exc:
            log.warning("rate limit unchecked (%s): %s", bucket.split(":")[0], exc)
            if self.settings.failure_policy == FAIL_OPEN:
                return
            raise StateBusy("rate limits are unavailable; retry shortly", 1) from None
        if wait > 0:
            raise RateLimited(f"too many requests for this {what}", max(1, math.ceil(wait)))

    async def check_caller(self, caller: str) -> None:
        await self._hit(f"key:{caller}", self.settings.api_key_rate, "API key")

    async def check_viewer(self, caller: str, request: PlaybackRequest) -> None:
        if request.session_id is not None:
            bucket = f"session:{caller}:{request.session_id}"
        elif request.client_network is not None:
            bucket = f"ip:{caller}:{request.client_network}"
        else:
            return  # no viewer named: only the API key's limit applies
        await self._hit(bucket, self.settings.viewer_rate, "viewer")
