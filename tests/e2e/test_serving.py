"""``playgate serve-validator`` / ``serve-signer`` as operators run them: several workers,
metrics summed across them and read back with Prometheus's own text parser, JSON decision
logs without tokens, and SIGHUP key reloads that fail no request."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from edge_validator.core.keyring import KeyRing
from tests.support import factories
from tests.support.factories import ADMIN_AUTH, ADMIN_KEY_HASH, API_KEY, SAMPLES
from tests.support.servers import LOOPBACK, free_port, run_process

pytestmark = pytest.mark.slow
SECRET_1 = "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE"  # b"A" * 32, base64url
SECRET_2 = "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8"  # bytes(range(32, 64))


def ring_json(active: str, **keys: str) -> str:
    return json.dumps({"active": active, "keys": keys})


def write_ring(path: Path, text: str) -> None:
    """Atomically, as an operator's deploy tool should: a reader never sees half a file."""
    partial = path.with_suffix(".partial")
    partial.write_text(text)
    os.replace(partial, path)


def serve(
    command: str, env: dict[str, str], log: Path, workers: int = 2
) -> tuple[int, contextlib.AbstractContextManager[subprocess.Popen[bytes]]]:
    port = free_port()
    argv = [sys.executable, "-m", "playgate.cli", command, "--port", str(port)]
    argv += ["--workers", str(workers)]
    return port, run_process(argv, port=port, env=env, log=log)


