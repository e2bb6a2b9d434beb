"""What the hostile-client limits cost: uvicorn (httptools) with and without
``playgate.serving``'s guarded protocol, one worker, the same trivial endpoint.

    .venv/bin/python -m bench.server_limits --duration 3 --rounds 2

wrk on loopback, keep-alive connections (the per-request path: head counting, timers) and a
new connection per request (adds the connection cap's bookkeeping). Interleaved rounds, best
of each; on a loaded machine compare the ratio, not the figures.
"""

from __future__ import annotations

import argparse
import contextlib
import re
import subprocess
import sys
from collections.abc import Iterator

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from playgate.processes import free_port, run_process


async def ok(request: Request) -> Response:
    return PlainTextResponse("ok")


def trivial_app() -> Starlette:
    return Starlette(routes=[Route("/", ok)])


SERVERS = {
    "uvicorn httptools": (
        "uvicorn.run(trivial_app(), host='127.0.0.1', port={port}, http='httptools', "
        "log_level='warning', access_log=False, proxy_headers=False)"
    ),
    "uvicorn httptools + PlayGate limits": (
        "from playgate.serving import uvicorn_config; "
        "uvicorn.Server(uvicorn_config(trivial_app(), host='127.0.0.1', port={port}, "
        "log_level='warning')).run()"
    ),
}


@contextlib.contextmanager
def serve(name: str) -> Iterator[int]:
    port = free_port()
    code = "import uvicorn; from bench.server_limits import *; " + SERVERS[name].format(port=port)
    with run_process([sys.executable, "-c", code], port=port):
        yield port


def wrk(port: int, seconds: int, close: bool) -> float:
    argv = ["wrk", "-t1", "-c32", f"-d{seconds}s", f"http://127.0.0.1:{port}/"]
    if close:
        argv[1:1] = ["-H", "Connection: close"]
    out = subprocess.run(
        argv, capture_output=True, text=True, check=True, timeout=seconds + 30
    ).stdout
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    assert match, out
    return float(match.group(1))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    results: dict[tuple[str, bool], list[float]] = {}
    with contextlib.ExitStack() as stack:
        ports = {name: stack.enter_context(serve(name)) for name in SERVERS}
        for _ in range(args.rounds):
            for close in (False, True):
                for name, port in ports.items():
                    results.setdefault((name, close), []).append(wrk(port, args.duration, close))
    print("| server | connections | best req/s | x plain |")
    print("|---|---|---:|---:|")
    for (name, close), values in results.items():
        plain = max(results[("uvicorn httptools", close)])
        kind = "new per request" if close else "keep-alive"
        print(f"| {name} | {kind} | {max(values):,.0f} | {max(values) / plain:.2f} |")


if __name__ == "__main__":
    main()
