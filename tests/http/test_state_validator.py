"""The validator's stateful checks against a real redis-server and a real Redis Cluster."""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Iterator
from datetime import datetime

import httpx
import pytest
import redis

from edge_validator.admin_key import AdminKey
from edge_validator.asgi.app import create_app as create_validator
from edge_validator.core.keyring import KeyRing
from edge_validator.settings import ValidatorSettings
from edge_validator.state import StateSettings
from tests.support import factories
from tests.support.factories import ADMIN_AUTH, ADMIN_KEY_HASH, SAMPLES
from tests.support.servers import serve_app
from tests.support.state_helpers import Stack, stack, validator, wait_for_status

REASON = "x-playgate-reason"


@pytest.fixture(params=["redis", "cluster"])
def state(request: pytest.FixtureRequest, key_prefix: str) -> StateSettings:
    if request.param == "cluster":
        url = request.getfixturevalue("cluster_url")
        return StateSettings(redis_url=url, redis_cluster=True, key_prefix=key_prefix)
    return StateSettings(redis_url=request.getfixturevalue("redis_url"), key_prefix=key_prefix)


@pytest.fixture
def live(keyring: KeyRing, state: StateSettings) -> Iterator[Stack]:
    with stack(keyring, state) as s:
        yield s


def test_revoked_token_is_denied_and_others_still_play(live: Stack) -> None:
    doomed, other = live.issue(), live.issue()
    assert httpx.get(doomed["url"]).status_code == 200
    assert live.revoke(token_id=doomed["token_id"]).status_code == 201
    resp = wait_for_status(doomed["url"], 403)
    assert resp.status_code == 403
    assert resp.headers[REASON] == "revoked"
    assert resp.headers["cache-control"] == "no-store"
    assert httpx.get(other["url"]).status_code == 200


def test_session_and_user_revocations(live: Stack) -> None:
    by_session = live.issue(session_id="sess-1")
    by_user = live.issue(user_id="user-1")
    bystander = live.issue(session_id="sess-2", user_id="user-2")
    live.revoke(session_id="sess-1")
    live.revoke(user_id="user-1")
    assert wait_for_status(by_session["url"], 403).headers[REASON] == "revoked"
    assert wait_for_status(by_user["url"], 403).headers[REASON] == "revoked"
    assert httpx.get(bystander["url"]).status_code == 200


def test_video_revocation_covers_tokens_issued_before_it_only(live: Stack) -> None:
    before = live.issue()
    revoked_at = datetime.fromisoformat(live.revoke(video_id="demo").json()["revoked_at"])
    assert wait_for_status(before["url"], 403).headers[REASON] == "revoked"
    # Tokens carry whole-second issue times; one issued in a later second is not covered.
    time.sleep(max(0.0, int(revoked_at.timestamp()) + 1 - time.time()) + 0.01)
    after = live.issue()
    assert httpx.get(after["url"]).status_code == 200
    assert httpx.get(before["url"]).status_code == 403


def test_revocations_survive_a_validator_restart(live: Stack) -> None:
    issued = live.issue()
    live.revoke(token_id=issued["token_id"])
    path = issued["url"].removeprefix(live.validator)
    # A brand-new validator process knows the revocation from its first request.
    with validator(live.keyring, live.state) as fresh:
        resp = httpx.get(fresh + path)
        assert resp.status_code == 403
        assert resp.headers[REASON] == "revoked"


def test_use_limit_counts_every_request(live: Stack) -> None:
    issued = live.issue(file="hls/v0/seg_000.ts", max_uses=2)
    assert httpx.get(issued["url"]).status_code == 200
    assert httpx.get(issued["url"]).status_code == 200
    third = httpx.get(issued["url"])
    assert third.status_code == 403
    assert third.headers[REASON] == "use_limit_reached"