def metric_samples(base: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    resp = httpx.get(f"{base}/metrics", headers=ADMIN_AUTH, timeout=10)
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(resp.text):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def value(
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str
) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture
def ring_file(tmp_path: Path) -> Path:
    path = tmp_path / "keyring.json"
    write_ring(path, ring_json("k1", k1=SECRET_1))
    return path


def base_env(ring_file: Path) -> dict[str, str]:
    env = {
        "PLAYGATE_KEYRING_FILE": str(ring_file),
        "PLAYGATE_MEDIA_ROOT": str(SAMPLES),
        "PLAYGATE_ADMIN_KEY_HASH": ADMIN_KEY_HASH,
        "PLAYGATE_LOG_FORMAT": "json",
    }
    return env


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("REDIS_URL", "PROMETHEUS_MULTIPROC_DIR", "PLAYGATE_LOG_LEVEL"):
        monkeypatch.delenv(name, raising=False)


def wait_log(log: Path, needle: str, count: int, timeout: float = 60.0) -> None:
    """Until ``needle`` appears ``count`` times in the log (workers start slowly under load)."""
    deadline = time.monotonic() + timeout
    while log.read_text().count(needle) < count:
        assert time.monotonic() < deadline, f"{needle!r} x{count} not in {log.read_text()}"
        time.sleep(0.05)


def fresh_connection_get(url: str, **kw: object) -> httpx.Response:
    # A new connection per request, so the kernel spreads them over the workers.
    with httpx.Client(timeout=10) as client:
        return client.get(url, **kw)  # type: ignore[arg-type]


def test_validator_workers_count_every_decision_once(
    ring_file: Path, tmp_path: Path, clean_env: None
) -> None:
    ring = KeyRing({"k1": b"A" * 32}, "k1")
    log = tmp_path / "validator.log"
    port, server = serve("serve-validator", base_env(ring_file), log)
    base = f"http://{LOOPBACK}:{port}"
    good = factories.token(ring, token_id="tid-metrics", session_id="sess-9")
    bad = good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB")
    with server:
        wait_log(log, "Application startup complete", 2)
        for _ in range(30):
            assert (
                fresh_connection_get(f"{base}/t/{good}/videos/demo/master.m3u8").status_code == 200
            )
        for _ in range(7):
            assert (
                fresh_connection_get(f"{base}/t/{bad}/videos/demo/master.m3u8").status_code == 403
            )
        for _ in range(5):
            assert fresh_connection_get(f"{base}/videos/demo/master.m3u8").status_code == 401
        for _ in range(3):  # nginx's auth_request
            uri = {"X-Original-URI": f"/t/{good}/videos/demo/master.m3u8"}
            assert fresh_connection_get(f"{base}/auth", headers=uri).status_code == 204
        # The public endpoints say nothing about state; details need the admin key.
        assert fresh_connection_get(f"{base}/healthz").json() == {"status": "ok"}
        assert fresh_connection_get(f"{base}/metrics").status_code == 401
        details = fresh_connection_get(f"{base}/admin/health", headers=ADMIN_AUTH).json()
        assert details["state"]["backend"] == "memory"
        time.sleep(1.5)  # every worker's state gauges are written once a second
        # Whichever worker answers the scrape, it reports every worker's counts.
        scrapes = [metric_samples(base) for _ in range(4)]
    for samples in scrapes:
        assert value(samples, "playgate_decisions_total", outcome="allow", reason="ok") == 33
        assert (
            value(samples, "playgate_decisions_total", outcome="deny", reason="bad_signature") == 7
        )
        assert value(samples, "playgate_decisions_total", outcome="deny", reason="missing") == 5
        assert value(samples, "playgate_verification_seconds_count") == 45
        shield = {"service": "validator", "route": "shield"}
        assert value(samples, "playgate_http_responses_total", status="2xx", **shield) == 30
        assert value(samples, "playgate_http_responses_total", status="4xx", **shield) == 12
        assert value(samples, "playgate_request_seconds_count", **shield) == 42
        assert value(samples, "playgate_revocation_view_in_sync") == 1
        assert value(samples, "playgate_revocation_view_entries") == 0
        assert value(samples, "playgate_revocation_last_sync_timestamp_seconds") > time.time() - 60
        assert value(samples, "playgate_fail_open_decisions_total") == 0
        assert ("playgate_sessions_renewed_total", ()) in samples
    lines = [json.loads(x) for x in log.read_text().splitlines() if x.startswith("{")]
    decisions = [x for x in lines if x.get("event") == "decision"]
    assert len(decisions) == 45
    assert len({x["pid"] for x in decisions}) == 2  # both workers served
    allowed = [x for x in decisions if x["outcome"] == "allow"]
    assert {(x["token_id"], x["session_id"], x["client"]) for x in allowed} == {
        ("tid-metrics", "sess-9", "127.0.0.1")
    }
    assert all(isinstance(x["latency_ms"], float) for x in decisions)
    text = log.read_text()
    assert good not in text
    assert bad not in text
    assert SECRET_1 not in text


def listeners(port: int) -> dict[int, set[str]]:
    """Which process holds which listening socket of ``port`` (socket inodes, from /proc)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "0A":  # LISTEN
                inodes.add(f"socket:[{fields[9]}]")
    held: dict[int, set[str]] = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        with contextlib.suppress(OSError):
            for fd in os.listdir(f"/proc/{pid}/fd"):
                with contextlib.suppress(OSError):
                    target = os.readlink(f"/proc/{pid}/fd/{fd}")
                    if target in inodes:
                        held.setdefault(int(pid), set()).add(target)
    return held


def test_each_worker_has_its_own_socket_and_a_dead_one_is_replaced_on_it(
    ring_file: Path, tmp_path: Path, clean_env: None
) -> None:
    """SO_REUSEPORT: the kernel spreads connections over the workers' sockets; a socket whose
    worker died must get a worker again, or the connections hashed to it would never be served."""
    ring = KeyRing({"k1": b"A" * 32}, "k1")
    good = factories.token(ring, ttl=600)
    log = tmp_path / "validator.log"
    port, server = serve("serve-validator", base_env(ring_file), log)
    url = f"http://{LOOPBACK}:{port}/t/{good}/videos/demo/master.m3u8"
    with server as proc:
        wait_log(log, "Application startup complete", 2)
        held = listeners(port)
        sockets = held.pop(proc.pid)  # the supervisor keeps every socket
        assert len(sockets) == 2
        assert sorted(map(len, held.values())) == [1, 1]  # each worker: one socket, its own
        assert set().union(*held.values()) == sockets
        dead = next(iter(held))
        os.kill(dead, signal.SIGKILL)
        wait_log(log, "Application startup complete", 3)
        after = listeners(port)
        assert after.pop(proc.pid) == sockets
        assert dead not in after
        assert set().union(*after.values()) == sockets
        assert sorted(map(len, after.values())) == [1, 1]
        # Fresh connections, hashed over both sockets: every one is answered.
        assert {fresh_connection_get(url).status_code for _ in range(40)} == {200}


def test_signer_counts_urls_per_api_key_across_workers(
    ring_file: Path, tmp_path: Path, clean_env: None
) -> None:
    env = {
        **base_env(ring_file),
        "PLAYGATE_API_KEYS": f"backend-eu:{hashlib.sha256(API_KEY.encode()).hexdigest()}",
    }
    port, server = serve("serve-signer", env, tmp_path / "signer.log")
    base = f"http://{LOOPBACK}:{port}"
    with server:
        wait_log(tmp_path / "signer.log", "Application startup complete", 2)
        for _ in range(12):
            with httpx.Client(timeout=10) as client:
                made = client.post(
                    f"{base}/v1/playback-urls",
                    json={"video_id": "demo"},
                    headers={"Authorization": f"Bearer {API_KEY}"},
                )
                assert made.status_code == 201
        for _ in range(3):
            refused = httpx.post(f"{base}/v1/playback-urls", json={"video_id": "demo"}, timeout=10)
            assert refused.status_code == 401
        time.sleep(0.5)  # each worker writes its counts every FLUSH_SECONDS (0.1 s)
        samples = metric_samples(base)
    assert value(samples, "playgate_urls_issued_total", api_key="backend-eu") == 12
    route = {"service": "signer", "route": "/v1/playback-urls"}
    assert value(samples, "playgate_http_responses_total", status="2xx", **route) == 12
    assert value(samples, "playgate_http_responses_total", status="4xx", **route) == 3
    assert API_KEY not in (tmp_path / "signer.log").read_text()


def test_sighup_reloads_the_key_ring_without_failing_a_request(
    ring_file: Path, tmp_path: Path, clean_env: None
) -> None:
    ring_1 = KeyRing({"k1": b"A" * 32}, "k1")
    ring_2 = KeyRing({"k2": bytes(range(32, 64))}, "k2")
    old = factories.token(ring_1, ttl=600, token_id="tid-old")
    new = factories.token(ring_2, key_id="k2", ttl=600, token_id="tid-new")
    log = tmp_path / "validator.log"
    port, server = serve("serve-validator", base_env(ring_file), log)
    base = f"http://{LOOPBACK}:{port}"
    old_url = f"{base}/t/{old}/videos/demo/master.m3u8"
    new_url = f"{base}/t/{new}/videos/demo/master.m3u8"
    failures: list[int] = []
    done = 0
    stop = threading.Event()

    def keep_playing() -> None:
        nonlocal done
        with httpx.Client(timeout=10) as client:
            while not stop.is_set():
                status = client.get(old_url).status_code
                if status != 200:
                    failures.append(status)
                done += 1

    with server as proc:
        wait_log(log, "Application startup complete", 2)
        assert fresh_connection_get(new_url).status_code == 403  # k2 unknown yet
        players = [threading.Thread(target=keep_playing) for _ in range(4)]
        for t in players:
            t.start()
        try:
            # Rotation step 1: add k2 and sign with it; k1 stays for URLs already out.
            write_ring(ring_file, ring_json("k2", k1=SECRET_1, k2=SECRET_2))
            proc.send_signal(signal.SIGHUP)
            wait_log(log, "key ring reloaded: key ids k1,k2", 2)  # both workers
            assert wait_status(new_url, 200)
            # A ring that does not load is refused; the running one stays. (Signals close
            # together may merge into one reload, of the newest file: wait for each.)
            write_ring(ring_file, '{"keys": {"k3": "short"}}')
            proc.send_signal(signal.SIGHUP)
            wait_log(log, "key ring reload refused", 2)
            assert fresh_connection_get(new_url).status_code == 200
        finally:
            stop.set()
            for t in players:
                t.join()
        assert proc.poll() is None  # SIGHUP no longer ends the server
        assert failures == []
        assert done > 20
        # Rotation step 2: k1 retired; its URLs now fail, k2's keep working.
        write_ring(ring_file, ring_json("k2", k2=SECRET_2))
        proc.send_signal(signal.SIGHUP)
        assert wait_status(old_url, 403)
        assert fresh_connection_get(old_url).headers["x-playgate-reason"] == "unknown_key"
        assert fresh_connection_get(new_url).status_code == 200
    assert SECRET_2 not in log.read_text()


def wait_status(url: str, status: int, timeout: float = 15.0) -> bool:
    """Every worker has reloaded once ``status`` comes back 10 times on fresh connections."""
    deadline = time.monotonic() + timeout
    streak = 0
    while time.monotonic() < deadline:
        streak = streak + 1 if fresh_connection_get(url).status_code == status else 0
        if streak >= 10:
            return True
        time.sleep(0.05)
    return False
