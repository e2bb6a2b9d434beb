"""A revocation is acknowledged only once enough replicas hold it (``WAIT``).

Redis replicates asynchronously: the primary answers a write before any replica has it, and a
Sentinel failover promotes a replica that may not. Worse, during a failover redis-py keeps
writing to the old primary until Sentinel demotes it, and the demotion discards those writes
(measured: 109 of 109 revocations acknowledged in that window were gone).

``WAIT n timeout`` blocks until ``n`` replicas acknowledge every earlier write *of the same
connection*. The revocation was written on some pooled connection, so ``confirm`` writes a small
marker and waits on one pinned connection (a pipeline): the marker comes after the revocation in
the primary's replication stream, so a replica that acknowledged the marker holds the
revocation too. An old primary cut off by a failover has no replica left: ``WAIT`` answers 0 and
the write is refused (``NotReplicated``) instead of acknowledged. Sentinel promotes the replica
with the largest replication offset, so one acknowledging replica is enough for the promoted
one to hold the write.

The wait is bounded by the read timeout (``PLAYGATE_REDIS_TIMEOUT``): replicas on a healthy
network acknowledge in about a millisecond. It is sent as a few short ``WAIT``s in the same
pipeline, so that no single answer comes close to the client's socket timeout on a loaded host
(once the replicas have confirmed, the later ones answer at once). ``RedisStore.revoke`` calls
``confirm`` inside its guard, which bounds the whole write and turns client errors into
``StoreUnavailable`` (only ``redis_store`` imports redis).
"""

from __future__ import annotations

from typing import Any

from ..core.errors import NotReplicated
from ..metrics import metrics
from .settings import StateSettings

# WAIT blocks for at most 80 % of the read timeout in all, in slices of a fifth of it: each
# answer then arrives well before the client's socket timeout fires.
_WAIT_SLICES = 4
_SLICE_SHARE = 0.2
_MARKER_TTL_MS = 60_000


class Durability:
    """Confirms that writes made before ``confirm`` reached ``replicas`` replicas."""

    def __init__(self, settings: StateSettings, marker_key: str) -> None:
        """``marker_key``: a key in the same hash slot as the writes it vouches for."""
        self.replicas = settings.replicas_to_wait
        self.marker_key = marker_key
        self.slice_ms = max(1, int(settings.timeout * _SLICE_SHARE * 1000))

    async def confirm(self, client: Any) -> None:
        """Return when enough replicas hold every earlier write; else raise NotReplicated."""
        if not self.replicas:
            return
        # One pipeline: one connection, so WAIT counts the marker written just before.
        pipe = client.pipeline(transaction=False)
        pipe.set(self.marker_key, "1", px=_MARKER_TTL_MS)
        for _ in range(_WAIT_SLICES):
            pipe.execute_command("WAIT", self.replicas, self.slice_ms)
        acked = max(int(n) for n in (await pipe.execute())[1:])
        if acked < self.replicas:
            metrics().writes_not_replicated.inc()
            waited = _WAIT_SLICES * self.slice_ms
            raise NotReplicated(f"{acked} of {self.replicas} replicas confirmed within {waited} ms")
