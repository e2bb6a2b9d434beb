"""Revocations by the million: what one validator's sync costs, and what it costs Redis.

    .venv/bin/python bench/revocation_scale.py [--sizes 10000,100000,1000000] [--rate 100]
        [--seconds 20] [--parsers python,hiredis] [--coalesce 0,0.1]

For each size: a real redis-server is filled with that many live revocations (written through
the log's own script, 1,000 per call), then a validator's revocation sync starts in a separate
process (``--validator``, so its CPU and memory are its own) and the writer adds ``--rate`` new
revocations per second for ``--seconds``. Each size runs once per redis-py reply parser
(``--parsers``: the cold sync's reads) and per listener coalescing delay (``--coalesce``, default
the shipped ``COALESCE``; ``0,0.1`` compares none with it in one run). Reported per size:

- cold sync: from the store's creation to a complete view (every entry in), and the CPU time
  the validator spent on it (on a loaded machine the wall time mostly waits for a core);
- longest Redis block: the slowest command Redis ran during the cold sync and the steady
  phase, and the 99th percentile (``SLOWLOG`` with a 0 µs threshold);
- steady sync CPU: the validator process's CPU time over the steady phase, % of one core,
  less its idle baseline (the same process measured for a few seconds before, no new
  revocations: one PING a second); then the same per new revocation (µs of CPU each: on a
  loaded machine a wake-up costs more, but this moves far less with load than a percentage
  read against a busy machine's clock), and the process's wake-ups a second (voluntary
  context switches, from /proc: what the listener's coalescing saves);
- memory per revocation: the validator's RSS growth over the cold sync, divided by the size;
- propagation p50/p99: from just before a new revocation is written to its arrival in the
  validator's view (same machine, same clock).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from edge_validator.state import Revocation, RevocationSync, StateSettings, redis_store
from edge_validator.state.redis_store import RedisStore
from edge_validator.state.revocation_log import Notice
from playgate.redis_server import redis_server

PREFIX = "bench"
SEED_BATCH = 1000
# Seconds the validator's idle baseline is measured for (no new revocations).
IDLE_SECONDS = 5


def _cpu_and_wakeups() -> tuple[float, int]:
    """This process's CPU seconds (every thread) and voluntary context switches so far."""
    with open("/proc/self/status") as f:
        switches = next(int(line.split()[1]) for line in f if line.startswith("voluntary_"))
    return time.process_time(), switches


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


async def seed(url: str, count: int) -> None:
    """``count`` live revocations, a batch per script call (what a busy signer would write)."""
    store = RedisStore(StateSettings(redis_url=url, key_prefix=PREFIX, timeout=5))
    now = time.time()
    kinds = ("token_id", "session_id", "video_id", "user_id")
    try:
        for start in range(0, count, SEED_BATCH):
            batch = [
                Revocation(kinds[i % 4], f"seed-{i}", now, now + 3600)
                for i in range(start, min(start + SEED_BATCH, count))
            ]
            await store.log.append(store.client, batch, now)
    finally:
        await store.close()


def use_parser(name: str) -> None:
    """Make redis-py parse replies in pure Python ("python") or with hiredis (its default when
    hiredis is installed): the bench compares both in one run."""
    import redis.asyncio.connection as rc
    from redis._parsers import _AsyncHiredisParser, _AsyncRESP3Parser

    parser = {"python": _AsyncRESP3Parser, "hiredis": _AsyncHiredisParser}[name]
    init = rc.AbstractConnection.__init__

    def patched(self: rc.AbstractConnection, *args: object, **kwargs: object) -> None:
        kwargs["parser_class"] = parser
        init(self, *args, **kwargs)  # type: ignore[arg-type]

    rc.AbstractConnection.__init__ = patched  # type: ignore[method-assign]


