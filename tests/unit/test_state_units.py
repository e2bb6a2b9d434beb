"""Pure parts of the state package: the revocation view, the failure policy, settings."""

from __future__ import annotations

import time

import pytest

from edge_validator.core.errors import ConfigurationError
from edge_validator.core.token import Claims
from edge_validator.state import Revocation, RevocationSync, RevocationView, StateSettings
from edge_validator.state.memory import MemoryStore
from edge_validator.state.revocations import video_id
from edge_validator.state.settings import RateLimit
from tests.support import factories

NOW = 1_800_000_000.0


def _claims(**kw: object) -> Claims:
    fields: dict[str, object] = {"scope": "/videos/v1/", "token_id": "tok", **kw}
    return factories.claims(now=NOW - 10, ttl=310, **fields)


def _view(*revs: Revocation) -> RevocationView:
    view = RevocationView()
    for rev in revs:
        view.add(rev)
    return view


def test_token_and_session_revocations_are_absolute() -> None:
    view = _view(
        Revocation("token_id", "tok", NOW - 100, NOW + 60),
        Revocation("session_id", "s1", NOW - 100, NOW + 60),
    )
    assert view.revoked(_claims(), NOW) is not None
    assert view.revoked(_claims(token_id="other", session_id="s1"), NOW) is not None
    assert view.revoked(_claims(token_id="other", session_id="s2"), NOW) is None


def test_video_and_user_revocations_cover_tokens_issued_until_then() -> None:
    view = _view(
        Revocation("video_id", "v1", NOW, NOW + 60),
        Revocation("user_id", "u1", NOW, NOW + 60),
    )
    assert view.revoked(_claims(not_before=int(NOW)), NOW) is not None
    assert view.revoked(_claims(not_before=int(NOW) + 1), NOW + 1) is None
    assert view.revoked(_claims(scope="/videos/v2/", user_id="u1"), NOW) is not None
    assert (
        view.revoked(_claims(scope="/videos/v2/", user_id="u1", not_before=int(NOW) + 1), NOW)
        is None
    )


def test_the_latest_revocation_of_a_target_wins_and_expired_ones_go() -> None:
    view = _view(Revocation("video_id", "v1", NOW - 50, NOW + 60))
    view.add(Revocation("video_id", "v1", NOW, NOW + 100))
    view.add(Revocation("video_id", "v1", NOW - 80, NOW + 40))  # older: ignored
    assert view.entries() == [Revocation("video_id", "v1", NOW, NOW + 100)]
    assert view.revoked(_claims(), NOW + 101) is None
    view.merge([], NOW + 101)
    assert len(view) == 0


def test_merge_keeps_what_storage_forgot() -> None:
    rev = Revocation("token_id", "tok", NOW, NOW + 60)
    view = _view(rev)
    view.merge([Revocation("user_id", "u", NOW, NOW + 60)], NOW)
    assert len(view) == 2
    assert view.revoked(_claims(), NOW) == rev


@pytest.mark.parametrize(
    ("scope", "expected"),
    [("/videos/v1/", "v1"), ("/videos/v1/hls/", None), ("/other/v1/", None)],
)
def test_video_id_of_a_scope(scope: str, expected: str | None) -> None:
    assert video_id(scope) == expected


def test_revocation_json_round_trip_and_rejects_junk() -> None:
    rev = Revocation("user_id", "u-1", NOW, NOW + 1)
    assert Revocation.from_json(rev.to_json()) == rev
    bad = rev._replace(kind="admin").to_json()
    with pytest.raises(ValueError, match="not a revocation"):
        Revocation.from_json(bad)
    # Times that compare false with everything (JSON's NaN, Python's "nan"/"inf" strings).
    for field, junk in (("revoked_at", "NaN"), ("expires_at", "Infinity"), ("revoked_at", '"nan"')):
        text = rev.to_json().replace(f'"{field}":{getattr(rev, field)!r}', f'"{field}":{junk}')
        assert junk in text
        with pytest.raises(ValueError, match="not a revocation"):
            Revocation.from_json(text)


class _Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


@pytest.mark.parametrize(
    ("policy", "fallback", "young", "old"),
    [
        ("fail_open", "deny", True, False),
        ("fail_open", "serve", True, True),
        ("fail_closed", "deny", False, False),
    ],
)
def test_failure_policy(policy: str, fallback: str, young: bool, old: bool) -> None:
    clock = _Clock()
    settings = StateSettings(failure_policy=policy, max_staleness=10, stale_fallback=fallback)
    sync = RevocationSync(MemoryStore(), settings, monotonic=clock)
    assert not sync.trusted()  # never synced: nothing to serve from
    sync.synced_once = True
    sync._mark(subscribed=True, resync_ok=True)
    assert sync.trusted()
    sync._mark(subscribed=False)
    clock.t += 5
    assert sync.trusted() is young
    clock.t += 10
    assert sync.trusted() is old


