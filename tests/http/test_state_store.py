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
from playgate.redis_server import redis_sentinel, redis_server


@pytest.fixture(scope="module")
def sentinel_address() -> Iterator[str]:
    with redis_server() as primary, redis_sentinel(primary) as address:
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
        waits = [await store.hit_rate("key:app", 3, 1) for _ in range(5)]
        assert waits[:3] == [0, 0, 0]
        assert all(0 < w <= 1 for w in waits[3:])
        assert await store.hit_rate("key:other", 3, 1) == 0
        await asyncio.sleep(max(waits[3:]) + 0.05)
        assert await store.hit_rate("key:app", 3, 1) == 0

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
