"""The signer's cost per URL in CPU instructions (valgrind callgrind), stable on a loaded machine.

    .venv/bin/python -m bench.signer_instructions [--tree OTHER_CHECKOUT] [--requests 1024]
        [--cases asgi http]

``asgi``: ``bench/signer_asgi.py``'s apps called directly (no sockets), 32 requests at a time,
in a fresh ``python`` under callgrind: once with ``--requests`` URLs and once with none; the
difference divided by the number of URLs is one URL's cost in this process. In memory (both
rate limits on), with the log at INFO and at WARNING: the difference is the issuance log's cost.

``http``: the same signer served by uvicorn as ``playgate serve-signer`` serves it (httptools,
uvloop, PlayGate's guarded protocol, the metrics in multiprocess files), under callgrind, and
the trivial Starlette endpoint of ``bench/signer_api.py`` under plain uvicorn; a client outside
valgrind sends ``--requests`` POSTs on 32 keep-alive connections. What uvicorn, httptools and
the protocol spend is counted too; the kernel's work (system calls) is not.

``--tree`` measures another checkout with the same script.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

RUN = """
import asyncio, logging, sys, tempfile
import uvloop
from bench.signer_asgi import CONCURRENT, cpu_per_request, signer
from playgate.logs import configure_logging
from playgate.redis_server import redis_server

REQUESTS, REDIS, LEVEL = int(sys.argv[1]), sys.argv[2] == "redis", sys.argv[3]

async def main(url):
    app = signer(url)
    await cpu_per_request(app, CONCURRENT * 4)  # warm: imports, connections, scripts
    if REQUESTS:
        await cpu_per_request(app, REQUESTS)

with tempfile.TemporaryFile("w") as out:
    configure_logging({"PLAYGATE_LOG_LEVEL": LEVEL})
    for handler in logging.getLogger().handlers:
        handler.setStream(out)
    if REDIS:
        with redis_server() as redis:
            uvloop.run(main(redis.url))
    else:
        uvloop.run(main(None))
"""

SERVE = """
import asyncio, logging, os, sys, tempfile
import uvicorn
os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp()  # as playgate serve-signer runs
import bench.signer_asgi
from bench.signer_api import trivial_app
from bench.signer_asgi import signer
from playgate.logs import configure_logging

PORT, APP, LEVEL = int(sys.argv[1]), sys.argv[2], sys.argv[3]
bench.signer_asgi.API_KEY = sys.argv[4]  # the client's
with tempfile.TemporaryFile("w") as out:
    configure_logging({"PLAYGATE_LOG_LEVEL": LEVEL})
    for handler in logging.getLogger().handlers:
        handler.setStream(out)
    guarded = APP == "signer"
    config = uvicorn.Config(
        signer(None) if guarded else trivial_app(),
        host="127.0.0.1", port=PORT, loop="uvloop", lifespan="on", ws="none",
        http="playgate.serving:GuardedHttpToolsProtocol" if guarded else "httptools",
        proxy_headers=False, access_log=False, server_header=False, log_config=None,
    )
    uvicorn.Server(config).run()
"""

# With Redis, how many requests share a script call depends on when replies arrive, which
# callgrind's slowness changes: "redis" runs are for profiling, not for the table.
CASES = {
    "signer, in memory, log at INFO": ("memory", "info"),
    "signer, in memory, log at WARNING": ("memory", "warning"),
}


def instructions(tree: Path, requests: int, store: str, level: str) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "run.py"
        script.write_text(RUN)
        out = Path(tmp) / "callgrind.out"
        env = {**os.environ, "PYTHONPATH": str(tree), "PYTHONHASHSEED": "0"}
        argv = [sys.executable, str(script), str(requests), store, level]
        subprocess.run(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", *argv],
            env=env,
            cwd=tree,
            capture_output=True,
            check=True,
        )
        summary = re.search(r"^summary: (\d+)", out.read_text(), re.MULTILINE)
        assert summary is not None
        return int(summary.group(1))


def _key() -> str:
    from bench.signer_asgi import API_KEY

    return API_KEY


HTTP_CASES = {
    "signer over HTTP (uvicorn, httptools), in memory, log at INFO": "signer",
    "trivial Starlette JSON endpoint over HTTP (the floor)": "trivial",
}


async def _post(port: int, requests: int) -> None:
    """``requests`` POSTs of the bench body on 32 keep-alive connections; each must be a 2xx."""
    from bench.signer_asgi import BODY

    head = (
        "POST /v1/playback-urls HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Content-Type: application/json\r\nAuthorization: Bearer {_key()}\r\n"
        f"Content-Length: {len(BODY)}\r\n\r\n{BODY}"
    ).encode()

    async def connection(count: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for _ in range(count):
            writer.write(head)
            status = await reader.readline()
            assert status.startswith(b"HTTP/1.1 20"), status
            length = 0
            while (line := await reader.readline()) != b"\r\n":
                name, _, value = line.partition(b":")
                if name.lower() == b"content-length":
                    length = int(value)
            await reader.readexactly(length)
        writer.close()
        await writer.wait_closed()

    share, extra = divmod(requests, 32)
    await asyncio.gather(*(connection(share + (i < extra)) for i in range(32)))


def http_instructions(tree: Path, requests: int, app: str) -> int:
    from bench.signer_asgi import API_KEY
    from playgate.processes import free_port, stop_process, wait_for_port

    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "serve.py"
        script.write_text(SERVE)
        out = Path(tmp) / "callgrind.out"
        env = {**os.environ, "PYTHONPATH": str(tree), "PYTHONHASHSEED": "0"}
        port = free_port()
        argv = [sys.executable, str(script), str(port), app, "info", API_KEY]
        proc = subprocess.Popen(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", *argv],
            env=env,
            cwd=tree,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_for_port(port, proc=proc, timeout=600)
            if requests:
                asyncio.run(_post(port, requests))
        finally:
            stop_process(proc, timeout=120)  # SIGTERM: uvicorn stops, callgrind writes
        summary = re.search(r"^summary: (\d+)", out.read_text(), re.MULTILINE)
        assert summary is not None
        return int(summary.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tree", type=Path, help="another checkout to measure side by side")
    parser.add_argument("--requests", type=int, default=1024)
    parser.add_argument("--cases", nargs="+", choices=["asgi", "http"], default=["asgi", "http"])
    args = parser.parse_args()
    trees = {"this tree": ROOT, **({str(args.tree): args.tree.resolve()} if args.tree else {})}
    header = " | ".join(f"{name} (instructions per URL)" for name in trees)
    print(f"| what | {header} |")
    print("|---|" + "---:|" * len(trees))
    for label, (store, level) in CASES.items() if "asgi" in args.cases else ():
        cells = []
        for tree in trees.values():
            loaded = instructions(tree, args.requests, store, level)
            idle = instructions(tree, 0, store, level)
            cells.append(f"{(loaded - idle) / args.requests:,.0f}")
        print(f"| {label} | {' | '.join(cells)} |", flush=True)
    for label, app in HTTP_CASES.items() if "http" in args.cases else ():
        cells = []
        for tree in trees.values():
            loaded = http_instructions(tree, args.requests, app)
            idle = http_instructions(tree, 0, app)
            cells.append(f"{(loaded - idle) / args.requests:,.0f}")
        print(f"| {label} | {' | '.join(cells)} |", flush=True)


if __name__ == "__main__":
    main()
