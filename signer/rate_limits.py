"""Signer rate limits: per API key, and per viewer (the session id, else the client address).

One check per request, after it is parsed: the API key's bucket and the viewer's buckets are
counted together, all or nothing, in one store call (one Redis round trip). A request that is
refused, by any limit or for bad input, counts in no bucket.
"""

from __future__ import annotations

import ipaddress
import logging
import math

from edge_validator.core.errors import RateLimited, StoreUnavailable
from edge_validator.state.settings import FAIL_OPEN, StateSettings
from edge_validator.state.store import RateBucket, StateStore

from .issuing import PlaybackRequest

log = logging.getLogger("playgate.signer")
API_KEY_BUCKET = "key"


class RateLimiter:
    def __init__(self, store: StateStore, settings: StateSettings) -> None:
        self.store = store
        self.settings = settings

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
                network = address_bucket(request.client_network)
                out.append((f"ip:{network}", viewer.limit, viewer.window))
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
