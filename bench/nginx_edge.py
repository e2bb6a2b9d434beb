"""Benchmark: nginx secure_link vs nginx + PlayGate, without and with decision caching, and
with the native verifier (PlayGate's check inside nginx).

Everything runs on loopback: a plain origin (uvicorn), two validators (uvicorn, one worker each,
grant cache 0 and 30 s), and three nginx instances with the same cache, log and worker settings.
Each edge's cache is warmed first, so wrk measures the edge, not the origin.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from edge_validator.core.keyring import KeyRing, new_keyring_json
from playgate.nginx.config import (
    EdgeConfig,
    current_user_if_root,
    nginx_argv,
    nginx_binary,
    prepare_prefix,
)
from playgate.processes import stop_process
from signer.issuing import PlaybackRequest, issue

SEGMENT_BYTES = 188 * 1024
VIDEO_PATH = "/videos/bench/seg_000.ts"
SECRET = "bench-secure-link-secret"
LOOPBACK = "127.0.0.1"

SECURE_LINK_CONF = """
daemon off;
worker_processes {workers};
pid {prefix}/nginx.pid;
error_log stderr crit;
{user}
events {{ worker_connections 1024; }}
http {{
    client_body_temp_path {prefix}/tmp/body;
    proxy_temp_path {prefix}/tmp/proxy;
    fastcgi_temp_path {prefix}/tmp/fastcgi;
    uwsgi_temp_path {prefix}/tmp/uwsgi;
    scgi_temp_path {prefix}/tmp/scgi;
    server_tokens off;
    sendfile on;
    tcp_nopush on;
    keepalive_timeout 30s;
    keepalive_requests 10000;
    log_format bench '$remote_addr [$time_iso8601] "$request_method $uri" $status '
                     '$body_bytes_sent cache=$upstream_cache_status rt=$request_time';
    access_log {prefix}/access.log bench;
    proxy_cache_path {prefix}/cache/media levels=1:2 keys_zone=media:10m max_size=1g
                     inactive=10m use_temp_path=off;
    upstream origin {{ server {origin}; keepalive 64; }}
    server {{
        listen {listen};
        location / {{
            secure_link $arg_md5,$arg_expires;
            secure_link_md5 "$secure_link_expires$uri {secret}";
            if ($secure_link = "") {{ return 403; }}
            if ($secure_link = "0") {{ return 410; }}
            proxy_pass http://origin$uri;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_pass_request_headers off;
            proxy_cache media;
            proxy_cache_key $uri;
            proxy_cache_valid 200 10m;
        }}
    }}
}}
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def wait_for(url: str, proc: subprocess.Popen[bytes], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited with {proc.returncode}")
        with contextlib.suppress(httpx.HTTPError):
            httpx.get(url, timeout=1)
            return
        time.sleep(0.1)
    raise TimeoutError(url)


@contextlib.contextmanager
def started(argv: list[str], probe: str, env: dict[str, str] | None = None) -> Iterator[None]:
    proc = subprocess.Popen(argv, env={**os.environ, **(env or {})}, stdout=subprocess.DEVNULL)
    try:
        wait_for(probe, proc)
        yield
    finally:
        stop_process(proc)


def secure_link_url(base: str, now: float) -> str:
    expires = int(now) + 3600
    digest = hashlib.md5(f"{expires}{VIDEO_PATH} {SECRET}".encode()).digest()
    md5 = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    return f"{base}{VIDEO_PATH}?md5={md5}&expires={expires}"


def wrk(url: str, args: argparse.Namespace) -> float:
    out = subprocess.run(
        ["wrk", f"-t{args.threads}", f"-c{args.connections}", f"-d{args.duration}s", url],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if match is None or errors is not None:
        raise RuntimeError(f"wrk failed or saw errors:\n{out}")
    return float(match.group(1))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=5, help="a, b, c measured this many times")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--workers", default="1", help="nginx worker_processes, same for all")
    parser.add_argument("--grant-cache-seconds", type=int, default=30)
    args = parser.parse_args(argv)
    nginx = nginx_binary()
    if nginx is None or shutil.which("wrk") is None:
        print("bench: needs nginx (apt-get install nginx-light) and wrk", file=sys.stderr)
        return 2

    work = Path(tempfile.mkdtemp(prefix="playgate-bench-"))
    try:
        return run(args, nginx, work)
    finally:
        if not os.environ.get("BENCH_KEEP"):
            shutil.rmtree(work, ignore_errors=True)


def run(args: argparse.Namespace, nginx: str, work: Path) -> int:
    media = work / "media"
    (media / "videos" / "bench").mkdir(parents=True)
    (media / VIDEO_PATH.lstrip("/")).write_bytes(os.urandom(SEGMENT_BYTES))
    keyring_json = new_keyring_json("bench1")
    keyring = KeyRing.from_json(keyring_json)
    py = sys.executable
    origin_port, val_b, val_c = free_port(), free_port(), free_port()
    user = current_user_if_root()
    ports = {"a": free_port(), "b": free_port(), "c": free_port(), "d": free_port()}
    keyring_file = work / "keyring.json"
    keyring_file.write_text(keyring_json)
    origin_code = (
        "import sys, uvicorn; from pathlib import Path; "
        "from playgate.demo.origin import create_origin_app; "
        "uvicorn.run(create_origin_app(Path(sys.argv[1])), host='127.0.0.1', "
        "port=int(sys.argv[2]), log_level='warning', access_log=False)"
    )
    validator_env = {
        "PLAYGATE_KEYRING": keyring_json,
        "PLAYGATE_TRUSTED_PROXIES": "127.0.0.1/32",
        "PLAYGATE_CLIENT_IP_HEADER": "x-real-ip",
    }
    with contextlib.ExitStack() as stack:
        stack.enter_context(
            started(
                [py, "-c", origin_code, str(media), str(origin_port)],
                f"http://{LOOPBACK}:{origin_port}/healthz",
            )
        )
        for port, cache in ((val_b, "0"), (val_c, str(args.grant_cache_seconds))):
            stack.enter_context(
                started(
                    [py, "-m", "playgate.cli", "serve-validator", "--port", str(port)],
                    f"http://{LOOPBACK}:{port}/healthz",
                    {**validator_env, "PLAYGATE_GRANT_CACHE_SECONDS": cache},
                )
            )
        # (a) secure_link
        prefix_a = work / "nginx-a"
        for sub in ("tmp/body", "tmp/proxy", "tmp/fastcgi", "tmp/uwsgi", "tmp/scgi", "cache"):
            (prefix_a / sub).mkdir(parents=True)
        conf_a = prefix_a / "nginx.conf"
        conf_a.write_text(
            SECURE_LINK_CONF.format(
                workers=args.workers,
                prefix=prefix_a,
                user=f"user {user};" if user else "",
                origin=f"{LOOPBACK}:{origin_port}",
                listen=f"{LOOPBACK}:{ports['a']}",
                secret=SECRET,
            )
        )
        argv_a = [nginx, "-p", str(prefix_a), "-c", str(conf_a), "-e", "stderr"]
        now = time.time()
        urls = {"a": secure_link_url(f"http://{LOOPBACK}:{ports['a']}", now)}
        stack.enter_context(started(argv_a, urls["a"]))
        # (b), (c): the PlayGate edge config with auth_request only; (d) with the native verifier
        for name, validator_port in (("b", val_b), ("c", val_c), ("d", val_b)):
            config = EdgeConfig(
                listen=f"{LOOPBACK}:{ports[name]}",
                validator_url=f"http://{LOOPBACK}:{validator_port}",
                origin_url=f"http://{LOOPBACK}:{origin_port}",
                prefix=work / f"nginx-{name}",
                workers=args.workers,
                user=user,
                keyring_file=keyring_file if name == "d" else None,
            )
            prepare_prefix(config)
            base = f"http://{LOOPBACK}:{ports[name]}"
            request = PlaybackRequest("bench", 3600, file="seg_000.ts")
            urls[name] = issue(request, keyring, now, public_url=base).url
            stack.enter_context(started(nginx_argv(nginx, config), urls[name]))
        for name, url in urls.items():  # warm every cache; all must answer 200
            for _ in range(3):
                resp = httpx.get(url, timeout=10)
                if resp.status_code != 200 or len(resp.content) != SEGMENT_BYTES:
                    raise RuntimeError(f"edge {name} answered {resp.status_code}")
        results: dict[str, list[float]] = {k: [] for k in urls}
        for _ in range(args.rounds):
            for name, url in urls.items():
                results[name].append(wrk(url, args))
                print(f"round: {name} {results[name][-1]:,.0f} req/s", file=sys.stderr)
    report(results, args)
    return 0


def report(results: dict[str, list[float]], args: argparse.Namespace) -> None:
    # Best of interleaved rounds (on a shared machine noise only ever lowers a run), and median.
    best = {k: max(v) for k, v in results.items()}
    median = {k: statistics.median(v) for k, v in results.items()}
    labels = {
        "a": "(a) nginx secure_link",
        "b": "(b) nginx + PlayGate, no decision caching",
        "c": f"(c) nginx + PlayGate, decision caching {args.grant_cache_seconds} s",
        "d": "(d) nginx + PlayGate native verifier (every check, revocations polled)",
    }
    print(
        f"188 KB segment, wrk -t{args.threads} -c{args.connections} -d{args.duration}s, "
        f"nginx workers={args.workers}, {args.rounds} interleaved rounds, {os.cpu_count()} CPUs"
    )
    print("| edge | best req/s | x (a) | median req/s | x (a) |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for key, label in labels.items():
        print(
            f"| {label} | {best[key]:,.0f} | {best[key] / best['a']:.2f} "
            f"| {median[key]:,.0f} | {median[key] / median['a']:.2f} |"
        )


if __name__ == "__main__":
    raise SystemExit(main())
