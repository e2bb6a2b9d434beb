"""The Redis backend (redis-py asyncio): a single server, Sentinel or a Redis Cluster.

Every key that one script touches shares a hash tag (``{...}``), so each script stays in one
cluster slot. Scripts are class constants registered once; all time inside them is Redis's own
clock (``TIME``), so validators with skewed clocks agree on windows and idle times.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import math
import secrets
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import MaxConnectionsError, RedisClusterException, RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ..core.errors import StoreBusy, StoreUnavailable
from ..metrics import metrics
from .durability import Durability
from .pubsub_reader import SubscriptionReader
from .rate_batch import RateBatch
from .redis_revocations import RedisRevocationLog
from .revocation_log import PAGE, Changes, Notice, parse_revocations
from .revocations import Revocation
from .settings import StateSettings
from .store import OnRevocation, OnSubscribed, RateBucket, RateVerdict

# What the client raises when Redis cannot answer. The cluster client reports a cluster it cannot
# reach (or a slot no node covers) with RedisClusterException, which is not a RedisError.
_CLIENT_ERRORS = (RedisError, RedisClusterException, OSError, TimeoutError)

log = logging.getLogger("playgate.state")
# A quiet subscription is probed this often (seconds); see RedisStore._deliver.
HEARTBEAT = 1.0
HEARTBEAT_MESSAGE = "playgate-heartbeat"
_GRACE = 0.02
# After a notice, the listener lets the next ones gather this long (seconds) before it reads
# again: at 100 a second, ten wake-ups instead of a hundred, which were most of a steady sync's
# CPU (docs/redis.md). A notice after a quiet spell is applied at once; one in a stream of them
# waits at most this long.
COALESCE = 0.1
_SYNC_CONNECTIONS = 4
_RESTORE_BATCH = 200


class RedisStore:
    backend = "redis"

    # KEYS[1] use counter of one token
    # ARGV[1] milliseconds until the token expires (the counter lives as long)
    # Returns the number of uses, this one included.
    COUNT_USE = """
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return n
"""

    # KEYS[1] sorted set: one owner's active sessions -> last seen (ms, Redis clock)
    # ARGV[1] session, ARGV[2] idle ms after which a session no longer counts, ARGV[3] limit
    # Returns 1 when the session may play (already active, or a free slot), else 0.
    CLAIM_STREAM = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[2]))
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then return 0 end
end
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
"""

    # KEYS[k] sorted set, one rate-limit bucket: accepted request -> Redis time (µs)
    # ARGV[r] request r: "member k:limit:window_ms k:limit:window_ms ...", its member unique
    # to it, then each bucket it is counted in (KEYS[k]).
    # Returns {wait_1, worst_1, wait_2, worst_2, ...}, one pair per request in order: {0, 0}
    # when every bucket of the request has room (it is then recorded in each), else the µs
    # until all of them would and the place (from 0) of the bucket that frees last, and
    # nothing is recorded: a refused request costs no slot.
    # An exact sliding log, not a fixed window (which let 2 x limit through across a window
    # boundary), nor a sliding-window counter (it estimates from the previous window and can
    # overshoot) or GCRA (a full burst, then the steady rate, passes up to 2 x limit in one
    # window): here no window of a bucket's length ever holds more than its limit. Memory: at
    # most `limit` entries per bucket, each gone one window after its request. Several
    # requests per call (rate_batch.py): the requests in flight share one call and its TIME.
    HIT_RATE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local out, pruned = {}, {}
