"""This host's clock against Redis's (``TIME``): the one clock every process can compare with.

Tokens carry absolute times. A validator whose clock runs behind the signer's refuses fresh
URLs (``not_yet_valid``) once the gap passes the leeway plus the signer's not-before margin; one
that runs ahead cuts every token short by the gap. Neither shows up anywhere but in viewers'
403s, so every process measures its offset from Redis's clock at start-up and every minute, and
warns (log line, ``playgate_clock_skew_seconds``) past ``PLAYGATE_CLOCK_SKEW_WARNING``.

Redis is a reference, not the truth: two hosts that both differ from it by less than the
threshold differ from each other by less than twice the threshold.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from ..core.errors import StoreBusy, StoreUnavailable
from ..metrics import metrics
from .store import StateStore

log = logging.getLogger("playgate.state")
CHECK_INTERVAL = 60.0


class ClockSkew:
    def __init__(
        self,
        store: StateStore,
        threshold: float,
        clock: Callable[[], float] = time.time,
        interval: float = CHECK_INTERVAL,
    ) -> None:
        self.store = store
        self.threshold = threshold
        self.clock = clock
        self.interval = interval
        # Seconds this host's clock is ahead of Redis's (negative: behind); None: not measured.
        self.offset: float | None = None

    async def check(self) -> float | None:
        """Measure the offset once (None when the store has no clock of its own, or is down)."""
        before = self.clock()
        try:
            server = await self.store.server_time()
        except (StoreUnavailable, StoreBusy):
            # The sync reports an outage; a flood is no reason to stop watching. The last
            # figure still stands.
            return self.offset
        after = self.clock()
        if server is None:
            return None
        # The server read its clock somewhere in the round trip: compare with the midpoint.
        self.offset = (before + after) / 2 - server
        metrics().clock_skew.set(abs(self.offset))
        if abs(self.offset) > self.threshold:
            where = "ahead of" if self.offset > 0 else "behind"
            log.warning(
                "this host's clock is %.3f s %s Redis's (PLAYGATE_CLOCK_SKEW_WARNING=%s): "
                "tokens may be refused as not_yet_valid or cut short; check NTP",
                abs(self.offset),
                where,
                self.threshold,
            )
        return self.offset

    async def run(self) -> None:
        """Check now and then every ``interval`` until cancelled (at once done in memory: this
        process's own clock, nothing to compare)."""
        while await self.check() is not None or self.store.backend != "memory":
            await asyncio.sleep(self.interval)
