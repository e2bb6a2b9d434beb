"""Revocation propagation across real validator processes (used by a test and by bench/).

A signer and N validators run as real ``playgate serve-*`` subprocesses against one real
redis-server. Each round issues a token, checks every validator allows it, revokes it through
the signer API and polls every validator (``GET /auth``) until it denies. The latency of a
validator is from just before the revocation request to its first denial, so it includes the
signer's own round trip: an upper bound on pub/sub propagation.
"""

from __future__ import annotations

import contextlib
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import httpx

from edge_validator.core.keyring import new_keyring_json
from playgate.demo import SAMPLES
from playgate.processes import free_port, run_process
from playgate.redis_server import redis_server
from signer.api_keys import hash_api_key

ROOT = Path(__file__).resolve().parent.parent

API_KEY = "pgk_propagation-test-key-0123456789abcdefghij"
AUTH = {"Authorization": f"Bearer {API_KEY}"}
POLL_INTERVAL = 0.002


class Fleet(NamedTuple):
    signer: str
    validators: list[str]
    redis_url: str


@contextlib.contextmanager
def fleet(validators: int = 3, extra_env: dict[str, str] | None = None) -> Iterator[Fleet]:
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="playgate-fleet-")))
        (tmp / "keyring.json").write_text(new_keyring_json("p1"))
        redis = stack.enter_context(redis_server())
        env = {
            "PLAYGATE_KEYRING_FILE": str(tmp / "keyring.json"),
            "REDIS_URL": redis.url,
            "PLAYGATE_MEDIA_ROOT": str(SAMPLES),
            "PLAYGATE_API_KEYS": f"bench:{hash_api_key(API_KEY)}",
            "PLAYGATE_RATE_LIMIT_API_KEY": "0",
            **(extra_env or {}),
        }
        cli = [sys.executable, "-m", "playgate.cli"]
        ports = [free_port() for _ in range(validators + 1)]
        procs = [
            (["serve-signer"], ports[0]),
            *((["serve-validator"], port) for port in ports[1:]),
        ]
        for i, (args, port) in enumerate(procs):
            env_i = {**env, "PLAYGATE_PUBLIC_URL": f"http://127.0.0.1:{ports[1]}"}
            stack.enter_context(
                run_process(
                    [*cli, *args, "--port", str(port)],
                    port=port,
                    env=env_i,
                    cwd=ROOT,
                    log=tmp / f"proc{i}.log",
                )
            )
        urls = [f"http://127.0.0.1:{p}" for p in ports]
        for url in urls[1:]:
            _wait_ready(url)
        yield Fleet(urls[0], urls[1:], redis.url)


def _wait_ready(url: str, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        time.sleep(0.05)
    raise TimeoutError(f"{url} never became ready")


def issue(signer: str, **body: object) -> dict[str, str]:
    # /auth judges the URL's own token: a manifest that would open a playback session is
    # refused there (the shield answers it with a redirect), so these URLs open none.
    body.setdefault("session_seconds", 0)
    resp = httpx.post(
        f"{signer}/v1/playback-urls", json={"video_id": "demo", **body}, headers=AUTH, timeout=10
    )
    resp.raise_for_status()
    doc: dict[str, str] = resp.json()
    return doc


def auth_status(client: httpx.Client, validator: str, target: str) -> int:
    return client.get(f"{validator}/auth", headers={"X-Original-URI": target}).status_code


def measure_round(f: Fleet, bound: float = 10.0) -> list[float]:
    """Seconds until each validator denies a freshly revoked token (inf if not within bound)."""
    issued = issue(f.signer)
    target = "/t/" + issued["token"] + "/videos/demo/master.m3u8"
    # Clients made up front: building one (TLS context) costs more than the propagation.
    clients = [httpx.Client(timeout=5) for _ in f.validators]
    signer = httpx.Client(timeout=10, headers=AUTH)
    try:
        for client, v in zip(clients, f.validators, strict=True):
            assert auth_status(client, v, target) == 204
        latencies = [float("inf")] * len(f.validators)
        go = threading.Event()
        start = [0.0]

        def poll(i: int) -> None:
            go.wait()
            while time.perf_counter() - start[0] < bound:
                if auth_status(clients[i], f.validators[i], target) == 403:
                    latencies[i] = time.perf_counter() - start[0]
                    return
                # Leave CPU to the processes under test (the machine may have only 2 cores).
                time.sleep(POLL_INTERVAL)

        threads = [threading.Thread(target=poll, args=(i,)) for i in range(len(f.validators))]
        for t in threads:
            t.start()
        start[0] = time.perf_counter()
        go.set()
        resp = signer.post(f"{f.signer}/v1/revocations", json={"token_id": issued["token_id"]})
        assert resp.status_code == 201, resp.text
        for t in threads:
            t.join()
        return latencies
    finally:
        for client in [*clients, signer]:
            client.close()


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def summary(samples: list[float]) -> str:
    ms = [s * 1000 for s in samples]
    return (
        f"revocation propagation over {len(ms)} validator-enforcements: "
        f"p50 {percentile(ms, 0.5):.1f} ms, p99 {percentile(ms, 0.99):.1f} ms, "
        f"max {max(ms):.1f} ms, mean {statistics.fmean(ms):.1f} ms"
    )