def test_only_limited_tokens_pay_a_redis_round_trip(
    keyring: KeyRing, redis_url: str, key_prefix: str
) -> None:
    state = StateSettings(redis_url=redis_url, key_prefix=key_prefix)
    client = redis.Redis.from_url(redis_url)

    def script_calls() -> int:
        return int(client.info("commandstats").get("cmdstat_evalsha", {}).get("calls", 0))

    with stack(keyring, dataclasses.replace(state, resync_seconds=3600)) as live:
        plain, limited = live.issue(), live.issue(max_uses=100)
        # The Redis server is the session's and the sync may retry a page in the background:
        # allow a stray call or two, never one per request.
        before = script_calls()
        for _ in range(20):
            assert httpx.get(plain["url"]).status_code == 200
        after_plain = script_calls()
        assert after_plain - before <= 2
        for _ in range(5):
            assert httpx.get(limited["url"]).status_code == 200
        assert 5 <= script_calls() - after_plain <= 7
    client.close()


def test_stream_limit_denies_new_sessions_and_keeps_existing_ones(live: Stack) -> None:
    first = live.issue(user_id="viewer-7", session_id="tv", max_streams=1)
    second = live.issue(user_id="viewer-7", session_id="phone", max_streams=1)
    assert httpx.get(first["url"]).status_code == 200
    denied = httpx.get(second["url"])
    assert denied.status_code == 403
    assert denied.headers[REASON] == "too_many_streams"
    assert httpx.get(first["url"]).status_code == 200  # the existing session keeps playing


