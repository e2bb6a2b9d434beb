"""The embedded default: state in this process's memory, enough for one process and the demo."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Sequence, Sized

from .revocation_log import PAGE, Changes, Epoch, Notice, new_epoch_id
from .revocations import Revocation, RevocationView
from .store import OnRevocation, OnSubscribed, RateBucket, RateVerdict


class MemoryStore:
    backend = "memory"

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._revocations = RevocationView()
        # The log: target -> (sequence number, revocation), kept in number order (a target
        # written again moves to the end). The epoch never changes: this memory dies with it.
        self._log: dict[str, tuple[int, Revocation]] = {}
        self._seq = 0
        self._epoch = Epoch(new_epoch_id(), clock())
        self._listeners: list[OnRevocation] = []
        self._uses: dict[str, tuple[int, float]] = {}
        self._streams: dict[str, dict[str, float]] = {}
        # (group, bucket) -> (window, times of the requests it accepted in its last window)
        self._rates: dict[tuple[str, str], tuple[int, deque[float]]] = {}
        self._calls: dict[str, int] = {}

    async def revoke(self, rev: Revocation) -> int:
        seq = self._append(rev)
        notice = Notice(rev, seq, self._epoch.id)
        for listener in self._listeners:
            listener(notice)
        return seq

    def _append(self, rev: Revocation) -> int:
        now = self._clock()
        self._revocations.prune(now)
        if len(self._log) > 2 * len(self._revocations) + 1024:  # amortized: rarely a full walk
            for member in [m for m, (_, r) in self._log.items() if r.expires_at <= now]:
                del self._log[member]
        self._revocations.add(rev)
        self._seq += 1
        self._log.pop(rev.member, None)
        self._log[rev.member] = (self._seq, rev)
        return self._seq

    async def revocations(self, now: float) -> list[Revocation]:
        self._revocations.prune(now)
        return self._revocations.entries()

    async def changes(self, after: int, limit: int = PAGE, anchor: str = "") -> Changes:
        page = self._range(after, self._seq, limit)
        held = self._log.get(anchor) if anchor else None
        return page._replace(anchor=held[0]) if held else page

    async def windows(self, after: int, upto: int) -> list[Changes]:
        return [
            self._range(start, min(start + PAGE, upto), PAGE) for start in range(after, upto, PAGE)
        ]

    def _range(self, after: int, upto: int, limit: int) -> Changes:
        page = [(seq, rev) for seq, rev in self._log.values() if after < seq <= upto][:limit]
        more = len(page) == limit
        next_after = page[-1][0] if more else upto
        docs = [rev.to_json() for _, rev in page]
        last = (page[-1][1].member, page[-1][0]) if page else None
        return Changes(self._epoch, next_after, docs, more, self._seq, last)

    async def restore(self, revs: Sequence[Revocation], lost_epoch: str) -> int:
        missing = [rev for rev in revs if rev.member not in self._log]
        for rev in missing:
            self._append(rev)
        return len(missing)

    async def count_use(self, token_id: str, ttl: float) -> int:
        now = self._clock()
        if self._sweep_due("uses", self._uses):
            _drop_expired(self._uses, now)
        count, expires = _live(self._uses.get(token_id), now, now + ttl)
        self._uses[token_id] = (count + 1, expires)
        return count + 1

    async def claim_stream(self, owner: str, session: str, limit: int, idle: float) -> bool:
        now = self._clock()
        if self._sweep_due("streams", self._streams):
            for key in [k for k, s in self._streams.items() if max(s.values()) <= now - idle]:
                del self._streams[key]
        sessions = self._streams.setdefault(owner, {})
        for sid in [s for s, seen in sessions.items() if seen <= now - idle]:
            del sessions[sid]
        if session not in sessions and len(sessions) >= limit:
            return False
        sessions[session] = now
        return True

    async def hit_rate(self, group: str, buckets: Sequence[RateBucket]) -> RateVerdict:
        # The sliding log of RedisStore.HIT_RATE, with this process's clock.
        now = self._clock()
        if self._sweep_due("rates", self._rates):
            # Empty logs too: a bucket made for a request that another bucket refused.
            for key in [k for k, (w, t) in self._rates.items() if not t or t[-1] <= now - w]:
                del self._rates[key]
        logs = []
        wait, worst = 0.0, 0
        for i, (name, limit, window) in enumerate(buckets):
            entry = self._rates.get((group, name))
            if entry is None:
                entry = self._rates[group, name] = (window, deque())
            times = entry[1]
            while times and times[0] <= now - window:
                times.popleft()
            if len(times) >= limit:
                free = times[len(times) - limit] + window - now
                if free > wait:
                    wait, worst = free, i
            logs.append(times)
        if wait > 0:
            return wait, worst
        for times in logs:
            times.append(now)
        return 0.0, 0

    async def listen(self, on_revocation: OnRevocation, on_subscribed: OnSubscribed) -> None:
        self._listeners.append(on_revocation)
        try:
            await on_subscribed()
            await asyncio.Event().wait()  # in-process: delivered synchronously by revoke()
        finally:
            self._listeners.remove(on_revocation)

    async def ping(self) -> None:
        return None

    async def server_time(self) -> float | None:
        return None  # this process's own clock: no skew to measure

    async def close(self) -> None:
        return None

    def _sweep_due(self, name: str, table: Sized) -> bool:
        """Every 256th call per table, once it is large: cleanup amortized over many calls keeps
        each table bounded by what is live. One counter per table, so calls to one table never
        starve another's cleanup."""
        calls = self._calls.get(name, 0) + 1
        self._calls[name] = calls
        return len(table) > 1024 and calls % 256 == 0


def _drop_expired(table: dict[str, tuple[int, float]], now: float) -> None:
    for key in [k for k, (_, until) in table.items() if until <= now]:
        del table[key]


def _live(entry: tuple[int, float] | None, now: float, fresh_until: float) -> tuple[int, float]:
    """A counter and its end, restarted when it has run out."""
    if entry is None or entry[1] <= now:
        return 0, fresh_until
    return entry
