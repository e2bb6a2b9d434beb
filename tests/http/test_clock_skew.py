"""Clocks that disagree: a validator behind the signer, run for real under libfaketime.

A ``playgate serve-validator`` process whose clock is 8 s behind (``faketime``) sees URLs from a
signer with no not-before margin as ``not_yet_valid`` (8 s > the 5 s leeway), accepts URLs from
a signer with the default margin (5 s, so 10 s of tolerance), and reports its offset from Redis
``TIME`` in a warning and in its health.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from edge_validator.admin_key import AdminKey
from edge_validator.core.keyring import KeyRing, new_keyring_json
from edge_validator.state import StateSettings
from edge_validator.state.clock_skew import ClockSkew
from edge_validator.state.redis_store import RedisStore
from playgate.processes import clock_offset_env, stop_process
from signer.api_keys import ApiKeys, hash_api_key
from signer.app import create_app as create_signer
from signer.settings import SignerSettings
from tests.support import factories
from tests.support.factories import ADMIN_AUTH, ADMIN_KEY_HASH, API_KEY
from tests.support.servers import LOOPBACK, free_port, serve_app, wait_for_port
from tests.support.state_helpers import AUTH

BEHIND = 8


@pytest.fixture
def late_validator(
    redis_url: str, key_prefix: str, tmp_path: Path
) -> Iterator[tuple[str, KeyRing, Path]]:
    """A validator process whose wall clock runs BEHIND seconds late; yields URL, ring, log."""
    text = new_keyring_json("k1")
    port = free_port()
    log = tmp_path / "validator.log"
    env = {
        **os.environ,
        "PLAYGATE_KEYRING": text,
        "PLAYGATE_MEDIA_ROOT": str(factories.SAMPLES),
        "PLAYGATE_ADMIN_KEY_HASH": ADMIN_KEY_HASH,
        "REDIS_URL": redis_url,
        "PLAYGATE_REDIS_PREFIX": key_prefix,
        **clock_offset_env(-BEHIND),
    }
    argv = [sys.executable, "-m", "playgate.cli", "serve-validator", "--port", str(port)]
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_for_port(port, proc=proc)
        yield f"http://{LOOPBACK}:{port}", KeyRing.from_json(text), log
    finally:
        stop_process(proc)


def _url(validator: str, ring: KeyRing, state: StateSettings, margin: int) -> str:
    settings = SignerSettings(
        keyring=ring,
        api_keys=ApiKeys({"test": hash_api_key(API_KEY)}),
        public_url=validator,
        state=state,
        admin_key=AdminKey(ADMIN_KEY_HASH),
        not_before_margin=margin,
    )
    with serve_app(create_signer(settings)) as signer:
        body = {"video_id": "demo", "session_seconds": 0}
        resp = httpx.post(f"{signer}/v1/playback-urls", json=body, headers=AUTH, timeout=10)
    assert resp.status_code == 201, resp.text
    url: str = resp.json()["url"]
    return url


def test_a_validator_behind_accepts_fresh_urls_thanks_to_the_margin(
    late_validator: tuple[str, KeyRing, Path], redis_url: str, key_prefix: str
) -> None:
    validator, ring, log = late_validator
    state = StateSettings(redis_url=redis_url, key_prefix=key_prefix)
    without = httpx.get(_url(validator, ring, state, margin=0), timeout=10)
    assert (without.status_code, without.headers["x-playgate-reason"]) == (403, "not_yet_valid")
    default_margin = SignerSettings.from_env({"PLAYGATE_KEYRING": new_keyring_json()})
    with_margin = _url(validator, ring, state, margin=default_margin.not_before_margin)
    assert httpx.get(with_margin, timeout=10).status_code == 200
    # The validator measured how far behind Redis's clock it is, and said so.
    health = httpx.get(f"{validator}/admin/health", headers=ADMIN_AUTH, timeout=10).json()
    assert -BEHIND - 1 < health["state"]["clock_offset_seconds"] < -BEHIND + 1
    deadline = time.monotonic() + 10
    while "behind Redis's" not in log.read_text() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert "behind Redis's" in log.read_text()


def test_the_clock_watch_outlives_a_busy_redis(redis_url: str, key_prefix: str) -> None:
    """A flood that fills the pool when the minute's check runs (StoreBusy, not an outage) does
    not end the watch: the next check still measures."""
    settings = StateSettings(
        redis_url=redis_url, key_prefix=key_prefix, max_connections=1, pool_timeout=0.001
    )

    async def scenario() -> tuple[bool, float | None]:
        store = RedisStore(settings)
        skew = ClockSkew(store, threshold=1.0, interval=0.05)
        try:
            await store.revocations(time.time())  # warm: the pool's one connection exists
            pool = store.client.connection_pool
            held = await pool.get_connection()  # the flood holds every connection
            task = asyncio.create_task(skew.run())
            try:
                for _ in range(20):
                    await asyncio.sleep(0.05)
                    if task.done():
                        break
                survived = not task.done()
                await pool.release(held)
                deadline = time.monotonic() + 15
                while skew.offset is None and time.monotonic() < deadline and not task.done():
                    await asyncio.sleep(0.05)
            finally:
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
            return survived, skew.offset
        finally:
            await store.close()

    survived, offset = asyncio.run(scenario())
    assert survived, "the clock watch ended on a busy pool"
    assert offset is not None
