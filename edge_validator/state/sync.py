"""The revocation view kept fresh from the store, and how far it may be trusted.

The hot path never waits on Redis for revocations: it reads ``RevocationView``. A background
listener applies published notices as they arrive; each carries its number in the revocation
log (``revocation_log``), so a gap is seen at once and the catch-up task reads only what came
after the last number held, a page at a time (a cold start is the same read from 0), parsing
each page in chunks between which requests run. The catch-up also runs after every
(re)subscription and every ``resync_seconds``, which repairs a lost last message. While Redis
is unreachable the failure policy decides whether the last view may still be trusted
(fail-open, up to ``max_staleness`` seconds) or not (fail-closed). When the store lost its data
(another epoch, numbers going backwards, or the last entry it read gone or renumbered lower:
Redis came back from an older snapshot) the validator writes back what it holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from ..core.errors import StoreBusy, StoreUnavailable
from ..metrics import metrics
from .revocation_log import PAGE, WINDOWS, Changes, Epoch, Notice, parse_revocations
from .revocations import Revocation, RevocationView
from .settings import FAIL_OPEN, StateSettings
from .store import StateStore

log = logging.getLogger("playgate.state")
_RETRY_CAP = 2.0
# Documents parsed between two yields to the event loop (about a millisecond of work).
_CHUNK = 256
# Expired view entries dropped per catch-up: bounded work on the event loop.
_PRUNE = 10_000
# An anchor this close to its expiry may have been pruned by a writer whose clock runs ahead of
# this host's: not a loss. Wide, because a false alarm marks a data loss for the whole fleet
# (one-time links refused); a real one hides only if the anchor expires within it.
_ANCHOR_MARGIN = 600.0


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
        # Where the view stands in the store's log: its epoch and the last number held.
        self.epoch: Epoch | None = None
        self.seq = 0
        # The highest-numbered entry held (target, number, expiry). A catch-up reads after its
        # number, not after ``seq``, and asks whether the log still holds it there: Redis back
        # from an older snapshot hands out the lost numbers again, and new writes can pass
        # ``seq`` before this view catches up, so only the last entry read tells.
        self.anchor: tuple[str, int, float] | None = None
        self.data_losses = 0
        self.last_data_loss: float | None = None
        self._catching_up = asyncio.Lock()
        self._wake = asyncio.Event()

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

    def apply(self, notice: Notice) -> None:
        """A published revocation: into the view at once; a gap in the numbers (or another
        epoch) wakes the catch-up."""
        self.view.add(notice.rev)
        in_step = self.epoch is not None and notice.epoch == self.epoch.id
        if in_step and notice.seq == self.seq + 1 and not self._catching_up.locked():
            self.seq = notice.seq
            self.anchor = (notice.rev.member, notice.seq, notice.rev.expires_at)
        elif not in_step or notice.seq > self.seq:
            self._wake.set()

    async def resync(self) -> None:
        """Catch up with the store's log; record whether it worked."""
        async with self._catching_up:
            try:
                await self._catch_up()
            except (StoreUnavailable, StoreBusy) as exc:
                self.last_error = str(exc)
                if not self.synced_once and not self._warned_unsynced:
                    # Never in sync yet: every request is denied until Redis answers. Say so once.
                    log.warning(
                        "shared state unreachable, denying until the first sync: %s"
                        " (start redis-server or fix REDIS_URL; retrying)",
                        exc,
                    )
                    self._warned_unsynced = True
                self._mark(resync_ok=False)
                return
            except Exception as exc:  # a client bug must not end the catch-up loop
                log.exception("revocation catch-up failed")
                self.last_error = repr(exc)
                self._mark(resync_ok=False)
                return
        self.synced_once = True
        self.last_resync = self.clock()
        self._last_resync_mono = self.monotonic()
        self._mark(resync_ok=True)

    async def _catch_up(self) -> None:
        while True:
            anchor = self.anchor
            after = min(anchor[1], self.seq) if anchor else self.seq
            changes = await self.store.changes(after, anchor=anchor[0] if anchor else "")
            if self._lost(changes) or self._anchor_lost(changes):
                await self._recover(changes.epoch)
                continue
            self.epoch = changes.epoch
            self._advance(changes, await self._absorb(changes.docs))
            self.seq = changes.next_after
            if not changes.more:
                break
            if not await self._read_windows(changes.head):
                continue  # the store lost its data meanwhile: start over
        self.view.prune(self.clock(), _PRUNE)

    async def _read_windows(self, head: int) -> bool:
        """Far behind (a cold start): read up to ``head`` in windows of a page, many per round
        trip. False when the store lost its data meanwhile."""
        while self.seq < head:
            upto = min(head, self.seq + PAGE * WINDOWS)
            pages = await self.store.windows(self.seq, upto)
            for page in pages:
                if self._lost(page):
                    await self._recover(page.epoch)
                    return False
                self._advance(page, await self._absorb(page.docs))
            self.seq = upto
        return True

    def _lost(self, changes: Changes) -> bool:
        """The store lost its data: another epoch, or its numbers went backwards."""
        held = self.epoch
        return held is not None and (
            changes.epoch.id != held.id or (changes.next_after < self.seq and not changes.more)
        )

    def _anchor_lost(self, changes: Changes) -> bool:
        """The store came back from an older copy: the last entry read is gone though still
        live, or numbered lower than when it was read (within one epoch id)."""
        anchor = self.anchor
        if anchor is None:
            return False
        _, seq, expires_at = anchor
        if changes.anchor is None:
            return expires_at > self.clock() + _ANCHOR_MARGIN
        return changes.anchor < seq

    def _advance(self, changes: Changes, last: Revocation | None) -> None:
        """The page's last entry becomes the anchor (when it parsed)."""
        if changes.last is not None and last is not None and last.member == changes.last[0]:
            self.anchor = (last.member, changes.last[1], last.expires_at)

    async def _absorb(self, docs: list[str]) -> Revocation | None:
        """Parse and add a page in chunks, yielding between them: a cold start of a million
        entries never holds the event loop for more than a chunk. Returns the last entry."""
        now = self.clock()
        last = None
        for i in range(0, len(docs), _CHUNK):
            for rev in parse_revocations(docs[i : i + _CHUNK]):
                last = rev
                if rev.expires_at > now:
                    self.view.add(rev)
            await asyncio.sleep(0)
        return last

    async def _recover(self, epoch: Epoch) -> None:
        """Redis lost revocations: write back every live one this view holds, so validators
        started since learn them too, then read the new epoch from its start."""
        assert self.epoch is not None
        lost = self.epoch.id
        now = self.clock()
        live = [rev for rev in self.view if rev.expires_at > now]
        log.error(
            "REDIS LOST ITS REVOCATION DATA (epoch %s, now %s): writing back the %d live "
            "revocations this validator holds; use counts made before are gone (one-time "
            "links issued before are refused); run Redis with persistence (docs/redis.md)",
            lost,
            epoch.id,
            len(live),
        )
        self.data_losses += 1
        self.last_data_loss = self.clock()
        metrics().state_data_losses.inc()
        written = await self.store.restore(live, lost)
        log.warning("wrote back %d revocations Redis had lost", written)
        self.epoch, self.seq, self.anchor = None, 0, None

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
            except (StoreUnavailable, StoreBusy) as exc:
                self.last_error = str(exc)
            except Exception as exc:  # a client bug must not end the listener
                log.exception("revocation listener failed")
                self.last_error = repr(exc)
            self._mark(subscribed=False)
            # Back off while Redis stays unreachable; retry at once after a working session.
            delay = 0.05 if self._subscriptions > before else min(delay * 2, _RETRY_CAP)
            await asyncio.sleep(delay)

    async def _resync_forever(self) -> None:
        retry = 0.1
        while not self._stopping:
            # A gap seen by the listener wakes it at once; else a periodic check for a lost
            # last message, one cheap read when nothing is new.
            period = self.settings.resync_seconds
            if not self.resync_ok:
                # A failed page: resume soon where it stopped, backing off while it keeps failing.
                period = min(period, retry)
                retry = min(retry * 2, _RETRY_CAP)
            else:
                retry = 0.1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), period)
            self._wake.clear()
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
