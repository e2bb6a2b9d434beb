"""Signer API throughput, one uvicorn worker, next to a trivial Starlette JSON endpoint.

    ./bench/run-signer            (wrk on loopback, bounded duration)

Both servers are the same uvicorn configuration (one worker, httptools if installed, no access
log) on 127.0.0.1; wrk POSTs the same small JSON body to each, in one run. The trivial endpoint
is the ceiling: what Starlette and uvicorn cost before PlayGate does anything.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from edge_validator.core.keyring import KeyRing, new_keyring_json
from edge_validator.state.settings import RateLimit, StateSettings
from playgate.processes import free_port, run_process
from signer.api_keys import ApiKeys, generate_api_key, hash_api_key
from signer.app import create_app
from signer.settings import SignerSettings

# The servers run in child processes that import this module: they share the key via env.
API_KEY = os.environ.get("BENCH_API_KEY") or generate_api_key()
BODY = json.dumps({"video_id": "bench-video", "ttl_seconds": 300, "session_id": "s-1"})


async def trivial(request: Request) -> Response:
    doc = await request.json()
    return JSONResponse({"url": "http://x/" + doc["video_id"]}, 201)


def trivial_app() -> Starlette:
    return Starlette(routes=[Route("/v1/playback-urls", trivial, methods=["POST"])])


def signer_app() -> Starlette:
    settings = SignerSettings(
        keyring=KeyRing.from_json(new_keyring_json("bench")),
        api_keys=ApiKeys({"bench": hash_api_key(API_KEY)}),
        public_url="https://cdn.example",
        # Rate limits checked (in memory, the default backend) but set so wrk is never refused.
        state=StateSettings(api_key_rate=RateLimit(10**9, 1), viewer_rate=RateLimit(10**9, 1)),
    )
    return create_app(settings)


@contextlib.contextmanager
def serve(factory: str) -> Iterator[int]:
    port = free_port()
    code = (
        "import sys, uvicorn; from bench.signer_api import *; "
        f"uvicorn.run({factory}(), host='127.0.0.1', port={port}, log_level='warning', "
        "access_log=False, proxy_headers=False)"
    )
    with run_process([sys.executable, "-c", code], port=port, env={"BENCH_API_KEY": API_KEY}):
        yield port


def wrk(port: int, seconds: int, script: Path) -> float:
    out = subprocess.run(
        [
            "wrk",
            "-t1",
            "-c32",
            f"-d{seconds}s",
            "-s",
            str(script),
            f"http://127.0.0.1:{port}/v1/playback-urls",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 30,
    ).stdout
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non2xx:
        raise SystemExit(f"{non2xx.group(1)} requests failed:\n{out}")
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    assert match, out
    return float(match.group(1))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "post.lua"
        script.write_text(
            'wrk.method = "POST"\n'
            f"wrk.body = {json.dumps(BODY)}\n"
            'wrk.headers["Content-Type"] = "application/json"\n'
            f'wrk.headers["Authorization"] = "Bearer {API_KEY}"\n'
        )
        results: dict[str, list[float]] = {
            "trivial Starlette JSON endpoint": [],
            "PlayGate signer": [],
        }
        with serve("trivial_app") as trivial_port, serve("signer_app") as signer_port:
            for _ in range(args.rounds):  # interleaved, so drift hits both alike
                results["trivial Starlette JSON endpoint"].append(
                    wrk(trivial_port, args.duration, script)
                )
                results["PlayGate signer"].append(wrk(signer_port, args.duration, script))
    ceiling = max(results["trivial Starlette JSON endpoint"])
    print("| endpoint (one uvicorn worker) | best req/s | x trivial |")
    print("|---|---:|---:|")
    for name, values in results.items():
        print(f"| {name} | {max(values):,.0f} | {max(values) / ceiling:.2f} |")


if __name__ == "__main__":
    main()
