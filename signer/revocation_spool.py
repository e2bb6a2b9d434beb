"""Revocations Redis could not take yet, kept on local disk until it does.

A revocation is the one write an operator cannot afford to lose during an outage: the token it
names keeps playing until it reaches the validators. When Redis is unreachable (or too few
replicas confirm the write), the signer appends the revocation to this spool, an append-only
file of JSON lines, fsyncs it, and answers ``202 Accepted`` with ``"queued": true``. A
background task in every signer process replays the spool in order as soon as Redis answers,
then empties it.

Several workers (``--workers N``) share one file: appends and the final truncation hold an
exclusive ``flock``; the replay itself runs without the lock, so an append never waits on
Redis. Replays are idempotent (a revocation written twice is the same revocation), so two
workers replaying the same lines, or a crash between a replay and the truncation, only writes
again. While the spool holds anything, new revocations join its end instead of going straight
to Redis: writes from this host reach Redis in the order they were made. Another host may
have revoked the same target meanwhile: Redis keeps the stronger of the two (the later
revoked_at, the later expiry; ``RedisRevocationLog.APPEND``), so a replay never narrows it.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from edge_validator.core.errors import StoreBusy, StoreUnavailable
from edge_validator.metrics import metrics
from edge_validator.state.revocations import Revocation
from edge_validator.state.store import StateStore

log = logging.getLogger("playgate.signer")
# How often a signer looks at the spool: a revocation reaches Redis this long after it is back.
REPLAY_INTERVAL = 0.5
# About 150,000 revocations. While Redis is unreachable nothing counts a key's revocations
# (its rate limit lives in Redis): the spool bounds itself, and past this a revocation is a 503.
MAX_SPOOL_BYTES = 16 * 1024 * 1024


class RevocationSpool:
    def __init__(
        self, path: Path, store: StateStore, clock: Callable[[], float] = time.time
    ) -> None:
        self.path = path
        self.store = store
        self.clock = clock
        self.last_error: str | None = None

    async def append(self, rev: Revocation) -> None:
        """Keep ``rev`` on disk (fsync'd) until a replay writes it to the store; StoreUnavailable
        when the spool is full."""
        pending = await asyncio.to_thread(self._append, rev.to_json() + "\n")
        if pending is None:
            raise StoreUnavailable("Redis cannot take revocations and the spool is full; retry")
        metrics().revocations_queued.set(pending)
        log.warning("revocation %s=%s queued (%d pending)", rev.kind, rev.value, pending)

    def holds_any(self) -> bool:
        try:
            return self.path.stat().st_size > 0
        except FileNotFoundError:
            return False

    def pending(self) -> int:
        """Revocations waiting in the spool (0 when it is empty or absent)."""
        try:
            with self.path.open("rb") as f:
                return sum(1 for line in f if line.endswith(b"\n"))
        except FileNotFoundError:
            return 0

    async def replay(self) -> int:
        """Write every spooled revocation to the store, in order; returns how many are left.

        Stops at the first failure (Redis still down, or busy: a flood fills the pool): the
        rest stays for the next try."""
        data = await asyncio.to_thread(self._read)
        now = self.clock()
        for line in data.splitlines():
            try:
                rev = Revocation.from_json(line)
            except (ValueError, KeyError, TypeError):
                log.error("dropping an unreadable line of the revocation spool %s", self.path)
                continue
            if rev.expires_at <= now:
                continue  # every token it could deny has expired
            try:
                await self.store.revoke(rev)
            except (StoreUnavailable, StoreBusy) as exc:
                self.last_error = exc.message
                return await asyncio.to_thread(self.pending)
            log.info("queued revocation %s=%s written to the store", rev.kind, rev.value)
        self.last_error = None
        left = await asyncio.to_thread(self._truncate_if_unchanged, len(data))
        metrics().revocations_queued.set(left)
        return left

    async def run(self) -> None:
        """Replay whenever the spool holds something, until cancelled. Nothing ends it: while
        the spool holds anything every new revocation joins it, so a dead task would queue
        them all for good."""
        while True:
            try:
                if self.holds_any():
                    await self.replay()
            except OSError as exc:  # a disk problem: say it each time
                log.error("revocation spool %s: %s", self.path, exc)
            except Exception:  # a client bug: the same
                log.exception("revocation spool %s: replay failed", self.path)
            await asyncio.sleep(REPLAY_INTERVAL)

    # --- file operations, run in a thread ------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self) -> Iterator[int]:
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield fd
        finally:
            os.close(fd)  # releases the lock

    def _append(self, line: str) -> int | None:
        data = line.encode()
        with self._locked() as fd:
            if os.fstat(fd).st_size + len(data) > MAX_SPOOL_BYTES:
                return None
            os.write(fd, data)
            os.fsync(fd)
        return self.pending()

    def _read(self) -> bytes:
        with self._locked() as fd:
            size = os.fstat(fd).st_size
            return os.pread(fd, size, 0)

    def _truncate_if_unchanged(self, replayed: int) -> int:
        """Empty the spool if nothing was appended since the replay read it."""
        with self._locked() as fd:
            if os.fstat(fd).st_size == replayed:
                os.ftruncate(fd, 0)
                os.fsync(fd)
                return 0
        return self.pending()