async def validator(url: str) -> None:
    """The validator side, in its own process: cold sync, then steady state on 'go'."""
    gc.collect()
    rss0 = _rss()
    started, cpu_started = time.perf_counter(), time.process_time()
    store = RedisStore(StateSettings(redis_url=url, key_prefix=PREFIX))
    sync = RevocationSync(store, StateSettings(redis_url=url, key_prefix=PREFIX))
    delays: list[float] = []
    apply = sync.apply

    def timed(notice: Notice) -> None:
        apply(notice)
        delays.append(time.time() - notice.rev.revoked_at)

    sync.apply = timed  # type: ignore[method-assign]
    await sync.start()
    while not sync.synced_once:
        await asyncio.sleep(0.005)
    cold, cold_cpu = time.perf_counter() - started, time.process_time() - cpu_started
    entries = len(sync.view)
    gc.collect()
    report = {"cold": cold, "cold_cpu": cold_cpu, "entries": entries, "rss": _rss() - rss0}
    print(json.dumps(report), flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.readline)  # "idle"
    await asyncio.sleep(1)  # what the cold sync left behind settles
    (cpu0, switches0), wall0 = _cpu_and_wakeups(), time.perf_counter()
    await loop.run_in_executor(None, sys.stdin.readline)  # "go"
    (cpu1, switches1), wall1 = _cpu_and_wakeups(), time.perf_counter()
    idle = {
        "idle_cpu": cpu1 - cpu0,
        "idle_wall": wall1 - wall0,
        "idle_wakeups": switches1 - switches0,
    }
    delays.clear()
    print("steady", flush=True)  # the writer starts only now: no notice is cleared
    await loop.run_in_executor(None, sys.stdin.readline)  # "stop"
    (cpu2, switches2), wall2 = _cpu_and_wakeups(), time.perf_counter()
    steady = {"cpu": cpu2 - cpu1, "wall": wall2 - wall1, "wakeups": switches2 - switches1}
    report = {**idle, **steady, "delays": delays, "final": len(sync.view)}
    print(json.dumps(report), flush=True)
    await sync.stop()
    await store.close()


async def write_steady(url: str, rate: int, seconds: float) -> int:
    # A patient writer (a loaded bench machine is not what is measured here).
    store = RedisStore(StateSettings(redis_url=url, key_prefix=PREFIX, timeout=5))
    written = 0
    start = time.perf_counter()
    try:
        while time.perf_counter() - start < seconds:
            now = time.time()
            await store.revoke(Revocation("token_id", f"new-{written}", now, now + 3600))
            written += 1
            await asyncio.sleep(max(0.0, start + written / rate - time.perf_counter()))
    finally:
        await store.close()
    return written


def redis_cli(port: int, *args: str) -> str:
    return subprocess.run(
        ["redis-cli", "-p", str(port), *args], capture_output=True, text=True, check=True
    ).stdout


