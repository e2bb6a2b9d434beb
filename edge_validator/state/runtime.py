"""The validator's live state: the revocation view kept fresh, the stateful checks, health.

The hot path never waits on Redis for revocations: it reads ``RevocationView``. A background
listener applies pub/sub messages as they arrive, and a periodic full resync repairs anything
missed. While Redis is unreachable the failure policy decides whether the last view may still
be trusted (fail-open, up to ``max_staleness`` seconds) or not (fail-closed).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from ..decision import Grant
from ..errors import Revoked, StateUnavailable, TooManyStreams, UseLimitReached
from .revocations import Revocation, RevocationView
from .settings import FAIL_OPEN, StateSettings
from .store import StateStore, StoreUnavailable

log = logging.getLogger("playgate.state")
_RETRY_CAP = 2.0


class RevocationSync:
    """Keeps a RevocationView in step with the store and knows how fresh it is."""

    def __init__(
        self,
        store: StateStore,
        settings: StateSettings,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.settings = settings
        self.view = RevocationView()
        self.clock = clock
        self.monotonic = monotonic
        self.subscribed = False
        self.resync_ok = False
        self.synced_once = False
        self._warned_unsynced = False
        # Monotonic time when the view was last known complete; None while it still is.
        self.lost_at: float | None = monotonic()
        self.last_resync: float | None = None
        self._last_resync_mono = float("-inf")
        self.last_error: str | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False
        self._subscriptions = 0

    @property
    def healthy(self) -> bool:
        return self.subscribed and self.resync_ok

    def staleness(self) -> float:
        """Seconds since the view was last known complete (0 while it is)."""
        if self.healthy:
            return 0.0
        if not self.synced_once or self.lost_at is None:
            return float("inf")
        # A resync that worked while pub/sub was down still bounds the view's age.
        return self.monotonic() - max(self.lost_at, self._last_resync_mono)

    def trusted(self) -> bool:
        """May the hot path rely on the view right now? The failure policy, in one place."""
        if self.healthy:
            return True
        if self.settings.failure_policy != FAIL_OPEN or not self.synced_once:
            return False
        return (
            self.staleness() <= self.settings.max_staleness
            or self.settings.stale_fallback == "serve"
        )

    def _mark(self, *, subscribed: bool | None = None, resync_ok: bool | None = None) -> None:
        was = self.healthy
        if subscribed is not None:
            self.subscribed = subscribed
        if resync_ok is not None:
            self.resync_ok = resync_ok
        if was and not self.healthy:
            self.lost_at = self.monotonic()
            log.warning("revocation view lost its source: %s", self.last_error)
        elif self.healthy:
            if not was:
                log.info("revocation view in sync (%d entries)", len(self.view))
            self.lost_at = None

    def apply(self, rev: Revocation) -> None:
        self.view.add(rev)

    async def resync(self) -> None:
        now = self.clock()
        try:
            revocations = await self.store.revocations(now)
        except StoreUnavailable as exc:
            self.last_error = str(exc)
            if not self.synced_once and not self._warned_unsynced:
                # Never in sync yet: every request is denied until Redis answers. Say so once.
                log.warning("shared state unreachable, denying until the first sync: %s", exc)
                self._warned_unsynced = True
            self._mark(resync_ok=False)
            return
        except Exception as exc:  # a client bug must not end the resync loop
            log.exception("revocation resync failed")
            self.last_error = repr(exc)
            self._mark(resync_ok=False)
            return
        self.view.merge(revocations, now)
        self.synced_once = True
        self.last_resync = self.clock()
        self._last_resync_mono = self.monotonic()
        self._mark(resync_ok=True)

    async def _on_subscribed(self) -> None:
        self._subscriptions += 1
        self.subscribed = True
        await self.resync()

    async def _listen_forever(self) -> None:
        delay = 0.05
        while not self._stopping:
            before = self._subscriptions
            try:
                await self.store.listen(self.apply, self._on_subscribed)
            except StoreUnavailable as exc:
                self.last_error = str(exc)
            except Exception as exc:  # a client bug must not end the listener
                log.exception("revocation listener failed")
                self.last_error = repr(exc)
            self._mark(subscribed=False)
            # Back off while Redis stays unreachable; retry at once after a working session.
            delay = 0.05 if self._subscriptions > before else min(delay * 2, _RETRY_CAP)
            await asyncio.sleep(delay)

    async def _resync_forever(self) -> None:
        while not self._stopping:
            await asyncio.sleep(self.settings.resync_seconds)
            await self.resync()

    async def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._listen_forever(), name="playgate-revocation-listener"),
            asyncio.create_task(self._resync_forever(), name="playgate-revocation-resync"),
        ]
        # Serve with a complete view from the first request when Redis is up; don't hang when not.
        deadline = self.monotonic() + 2 * self.settings.call_budget + 0.5
        while not self.healthy and self.monotonic() < deadline:
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        self._stopping = True
        # Cancel until done: a cancellation that lands while redis-py's own read timeout fires
        # can surface as a timeout instead (Python 3.11), which the loops would retry.
        for _ in range(10):
            pending = [task for task in self._tasks if not task.done()]
            if not pending:
                break
            for task in pending:
                task.cancel()
            await asyncio.wait(pending, timeout=0.1)
        for task in self._tasks:
            if not task.done():
                # Closing the store's connections ends it; shutdown must not wait for that.
                log.warning("state task %s did not stop in time", task.get_name())
            elif not task.cancelled() and task.exception() is not None:
                log.warning("state task ended with %r", task.exception())
        self._tasks = []


class StateChecks:
    """The validator's stateful checks as Gate hooks, plus health for /healthz and /readyz."""

    # Gate asks this before letting tokens with use or stream limits through.
    enforces_limits = True

    def __init__(self, store: StateStore, settings: StateSettings) -> None:
        self.store = store
        self.settings = settings
        self.sync = RevocationSync(store, settings)

    async def __call__(self, grant: Grant, now: float) -> None:
        claims = grant.claims
        rev = self.sync.view.revoked(claims, now)
        if rev is not None:
            raise Revoked(f"revoked by {rev.kind}", token_id=claims.token_id)
        if not self.sync.trusted():
            raise StateUnavailable("revocation state is unavailable", token_id=claims.token_id)
        if claims.max_uses:
            await self._check_uses(grant, now)
        if claims.max_streams:
            await self._check_streams(grant)

    async def _check_uses(self, grant: Grant, now: float) -> None:
        claims = grant.claims
        try:
            used = await self.store.count_use(claims.token_id, claims.expires_at - now + 60)
        except StoreUnavailable as exc:
            # Never fail open here: a one-time link that cannot be counted is not one-time.
            log.warning("use count unavailable token_id=%s: %s", claims.token_id, exc)
            raise StateUnavailable("use counts are unavailable", token_id=claims.token_id) from None
        if used > claims.max_uses:
            raise UseLimitReached("the use limit is spent", token_id=claims.token_id)

    async def _check_streams(self, grant: Grant) -> None:
        claims = grant.claims
        owner = claims.user_id or f"token:{claims.token_id}"
        session = claims.session_id or claims.token_id
        try:
            ok = await self.store.claim_stream(
                owner, session, claims.max_streams, self.settings.stream_idle_seconds
            )
        except StoreUnavailable as exc:
            log.warning("stream count unavailable token_id=%s: %s", claims.token_id, exc)
            if self.settings.failure_policy == FAIL_OPEN and self.sync.trusted():
                return  # fail-open and the outage is young enough: let the stream play
            raise StateUnavailable(
                "stream counts are unavailable", token_id=claims.token_id
            ) from None
        if not ok:
            raise TooManyStreams("too many concurrent streams", token_id=claims.token_id)

    def health(self) -> dict[str, Any]:
        sync = self.sync
        staleness = sync.staleness()
        return {
            "backend": self.store.backend,
            "connected": sync.healthy,
            "failure_policy": self.settings.failure_policy,
            "revocations": len(sync.view),
            "view_staleness_seconds": None if staleness == float("inf") else round(staleness, 3),
            "last_resync": sync.last_resync,
            "last_error": None if sync.healthy else sync.last_error,
        }

    def ready(self) -> bool:
        return self.sync.trusted()

    async def start(self) -> None:
        await self.sync.start()

    async def stop(self) -> None:
        await self.sync.stop()
        await self.store.close()


def build_store(settings: StateSettings) -> StateStore:
    """In-memory without Redis settings; Redis (imported only then) with them."""
    if not settings.uses_redis:
        from .memory import MemoryStore

        return MemoryStore()
    from .redis_store import RedisStore

    return RedisStore(settings)
