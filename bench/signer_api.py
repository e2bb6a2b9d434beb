"""Signer API throughput: in memory and with Redis rate limits, 1 and 2 workers, next to a
trivial Starlette JSON endpoint with as many workers.

    ./bench/run-signer            (wrk on loopback, bounded duration)

The signer runs as in production, ``playgate serve-signer --workers N`` (uvicorn, httptools,
uvloop), with both rate limits on (set high enough that wrk is never refused) and the log at
INFO: its issuance log line is on, written to a file. The Redis configuration runs a second
time with the log at WARNING (no issuance log), side by side: the difference is what the log
costs. With Redis, a real redis-server on loopback. The trivial endpoint is the ceiling: what
Starlette and uvicorn cost before PlayGate does anything, served by the same uvicorn
configuration. wrk POSTs the same small JSON body (one API key, one viewer's session id) to
each; configurations alternate in rounds in one run, so the machine's load moves them alike.
Ratios are per round, then the median.

The machine is shared, so requests per second move with everyone else's load; the CPU each
configuration spends per request (every process of the server, from /proc, and redis-server's)
moves much less, and 1,000,000 / (µs per URL) is what one worker would reach on a core of its
own.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from edge_validator.core.keyring import new_keyring_json
from playgate.processes import free_port, run_process, wait_for_port
from signer.api_keys import generate_api_key, hash_api_key

BODY = json.dumps({"video_id": "bench-video", "ttl_seconds": 300, "session_id": "s-1"})
# Far above what wrk reaches, so every request is checked and none refused.
NEVER_REACHED = "1000000000/1"
REDIS_WARNING = "signer, Redis rate limits, log at WARNING"
# Seconds a server may take to start: imports are slow on a loaded machine.
STARTUP = 120.0


async def trivial(request: Request) -> Response:
    doc = await request.json()
    return JSONResponse({"url": "http://x/" + doc["video_id"]}, 201)


def trivial_app() -> Starlette:
    return Starlette(routes=[Route("/v1/playback-urls", trivial, methods=["POST"])])


@contextlib.contextmanager
def serve_trivial(workers: int) -> Iterator[tuple[int, int]]:
    port = free_port()
    argv = [
        *(sys.executable, "-m", "uvicorn", "--factory", "bench.signer_api:trivial_app"),
        *("--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)),
        *("--http", "httptools", "--loop", "uvloop", "--no-access-log", "--log-level", "warning"),
    ]
    with run_process(argv) as proc:
        wait_for_port(port, proc=proc, timeout=STARTUP)
        yield port, proc.pid


@contextlib.contextmanager
def serve_signer(
    workers: int, env: dict[str, str], log: Path, tree: Path | None = None
) -> Iterator[tuple[int, int]]:
    """``tree``: serve another checkout's signer (same Python and packages)."""
    port = free_port()
    argv = [sys.executable, "-m", "playgate.cli", "serve-signer"]
    argv += ["--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]
    if tree is not None:
        env = {**env, "PYTHONPATH": str(tree)}
    with run_process(argv, env=env, log=log, cwd=tree) as proc:
        wait_for_port(port, proc=proc, timeout=STARTUP)
        yield port, proc.pid


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of a process and every process under it, from /proc."""
    total = 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        for task in Path(f"/proc/{pid}/task").iterdir():
            for child in (task / "children").read_text().split():
                total += cpu_seconds(int(child))
    except (FileNotFoundError, ProcessLookupError):
        pass  # a process that ended meanwhile
    return total


def wrk(port: int, seconds: int, script: Path) -> float:
    out = subprocess.run(
        [
            *("wrk", "-t1", "-c32", f"-d{seconds}s", "-s", str(script)),
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


def redis_scripts(url: str) -> int:
    """EVALSHA calls Redis has served (the rate-limit script), to check one per URL."""
    import redis

    with redis.Redis.from_url(url) as client:
        stats = client.info("commandstats")
    return int(stats.get("cmdstat_evalsha", {}).get("calls", 0))


def main() -> None:
    from playgate.redis_server import redis_server

    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument(
        "--tree", type=Path, help="another checkout: its signer with Redis too, side by side"
    )
    args = parser.parse_args()
    api_key = generate_api_key()
    load_before = os.getloadavg()
    with (
        tempfile.TemporaryDirectory() as tmp,
        redis_server() as redis,
        contextlib.ExitStack() as servers,
    ):
        script = Path(tmp) / "post.lua"
        script.write_text(
            'wrk.method = "POST"\n'
            f"wrk.body = {json.dumps(BODY)}\n"
            'wrk.headers["Content-Type"] = "application/json"\n'
            f'wrk.headers["Authorization"] = "Bearer {api_key}"\n'
        )
        env = {
            "PLAYGATE_KEYRING": new_keyring_json("bench"),
            "PLAYGATE_API_KEYS": f"bench:{hash_api_key(api_key)}",
            "PLAYGATE_PUBLIC_URL": "https://cdn.example",
            "PLAYGATE_RATE_LIMIT_API_KEY": NEVER_REACHED,
            "PLAYGATE_RATE_LIMIT_VIEWER": NEVER_REACHED,
            "PLAYGATE_LOG_LEVEL": "info",
        }
        ports: dict[tuple[str, int], tuple[int, int]] = {}
        for n in args.workers:
            ports["trivial Starlette JSON endpoint", n] = servers.enter_context(serve_trivial(n))
            memory = serve_signer(n, env, Path(tmp) / f"memory-{n}.log")
            ports["signer, in memory", n] = servers.enter_context(memory)
            redis_env = {**env, "REDIS_URL": redis.url}
            with_redis = serve_signer(n, redis_env, Path(tmp) / f"r{n}.log")
            ports["signer, Redis rate limits", n] = servers.enter_context(with_redis)
            # The same with the log at WARNING: the issuance log's cost is the difference.
            quiet = {**redis_env, "PLAYGATE_LOG_LEVEL": "warning"}
            with_redis = serve_signer(n, quiet, Path(tmp) / f"rw{n}.log")
            ports[REDIS_WARNING, n] = servers.enter_context(with_redis)
            if args.tree is not None:
                other = serve_signer(n, redis_env, Path(tmp) / f"t{n}.log", args.tree.resolve())
                ports[f"signer, Redis rate limits, {args.tree}", n] = servers.enter_context(other)
        results: dict[tuple[str, int], list[float]] = {config: [] for config in ports}
        cpu: dict[tuple[str, int], list[float]] = {config: [] for config in ports}
        redis_cpu: list[float] = []
        scripts = urls = 0
        assert redis.proc is not None
        for _ in range(args.rounds):  # interleaved, so drift hits every configuration alike
            for config, (port, pid) in ports.items():
                before = redis_scripts(redis.url), cpu_seconds(pid), cpu_seconds(redis.proc.pid)
                rate = wrk(port, args.duration, script)
                done = rate * args.duration
                results[config].append(rate)
                cpu[config].append((cpu_seconds(pid) - before[1]) / done * 1e6)
                if "Redis" in config[0]:
                    scripts += redis_scripts(redis.url) - before[0]
                    urls += round(done)
                    redis_cpu.append((cpu_seconds(redis.proc.pid) - before[2]) / done * 1e6)
        logged = sum(p.read_text().count("issued ") for p in Path(tmp).glob("*.log"))
    load_after = os.getloadavg()
    print(
        "| endpoint | workers | best req/s | median req/s | x trivial (median of rounds) "
        "| server CPU µs per request (median) | 1,000,000 / µs |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for (name, n), values in results.items():
        ceiling = results["trivial Starlette JSON endpoint", n]
        ratio = statistics.median(v / c for v, c in zip(values, ceiling, strict=True))
        us = statistics.median(cpu[name, n])
        print(
            f"| {name} | {n} | {max(values):,.0f} | {statistics.median(values):,.0f} "
            f"| {ratio:.2f} | {us:.0f} | {1e6 / us:,.0f} |"
        )
    for n in args.workers:
        # Per round, INFO minus WARNING: both ran within seconds of each other.
        info, quiet = cpu["signer, Redis rate limits", n], cpu[REDIS_WARNING, n]
        cost = statistics.median(a - b for a, b in zip(info, quiet, strict=True))
        print(f"\nlog at INFO over WARNING, {n} worker(s): {cost:+.1f} µs of CPU per URL (median)")
    print(
        f"\nredis-server CPU per URL: {statistics.median(redis_cpu):.0f} µs (median); "
        f"Redis scripts per URL: {scripts / max(urls, 1):.2f} (EVALSHA calls / URLs, about); "
        f"issuance log lines written: {logged:,}; {os.cpu_count()} CPUs, load average "
        f"{load_before[0]:.1f} before, {load_after[0]:.1f} after; "
        f"wrk -t1 -c32, {args.rounds} rounds of {args.duration} s"
    )


if __name__ == "__main__":
    main()
