"""Every worker writes its revocation view's size and age to the metrics once a second, so a
scrape answered by any worker sees all of them (see ``edge_validator.metrics``)."""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import AsyncIterator

from ..metrics import forget_dead_workers, metrics, worker_exiting
from ..state.guard import StateGuard

PERIOD = 1.0


def publish(guard: StateGuard) -> None:
    m = metrics()
    sync = guard.sync
    m.revocation_view_entries.set(len(sync.view))
    staleness = sync.staleness()
    m.revocation_view_staleness.set(staleness if math.isfinite(staleness) else math.inf)
    m.revocation_last_sync.set(sync.last_resync or 0.0)
    m.revocation_view_in_sync.set(1 if sync.healthy else 0)


async def _publish_forever(guard: StateGuard) -> None:
    while True:
        publish(guard)
        await asyncio.sleep(PERIOD)


@contextlib.asynccontextmanager
async def state_gauges(guard: StateGuard) -> AsyncIterator[None]:
    forget_dead_workers()
    task = asyncio.create_task(_publish_forever(guard), name="playgate-state-gauges")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        worker_exiting()
