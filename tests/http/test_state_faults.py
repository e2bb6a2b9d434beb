"""Redis outages under playback load: no 5xx, the failure policy holds, recovery resyncs.

A real redis-server is stopped (and paused with SIGSTOP, which makes calls hang rather than
fail) while a player keeps fetching; then it starts again from its append-only file.
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time

import httpx

from edge_validator.core.keyring import KeyRing
from edge_validator.state import Revocation, StateSettings
from edge_validator.state.redis_store import RedisStore
from tests.support.factories import ADMIN_AUTH, AUTH
from tests.support.servers import LOOPBACK, free_port
from tests.support.state_helpers import Stack, own_redis, stack, wait_for_status

REASON = "x-playgate-reason"


class PlaybackLoad:
    """A player fetching the master playlist and a segment in a loop, recording statuses."""

    def __init__(self, urls: list[str]) -> None:
        self.urls = urls
        self.statuses: list[int] = []
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(timeout=5) as client:
            while not self._stop.is_set():
                for url in self.urls:
                    try:
                        self.statuses.append(client.get(url).status_code)
                    except httpx.HTTPError as exc:  # a hang past 5 s would land here
                        self.errors.append(repr(exc))
                time.sleep(0.01)

    def __enter__(self) -> PlaybackLoad:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)


def _segment(url: str) -> str:
    return url.replace("master.m3u8", "hls/v0/seg_000.ts")


def _status(url: str) -> tuple[int, str | None]:
    resp = httpx.get(url, timeout=5)
    return resp.status_code, resp.headers.get(REASON)


def _wait_disconnected(validator: str) -> dict[str, object]:
    deadline = time.monotonic() + 10
    while True:
        health = httpx.get(f"{validator}/admin/health", headers=ADMIN_AUTH)
        state: dict[str, object] = health.json()["state"]
        if state["connected"] is False or time.monotonic() > deadline:
            assert state["connected"] is False
            return state
        time.sleep(0.02)


def _prepare(live: Stack) -> dict[str, dict[str, str]]:
    tokens = {
        "revoked": live.issue(),
        "good": live.issue(),
        "limited": live.issue(max_uses=1000),
        "streams": live.issue(user_id="u-fault", session_id="s1", max_streams=2),
    }
    assert live.revoke(token_id=tokens["revoked"]["token_id"]).status_code == 201
    assert wait_for_status(tokens["revoked"]["url"], 403).status_code == 403
    for name in ("good", "limited", "streams"):
        assert httpx.get(tokens[name]["url"]).status_code == 200
    return tokens


def test_fail_open_serves_the_last_view_then_denies_then_recovers(keyring: KeyRing) -> None:
    with own_redis() as redis:
        state = StateSettings(
            redis_url=redis.url,
            failure_policy="fail_open",
            max_staleness=4.0,
            stale_fallback="deny",
            resync_seconds=0.5,
        )
        with stack(keyring, state) as live:
            tokens = _prepare(live)
            good = tokens["good"]["url"]
            with PlaybackLoad([good, _segment(good)]) as load:
                time.sleep(0.3)
                redis.stop()
                # Within the staleness bound: the last view still serves, revocations hold.
                assert _wait_disconnected(live.validator)["failure_policy"] == "fail_open"
                assert _status(good) == (200, None)
                assert _status(tokens["revoked"]["url"]) == (403, "revoked")
                assert _status(tokens["streams"]["url"]) == (200, None)
                # Use limits never fail open: an uncountable one-time link is not one-time.
                assert _status(tokens["limited"]["url"]) == (403, "state_unavailable")
                assert httpx.get(f"{live.validator}/readyz").status_code == 200
                # Past the staleness bound: the chosen fallback (deny).
                denied = wait_for_status(good, 403)
                assert denied.headers[REASON] == "state_unavailable"
                assert _status(tokens["revoked"]["url"]) == (403, "revoked")
                assert httpx.get(f"{live.validator}/readyz").status_code == 503
                redis.start()
                # Recovery: the listener resubscribes and resyncs; playback resumes.
                assert wait_for_status(good, 200).status_code == 200
                assert wait_for_status(f"{live.validator}/readyz", 200).status_code == 200
                assert _status(tokens["revoked"]["url"]) == (403, "revoked")
                assert _status(tokens["limited"]["url"]) == (200, None)
                time.sleep(0.2)
            assert not load.errors
            assert set(load.statuses) <= {200, 403}
            assert 200 in load.statuses
            assert 403 in load.statuses


def test_fail_closed_denies_during_the_outage(keyring: KeyRing) -> None:
    with own_redis() as redis:
        state = StateSettings(redis_url=redis.url, failure_policy="fail_closed", resync_seconds=0.5)
        with stack(keyring, state) as live:
            tokens = _prepare(live)
            good = tokens["good"]["url"]
            with PlaybackLoad([good, _segment(good)]) as load:
                redis.stop()
                assert wait_for_status(good, 403).headers[REASON] == "state_unavailable"
                assert _status(tokens["revoked"]["url"]) == (403, "revoked")
                assert _status(tokens["streams"]["url"]) == (403, "state_unavailable")
                assert httpx.get(f"{live.validator}/readyz").status_code == 503
                assert _wait_disconnected(live.validator)["last_error"]
                redis.start()
                assert wait_for_status(good, 200).status_code == 200
                assert _status(tokens["revoked"]["url"]) == (403, "revoked")
            assert not load.errors
            assert set(load.statuses) <= {200, 403}


def test_a_hung_redis_never_hangs_a_request(keyring: KeyRing) -> None:
    with own_redis() as redis:
        state = StateSettings(redis_url=redis.url, resync_seconds=0.5, max_staleness=30)
        with stack(keyring, state) as live:
            tokens = _prepare(live)
            assert redis.proc is not None
            os.kill(redis.proc.pid, signal.SIGSTOP)
            try:
                with PlaybackLoad([tokens["limited"]["url"], tokens["good"]["url"]]) as load:
                    # Round trips time out within their budget: denied, never stuck.
                    assert _status(tokens["limited"]["url"]) == (403, "state_unavailable")
                    assert _status(tokens["good"]["url"]) == (200, None)
                    time.sleep(1.5)
                assert not load.errors
                assert set(load.statuses) <= {200, 403}
            finally:
                os.kill(redis.proc.pid, signal.SIGCONT)
            assert wait_for_status(tokens["limited"]["url"], 200).status_code == 200


def test_periodic_resync_repairs_a_missed_message(
    keyring: KeyRing, redis_url: str, key_prefix: str
) -> None:
    state = StateSettings(redis_url=redis_url, key_prefix=key_prefix, resync_seconds=0.3)
    with stack(keyring, state) as live:
        issued = live.issue()
        assert httpx.get(issued["url"]).status_code == 200
        now = time.time()
        rev = Revocation("token_id", issued["token_id"], now, now + 60)

        async def store_without_publishing() -> None:
            store = RedisStore(state)
            await store.log.append(store.client, [rev], now)
            await store.close()

        asyncio.run(store_without_publishing())
        resp = wait_for_status(issued["url"], 403)
        assert resp.headers[REASON] == "revoked"


def test_an_unreachable_cluster_is_an_outage_not_an_internal_error(keyring: KeyRing) -> None:
    """redis-py's cluster client reports a cluster it cannot reach (or a slot no node covers)
    with RedisClusterException, which is not a RedisError: it must still be StoreUnavailable,
    a 503 or the failure policy, never a 500."""
    state = StateSettings(
        redis_url=f"redis://{LOOPBACK}:{free_port()}/0",  # nothing listens there
        redis_cluster=True,
        connect_timeout=0.5,
        timeout=0.5,
    )
    with stack(keyring, state) as live:
        revoked = live.revoke(token_id="t-cluster-down")
        issued = httpx.post(
            f"{live.signer}/v1/playback-urls", json={"video_id": "demo"}, headers=AUTH, timeout=10
        )
    assert (revoked.status_code, revoked.json()["error"]) == (503, "store_unavailable")
    assert revoked.headers["cache-control"] == "no-store"
    assert issued.status_code == 201  # fail_open: rate limits unchecked, URLs still issued