def test_health_and_readiness_report_redis(live: Stack) -> None:
    """Details for operators behind the admin key; the public endpoints say only ok/ready."""
    health = httpx.get(f"{live.validator}/admin/health", headers=ADMIN_AUTH).json()
    assert health["state"]["backend"] == "redis"
    assert health["state"]["connected"] is True
    ready = httpx.get(f"{live.validator}/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"ready": True}
    assert httpx.get(f"{live.validator}/healthz").json() == {"status": "ok"}
    signer = httpx.get(f"{live.signer}/readyz")
    assert signer.status_code == 200
    assert signer.json() == {"ready": True}
    details = httpx.get(f"{live.signer}/admin/health", headers=ADMIN_AUTH).json()
    assert details["state"] == {"backend": "redis", "connected": True, "shared": True}
    for url in (live.validator, live.signer):
        assert httpx.get(f"{url}/admin/health").status_code == 401
        wrong = {"Authorization": "Bearer " + "x" * 40}
        assert httpx.get(f"{url}/admin/health", headers=wrong).status_code == 401


def test_limited_tokens_are_denied_without_a_state_backend(keyring: KeyRing) -> None:
    import asyncio

    from edge_validator.core.errors import StateUnavailable
    from edge_validator.gate import Gate

    settings = ValidatorSettings(
        keyring=keyring, media_root=SAMPLES, admin_key=AdminKey(ADMIN_KEY_HASH)
    )
    token = factories.token(keyring, token_id="tid-1", max_uses=1)
    with pytest.raises(StateUnavailable):  # a gate without shared state (Lambda@Edge's case)
        asyncio.run(Gate(settings.verifier(), None).authorize(factories.target(token), None))
    # A standalone validator's memory is its own: a restart or a second process would reset
    # the count, so limited tokens are refused and /healthz says the state is not shared.
    streams = factories.token(keyring, token_id="tid-2", max_streams=1)
    plain = factories.token(keyring, token_id="tid-3")
    with serve_app(create_validator(settings)) as url:
        for limited in (token, streams):
            resp = httpx.get(f"{url}/t/{limited}/videos/demo/master.m3u8")
            assert resp.status_code == 403
            assert resp.headers[REASON] == "state_unavailable"
        assert httpx.get(f"{url}/t/{plain}/videos/demo/master.m3u8").status_code == 200
        health = httpx.get(f"{url}/admin/health", headers=ADMIN_AUTH).json()
    state = health["state"]
    assert (state["backend"], state["shared"]) == ("memory", False)


def test_in_memory_default_revokes_within_one_process(keyring: KeyRing) -> None:
    """The demo's shape: one store shared by signer and validator in one process."""
    import asyncio

    from edge_validator.state import Revocation, StateGuard
    from edge_validator.state.memory import MemoryStore

    store = MemoryStore()
    guard = StateGuard(store, StateSettings())
    settings = ValidatorSettings(keyring=keyring, media_root=SAMPLES)
    token = factories.token(keyring, token_id="tid-2")
    with serve_app(create_validator(settings, guard=guard)) as url:
        target = f"{url}/t/{token}/videos/demo/master.m3u8"
        assert httpx.get(target).status_code == 200
        rev = Revocation("token_id", "tid-2", time.time(), time.time() + 60)
        asyncio.run(store.revoke(rev))
        assert httpx.get(target).headers[REASON] == "revoked"


@pytest.mark.parametrize(
    "notice",
    [
        b'{"kind": "token_id", "value": "x", "revoked_at": 1, "expires_at": 2, "seq": 1e999}',
        b"[" * 100_000 + b"]" * 100_000,  # deeper than the JSON parser recurses
        b'{"kind": "token_id", "value": "x", "revoked_at": 1, "expires_at": 2, "seq": NaN}',
    ],
    ids=["seq-overflow", "deep", "seq-nan"],
)
def test_a_hostile_notice_on_the_channel_is_ignored_not_a_listener_crash(
    keyring: KeyRing,
    redis_url: str,
    key_prefix: str,
    notice: bytes,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Whoever can PUBLISH on the channel (a broken client, a compromised host) sends notices
    # that parse as JSON but not as numbers, or not at all: each is skipped with a warning; the
    # subscription (how revocations arrive within a second) stays up.
    state = StateSettings(redis_url=redis_url, key_prefix=key_prefix)
    client = redis.Redis.from_url(redis_url)
    with stack(keyring, state) as live, caplog.at_level("WARNING"):
        doomed = live.issue()
        assert httpx.get(doomed["url"], timeout=10).status_code == 200
        assert client.publish(f"{key_prefix}:revocations", notice) >= 1
        assert live.revoke(token_id=doomed["token_id"]).status_code == 201
        assert wait_for_status(doomed["url"], 403).headers[REASON] == "revoked"
    assert "ignoring a malformed revocation message" in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text


@pytest.mark.parametrize(
    "entry",
    [
        "[" * 100_000 + "]" * 100_000,
        '{"kind": "token_id", "value": "x", "revoked_at": 1' + "0" * 400 + ', "expires_at": 2}',
    ],
    ids=["deep", "number-overflow"],
)
def test_a_hostile_entry_in_the_log_is_skipped_not_a_sync_stopped(
    keyring: KeyRing,
    redis_url: str,
    key_prefix: str,
    entry: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # An entry no validator wrote (a broken tool, a compromised host) sits in the log until it
    # expires: it must be skipped as any malformed entry is, not stop every validator's
    # catch-up (then its view is never trusted again and every viewer is denied).
    state = StateSettings(redis_url=redis_url, key_prefix=key_prefix)
    client = redis.Redis.from_url(redis_url)
    base = f"{key_prefix}:{{revocations}}"
    with stack(keyring, state) as live, caplog.at_level("WARNING"):
        doomed, good = live.issue(), live.issue()
        assert httpx.get(doomed["url"], timeout=10).status_code == 200
        seq = client.incr(f"{base}:seq")
        client.zadd(f"{base}:expiry", {"token_id:poison": time.time() + 600})
        client.hset(f"{base}:data", "token_id:poison", entry)
        client.zadd(f"{base}:log", {"token_id:poison": seq})
        assert live.revoke(token_id=doomed["token_id"]).status_code == 201  # a gap: catch-up
        assert wait_for_status(doomed["url"], 403).headers[REASON] == "revoked"
        time.sleep(0.5)
        assert httpx.get(good["url"], timeout=10).status_code == 200
        health = httpx.get(f"{live.validator}/admin/health", headers=ADMIN_AUTH, timeout=10)
        assert health.json()["state"]["connected"] is True
    assert "ignoring a malformed revocation entry" in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
