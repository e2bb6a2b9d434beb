"""The origin shield's request path in CPU instructions (valgrind callgrind), stable on a
loaded machine where the edge benchmark's CPU per request moves by 20 %.

    .venv/bin/python -m bench.shield_instructions [--tree OTHER_CHECKOUT] [--requests 1300]

The validator app (``create_app``: middleware, the shield, the decision, the file origin) is
called in process as ``playgate serve-validator`` calls it, with the edge benchmark's mix
(bench/edge.py: 1,000 viewers, 1 request in 13 opens playback with a redirect, the others fetch
playlists and 186 KB segments, sent zero-copy). The server's part (uvicorn's protocol, the
``sendfile``, the kernel) is left out: only the Python request path is counted. Instructions
between two markers in one run, divided by the number of requests, after a warm-up that fills
the verifier's memo. ``--tree`` measures another checkout with the same requests, side by side.
"""

from __future__ import annotations

import argparse
import json
import os
import re
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
async def main():
    async with app.router.lifespan_context(app):
        for j in range(WARMUP): await app(scope(paths[j % len(paths)]), receive, send)
        os.getppid()
        for j in range(WARMUP, WARMUP + count):
            await app(scope(paths[j % len(paths)]), receive, send)
        os.getppid()
import uvloop
uvloop.run(main())
"""


def prepare(work: Path) -> None:
    """Media and the viewers' request paths, made once outside valgrind."""
    make_media(work / "media", 186)
    keyring_json = new_keyring_json("bench1")
    viewers = make_viewers(KeyRing.from_json(keyring_json), VIEWERS, time.time())
    paths = []
    for j in range(len(STEPS) * VIEWERS):
        viewer = viewers[j % VIEWERS]
        step = (j // VIEWERS + viewer.index) % len(STEPS)
        first, rest = playgate_prefixes(viewer)
        paths.append(f"{first if step == 0 else rest}/videos/{VIDEO}/{STEPS[step]}")
    (work / "setup.json").write_text(json.dumps({"keyring": keyring_json, "paths": paths}))


def per_request(tree: Path, work: Path, count: int, *, multiproc: bool) -> float:
    script = work / "run.py"
    script.write_text(f"WARMUP = {WARMUP}\n{RUN}")
    out = work / "cg"
    for old in work.glob("cg*"):
        old.unlink()
    env = {**os.environ, "PYTHONPATH": str(tree), "PYTHONHASHSEED": "0"}
    argv = ["valgrind", "--tool=callgrind", "--dump-instr=no", "--dump-before=os_getppid*",
            f"--callgrind-out-file={out}", sys.executable, str(script), str(work), str(count),
            "1" if multiproc else "0"]  # fmt: skip
    subprocess.run(argv, env=env, cwd=tree, capture_output=True, check=True)
    # Dumps in order: the set-up (up to the first marker), the requests, the rest.
    dumps = sorted(work.glob("cg.*"), key=lambda p: int(p.name.split(".")[1]))
    summary = re.search(r"^(?:summary|totals): (\d+)", dumps[1].read_text(), re.MULTILINE)
    assert summary is not None
    return int(summary.group(1)) / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tree", type=Path, help="another checkout to measure side by side")
    parser.add_argument("--requests", type=int, default=1300)
    args = parser.parse_args()
    trees = {"this tree": ROOT, **({str(args.tree): args.tree.resolve()} if args.tree else {})}
    with tempfile.TemporaryDirectory(prefix="shield-instr-") as tmp:
        work = Path(tmp)
        prepare(work)
        names = " | ".join(f"{name} (instructions/request)" for name in trees)
        print(f"| metrics | {names} |")
        print("|---|" + "---:|" * len(trees))
        for multiproc in (False, True):
            label = "mmap files (serve-validator)" if multiproc else "in memory"
            cells = [
                per_request(tree, work, args.requests, multiproc=multiproc)
                for tree in trees.values()
            ]
            print(f"| {label} | " + " | ".join(f"{c:,.0f}" for c in cells) + " |", flush=True)


if __name__ == "__main__":
    main()
