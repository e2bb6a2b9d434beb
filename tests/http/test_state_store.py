"""One contract, every backend: in memory, a real redis-server, through a real Sentinel, and a
real 3-node Redis Cluster."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest

from edge_validator.state import Revocation, StateSettings, StateStore, build_store
from edge_validator.state.memory import MemoryStore
from edge_validator.state.redis_store import RedisStore
from edge_validator.state.revocation_log import Notice
from playgate.redis_server import redis_replica, redis_sentinel, redis_server


@pytest.fixture(scope="module")
def sentinel_address() -> Iterator[str]:
    # With its replica: revocations through Sentinel wait for one (PLAYGATE_REDIS_WAIT_REPLICAS).
    with redis_server() as primary, redis_replica(primary), redis_sentinel(primary) as address:
        yield address


@pytest.fixture(params=["memory", "redis", "cluster", "sentinel"])
def settings(request: pytest.FixtureRequest, key_prefix: str) -> StateSettings:
    if request.param == "memory":
        return StateSettings()
    if request.param == "redis":
        url = request.getfixturevalue("redis_url")
        return StateSettings(redis_url=url, key_prefix=key_prefix)
    if request.param == "sentinel":
        return StateSettings(
            sentinel_service="playgate",
            sentinels=(request.getfixturevalue("sentinel_address"),),
            key_prefix=key_prefix,
        )
    url = request.getfixturevalue("cluster_url")
    return StateSettings(
        redis_url=url, redis_cluster=True, key_prefix=key_prefix, connect_timeout=1, timeout=1
    )


def run(settings: StateSettings, scenario: object) -> None:
    async def main() -> None:
        store = build_store(settings)
        try:
            await scenario(store)  # type: ignore[operator]
        finally:
            await store.close()

    asyncio.run(main())


def test_backend_matches_settings(settings: StateSettings) -> None:
    async def scenario(store: StateStore) -> None:
        assert store.backend == ("redis" if settings.uses_redis else "memory")
        await store.ping()

    run(settings, scenario)


def test_revocations_are_listed_until_they_expire(settings: StateSettings) -> None:
    async def scenario(store: StateStore) -> None:
        now = time.time()
        await store.revoke(Revocation("token_id", "t1", now, now + 60))
        await store.revoke(Revocation("video_id", "v1", now, now + 60))
        await store.revoke(Revocation("user_id", "gone", now - 120, now - 1))
        listed = await store.revocations(time.time())
        assert {(r.kind, r.value) for r in listed} == {("token_id", "t1"), ("video_id", "v1")}
        # Revoking the same target again keeps one entry, the latest.
        await store.revoke(Revocation("video_id", "v1", now + 1, now + 61))
        videos = [r for r in await store.revocations(time.time()) if r.kind == "video_id"]
        assert [r.revoked_at for r in videos] == [now + 1]

    run(settings, scenario)


def test_expired_revocations_are_dropped_from_storage(settings: StateSettings) -> None:
    async def scenario(store: StateStore) -> None:
        now = time.time()
        await store.revoke(Revocation("token_id", "old", now - 100, now - 50))
        await store.revoke(Revocation("token_id", "new", now, now + 60))
        if isinstance(store, MemoryStore):
            assert len(store._revocations) == 1
            return
        assert isinstance(store, RedisStore)
        log = store.log
        assert await store.client.zrange(log.expiry_key, 0, -1) == ["token_id:new"]
        assert await store.client.hkeys(log.data_key) == ["token_id:new"]
        assert await store.client.zrange(log.log_key, 0, -1) == ["token_id:new"]
        # The keys themselves expire with the last revocation: the set is bounded in time too.
        for key in (log.expiry_key, log.data_key, log.log_key):
            assert 0 < await store.client.ttl(key) <= 62

    run(settings, scenario)


def test_a_writer_with_a_clock_ahead_prunes_nothing_still_live(settings: StateSettings) -> None:
    async def scenario(store: StateStore) -> None:
        now = time.time()
        await store.revoke(Revocation("token_id", "live", now, now + 60))
        # A signer whose clock runs an hour ahead revokes: its "now" has every entry expired.
        await store.revoke(Revocation("token_id", "ahead", now + 3600, now + 3660))
        listed = await store.revocations(time.time())
        assert {r.value for r in listed} == {"live", "ahead"}

    run(settings, scenario)


def test_use_counts_are_atomic_and_expire(settings: StateSettings) -> None:
    async def scenario(store: StateStore) -> None:
        counts = await asyncio.gather(*(store.count_use("tok-a", 60) for _ in range(20)))
        assert sorted(counts) == list(range(1, 21))
        assert await store.count_use("tok-b", 60) == 1
        assert await store.count_use("tok-short", 0.2) == 1
        await asyncio.sleep(0.35)
        assert await store.count_use("tok-short", 0.2) == 1

    run(settings, scenario)


def test_streams_limit_new_sessions_not_existing_ones(settings: StateSettings) -> None:
    async def scenario(store: StateStore) -> None:
        assert await store.claim_stream("alice", "s1", 2, 30)
        assert await store.claim_stream("alice", "s2", 2, 30)
        assert not await store.claim_stream("alice", "s3", 2, 30)
        assert await store.claim_stream("alice", "s1", 2, 30)  # still playing
        assert await store.claim_stream("bob", "s3", 2, 30)  # per user

    run(settings, scenario)


def test_idle_sessions_free_their_slot(settings: StateSettings) -> None:
    async def scenario(store: StateStore) -> None:
        assert await store.claim_stream("carol", "s1", 1, 1.0)
        assert not await store.claim_stream("carol", "s2", 1, 1.0)
        await asyncio.sleep(1.2)
        assert await store.claim_stream("carol", "s2", 1, 1.0)

    run(settings, scenario)


def test_concurrent_claims_never_exceed_the_limit(settings: StateSettings) -> None:
    async def scenario(store: StateStore) -> None:
        results = await asyncio.gather(
            *(store.claim_stream("dave", f"s{i}", 3, 30) for i in range(15))
        )
        assert sum(results) == 3

    run(settings, scenario)


def test_rate_window(settings: StateSettings) -> None:
    async def scenario(store: StateStore) -> None:
        verdicts = [await store.hit_rate("app", [("key", 3, 1)]) for _ in range(5)]
        assert verdicts[:3] == [(0, 0)] * 3
        assert all(0 < wait <= 1 and worst == 0 for wait, worst in verdicts[3:])
        assert await store.hit_rate("other", [("key", 3, 1)]) == (0, 0)
        await asyncio.sleep(max(wait for wait, _ in verdicts[3:]) + 0.05)
        assert await store.hit_rate("app", [("key", 3, 1)]) == (0, 0)

    run(settings, scenario)


def test_rate_buckets_count_all_or_nothing(settings: StateSettings) -> None:
    async def scenario(store: StateStore) -> None:
        def buckets(session: str) -> list[tuple[str, int, int]]:
            return [("key", 3, 60), (f"session:{session}", 1, 60)]

        assert (await store.hit_rate("app", buckets("a")))[0] == 0
        wait, worst = await store.hit_rate("app", buckets("a"))
        assert (0 < wait <= 60, worst) == (True, 1)
        # The refused request took no slot of the API key's bucket: two more fit.
        assert (await store.hit_rate("app", buckets("b")))[0] == 0
        assert (await store.hit_rate("app", buckets("c")))[0] == 0
        wait, worst = await store.hit_rate("app", buckets("d"))
        assert (0 < wait <= 60, worst) == (True, 0)
        # ...and the refusal took no slot of session d's bucket either.
        assert (await store.hit_rate("other", buckets("d")))[0] == 0

    run(settings, scenario)


def test_concurrent_rate_hits_never_exceed_the_limit(settings: StateSettings) -> None:
    async def scenario(store: StateStore) -> None:
        # Two API keys in one batch: in a cluster their buckets live in different slots.
        groups = ["app", "other"] * 20
        verdicts = await asyncio.gather(*(store.hit_rate(g, [("key", 7, 60)]) for g in groups))
        for group in ("app", "other"):
            mine = [wait for g, (wait, _) in zip(groups, verdicts, strict=True) if g == group]
            assert sum(wait == 0 for wait in mine) == 7

    run(settings, scenario)


def test_rate_limits_survive_a_script_flush(settings: StateSettings) -> None:
    """A restarted or newly promoted Redis has no scripts: the pipelined EVALSHA gets NOSCRIPT
    and the store loads the script again, with no error to the caller."""

    async def scenario(store: StateStore) -> None:
        assert (await store.hit_rate("app", [("key", 2, 60)]))[0] == 0
        if isinstance(store, RedisStore):
            await store.client.script_flush()
        verdicts = await asyncio.gather(
            *(store.hit_rate("app", [("key", 2, 60)]) for _ in range(3))
        )
        assert sorted(wait > 0 for wait, _ in verdicts) == [False, True, True]

    run(settings, scenario)


def test_a_burst_across_a_window_boundary_never_exceeds_the_limit(
    settings: StateSettings,
) -> None:
    """The fixed window this replaced let 2 x limit through around its boundary: one request
    opened a window, a burst at its end filled it, and the next window let a full burst more.

    Each call is timed from the test's clock (time.time, the clock Redis's TIME reads on this
    host): call i happened within [start_i, end_i], which makes every assertion exact, never a
    timing guess. A store that used its own clock wrongly, or a fixed window, fails it."""
    limit, window = 10, 1

    async def scenario(store: StateStore) -> None:
        calls: list[tuple[float, float, float]] = []  # (start, end, wait)

        async def hit() -> None:
            start = time.time()
            wait, _ = await store.hit_rate("app", [("key", limit, window)])
            calls.append((start, time.time(), wait))

        await hit()  # opens a fixed window
        await asyncio.sleep(0.8 * window)
        deadline = time.monotonic() + 0.6 * window  # a burst until past the boundary
        while time.monotonic() < deadline:
            await hit()
            await asyncio.sleep(0.002)
        accepted = [(s, e) for s, e, wait in calls if wait == 0]
        assert len(accepted) >= limit
        # Any limit + 1 accepted requests span more than a window.
        for first, last in zip(accepted, accepted[limit:], strict=False):
            assert last[1] - first[0] > window
        # A refusal's wait ends when the oldest of the last `limit` accepted leaves the window.
        refused = 0
        for i, (start, end, wait) in enumerate(calls):
            if wait == 0:
                continue
            refused += 1
            before = [(s, e) for s, e, w in calls[:i] if w == 0]
            oldest = before[-limit]
            assert oldest[0] + window - end <= wait <= oldest[1] + window - start
        assert refused > 0

    run(settings, scenario)


def test_listeners_receive_revocations(settings: StateSettings) -> None:
    async def scenario(store: StateStore) -> None:
        got: list[Notice] = []
        subscribed = asyncio.Event()

        async def on_subscribed() -> None:
            subscribed.set()

        listener = asyncio.create_task(store.listen(got.append, on_subscribed))
        await asyncio.wait_for(subscribed.wait(), 5)
        now = time.time()
        rev = Revocation("session_id", "sess-9", now, now + 60)
        # A second store (another process, in production) publishes.
        other = build_store(settings) if settings.uses_redis else store
        seq = await other.revoke(rev)
        deadline = time.monotonic() + 5
        while not got and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        listener.cancel()
        if other is not store:
            await other.close()
        # The notice carries the entry's number in the log and the log's epoch.
        (notice,) = got
        assert (notice.rev, notice.seq) == (rev, seq)
        assert notice.epoch == (await store.changes(0)).epoch.id

    run(settings, scenario)


def test_the_log_numbers_every_write_and_reads_back_by_page_and_window(
    settings: StateSettings,
) -> None:
    async def scenario(store: StateStore) -> None:
        now = time.time()
        seqs = [
            await store.revoke(Revocation("token_id", f"t{i}", now, now + 60)) for i in range(7)
        ]
        assert seqs == list(range(seqs[0], seqs[0] + 7))
        first = seqs[0] - 1
        page = await store.changes(first, 3)  # a full page: more may follow
        assert (page.more, page.next_after, page.head) == (True, first + 3, seqs[-1])
        assert [Revocation.from_json(d).value for d in page.docs] == ["t0", "t1", "t2"]
        rest = await store.changes(page.next_after, 100)
        assert (rest.more, rest.next_after) == (False, seqs[-1])
        assert len(rest.docs) == 4
        windows = await store.windows(first, seqs[-1])
        assert sum(len(w.docs) for w in windows) == 7
        assert {w.epoch for w in windows} == {page.epoch}
        # Revoking a target again moves it to a new number: one entry, the latest.
        again = await store.revoke(Revocation("token_id", "t0", now + 1, now + 61))
        tail = await store.changes(seqs[-1], 100)
        assert ([Revocation.from_json(d).value for d in tail.docs], tail.next_after) == (
            ["t0"],
            again,
        )

    run(settings, scenario)
