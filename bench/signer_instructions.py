"""The signer's cost per URL in CPU instructions (valgrind callgrind), stable on a loaded machine.

    .venv/bin/python -m bench.signer_instructions [--tree OTHER_CHECKOUT] [--requests 1024]

``bench/signer_asgi.py``'s apps called directly (no sockets), 32 requests at a time, in a fresh
``python`` under callgrind: once with ``--requests`` URLs and once with none; the difference
divided by the number of URLs is one URL's cost in this process. In memory (both rate limits
on), with the log at INFO and at WARNING: the difference is the issuance log's cost.
``--tree`` measures another checkout with the same script.
"""

from __future__ import annotations

import argparse
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tree", type=Path, help="another checkout to measure side by side")
    parser.add_argument("--requests", type=int, default=1024)
    args = parser.parse_args()
    trees = {"this tree": ROOT, **({str(args.tree): args.tree.resolve()} if args.tree else {})}
    header = " | ".join(f"{name} (instructions per URL)" for name in trees)
    print(f"| what | {header} |")
    print("|---|" + "---:|" * len(trees))
    for label, (store, level) in CASES.items():
        cells = []
        for tree in trees.values():
            loaded = instructions(tree, args.requests, store, level)
            idle = instructions(tree, 0, store, level)
            cells.append(f"{(loaded - idle) / args.requests:,.0f}")
        print(f"| {label} | {' | '.join(cells)} |", flush=True)


if __name__ == "__main__":
    main()
