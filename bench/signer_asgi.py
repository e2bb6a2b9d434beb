"""The signer's own cost per URL, without sockets: the ASGI apps called directly, 32 requests
at a time, CPU time of this process per request. Next to ``./bench/run-signer`` it separates
what PlayGate spends from what uvicorn and the kernel spend.

    .venv/bin/python -m bench.signer_asgi

Configurations: the trivial Starlette endpoint of ``bench/signer_api.py``, the signer in memory,
the signer with Redis rate limits (a real redis-server on loopback; its own CPU is not counted
here), and the same with the log at WARNING instead of INFO (the issuance log's cost).
Rounds alternate; the median per configuration is printed.
"""

from __future__ import annotations

import asyncio
import logging
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import uvloop
from starlette.types import ASGIApp

from bench.signer_api import BODY, NEVER_REACHED, trivial_app
from edge_validator.core.keyring import KeyRing, new_keyring_json
from edge_validator.state.settings import RateLimit, StateSettings
from playgate.logs import configure_logging
from signer.api_keys import ApiKeys, generate_api_key, hash_api_key
from signer.app import create_app
from signer.settings import SignerSettings

API_KEY = generate_api_key()
CONCURRENT = 32
LIMIT = RateLimit.parse("bench", NEVER_REACHED)


def signer(redis_url: str | None) -> ASGIApp:
    state = StateSettings(redis_url=redis_url, api_key_rate=LIMIT, viewer_rate=LIMIT)
    settings = SignerSettings(
        keyring=KeyRing.from_json(new_keyring_json("bench")),
        api_keys=ApiKeys({"bench": hash_api_key(API_KEY)}),
        public_url="https://cdn.example",
        state=state,
    )
    return create_app(settings)


def scope() -> dict[str, Any]:
    headers = [
        (b"host", b"127.0.0.1"),
        (b"content-type", b"application/json"),
        (b"authorization", f"Bearer {API_KEY}".encode()),
        (b"content-length", str(len(BODY)).encode()),
    ]
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/playback-urls",
        "raw_path": b"/v1/playback-urls",
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8080),
        "state": {},
    }


async def one(app: ASGIApp) -> None:
    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": BODY.encode(), "more_body": False}

    status: list[int] = []

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            status.append(message["status"])

    await app(scope(), receive, send)
    assert status == [201], status


async def cpu_per_request(app: ASGIApp, requests: int) -> float:
    start = time.process_time()
    for _ in range(requests // CONCURRENT):
        await asyncio.gather(*(one(app) for _ in range(CONCURRENT)))
    return (time.process_time() - start) / requests * 1e6


async def main(redis_url: str, requests: int, rounds: int) -> None:
    with_redis = signer(redis_url)
    # (app, log level): the same Redis app at WARNING shows what the issuance log costs.
    apps = {
        "trivial Starlette JSON endpoint": (trivial_app(), logging.INFO),
        "signer, in memory": (signer(None), logging.INFO),
        "signer, Redis rate limits": (with_redis, logging.INFO),
        "signer, Redis rate limits, log at WARNING": (with_redis, logging.WARNING),
    }
    for app, _ in apps.values():
        await cpu_per_request(app, CONCURRENT * 4)  # warm: imports, connections, scripts
    results: dict[str, list[float]] = {name: [] for name in apps}
    root = logging.getLogger()
    for _ in range(rounds):
        for name, (app, level) in apps.items():
            root.setLevel(level)
            results[name].append(await cpu_per_request(app, requests))
    root.setLevel(logging.INFO)
    print("| ASGI app, called directly, 32 at a time | µs of CPU per request (median) |")
    print("|---|---:|")
    for name, values in results.items():
        print(f"| {name} | {statistics.median(values):.1f} |")


def run() -> None:
    import argparse

    from playgate.redis_server import redis_server

    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=4096)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, open(Path(tmp) / "log", "w") as out:
        configure_logging({"PLAYGATE_LOG_LEVEL": "info"})  # the issuance log on, into a file
        for handler in logging.getLogger().handlers:
            assert isinstance(handler, logging.StreamHandler)
            handler.setStream(out)
        with redis_server() as redis:
            uvloop.run(main(redis.url, args.requests, args.rounds))


if __name__ == "__main__":
    run()
