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
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ..core.errors import StoreUnavailable
from ..metrics import metrics
from .durability import Durability
from .rate_batch import RateBatch
from .revocations import Revocation
from .settings import StateSettings
from .store import OnRevocation, OnSubscribed, RateBucket, RateVerdict

log = logging.getLogger("playgate.state")


class RedisStore:
    backend = "redis"

    # KEYS[1] sorted set: revocation member -> expiry (unix seconds)
    # KEYS[2] hash: revocation member -> revocation JSON
    # ARGV[1] member, ARGV[2] JSON, ARGV[3] expiry, ARGV[4] now (unix seconds)
    # Drops revocations that can no longer deny a live token, so the set stays bounded, and
    # lets both keys expire with the last revocation.
    REVOKE = """
local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[4], 'LIMIT', 0, 1000)
if #expired > 0 then
  redis.call('ZREM', KEYS[1], unpack(expired))
  redis.call('HDEL', KEYS[2], unpack(expired))
end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
local until_ts = math.ceil(tonumber(last[2])) + 1
redis.call('EXPIREAT', KEYS[1], until_ts)
redis.call('EXPIREAT', KEYS[2], until_ts)
return 1
"""

    # KEYS[1] sorted set: revocation member -> expiry, KEYS[2] hash: member -> JSON
    # ARGV[1] now (unix seconds)
    # Returns the JSON of every revocation still live, read atomically.
    LIST = """
local live = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. ARGV[1], '+inf')
if #live == 0 then return {} end
local out = {}
for i = 1, #live, 500 do
  local chunk = redis.call('HMGET', KEYS[2], unpack(live, i, math.min(i + 499, #live)))
  for _, doc in ipairs(chunk) do
    if doc then out[#out + 1] = doc end
  end
end
return out
"""

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

    def __init__(self, settings: StateSettings, client: Any = None) -> None:
        self.settings = settings
        self.client: Any
        self._extra: list[Any] = []
        if client is not None:
            self.client = client
        else:
            self.client, self._extra = connect(settings)
        p = settings.key_prefix
        self._rev_keys = [f"{p}:{{revocations}}:expiry", f"{p}:{{revocations}}:data"]
        self.channel = f"{p}:revocations"
        self._prefix = p
        self._revoke = self.client.register_script(self.REVOKE)
        self._list = self.client.register_script(self.LIST)
        self._count_use = self.client.register_script(self.COUNT_USE)
        self._claim_stream = self.client.register_script(self.CLAIM_STREAM)
        self._hit_rate = self.client.register_script(self.HIT_RATE)
        self._rate_member_prefix = secrets.token_hex(8) + ":"
        self._rate_batch = RateBatch(self.client, self._hit_rate, self._guard)
        self._rate_members = itertools.count()
        self._scripts = (
            self._revoke,
            self._list,
            self._count_use,
            self._claim_stream,
            self._hit_rate,
        )
        self._warm = False
        self._warming = asyncio.Lock()
        self._durability = Durability(settings, f"{p}:{{revocations}}:durable")

    async def _warm_up(self) -> None:
        """Connect and load every script once, before concurrent callers race to do both.

        (redis-py's cluster client breaks connections when many first calls initialize it and
        reload scripts at the same time.)
        """
        async with self._warming:
            if self._warm:
                return
            if hasattr(self.client, "initialize"):
                await self.client.initialize()
            for script in self._scripts:
                script.sha = await self.client.script_load(script.script)
            self._warm = True

    @asynccontextmanager
    async def _guard(self) -> AsyncIterator[None]:
        """Bound a call by the settings' budget and turn every failure into StoreUnavailable."""
        try:
            async with asyncio.timeout(self.settings.call_budget):
                if not self._warm:
                    await self._warm_up()
                yield
        except (RedisError, OSError, TimeoutError) as exc:
            metrics().redis_errors.inc()
            raise StoreUnavailable(f"redis: {exc.__class__.__name__}: {exc}") from exc

    async def revoke(self, rev: Revocation) -> None:
        doc = rev.to_json()
        async with self._guard():
            await self._revoke(self._rev_keys, [rev.member, doc, rev.expires_at, rev.revoked_at])
            # Outside the script: in a cluster PUBLISH reaches every node from any node.
            await self.client.publish(self.channel, doc)
            await self._durability.confirm(self.client)  # a failover must not lose it

    async def revocations(self, now: float) -> list[Revocation]:
        async with self._guard():
            docs = await self._list(self._rev_keys, [now])
        out = []
        for doc in docs:
            try:
                out.append(Revocation.from_json(doc))
            except (ValueError, KeyError, TypeError):
                log.warning("ignoring a malformed revocation entry")
        return out

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
        pubsub = self.client.pubsub()
        task = asyncio.current_task()
        try:
            async with self._guard():
                await pubsub.subscribe(self.channel)
                # Wait for the confirmation: only then is nothing published later missed.
                while await pubsub.get_message(timeout=self.settings.timeout) is None:
                    pass
            await on_subscribed()
            while True:
                try:
                    message = await pubsub.get_message(
                        ignore_subscribe_messages=True, timeout=self.settings.resync_seconds
                    )
                except (RedisError, OSError) as exc:
                    raise StoreUnavailable(f"redis pub/sub: {exc}") from exc
                if task is not None and task.cancelling():
                    # redis-py may turn a cancellation into "no message yet"; honour it.
                    raise asyncio.CancelledError
                if message is None:
                    # Quiet channel: prove the connection still answers.
                    async with self._guard():
                        await pubsub.ping()
                    continue
                if message.get("type") != "message":
                    continue
                try:
                    on_revocation(Revocation.from_json(message["data"]))
                except (ValueError, KeyError, TypeError):
                    log.warning("ignoring a malformed revocation message")
        finally:
            with contextlib.suppress(RedisError, OSError, TimeoutError):
                await asyncio.wait_for(pubsub.aclose(), 1)

    async def ping(self) -> None:
        async with self._guard():
            await self.client.ping()

    async def server_time(self) -> float | None:
        """Redis's clock (``TIME``), to measure this host's clock against."""
        async with self._guard():
            seconds, micros = await self.client.time()
        return float(seconds) + float(micros) / 1e6

    async def close(self) -> None:
        for client in [self.client, *self._extra]:
            with contextlib.suppress(RedisError, OSError, TimeoutError):
                await asyncio.wait_for(client.aclose(), 2)


def connect(settings: StateSettings) -> tuple[Any, list[Any]]:
    """A client for a single server, a Sentinel-monitored primary, or a Redis Cluster, and the
    other clients (the sentinels') to close with it."""
    url = settings.redis_url or "redis://"
    kwargs: dict[str, Any] = {
        "socket_connect_timeout": settings.connect_timeout,
        "socket_timeout": settings.timeout,
        "retry": Retry(ExponentialBackoff(cap=0.05, base=0.01), settings.retries),
        "decode_responses": True,
    }
    if settings.redis_cluster:
        return RedisCluster.from_url(url, **kwargs), []
    if settings.sentinel_service:
        hosts = [(h, int(p)) for h, _, p in (a.rpartition(":") for a in settings.sentinels)]
        timeouts = {k: kwargs[k] for k in ("socket_connect_timeout", "socket_timeout")}
        sentinel = Sentinel(hosts, sentinel_kwargs=timeouts, **kwargs)  # type: ignore[no-untyped-call]
        master = sentinel.master_for(settings.sentinel_service, **kwargs)
        return master, list(sentinel.sentinels)
    kwargs["retry_on_error"] = [RedisConnectionError, RedisTimeoutError]
    return Redis.from_url(url, **kwargs), []