def redis_blocks(port: int) -> tuple[float, float]:
    """The longest and the 99th-percentile command time in the slow log (ms). On a loaded
    machine the longest also counts time Redis spent descheduled: the p99 says more."""
    out = subprocess.run(
        ["redis-cli", "-p", str(port), "--json", "slowlog", "get", "-1"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    times = sorted(e[2] / 1000 for e in (json.loads(out) if out.strip() else []))
    if not times:
        return 0.0, 0.0
    return times[-1], times[max(0, int(len(times) * 0.99) - 1)]


def measure(size: int, rate: int, seconds: float, parser: str, coalesce: float) -> dict[str, Any]:
    with redis_server("--appendonly", "no") as redis:
        t = time.perf_counter()
        asyncio.run(seed(redis.url, size))
        seeded = time.perf_counter() - t
        redis_cli(redis.port, "config", "set", "slowlog-log-slower-than", "0")
        redis_cli(redis.port, "config", "set", "slowlog-max-len", "1000000")
        redis_cli(redis.port, "slowlog", "reset")
        child = subprocess.Popen(
            [
                *(sys.executable, __file__, "--validator", redis.url, "--parser", parser),
                *("--coalesce", str(coalesce)),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert child.stdin is not None
        assert child.stdout is not None
        try:
            cold = json.loads(child.stdout.readline())
            child.stdin.write("idle\n")
            child.stdin.flush()
            time.sleep(1 + IDLE_SECONDS)
            child.stdin.write("go\n")
            child.stdin.flush()
            child.stdout.readline()  # "steady"
            written = asyncio.run(write_steady(redis.url, rate, seconds))
            time.sleep(1)  # the last notices arrive (a loaded machine, the 0.1 s coalescing)
            child.stdin.write("stop\n")
            child.stdin.flush()
            steady = json.loads(child.stdout.readline())
        finally:
            child.stdin.close()
            child.wait(30)
        block_ms, block_p99 = redis_blocks(redis.port)
    delays = sorted(steady["delays"])
    return {
        "size": size,
        "parser": parser,
        "coalesce": coalesce,
        "seeded_s": seeded,
        "cold_s": cold["cold"],
        "cold_cpu_s": cold["cold_cpu"],
        "entries": cold["entries"],
        "bytes_per_rev": cold["rss"] / max(size, 1),
        "block_ms": block_ms,
        "block_p99": block_p99,
        # The idle baseline (one PING a second) taken out: what new revocations cost.
        "idle_pct": steady["idle_cpu"] / steady["idle_wall"] * 100,
        "cpu_pct": (steady["cpu"] / steady["wall"] - steady["idle_cpu"] / steady["idle_wall"])
        * 100,
        "us_per_rev": (steady["cpu"] - steady["idle_cpu"] / steady["idle_wall"] * steady["wall"])
        / max(len(delays), 1)
        * 1e6,
        "wakeups_s": steady["wakeups"] / steady["wall"],
        "written": written,
        "received": len(delays),
        "p50_ms": statistics.median(delays) * 1000 if delays else float("nan"),
        "p99_ms": delays[int(len(delays) * 0.99) - 1] * 1000 if delays else float("nan"),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--rate", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument(
        "--parsers", default="python,hiredis", help="redis-py reply parsers to compare"
    )
    parser.add_argument(
        "--coalesce",
        default=str(redis_store.COALESCE),
        help="seconds the listener lets notices gather after one (0: none), to compare",
    )
    parser.add_argument("--validator", metavar="REDIS_URL", help=argparse.SUPPRESS)
    parser.add_argument("--parser", default="python", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.validator:
        use_parser(args.parser)
        redis_store.COALESCE = float(args.coalesce)
        asyncio.run(validator(args.validator))
        return 0
    print(
        "| live revocations | parser, coalesce | cold sync | longest Redis block "
        "| steady sync CPU (idle) | CPU per new revocation | wake-ups/s "
        "| memory per revocation | propagation p50 / p99 |"
    )
    print("|---:|---|---:|---:|---:|---:|---:|---:|---:|")
    for size in (int(s) for s in args.sizes.split(",")):
        for name in args.parsers.split(","):
            for coalesce in (float(c) for c in args.coalesce.split(",")):
                report(measure(size, args.rate, args.seconds, name, coalesce))
    return 0


def report(r: dict[str, Any]) -> None:
    print(
        f"| {r['size']:,} | {r['parser']}, {r['coalesce']:g} s "
        f"| {r['cold_s']:.2f} s ({r['cold_cpu_s']:.2f} s CPU) "
        f"| {r['block_ms']:.1f} ms (p99 {r['block_p99']:.2f} ms) "
        f"| {r['cpu_pct']:.2f} % ({r['idle_pct']:.2f} %) | {r['us_per_rev']:.0f} µs "
        f"| {r['wakeups_s']:.0f} | {r['bytes_per_rev']:.0f} B "
        f"| {r['p50_ms']:.1f} / {r['p99_ms']:.1f} ms ({r['received']}/{r['written']}) |",
        flush=True,
    )


if __name__ == "__main__":
    raise SystemExit(main())
