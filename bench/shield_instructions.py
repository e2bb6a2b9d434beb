"""The origin shield's request path in CPU instructions (valgrind callgrind), stable on a
loaded machine where the edge benchmark's CPU per request moves by 20 %.

    .venv/bin/python -m bench.shield_instructions [--tree CHECKOUT] [--requests 1300] [--server]
        [--viewers 1000]

The validator app (``create_app``: middleware, the shield, the decision, the file origin) is
called in process as ``playgate serve-validator`` calls it, with the edge benchmark's mix
(bench/edge.py: 1,000 viewers, 1 request in 13 opens playback with a redirect, the others fetch
playlists and 186 KB segments, sent zero-copy). The server's part (uvicorn's protocol, the
``sendfile``, the kernel) is left out: only the Python request path is counted. Instructions
between two markers in one run, divided by the number of requests, after a warm-up that fills
the verifier's memo. ``--tree`` measures another checkout with the same requests, side by side.
A third row calls what the server's media path calls instead of the app (``MediaRoute.answer``
and its metrics, no middleware stack; the server writes the head and the file, not counted
here): "none" for a tree without that path.

``--server`` adds the whole server process in user space: ``playgate serve-validator``'s
protocol (``playgate.serving``: uvicorn's httptools protocol with the limits, the one-write head
and the zero-copy file bodies) on uvloop, the app with its metrics in mmap files, answering the
same requests from a client in this process over one keep-alive connection (the kernel's part,
``sendfile`` included, is not counted; the client is not either). A request to ``/__mark``
marks the start and the end (a wrapper around the app, one comparison per request; the
protocol's own media path, ``playgate/media_path.py``, is offered through the wrapper and
answers the media requests without it).

``--viewers N`` walks N viewers instead of 1,000. Past 4,300 (the warm-up and 1,300 requests)
every measured request is a viewer seen for the first time: its token decoded, MAC-checked
and remembered, as most requests are in an edge run with 20,000 or 100,000 viewers, where a
viewer comes back only every N requests (with 1,000, one request in 13 is, the start token).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.edge import STEPS, VIDEO, make_media, make_viewers, playgate_prefixes
from edge_validator.core.keyring import KeyRing, new_keyring_json

ROOT = Path(__file__).resolve().parent.parent
VIEWERS = 1000
WARMUP = 3000

# Run under callgrind: os.getppid() marks where counting starts and stops (--dump-before).
RUN = """
import asyncio, json, os, sys, tempfile
work, count, multiproc = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1"
media_path = sys.argv[4] == "1"
setup = json.loads(open(os.path.join(work, "setup.json")).read())
os.environ.update({"PLAYGATE_KEYRING": setup["keyring"], "PLAYGATE_TRUSTED_PROXIES": "127.0.0.1/32",
    "PLAYGATE_CLIENT_IP_HEADER": "x-real-ip", "PLAYGATE_MEDIA_ROOT": os.path.join(work, "media")})
if multiproc:  # as serve-validator runs: metrics in mmap'd files
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp()
from edge_validator.asgi.app import app_from_env
app = app_from_env()
paths = [p.encode() for p in setup["paths"]]
def scope(p):
    return {"type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1", "server": ("127.0.0.1", 8000), "client": ("127.0.0.1", 5555),
            "scheme": "http", "method": "GET", "root_path": "", "path": p.decode(),
            "raw_path": p, "query_string": b"", "headers": [(b"host", b"127.0.0.1:8000")],
            "state": {}, "extensions": {"http.response.zerocopy": {}, "http.response.pathsend": {}}}
async def receive(): return {"type": "http.request", "body": b"", "more_body": False}
async def send(message):
    if message["type"] == "http.response.start" and message["status"] not in (200, 302):
        raise SystemExit(f"answered {message['status']}")
call = app
if media_path:  # what the server's media path calls (playgate/media_path.py), no stack
    import time
    from edge_validator.asgi.file_body import ZeroCopyFileResponse
    route = getattr(app, "playgate_media", None)
    if route is None:
        sys.exit(3)  # a tree without one
    async def call(s, receive, send):
        started = time.perf_counter()
        response = await route.answer(s)
        if response.__class__ is ZeroCopyFileResponse:  # the server writes head and file
            await send({"type": "http.response.start", "status": response.status_code})
            response.file.close()
        else:
            await response(s, receive, send)
        route.record(s, started, response.status_code)
