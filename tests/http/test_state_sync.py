"""The revocation sync against real redis-servers: no busy loop, a frozen Redis noticed in
bounded time, Redis losing its data, load that is not an outage, and a large live set."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from edge_validator.core.errors import StoreBusy, StoreUnavailable
from edge_validator.core.keyring import KeyRing, new_keyring_json
from edge_validator.state import Revocation, RevocationSync, StateSettings
from edge_validator.state.redis_store import RedisStore
from playgate.processes import free_port, run_process
from playgate.redis_server import RedisServer
from signer.settings import SignerSettings
from tests.support.factories import ADMIN_AUTH, SAMPLES
from tests.support.state_helpers import own_redis, stack, validator, wait_for_status

REASON = "x-playgate-reason"
ROOT = Path(__file__).resolve().parents[2]


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _pings(redis: RedisServer) -> int:
    out = subprocess.run(
        ["redis-cli", "-p", str(redis.port), "info", "commandstats"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for line in out.splitlines():
        if line.startswith("cmdstat_ping:"):
            return int(line.split("calls=")[1].split(",")[0])
    return 0


@contextlib.contextmanager
def validator_process(redis: RedisServer, tmp: Path) -> Iterator[subprocess.Popen[bytes]]:
    """``playgate serve-validator`` as its own process, ready."""
    (tmp / "keyring.json").write_text(new_keyring_json("k1"))
    port = free_port()
    env = {
        "PLAYGATE_KEYRING_FILE": str(tmp / "keyring.json"),
        "PLAYGATE_MEDIA_ROOT": str(SAMPLES),
        "REDIS_URL": redis.url,
    }
    argv = [sys.executable, "-m", "playgate.cli", "serve-validator", "--port", str(port)]
    with run_process(argv, port=port, env=env, cwd=ROOT, log=tmp / "validator.log") as proc:
        assert wait_for_status(f"http://127.0.0.1:{port}/readyz", 200).status_code == 200
        yield proc


def test_an_idle_validator_neither_spins_nor_floods_redis(tmp_path: Path) -> None:
    """The listener PINGs a quiet channel; it once spun on the PONG (78 % of a core, 10,000
    PINGs a second)."""
    with own_redis() as redis, validator_process(redis, tmp_path) as proc:
        time.sleep(1.5)  # past the first heartbeat
        pings_before, cpu_before = _pings(redis), _cpu_seconds(proc.pid)
        time.sleep(4)
        cpu = _cpu_seconds(proc.pid) - cpu_before
        pings = _pings(redis) - pings_before
    assert pings <= 12, f"{pings} PINGs in 4 s: one per second of quiet expected"
    assert cpu < 0.4, f"an idle validator used {cpu / 4:.0%} of a core"


def test_a_frozen_redis_is_noticed_before_the_next_catch_up() -> None:
    """SIGSTOP: the connection stays open and silent. The heartbeat's deadline notices it
    within about a second and the read timeout, not at the next catch-up (an hour here)."""
    with own_redis() as redis:
        settings = StateSettings(
            redis_url=redis.url, failure_policy="fail_closed", resync_seconds=3600
        )

        async def scenario() -> float:
            store = RedisStore(settings)
            sync = RevocationSync(store, settings)
            await sync.start()
            try:
                assert sync.healthy
                assert redis.proc is not None
                os.kill(redis.proc.pid, signal.SIGSTOP)
                frozen = time.monotonic()
                while sync.healthy and time.monotonic() - frozen < 20:
                    await asyncio.sleep(0.02)
                noticed = time.monotonic() - frozen
                assert not sync.trusted()  # fail_closed: the view is no longer relied upon
                os.kill(redis.proc.pid, signal.SIGCONT)
                return noticed
            finally:
                await sync.stop()
                await store.close()

        noticed = asyncio.run(scenario())
    assert noticed < 10, f"a frozen Redis went unnoticed for {noticed:.1f} s"


def test_a_full_pool_is_busy_not_down(redis_url: str, key_prefix: str) -> None:
    """A call that finds no free connection is StoreBusy, never StoreUnavailable (which would
    select the failure policy)."""
    settings = StateSettings(
        redis_url=redis_url, key_prefix=key_prefix, max_connections=1, pool_timeout=0.001
    )

    async def scenario() -> list[BaseException | int]:
        store = RedisStore(settings)
        try:
            return await asyncio.gather(
                *(store.count_use(f"tok-{i}", 60) for i in range(200)), return_exceptions=True
            )
        finally:
            await store.close()

    results = asyncio.run(scenario())
    assert not [r for r in results if isinstance(r, StoreUnavailable)]
    assert [r for r in results if isinstance(r, StoreBusy)]
    assert [r for r in results if r == 1]


def test_a_flood_never_plays_a_second_stream(
    keyring: KeyRing, redis_url: str, key_prefix: str
) -> None:
    """A second session of a max_streams: 1 viewer floods a shield whose pool is tiny: busy
    checks deny (state_busy), they never fail open; the first session keeps playing."""
    state = StateSettings(
        redis_url=redis_url, key_prefix=key_prefix, max_connections=2, pool_timeout=0.005
    )
    with stack(keyring, state) as live:
        first = live.issue(user_id="u-flood", session_id="s1", max_streams=1)
        second = live.issue(user_id="u-flood", session_id="s2", max_streams=1)
        assert httpx.get(first["url"]).status_code == 200

        async def flood() -> list[httpx.Response]:
            limits = httpx.Limits(max_connections=300)
            async with httpx.AsyncClient(timeout=30, limits=limits) as client:
                return await asyncio.gather(*(client.get(second["url"]) for _ in range(300)))

        answers = asyncio.run(flood())
        reasons = {(r.status_code, r.headers.get(REASON)) for r in answers}
        assert reasons <= {(403, "too_many_streams"), (403, "state_busy")}, reasons
        busy = [r for r in answers if r.headers.get(REASON) == "state_busy"]
        assert all(r.headers["Retry-After"] == "1" for r in busy)
        assert httpx.get(first["url"]).status_code == 200


def test_redis_losing_its_data_is_detected_and_repaired(tmp_path: Path, keyring: KeyRing) -> None:
    """Redis restarted without persistence: the running validator sees a new epoch, says so,
    and writes back what it holds, so a validator started afterwards denies the same tokens;
    one-time links issued before the loss can no longer be counted and are refused."""
    with own_redis("--appendonly", "no") as redis:
        state = StateSettings(redis_url=redis.url, resync_seconds=0.3)
        with stack(keyring, state) as live:
            doomed = live.issue()
            one_time = live.issue(max_uses=5)
            assert live.revoke(token_id=doomed["token_id"]).status_code == 201
            assert wait_for_status(doomed["url"], 403).headers[REASON] == "revoked"
            before = httpx.get(f"{live.validator}/admin/health", headers=ADMIN_AUTH).json()
            losses_before = _data_losses_counted(live.validator)
            redis.stop()
            redis.start()  # empty: no AOF, no snapshot
            deadline = time.monotonic() + 15
            health = before
            while time.monotonic() < deadline:
                health = httpx.get(f"{live.validator}/admin/health", headers=ADMIN_AUTH).json()
                state_now = health["state"]
                # The loss is counted first, the new epoch read once the write-back is done.
                renewed = state_now["epoch"] not in (None, before["state"]["epoch"])
                if state_now["data_losses"] and state_now["connected"] and renewed:
                    break
                time.sleep(0.05)
            assert health["state"]["data_losses"] == 1
            assert health["state"]["epoch"] != before["state"]["epoch"]
            # The registry is the process's: other tests' validators count into it too.
            assert _data_losses_counted(live.validator) == losses_before + 1
            assert httpx.get(doomed["url"]).headers[REASON] == "revoked"
            # A validator started now learns the revocation from what the first wrote back.
            with validator(keyring, state) as fresh:
                fresh_url = doomed["url"].replace(live.validator, fresh)
                assert wait_for_status(f"{fresh}/readyz", 200).status_code == 200
                assert httpx.get(fresh_url).headers[REASON] == "revoked"
                # Its use counts are gone: a one-time link from before is not countable.
                old = httpx.get(one_time["url"].replace(live.validator, fresh))
                assert (old.status_code, old.headers[REASON]) == (403, "state_unavailable")
            # Issued after the new epoch began: its not_before (set back by the signer's
            # margin, in whole seconds) is later than the epoch's start.
            time.sleep(SignerSettings.not_before_margin + 1.1)
            fresh_limited = live.issue(max_uses=5)
            assert httpx.get(fresh_limited["url"]).status_code == 200


@pytest.mark.parametrize("count", [100_000])
def test_a_validator_starts_ready_against_many_live_revocations(
    keyring: KeyRing, redis_url: str, key_prefix: str, count: int
) -> None:
    state = StateSettings(redis_url=redis_url, key_prefix=key_prefix)
    with stack(keyring, state) as live:
        doomed = live.issue()

        async def seed() -> None:
            # Written by the log's own script, 1,000 per call: what a busy signer leaves behind.
            store = RedisStore(dataclasses.replace(state, timeout=5))
            now = time.time()
            try:
                for start in range(0, count, 1000):
                    batch = [
                        Revocation("token_id", f"seed-{i}", now, now + 3600)
                        for i in range(start, start + 1000)
                    ]
                    await store.log.append(store.client, batch, now)
                await store.log.append(
                    store.client, [Revocation("token_id", doomed["token_id"], now, now + 3600)], now
                )
            finally:
                await store.close()

        asyncio.run(seed())
        with validator(keyring, state) as fresh:
            assert wait_for_status(f"{fresh}/readyz", 200, timeout=60).status_code == 200
            health = httpx.get(f"{fresh}/admin/health", headers=ADMIN_AUTH).json()["state"]
            assert health["revocations"] == count + 1
            denied = httpx.get(doomed["url"].replace(live.validator, fresh))
            assert denied.headers[REASON] == "revoked"
            assert httpx.get(live.issue()["url"].replace(live.validator, fresh)).status_code == 200


def _data_losses_counted(validator_url: str) -> float:
    metrics = httpx.get(f"{validator_url}/metrics", headers=ADMIN_AUTH).text
    for line in metrics.splitlines():
        if line.startswith("playgate_state_data_losses_total "):
            return float(line.split()[1])
    raise AssertionError("playgate_state_data_losses_total is not exported")


def test_a_stream_of_revocations_is_applied_in_step_without_reads(
    redis_url: str, key_prefix: str
) -> None:
    """Each notice carries its entry: a validator in step applies a stream of them, however
    they are batched between two reads of the socket, without reading the log back."""
    settings = StateSettings(redis_url=redis_url, key_prefix=key_prefix, resync_seconds=3600)

    async def scenario() -> tuple[int, int, int]:
        writer, store = RedisStore(settings), RedisStore(settings)
        sync = RevocationSync(store, settings)
        reads = 0
        changes = store.changes

        async def counted(after: int, limit: int = 500, anchor: str = "") -> object:
            nonlocal reads
            reads += 1
            return await changes(after, limit, anchor)

        await sync.start()
        store.changes = counted  # type: ignore[method-assign,assignment]
        try:
            assert sync.healthy
            now = time.time()
            seqs = [
                await writer.revoke(Revocation("token_id", f"burst-{i}", now, now + 60))
                for i in range(300)
            ]
            deadline = time.monotonic() + 30
            while sync.seq < seqs[-1] and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            held = sum(1 for rev in sync.view if rev.value.startswith("burst-"))
            return sync.seq - seqs[-1], held, reads
        finally:
            await sync.stop()
            await store.close()
            await writer.close()

    behind, held, reads = asyncio.run(scenario())
    assert (behind, held) == (0, 300)
    # Not one per revocation: only the start's rounds (the resync loop's first one, and a
    # wake-up when a notice lands while it reads) or a resubscription on a loaded machine.
    assert reads <= 10, f"{reads} reads of the log for 300 revocations in step"


def test_revocations_written_after_redis_came_back_from_an_old_snapshot_are_all_read() -> None:
    """Redis restarted from a snapshot older than what a validator read: its numbers went back
    and new writes reuse them. Even when enough arrived to pass the validator's number before it
    caught up, it reads every one of them, and writes back what the snapshot lost."""
    with own_redis("--appendonly", "no") as redis:
        settings = StateSettings(redis_url=redis.url)
        cli = ["redis-cli", "-p", str(redis.port)]
        later = time.time() + 3600

        def rev(name: str) -> Revocation:
            return Revocation("token_id", name, time.time(), later)

        async def scenario() -> tuple[set[str], set[str], int]:
            store = RedisStore(settings)
            sync = RevocationSync(store, settings)
            try:
                for name in ("kept-1", "kept-2", "kept-3"):
                    await store.revoke(rev(name))
                subprocess.run([*cli, "save"], check=True, capture_output=True)
                for name in ("lost-4", "lost-5", "lost-6"):
                    await store.revoke(rev(name))
                await sync.resync()
                assert sync.seq == 6
                redis.stop()  # no save on shutdown (--save ""): dump.rdb holds numbers 1-3
                redis.start()
                # Written before the validator catches up (a spool replaying, say): 4 to 7.
                for name in ("new-4", "new-5", "new-6", "new-7"):
                    await store.revoke(rev(name))
                await sync.resync()
                held = {r.value for r in sync.view}
                fresh = RevocationSync(store, settings)
                await fresh.resync()
                return held, {r.value for r in fresh.view}, sync.data_losses
            finally:
                await sync.stop()
                await store.close()

        held, fresh, losses = asyncio.run(scenario())
    assert {"new-4", "new-5", "new-6", "new-7"} <= held
    assert losses == 1
    # What the snapshot lost is back in Redis for validators started later.
    assert {"lost-4", "lost-5", "lost-6", "new-4", "new-7"} <= fresh
