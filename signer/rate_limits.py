"""Signer rate limits: per API key, and per viewer (the session id, else the client address)."""

from __future__ import annotations

import ipaddress
import logging
import math

from edge_validator.core.errors import RateLimited, StoreUnavailable
from edge_validator.state.settings import FAIL_OPEN, RateLimit, StateSettings
from edge_validator.state.store import StateStore

from .issuing import PlaybackRequest

log = logging.getLogger("playgate.signer")


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
            # fail-closed: the outage itself is the answer, a 503 to retry shortly.
            raise StoreUnavailable("rate limits are unavailable; retry shortly") from None
        if wait > 0:
            raise RateLimited(f"too many requests for this {what}", max(1, math.ceil(wait)))

    async def check_caller(self, caller: str) -> None:
        await self._hit(f"key:{caller}", self.settings.api_key_rate, "API key")

    async def check_viewer(self, caller: str, request: PlaybackRequest) -> None:
        """Charge every viewer name the request gives: a fresh session id per request must not
        dodge the address's bucket. Only the API key's limit applies when none is given."""
        if request.session_id is not None:
            await self._hit(
                f"session:{caller}:{request.session_id}", self.settings.viewer_rate, "viewer"
            )
        if request.client_network is not None:
            network = address_bucket(request.client_network)
            await self._hit(f"ip:{caller}:{network}", self.settings.viewer_rate, "viewer")


# The unit a viewer holds: one IPv4 address; one IPv6 /64 (a subscriber line holds a whole /64,
# so per-address buckets would give every line 2^64 of them).
_UNIT = {4: 32, 6: 64}


def address_bucket(network: str) -> str:
    """The viewer a network names, whatever its width: the unit holding its first address.

    Keyed by the network's text, every wider CIDR around one address (``/31``, ``/30``, ...)
    had a fresh bucket; here every network starting at the same address, every spelling and
    every width, shares one.
    """
    parsed = ipaddress.ip_network(network)
    unit = _UNIT[parsed.version]
    return str(ipaddress.ip_network((parsed.network_address, unit), strict=False))
