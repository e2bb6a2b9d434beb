"""A Redis outage is not a playback outage, and revocations made during it still arrive.

Real redis-server processes, stopped and started again: the default policy (fail_open with the
``serve`` fallback) keeps plain tokens playing past the staleness bound while revocations known
before the outage hold and counted limits deny; a revocation issued during the outage is queued
by the signer (202) and denied by a running validator within seconds of Redis's return; a
revocation that too few replicas confirm is not acknowledged as done; the persistence the Redis
guide requires is what a real redis-server runs with.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import time
from pathlib import Path

import httpx

from edge_validator.core.keyring import KeyRing
from edge_validator.state import Revocation, StateSettings
from edge_validator.state.redis_store import RedisStore
from edge_validator.state.settings import RateLimit
from signer.revocation_spool import MAX_SPOOL_BYTES, REPLAY_INTERVAL, RevocationSpool
from tests.http.test_state_faults import _prepare, _status, own_redis
from tests.support.factories import ADMIN_AUTH
from tests.support.servers import LOOPBACK, free_port, require_tool, run_process
from tests.support.state_helpers import stack, wait_for_status


def _state(health_url: str) -> dict[str, object]:
    state: dict[str, object] = httpx.get(health_url, headers=ADMIN_AUTH, timeout=5).json()["state"]
    return state


def _wait_stale(validator: str, seconds: float) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        staleness = _state(f"{validator}/admin/health")["view_staleness_seconds"]
        if isinstance(staleness, float | int) and staleness > seconds:
            return
        time.sleep(0.1)
    raise AssertionError("the validator's view never went stale")


def test_by_default_an_outage_past_the_staleness_bound_keeps_playback_going(
    keyring: KeyRing,
) -> None:
    with own_redis() as redis:
        # Only what a deployment must set: where Redis is (a short bound so the test is quick).
        state = StateSettings.from_env(
            {
                "REDIS_URL": redis.url,
                "PLAYGATE_STATE_MAX_STALENESS": "1",
                "PLAYGATE_STATE_RESYNC_SECONDS": "0.5",
            }
        )
        assert (state.failure_policy, state.stale_fallback) == ("fail_open", "serve")
        with stack(keyring, state) as live:
            tokens = _prepare(live)
            redis.stop()
            _wait_stale(live.validator, 1.5)
            # Plain tokens play; what was revoked before the outage stays revoked.
            assert _status(tokens["good"]["url"]) == (200, None)
            assert _status(tokens["revoked"]["url"]) == (403, "revoked")
            # Counted limits deny: an uncountable one-time link or stream limit is no limit.
            assert _status(tokens["limited"]["url"]) == (403, "state_unavailable")
            assert _status(tokens["streams"]["url"]) == (403, "state_unavailable")
            assert httpx.get(f"{live.validator}/readyz").status_code == 200
            redis.start()
            assert wait_for_status(tokens["limited"]["url"], 200).status_code == 200


def test_a_revocation_made_during_an_outage_is_queued_then_enforced(
    keyring: KeyRing, tmp_path: Path
) -> None:
    spool = tmp_path / "revocations.spool"
    with own_redis() as redis:
        state = StateSettings(redis_url=redis.url, resync_seconds=0.5)
        with stack(keyring, state, revocation_spool=spool) as live:
            first, second, kept = live.issue(), live.issue(), live.issue()
            redis.stop()
            answers = [live.revoke(token_id=t["token_id"]) for t in (first, second)]
            assert [a.status_code for a in answers] == [202, 202]
            assert answers[0].json()["queued"] is True
            assert answers[0].headers["cache-control"] == "no-store"
            assert len(spool.read_text().splitlines()) == 2  # on disk before the answer
            assert _state(f"{live.signer}/admin/health")["revocations_queued"] == 2
            # Nobody else knows yet: the running validator still serves them.
            assert _status(first["url"]) == (200, None)
            redis.start()
            # As soon as Redis answers, the signer writes the queue and validators deny.
            for token in (first, second):
                denied = wait_for_status(token["url"], 403, timeout=15)
                assert denied.headers["x-playgate-reason"] == "revoked"
            assert _status(kept["url"]) == (200, None)
            deadline = time.monotonic() + 10
            while spool.stat().st_size and time.monotonic() < deadline:
                time.sleep(0.05)
            assert spool.read_text() == ""
            assert _state(f"{live.signer}/admin/health")["revocations_queued"] == 0
            # Redis is back: the next revocation is stored at once.
            assert live.revoke(token_id=kept["token_id"]).status_code == 201


def test_the_revocation_limit_holds_while_redis_is_unreachable(
    keyring: KeyRing, tmp_path: Path
) -> None:
    # The limit lives in Redis. Were nothing counted during an outage, one key (a partner's)
    # could fill the spool (then everyone's revocations are 503) and, once Redis is back, every
    # validator's memory: the limit the signer keeps in memory meanwhile holds the same rate.
    spool = tmp_path / "revocations.spool"
    with own_redis() as redis:
        state = StateSettings(redis_url=redis.url, revocation_rate=RateLimit(3, 60))
        with stack(keyring, state, revocation_spool=spool) as live:
            redis.stop()
            answers = [live.revoke(token_id=f"t-flood-{i}").status_code for i in range(6)]
            assert answers == [202, 202, 202, 429, 429, 429]
            refused = live.revoke(token_id="t-flood-last")
            assert refused.json()["error"] == "rate_limited"
            assert int(refused.headers["retry-after"]) >= 1
            assert refused.headers["cache-control"] == "no-store"
            assert len(spool.read_text().splitlines()) == 3


def test_a_revocation_too_few_replicas_confirm_is_not_acknowledged(
    keyring: KeyRing, redis_url: str, key_prefix: str, tmp_path: Path
) -> None:
    # A lone server asked for one replica: the write lands on the primary only.
    state = StateSettings(redis_url=redis_url, key_prefix=key_prefix, wait_replicas=1)
    with stack(keyring, state) as live:
        refused = live.revoke(token_id="t-unreplicated")
        assert refused.status_code == 503
        assert refused.json()["error"] == "not_replicated"
        assert refused.headers["retry-after"] == "1"
    with stack(keyring, state, revocation_spool=tmp_path / "spool") as live:
        queued = live.revoke(token_id="t-unreplicated")
        assert (queued.status_code, queued.json()["queued"]) == (202, True)


def test_the_persistence_snippet_in_the_redis_guide_turns_the_append_only_file_on(
    tmp_path: Path,
) -> None:
    guide = (Path(__file__).resolve().parents[2] / "docs" / "redis.md").read_text()
    section = guide.split("## Persistence", 1)[1]
    snippet = section.split("```conf\n", 1)[1].split("```", 1)[0]
    conf = tmp_path / "redis.conf"
    conf.write_text(snippet)
    port = free_port()
    argv = [require_tool("redis-server"), str(conf), "--port", str(port)]
    argv += ["--bind", LOOPBACK, "--dir", str(tmp_path)]
    with run_process(argv, port=port):
        cli = [require_tool("redis-cli"), "-h", LOOPBACK, "-p", str(port), "config", "get"]
        for name, value in (("appendonly", "yes"), ("appendfsync", "everysec")):
            out = subprocess.run(
                [*cli, name], capture_output=True, text=True, timeout=5, check=True
            )
            assert out.stdout.split() == [name, value]


def test_the_spool_keeps_replaying_through_a_busy_redis(
    tmp_path: Path, redis_url: str, key_prefix: str
) -> None:
    """A flood that fills the signer's pool while its spool replays (StoreBusy, not an outage)
    must not end the replay task: while the spool holds anything every new revocation joins
    it, so a dead task would queue them all for good, answered 202 and never reaching Redis."""
    settings = StateSettings(
        redis_url=redis_url, key_prefix=key_prefix, max_connections=1, pool_timeout=0.001
    )
    later = time.time() + 3600

    async def scenario() -> tuple[bool, list[str]]:
        store = RedisStore(settings)
        spool = RevocationSpool(tmp_path / "spool", store)
        try:
            await store.revocations(time.time())  # warm: the pool's one connection exists
            await spool.append(Revocation("token_id", "queued-1", time.time(), later))
            pool = store.client.connection_pool
            held = await pool.get_connection()  # the flood holds every connection
            task = asyncio.create_task(spool.run())
            try:
                for _ in range(40):  # several replay attempts, each refused as busy
                    await asyncio.sleep(REPLAY_INTERVAL / 10)
                    if task.done():
                        break
                survived = not task.done()
                await pool.release(held)
                deadline = time.monotonic() + 15
                while spool.holds_any() and time.monotonic() < deadline and not task.done():
                    await asyncio.sleep(0.05)
            finally:
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
            return survived, [r.value for r in await store.revocations(time.time())]
        finally:
            await store.close()

    survived, stored = asyncio.run(scenario())
    assert survived, "the replay task ended on a busy pool"
    assert stored == ["queued-1"]


def test_a_full_spool_refuses_rather_than_fill_the_disk(keyring: KeyRing, tmp_path: Path) -> None:
    """During an outage revocations cannot be counted against the key's rate limit, so the spool
    bounds itself: past MAX_SPOOL_BYTES a revocation is a 503 to retry, not another line."""
    spool = tmp_path / "revocations.spool"
    line = Revocation("token_id", "x" * 64, time.time(), time.time() + 3600).to_json() + "\n"
    spool.write_text(line * (MAX_SPOOL_BYTES // len(line) + 1))
    size = spool.stat().st_size
    with own_redis() as redis:
        state = StateSettings(redis_url=redis.url)
        with stack(keyring, state, revocation_spool=spool) as live:
            redis.stop()
            refused = live.revoke(token_id="one-too-many")
            assert refused.status_code == 503
            assert refused.json()["error"] == "store_unavailable"
            assert refused.headers["cache-control"] == "no-store"
            assert spool.stat().st_size == size