def test_settings_from_env() -> None:
    st = StateSettings.from_env(
        {
            "REDIS_URL": "redis+cluster://10.0.0.1:7000",
            "PLAYGATE_STATE_FAILURE_POLICY": "fail_closed",
            "PLAYGATE_RATE_LIMIT_VIEWER": "5/10",
        }
    )
    assert st.redis_cluster
    assert st.redis_url == "redis://10.0.0.1:7000"
    assert st.failure_policy == "fail_closed"
    assert st.viewer_rate == RateLimit(5, 10)
    assert not StateSettings.from_env({}).uses_redis


@pytest.mark.parametrize(
    "env",
    [
        {"REDIS_URL": "http://x"},
        {"REDIS_URL": "redis://127.0.0.1:notaport/0"},
        {"REDIS_URL": "redis://127.0.0.1:6379/x"},
        {"PLAYGATE_STATE_FAILURE_POLICY": "maybe"},
        {"PLAYGATE_RATE_LIMIT_API_KEY": "ten/1"},
        {"PLAYGATE_RATE_LIMIT_API_KEY": "10/"},
        {"PLAYGATE_REDIS_SENTINELS": "a:1"},
        {"PLAYGATE_REDIS_SENTINEL_SERVICE": "m", "PLAYGATE_REDIS_SENTINELS": "nohost"},
        {"PLAYGATE_REDIS_PREFIX": "bad prefix"},
    ],
)
def test_bad_settings_are_refused(env: dict[str, str]) -> None:
    with pytest.raises(ConfigurationError):
        StateSettings.from_env(env)


def test_memory_store_prunes_every_table_even_when_calls_alternate() -> None:
    import asyncio

    from edge_validator.state.memory import MemoryStore

    clock = [1000.0]
    store = MemoryStore(clock=lambda: clock[0])

    async def run() -> None:
        for i in range(3000):  # one-off tokens, buckets and viewers, each live for 1 s
            clock[0] += 0.01
            await store.count_use(f"t{i}", 1)
            await store.hit_rate(f"b{i}", [("key", 10, 1)])
            await store.claim_stream(f"u{i}", "s", 1, 1)

    asyncio.run(run())
    # Everything older than a second is gone from each table, give or take one sweep period.
    for table in (store._uses, store._rates, store._streams):
        assert len(table) < 1024 + 256


def test_the_sync_reads_the_log_in_pages_and_follows_notices() -> None:
    import asyncio

    from edge_validator.state.memory import MemoryStore
    from edge_validator.state.revocation_log import PAGE, Notice

    store = MemoryStore()
    sync = RevocationSync(store, StateSettings())
    reads: list[tuple[int, ...]] = []
    changes, windows = store.changes, store.windows

    async def counted(after: int, limit: int = PAGE, anchor: str = "") -> object:
        reads.append((after,))
        return await changes(after, limit, anchor)

    async def counted_windows(after: int, upto: int) -> object:
        reads.append((after, upto))
        return await windows(after, upto)

    store.changes = counted  # type: ignore[method-assign]
    store.windows = counted_windows  # type: ignore[method-assign]

    async def scenario() -> None:
        now = time.time()
        for i in range(2 * PAGE + 7):
            await store.revoke(Revocation("token_id", f"t{i}", now, now + 60))
        await sync.resync()
        assert len(sync.view) == 2 * PAGE + 7
        # A page from the last number held; far behind, the rest as windows in one round trip;
        # then a last page for anything written meanwhile.
        assert reads == [(0,), (PAGE, 2 * PAGE + 7), (2 * PAGE + 7,)]
        assert sync.seq == 2 * PAGE + 7
        assert sync.epoch is not None
        # In step: the next number moves the cursor; a gap or another epoch wakes the catch-up.
        rev = Revocation("token_id", "next", now, now + 60)
        seq = await store.revoke(rev)  # no listener here: the notice is handed over below
        sync.apply(Notice(rev, seq, sync.epoch.id))
        assert (sync.seq, sync._wake.is_set()) == (2 * PAGE + 8, False)
        sync.apply(Notice(rev, sync.seq + 2, sync.epoch.id))
        assert sync._wake.is_set()
        sync._wake.clear()
        sync.apply(Notice(rev, sync.seq + 1, "another-epoch"))
        assert sync._wake.is_set()
        reads.clear()
        await sync.resync()  # nothing new: one read
        assert reads == [(2 * PAGE + 8,)]

    asyncio.run(scenario())


def test_the_view_drops_expired_entries_a_batch_at_a_time() -> None:
    view = RevocationView()
    for i in range(50):
        view.add(Revocation("token_id", f"t{i}", 0, 10 + i))
    view.add(Revocation("token_id", "t0", 1, 1000))  # revoked again: lives longer
    assert view.prune(100, limit=20) == 20
    assert len(view) == 30  # t0 lives on; t1..t20 went
    assert view.prune(100) == 29
    assert [rev.value for rev in view] == ["t0"]


def test_a_malformed_stored_revocation_is_skipped_not_fatal() -> None:
    from edge_validator.state.revocation_log import parse_revocations

    good = Revocation("token_id", "t1", 1.0, 2.0)
    docs = [good.to_json(), "{not json", '{"kind": "nope", "value": "x"}', good.to_json()]
    assert parse_revocations(docs) == [good, good]
    assert parse_revocations([good.to_json()]) == [good]
    assert parse_revocations([]) == []