async def main():
    async with app.router.lifespan_context(app):
        for j in range(WARMUP): await call(scope(paths[j % len(paths)]), receive, send)
        os.getppid()
        for j in range(WARMUP, WARMUP + count):
            await call(scope(paths[j % len(paths)]), receive, send)
        os.getppid()
import uvloop
uvloop.run(main())
"""

# The server process under callgrind: serve-validator's protocol and app on one port.
SERVER = """
import json, os, sys, tempfile
work, port = sys.argv[1], int(sys.argv[2])
setup = json.loads(open(os.path.join(work, "setup.json")).read())
os.environ.update({"PLAYGATE_KEYRING": setup["keyring"], "PLAYGATE_TRUSTED_PROXIES": "127.0.0.1/32",
    "PLAYGATE_CLIENT_IP_HEADER": "x-real-ip", "PLAYGATE_MEDIA_ROOT": os.path.join(work, "media"),
    "PROMETHEUS_MULTIPROC_DIR": tempfile.mkdtemp()})
import uvicorn
from edge_validator.asgi.app import app_from_env
from playgate.serving import uvicorn_config
inner = app_from_env()
async def app(scope, receive, send):
    if scope["type"] == "http" and scope["path"] == "/__mark":
        os.getppid()
        if scope["query_string"] == b"stop":
            server.should_exit = True
    await inner(scope, receive, send)
media = getattr(inner, "playgate_media", None)  # the protocol's own media path (shield-3 on)
if media is not None:  # offered by the wrapper too; /__mark is the wrapper's, never taken
    media.fixed = media.fixed | {"/__mark"}
    app.playgate_media = media
server = uvicorn.Server(uvicorn_config(app, host="127.0.0.1", port=port, loop="uvloop",
                                       lifespan="on", log_level="error"))
