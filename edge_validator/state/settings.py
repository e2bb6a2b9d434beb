"""Shared-state settings (Redis or in-memory), read once from the environment.

Both the signer and the validator read these; see README "Redis state" for what each means.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from ..core.errors import ConfigurationError
from ..env import Env

FAIL_OPEN = "fail_open"
FAIL_CLOSED = "fail_closed"
_URL_SCHEMES = ("redis://", "rediss://", "unix://", "redis+cluster://", "rediss+cluster://")


@dataclass(frozen=True)
class RateLimit:
    """At most ``limit`` requests per ``window`` seconds (0 disables the limit)."""

    limit: int
    window: int

    @classmethod
    def parse(cls, name: str, text: str) -> RateLimit:
        count, sep, seconds = text.partition("/")
        try:
            limit, window = int(count), int(seconds or "1")
        except ValueError:
            raise ConfigurationError(f"{name} must look like 100/60 (requests/seconds)") from None
        if limit < 0 or not 1 <= window <= 86400 or (sep and not seconds):
            raise ConfigurationError(f"{name} must look like 100/60 (requests/seconds)")
        return cls(limit, window)


@dataclass(frozen=True)
class StateSettings:
    # None: the embedded in-memory state, enough for one process. It may hold a password, so it
    # stays out of the repr (``redis_target`` says where, without it).
    redis_url: str | None = field(default=None, repr=False)
    redis_cluster: bool = False
    # Sentinel: the monitored primary's name and the sentinels' host:port list.
    sentinel_service: str | None = None
    sentinels: tuple[str, ...] = ()
    # Every Redis call is bounded: connect and read timeouts, then a few quick retries.
    connect_timeout: float = 0.25
    timeout: float = 0.25
    retries: int = 1
    # Request traffic shares a pool of this many connections per process and waits up to
    # pool_timeout for a free one; then the call is refused as busy (StoreBusy), never treated
    # as an outage. The revocation sync has connections of its own.
    max_connections: int = 64
    pool_timeout: float = 0.25
    # What the validator does when Redis is unreachable.
    failure_policy: str = FAIL_OPEN
    max_staleness: float = 60.0
    # fail_open, past max_staleness: keep "serve"-ing the last view (default: a Redis outage is
    # not a playback outage), or "deny" every request. docs/redis.md weighs the choices.
    stale_fallback: str = "serve"
    resync_seconds: float = 5.0
    stream_idle_seconds: int = 30
    api_key_rate: RateLimit = RateLimit(1000, 1)
    viewer_rate: RateLimit = RateLimit(60, 60)
    # Revocations per API key: each is held for hours in Redis, every validator and every
    # nginx, so no key may flood them.
    revocation_rate: RateLimit = RateLimit(600, 60)
    key_prefix: str = "playgate"
    # Replicas that must hold a revocation before it is acknowledged (WAIT), so that a failover
    # cannot lose it (durability.py). None: 1 with Sentinel, else 0.
    wait_replicas: int | None = None
    # |local clock - Redis TIME| above which a process warns (clock_skew.py).
    clock_skew_warning: float = 1.0

    @property
    def redis_target(self) -> str | None:
        """Where Redis is, for logs and reprs: scheme, host, port and database, no password."""
        if self.redis_url is None:
            return None
        parts = urlsplit(self.redis_url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
        return f"{parts.scheme}://{host}{port}{parts.path}"

    def __repr__(self) -> str:
        return (
            f"StateSettings(redis={self.redis_target!r}, sentinel={self.sentinel_service!r}, "
            f"failure_policy={self.failure_policy!r}, key_prefix={self.key_prefix!r})"
        )

    @property
    def uses_redis(self) -> bool:
        return self.redis_url is not None or self.sentinel_service is not None

    @property
    def replicas_to_wait(self) -> int:
        if self.wait_replicas is not None:
            return self.wait_replicas
        return 1 if self.sentinel_service else 0

    @property
    def call_budget(self) -> float:
        """The longest one guarded Redis call may take, retries included."""
        attempts = (self.connect_timeout + self.timeout) * (self.retries + 1)
        return self.pool_timeout + attempts + 0.05 * self.retries

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> StateSettings:
        env = Env(environ)
        url = env.text("REDIS_URL") or env.text("PLAYGATE_REDIS_URL")
        if url is not None and not url.startswith(_URL_SCHEMES):
            raise ConfigurationError(f"REDIS_URL must start with one of {', '.join(_URL_SCHEMES)}")
        cluster = env.flag("PLAYGATE_REDIS_CLUSTER", False)
        if url is not None and "+cluster://" in url:
            cluster, url = True, url.replace("+cluster://", "://", 1)
        if url is not None:
            _check_url(url)
        prefix = env.text("PLAYGATE_REDIS_PREFIX", cls.key_prefix) or cls.key_prefix
        if not prefix.replace("-", "").replace("_", "").isalnum():
            raise ConfigurationError("PLAYGATE_REDIS_PREFIX must be letters, digits, - and _")
        service = env.text("PLAYGATE_REDIS_SENTINEL_SERVICE")
        sentinel_text = env.text("PLAYGATE_REDIS_SENTINELS", "") or ""
        sentinels = tuple(a.strip() for a in sentinel_text.split(",") if a.strip())
        if bool(service) != bool(sentinels):
            raise ConfigurationError(
                "set both PLAYGATE_REDIS_SENTINEL_SERVICE and PLAYGATE_REDIS_SENTINELS, or neither"
            )
        if any(not a.rpartition(":")[2].isdigit() for a in sentinels):
            raise ConfigurationError("PLAYGATE_REDIS_SENTINELS entries are host:port")
        return cls(
            redis_url=url,
            redis_cluster=cluster,
            sentinel_service=service,
            sentinels=sentinels,
            connect_timeout=env.number("PLAYGATE_REDIS_CONNECT_TIMEOUT", 0.25, low=0.01, high=10),
            timeout=env.number("PLAYGATE_REDIS_TIMEOUT", 0.25, low=0.01, high=10),
            retries=env.integer("PLAYGATE_REDIS_RETRIES", 1, low=0, high=5),
            max_connections=env.integer("PLAYGATE_REDIS_MAX_CONNECTIONS", 64, low=1, high=10000),
            pool_timeout=env.number("PLAYGATE_REDIS_POOL_TIMEOUT", 0.25, low=0.001, high=10),
            failure_policy=env.choice(
                "PLAYGATE_STATE_FAILURE_POLICY", FAIL_OPEN, (FAIL_OPEN, FAIL_CLOSED)
            ),
            max_staleness=env.number("PLAYGATE_STATE_MAX_STALENESS", 60.0, low=0, high=86400),
            stale_fallback=env.choice("PLAYGATE_STATE_STALE_FALLBACK", "serve", ("serve", "deny")),
            resync_seconds=env.number("PLAYGATE_STATE_RESYNC_SECONDS", 5.0, low=0.1, high=3600),
            stream_idle_seconds=env.integer("PLAYGATE_STREAM_IDLE_SECONDS", 30, low=1, high=3600),
            api_key_rate=_rate(env, "PLAYGATE_RATE_LIMIT_API_KEY", "1000/1"),
            viewer_rate=_rate(env, "PLAYGATE_RATE_LIMIT_VIEWER", "60/60"),
            revocation_rate=_rate(env, "PLAYGATE_RATE_LIMIT_REVOCATIONS", "600/60"),
            key_prefix=prefix,
            wait_replicas=_wait_replicas(env, sentinel=bool(service), cluster=cluster),
            clock_skew_warning=env.number("PLAYGATE_CLOCK_SKEW_WARNING", 1.0, low=0.01, high=3600),
        )


def _wait_replicas(env: Env, *, sentinel: bool, cluster: bool) -> int:
    """Sentinel fails over to a replica, so by default one must hold each revocation; a single
    server has no replica to wait for (and a Cluster's WAIT would need a node per slot)."""
    default_replicas = 1 if sentinel else 0
    replicas = env.integer("PLAYGATE_REDIS_WAIT_REPLICAS", default_replicas, low=0, high=16)
    if replicas and cluster:
        raise ConfigurationError("PLAYGATE_REDIS_WAIT_REPLICAS is not supported with a Cluster")
    return replicas


def _rate(env: Env, name: str, default: str) -> RateLimit:
    return RateLimit.parse(name, env.text(name, default) or default)


def _check_url(url: str) -> None:
    """Refuse a REDIS_URL redis-py would refuse later, in every worker, or read wrongly."""
    parts = urlsplit(url)
    try:
        parts.port  # noqa: B018 - urllib checks the port only when it is read
    except ValueError:
        raise ConfigurationError("REDIS_URL's port is not a number from 0 to 65535") from None
    # redis-py ignores a database it cannot read as a number ("/x" is database 0): refuse it.
    if parts.scheme != "unix" and parts.path.strip("/") and not parts.path[1:].isdigit():
        raise ConfigurationError(
            "REDIS_URL's path is the database number, e.g. redis://host:6379/0"
        )