for r = 1, #ARGV do
  local member, specs = string.match(ARGV[r], '^(%S+)(.*)$')
  local buckets, wait, worst = {}, 0, 0
  for k, limit, window in string.gmatch(specs, ' (%d+):(%d+):(%d+)') do
    local key, lim, win = KEYS[tonumber(k)], tonumber(limit), tonumber(window)
    if not pruned[key] then
      redis.call('ZREMRANGEBYSCORE', key, '-inf', now - win * 1000)
      pruned[key] = true
    end
    local n = redis.call('ZCARD', key)
    if n >= lim then
      local oldest = redis.call('ZRANGE', key, n - lim, n - lim, 'WITHSCORES')
      local free = tonumber(oldest[2]) + win * 1000 - now
      if free > wait then wait, worst = free, #buckets end
    end
    buckets[#buckets + 1] = {key, window}
  end
  if wait == 0 then
    for _, b in ipairs(buckets) do
      redis.call('ZADD', b[1], now, member)
      redis.call('PEXPIRE', b[1], b[2])
    end
  end
  out[#out + 1] = wait
  out[#out + 1] = worst
end
return out
"""

    def __init__(self, settings: StateSettings) -> None:
        self.settings = settings
        # Request traffic (counts, streams, rate limits, writes) on a pool that waits; the
        # revocation sync and its subscription on a client of their own, so a flood of requests
        # can never starve them (nor make them look like an outage).
        self.client, extra = connect(settings, requests=True)
        self.sync_client, sync_extra = connect(settings, requests=False)
        self._extra = [self.sync_client, *extra, *sync_extra]
        p = settings.key_prefix
        self.log = RedisRevocationLog(self.client, p)
        self.channel = f"{p}:revocations"
        self._prefix = p
        self._count_use = self.client.register_script(self.COUNT_USE)
        self._claim_stream = self.client.register_script(self.CLAIM_STREAM)
        self._hit_rate = self.client.register_script(self.HIT_RATE)
        self._rate_member_prefix = secrets.token_hex(8) + ":"
        self._rate_batch = RateBatch(self.client, self._hit_rate, self._guard)
        self._rate_members = itertools.count()
        self._scripts = (*self.log.scripts, self._count_use, self._claim_stream, self._hit_rate)
        self._warm = False
        self._warming = asyncio.Lock()
        self._durability = Durability(settings, f"{p}:{{revocations}}:durable")

    async def _warm_up(self) -> None:
        """Connect and load every script once, before concurrent callers race to do both.

        (redis-py's cluster client breaks connections when many first calls initialize it and
        reload scripts at the same time.) Scripts live on the server: one load serves both
        clients.
        """
        async with self._warming:
            if self._warm:
                return
            for client in (self.client, self.sync_client):
                if hasattr(client, "initialize"):
                    await client.initialize()
            for script in self._scripts:
                script.sha = await self.client.script_load(script.script)
            self._warm = True

    @asynccontextmanager
    async def _guard(self) -> AsyncIterator[None]:
        """Bound a call by the settings' budget; a full pool becomes StoreBusy, every other
        failure StoreUnavailable."""
        try:
            async with asyncio.timeout(self.settings.call_budget):
                if not self._warm:
                    await self._warm_up()
                yield
        except (PoolExhausted, MaxConnectionsError) as exc:
            metrics().state_busy.inc()
            raise StoreBusy(f"redis: every connection is busy ({exc})") from exc
        except _CLIENT_ERRORS as exc:
            metrics().redis_errors.inc()
            raise StoreUnavailable(f"redis: {exc.__class__.__name__}: {exc}") from exc

    async def revoke(self, rev: Revocation) -> int:
        async with self._guard():
            epoch, (written,) = await self.log.append(self.client, [rev], rev.revoked_at)
            if written.seq:  # else Redis already held a stronger one: nothing new to tell
                stored = Revocation.from_json(written.doc)
                # Outside the script: in a cluster PUBLISH reaches every node from any node.
                notice = Notice(stored, written.seq, epoch)
                await self.client.publish(self.channel, notice.to_json())
            await self._durability.confirm(self.client)  # a failover must not lose it
        return written.seq

    async def changes(self, after: int, limit: int = PAGE, anchor: str = "") -> Changes:
        async with self._guard():
            return await self.log.changes(self.sync_client, after, limit, anchor)

    async def windows(self, after: int, upto: int) -> list[Changes]:
        async with self._guard():
            return await self.log.windows(
                self.sync_client, after, upto, PAGE, pipelined=not self.settings.redis_cluster
            )

    async def restore(self, revs: Sequence[Revocation], lost_epoch: str) -> int:
        async with self._guard():
            await self.log.replace_epoch(self.sync_client, lost_epoch)
        written = 0
        for i in range(0, len(revs), _RESTORE_BATCH):
            batch = revs[i : i + _RESTORE_BATCH]
            async with self._guard():
                _, entries = await self.log.append(
                    self.sync_client, batch, time.time(), only_absent=True
                )
            written += sum(1 for entry in entries if entry.seq)
        return written

    async def revocations(self, now: float) -> list[Revocation]:
        out: dict[str, Revocation] = {}
        after, more = 0, True
        while more:
            async with self._guard():
                page = await self.log.changes(self.client, after, PAGE)
            after, more = page.next_after, page.more
            for rev in parse_revocations(page.docs):
                if rev.expires_at > now:
                    out[rev.member] = rev
        return sorted(out.values(), key=lambda rev: rev.revoked_at)

    async def count_use(self, token_id: str, ttl: float) -> int:
        key = f"{self._prefix}:uses:{{{token_id}}}"
        async with self._guard():
            return int(await self._count_use([key], [max(1, math.ceil(ttl * 1000))]))

    async def claim_stream(self, owner: str, session: str, limit: int, idle: float) -> bool:
        key = f"{self._prefix}:streams:{{{owner}}}"
        async with self._guard():
            return bool(await self._claim_stream([key], [session, int(idle * 1000), limit]))

    async def hit_rate(self, group: str, buckets: Sequence[RateBucket]) -> RateVerdict:
        # One hash tag per group (the signer's API key): its buckets share a cluster slot, so
        # one script checks them all, and the requests in flight, in one round trip. Every
        # request of a group touches its key bucket anyway, so the tag adds no load to a node.
        keys = [f"{self._prefix}:rate:{{{group}}}:{name}" for name, _, _ in buckets]
        # The member is this process's and this request's: a retried call records it once.
        member = f"{self._rate_member_prefix}{next(self._rate_members)}"
        # Bounded and its errors translated by _guard, once per batch (rate_batch.py).
        wait_us, worst = await self._rate_batch.hit(group, keys, buckets, member)
        return wait_us / 1_000_000, worst

    async def listen(self, on_revocation: OnRevocation, on_subscribed: OnSubscribed) -> None:
        pubsub = self.sync_client.pubsub()
        try:
            async with self._guard():
                await pubsub.subscribe(self.channel)
                # Replies are read by this process from here on (pubsub_reader.py).
                reader = SubscriptionReader(pubsub.connection)
                await reader.confirmed(self.settings.timeout)
            await on_subscribed()
            await self._deliver(pubsub, reader, on_revocation)
        finally:
            with contextlib.suppress(*_CLIENT_ERRORS):
                await asyncio.wait_for(pubsub.aclose(), 1)

    async def _deliver(
        self, pubsub: Any, reader: SubscriptionReader, on_revocation: OnRevocation
    ) -> None:
        """Hand over messages until the connection fails or stops answering.

        A quiet channel is probed with a PING every ``HEARTBEAT`` seconds; no answer within the
        read timeout ends the session (a frozen Redis is noticed within about HEARTBEAT plus the
        read timeout). After a message the listener waits ``COALESCE`` seconds before it reads
        again, so notices arriving meanwhile cost one wake-up and one read between them, not
        one each (docs/redis.md: the CPU of a steady sync).
        """
        deadline = self.settings.timeout
        heard = time.monotonic()  # the last reply of any kind
        pinged: float | None = None  # when the unanswered PING left
        last_chance = False
        while True:
            now = time.monotonic()
            if pinged is None and now - heard >= HEARTBEAT:
                async with self._guard():
                    await pubsub.ping(HEARTBEAT_MESSAGE)
                pinged = now
            wait = pinged + deadline - now if pinged is not None else heard + HEARTBEAT - now
            if pinged is not None and wait <= 0:
                if last_chance:
                    raise StoreUnavailable(f"redis pub/sub: no PING answer within {deadline} s")
                # One last short read: on a loaded host the answer may be waiting behind our
                # own event loop's lag rather than missing.
                wait, last_chance = _GRACE, True
            replies = await reader.replies(max(wait, 0.001))
            if not replies:
                continue
            heard, pinged, last_chance = time.monotonic(), None, False
            notices = 0
            for reply in replies:
                if isinstance(reply, list) and len(reply) == 3 and reply[0] == b"message":
                    notices += 1
                    try:
                        on_revocation(Notice.from_json(reply[2]))
                    except (ValueError, KeyError, TypeError):
                        log.warning("ignoring a malformed revocation message")
            if notices:
                await reader.gather(COALESCE)

    async def ping(self) -> None:
        # On the sync client: health answers "up" while request traffic fills its pool.
        async with self._guard():
            await self.sync_client.ping()

    async def server_time(self) -> float | None:
        """Redis's clock (``TIME``), to measure this host's clock against."""
        async with self._guard():
            seconds, micros = await self.client.time()
        return float(seconds) + float(micros) / 1e6

    async def close(self) -> None:
        for client in [self.client, *self._extra]:
            with contextlib.suppress(*_CLIENT_ERRORS):
                await asyncio.wait_for(client.aclose(), 2)


class PoolExhausted(RedisError):
    """No connection of the request pool came free in time: Redis is busy, not down."""


class WaitingPool(BlockingConnectionPool):
    """redis-py's pool that waits for a free connection, and says so when none comes (its own
    error is a ConnectionError, which would read as an outage)."""

    async def get_connection(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return await super().get_connection(*args, **kwargs)  # type: ignore[no-untyped-call]
        except RedisConnectionError as exc:
            if isinstance(exc.__cause__, TimeoutError):
                raise PoolExhausted(f"no free connection within {self.timeout} s") from exc
            raise


def connect(settings: StateSettings, *, requests: bool) -> tuple[Any, list[Any]]:
    """A client for a single server, a Sentinel-monitored primary, or a Redis Cluster, and the
    other clients (the sentinels') to close with it.

    ``requests``: the client of request traffic, bounded by ``max_connections``; else the
    revocation sync's (a few connections: the subscription and one call at a time).
    """
    url = settings.redis_url or "redis://"
    size = settings.max_connections if requests else _SYNC_CONNECTIONS
    kwargs: dict[str, Any] = {
        "socket_connect_timeout": settings.connect_timeout,
        "socket_timeout": settings.timeout,
        "retry": Retry(ExponentialBackoff(cap=0.05, base=0.01), settings.retries),
        "decode_responses": True,
    }
    if settings.redis_cluster:
        # Per node; a full node pool raises MaxConnectionsError at once (busy, not down).
        return RedisCluster.from_url(url, max_connections=size, **kwargs), []
    if settings.sentinel_service:
        hosts = [(h, int(p)) for h, _, p in (a.rpartition(":") for a in settings.sentinels)]
        timeouts = {k: kwargs[k] for k in ("socket_connect_timeout", "socket_timeout")}
        sentinel = Sentinel(hosts, sentinel_kwargs=timeouts, **kwargs)  # type: ignore[no-untyped-call]
        master = sentinel.master_for(settings.sentinel_service, max_connections=size, **kwargs)
        return master, list(sentinel.sentinels)
    kwargs["retry_on_error"] = [RedisConnectionError, RedisTimeoutError]
    pool = WaitingPool.from_url(url, max_connections=size, timeout=settings.pool_timeout, **kwargs)
    return Redis.from_pool(pool), []  # it owns the pool: closing the client closes it
