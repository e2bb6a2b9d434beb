"""The one interface both state backends (in-memory and Redis) implement."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

from .revocation_log import PAGE, Changes, Notice
from .revocations import Revocation
from .settings import StateSettings

OnRevocation = Callable[[Notice], None]
OnSubscribed = Callable[[], Awaitable[None]]
# One rate-limit bucket: (name, limit, window seconds).
RateBucket = tuple[str, int, int]
# Seconds until a refused request may be retried (0: accepted), and the index of the bucket
# that refused it (the one that frees last).
RateVerdict = tuple[float, int]


class StateStore(Protocol):
    backend: str

    async def revoke(self, rev: Revocation) -> int:
        """Store a revocation until it expires and tell every listener; returns its sequence
        number in the revocation log (Redis: 0 when it already held a stronger revocation of
        the target, which it keeps: a late write never narrows one)."""

    async def revocations(self, now: float) -> list[Revocation]:
        """Every revocation still live at ``now``."""

    async def changes(self, after: int, limit: int = PAGE, anchor: str = "") -> Changes:
        """One page of the revocation log: the entries numbered after ``after``, and the number
        the log holds for the target ``anchor`` (``Changes.anchor``)."""

    async def windows(self, after: int, upto: int) -> list[Changes]:
        """The log's entries numbered in (after, upto], a page per window of ``PAGE`` numbers,
        fetched in one round trip (a reader far behind)."""

    async def restore(self, revs: Sequence[Revocation], lost_epoch: str) -> int:
        """Write back revocations the store lost (those it does not hold) and mark its epoch as
        the replacement of ``lost_epoch``; returns how many were written."""

    async def count_use(self, token_id: str, ttl: float) -> int:
        """Count one use of a token; returns the uses so far, this one included."""

    async def claim_stream(self, owner: str, session: str, limit: int, idle: float) -> bool:
        """Mark ``session`` of ``owner`` active; False when it would exceed ``limit``."""

    async def hit_rate(self, group: str, buckets: Sequence[RateBucket]) -> RateVerdict:
        """Count one request in every bucket of ``group`` at once, all or nothing: accepted
        when each has room (then each counts it), else refused and counted by none. A sliding
        log: no bucket ever accepts more than its limit (≥ 1) in any window of its length."""

    async def listen(self, on_revocation: OnRevocation, on_subscribed: OnSubscribed) -> None:
        """Deliver published notices until the connection is lost or stops answering (then
        raise StoreUnavailable).

        ``on_subscribed`` runs once the subscription is live, so a resync made then misses
        nothing published later.
        """

    async def ping(self) -> None: ...

    async def server_time(self) -> float | None:
        """The store's clock (unix seconds), or None when it is this process's own."""

    async def close(self) -> None: ...


def build_store(settings: StateSettings) -> StateStore:
    """In-memory without Redis settings; Redis (imported only then) with them."""
    if not settings.uses_redis:
        from .memory import MemoryStore

        return MemoryStore()
    from .redis_store import RedisStore

    return RedisStore(settings)