server.run()
"""


def prepare(work: Path, viewers: int = VIEWERS, requests: int = 1300) -> None:
    """Media and the viewers' request paths, made once outside valgrind: only the paths the
    warm-up and the ``requests`` ask (the same ones, in the same order, as all of them), and
    only those viewers, so that 100,000 viewers cost no more to prepare than 4,300."""
    make_media(work / "media", 186)
    keyring_json = new_keyring_json("bench1")
    count = min(len(STEPS) * viewers, WARMUP + requests)
    made = make_viewers(KeyRing.from_json(keyring_json), min(viewers, count), time.time())
    paths = []
    for j in range(count):
        viewer = made[j % viewers]
        step = (j // viewers + viewer.index) % len(STEPS)
        first, rest = playgate_prefixes(viewer)
        paths.append(f"{first if step == 0 else rest}/videos/{VIDEO}/{STEPS[step]}")
    (work / "setup.json").write_text(json.dumps({"keyring": keyring_json, "paths": paths}))


def per_request(
    tree: Path, work: Path, count: int, *, multiproc: bool, media_path: bool = False
) -> float | None:
    """None: ``media_path`` asked of a tree that has none."""
    script = work / "run.py"
    script.write_text(f"WARMUP = {WARMUP}\n{RUN}")
    out = work / "cg"
    for old in work.glob("cg*"):
        old.unlink()
    env = {**os.environ, "PYTHONPATH": str(tree), "PYTHONHASHSEED": "0"}
    argv = ["valgrind", "--tool=callgrind", "--dump-instr=no", "--dump-before=os_getppid*",
            f"--callgrind-out-file={out}", sys.executable, str(script), str(work), str(count),
            "1" if multiproc else "0", "1" if media_path else "0"]  # fmt: skip
    run = subprocess.run(argv, env=env, cwd=tree, capture_output=True)
    if media_path and run.returncode == 3:
        return None
    run.check_returncode()
    # Dumps in order: the set-up (up to the first marker), the requests, the rest.
    dumps = sorted(work.glob("cg.*"), key=lambda p: int(p.name.split(".")[1]))
    summary = re.search(r"^(?:summary|totals): (\d+)", dumps[1].read_text(), re.MULTILINE)
    assert summary is not None
    return int(summary.group(1)) / count


def server_per_request(tree: Path, work: Path, count: int) -> float:
    """The server process's instructions per request (see ``--server``)."""
    script = work / "server.py"
    script.write_text(SERVER)
    out = work / "cgs"
    for old in work.glob("cgs*"):
        old.unlink()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "PYTHONPATH": str(tree), "PYTHONHASHSEED": "0"}
    argv = ["valgrind", "--tool=callgrind", "--dump-instr=no", "--dump-before=os_getppid*",
            f"--callgrind-out-file={out}", sys.executable, str(script), str(work),
            str(port)]  # fmt: skip
    paths = json.loads((work / "setup.json").read_text())["paths"]
    server = subprocess.Popen(argv, env=env, cwd=tree, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        for _ in range(1500):  # 5 minutes: valgrind starts slowly on a busy machine
            try:
                conn = socket.create_connection(("127.0.0.1", port))
                break
            except OSError:
                time.sleep(0.2)
        else:
            raise SystemExit("the server under valgrind did not start")
        with conn:
            client = _Client(conn)
            for j in range(WARMUP):
                client.get(paths[j % len(paths)])
            client.get("/__mark", any_status=True)
            for j in range(WARMUP, WARMUP + count):
                client.get(paths[j % len(paths)])
            client.get("/__mark?stop", any_status=True)
        server.wait(timeout=600)
    finally:
        if server.poll() is None:
            server.kill()
    dumps = sorted(work.glob("cgs.*"), key=lambda p: int(p.name.split(".")[1]))
    summary = re.search(r"^(?:summary|totals): (\d+)", dumps[1].read_text(), re.MULTILINE)
    assert summary is not None
    return int(summary.group(1)) / count


class _Client:
    """HTTP/1.1 on one keep-alive connection, one request at a time, bodies read whole."""

    def __init__(self, conn: socket.socket) -> None:
        self.conn = conn
        self.buffer = b""

    def get(self, path: str, *, any_status: bool = False) -> None:
        self.conn.sendall(f"GET {path} HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n".encode())
        while b"\r\n\r\n" not in self.buffer:
            self.buffer += self._recv()
        head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        if not any_status and status not in (200, 302):
            raise SystemExit(f"answered {status}")
        length = re.search(rb"(?i)\r\ncontent-length: *(\d+)", head)
        size = int(length.group(1)) if length else 0
        while len(self.buffer) < size:
            self.buffer += self._recv()
        self.buffer = self.buffer[size:]

    def _recv(self) -> bytes:
        data = self.conn.recv(1 << 20)
        if not data:
            raise SystemExit("the server closed the connection")
        return data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tree", type=Path, help="another checkout to measure side by side")
    parser.add_argument("--requests", type=int, default=1300)
    parser.add_argument("--server", action="store_true", help="also the whole server process")
    parser.add_argument(
        "--viewers",
        type=int,
        default=VIEWERS,
        help="viewers walked as bench/edge.py walks them; past the warm-up's 3,000 each measured "
        "request is a viewer seen for the first time (its token verified, then remembered)",
    )
    args = parser.parse_args()
    trees = {"this tree": ROOT, **({str(args.tree): args.tree.resolve()} if args.tree else {})}
    with tempfile.TemporaryDirectory(prefix="shield-instr-") as tmp:
        work = Path(tmp)
        prepare(work, args.viewers, args.requests)
        print(f"{args.viewers:,} viewers, {args.requests:,} requests after {WARMUP:,}\n")
        names = " | ".join(f"{name} (instructions/request)" for name in trees)
        print(f"| metrics | {names} |")
        print("|---|" + "---:|" * len(trees))
        for multiproc in (False, True):
            label = "mmap files (serve-validator)" if multiproc else "in memory"
            cells = [
                per_request(tree, work, args.requests, multiproc=multiproc)
                for tree in trees.values()
            ]
            print(f"| {label} | " + " | ".join(_cell(c) for c in cells) + " |", flush=True)
        cells = [
            per_request(tree, work, args.requests, multiproc=True, media_path=True)
            for tree in trees.values()
        ]
        label = "mmap files, the server's media path (no middleware stack; sending not counted)"
        print(f"| {label} | " + " | ".join(_cell(c) for c in cells) + " |", flush=True)
        if args.server:
            cells = [server_per_request(tree, work, args.requests) for tree in trees.values()]
            label = "whole server process (serve-validator's protocol, mmap files)"
            print(f"| {label} | " + " | ".join(_cell(c) for c in cells) + " |", flush=True)


def _cell(instructions: float | None) -> str:
    return "none" if instructions is None else f"{instructions:,.0f}"


if __name__ == "__main__":
    main()
