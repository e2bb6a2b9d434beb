"""The edge benchmark: N viewers, each with their own token, playing an HLS video through each
edge configuration, all configurations measured in alternating rounds in one run.

Each viewer fetches a master playlist, a media playlist and ten ~186 KB segments (test media
made once with ffmpeg). wrk runs a Lua script that walks the viewers the way concurrent players
do: request ``j`` is viewer ``v = j mod N``'s step ``(j div N + v) mod 13``, so a viewer comes
back every N requests for its next step, every stretch of N requests holds the same mix, and
each configuration's next round continues where its last one stopped. The 13
steps: the master playlist with the start token (PlayGate answers it with the redirect that
opens the playback session; the peers with the playlist), the master playlist again, the media
playlist, ten segments (PlayGate: with the session token).

Configurations (``CONFIGS``; adding one is one function that starts it and returns an ``Edge``):
nginx ``secure_link`` (the peer, token per viewer in the path), nginx with no auth (the
ceiling), nginx + PlayGate ``auth_request`` (no native verifier), the PlayGate origin
shield alone (uvicorn serving files), and the native validator when it is available. Every
nginx has the same settings (one worker, same cache, log, sendfile and TCP options), and all
share one plain nginx origin; manifests always go to the origin, segments come from the edge's
cache (warmed first).

CPU per request: user + system time of the edge's nginx (master and workers) and of its
validator processes, from ``/proc/<pid>/stat``, over the requests wrk completed.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from edge_validator.core.addresses import ClientAddress
from edge_validator.core.decision import DEFAULT_MAX_SESSION, Verifier
from edge_validator.core.errors import ConfigurationError
from edge_validator.core.keyring import KeyRing, new_keyring_json
from edge_validator.core.protocol import SESSION_PREFIX
from edge_validator.core.sessions import seal_session, session_claims
from playgate.nginx.config import (
    EdgeConfig,
    check_native,
    current_user_if_root,
    nginx_argv,
    prepare_prefix,
)
from playgate.nginx.fast_module import built
from playgate.processes import free_port, require_tool, stop_process
from signer.issuing import PlaybackRequest, issue

LOOPBACK = "127.0.0.1"
VIDEO = "bench"
SEGMENTS = 10
SECRET = "bench-secure-link-secret"
STEPS = (
    "master.m3u8",
    "master.m3u8",
    "v0/index.m3u8",
    *(f"v0/seg_{i:03d}.ts" for i in range(SEGMENTS)),
)
LUA = Path(__file__).resolve().parent / "edge_viewers.lua"
TICK = os.sysconf("SC_CLK_TCK")

# Shared by the peer nginx configs: the same settings as playgate/nginx/edge.conf.template
# where they matter (sendfile, TCP options, keep-alive, access log, cache, PCRE JIT, one worker).
NGINX_CONF = """
daemon off;
worker_processes {workers};
pid {prefix}/nginx.pid;
# As the PlayGate edge template: regexes (locations, maps) compiled to machine code.
pcre_jit on;
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
    tcp_nopush {tcp_nopush};
    keepalive_timeout 30s;
    keepalive_requests 10000;
    log_format bench '$remote_addr [$time_iso8601] "$request_method $uri" $status '
                     '$body_bytes_sent cache=$upstream_cache_status rt=$request_time';
    access_log {access_log};
    proxy_cache_path {prefix}/cache/media levels=1:2 keys_zone=media:10m max_size=1g
                     inactive=10m use_temp_path=off;
    upstream origin {{ server {origin}; keepalive 64; }}
    map $uri $is_manifest {{ "~\\.m3u8$" 1; default 0; }}
    server {{
        listen {listen};
{locations}
    }}
}}
"""
ORIGIN_LOCATIONS = """
        location / {{ root {media}; }}
"""
PROXY = """
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_pass_request_headers off;
            proxy_cache media;
            proxy_cache_valid 200 10m;
            proxy_cache_bypass $is_manifest;
            proxy_no_cache $is_manifest;
            proxy_cache_lock on;
"""
# /sl/<md5>/<expires>/videos/<id>/<file>: one token per viewer for the whole video directory,
# in the path like PlayGate's, so a player's relative URIs carry it.
SECURE_LINK_LOCATIONS = (
    """
        location ~ "^/sl/(?<sl_md5>[A-Za-z0-9_-]+)/(?<sl_exp>[0-9]+)\
(?<sl_path>(?<sl_dir>/videos/[A-Za-z0-9_-]+/)[^?]*)$" {{
            secure_link $sl_md5,$sl_exp;
            secure_link_md5 "$sl_exp$sl_dir {secret}";
            if ($secure_link = "") {{ return 403; }}
            if ($secure_link = "0") {{ return 410; }}
            proxy_pass http://origin$sl_path;
            proxy_cache_key $sl_path;"""
    + PROXY
    + """
        }}
        location / {{ return 403; }}
"""
)
NO_AUTH_LOCATIONS = (
    """
        location / {{
            proxy_pass http://origin;
            proxy_cache_key $uri;"""
    + PROXY
    + """
        }}
"""
)


@dataclass
class Edge:
    """A running edge: where to send requests, how viewers' URLs look, whose CPU to count."""

    base: str
    # Per viewer: the prefix of the first step's path, and of the others (see STEPS).
    prefixes: Callable[[Viewer], tuple[str, str]]
    nginx: int | None = None
    validator: int | None = None


@dataclass(frozen=True)
class Viewer:
    index: int
    start: str  # PlayGate start token
    session: str  # PlayGate session token (what the shield's redirect would hand out)
    secure_link: str  # "<md5>/<expires>"


@dataclass
class Bench:
    """What every configuration gets: the tools, the scratch folder, the shared pieces."""

    args: argparse.Namespace
    nginx: str
    work: Path
    media: Path
    keyring_json: str
    origin: str  # http://host:port of the plain nginx origin
    user: str | None = current_user_if_root()
    stack: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)

    def validator_env(self, **extra: str) -> dict[str, str]:
        return {
            "PLAYGATE_KEYRING": self.keyring_json,
            "PLAYGATE_TRUSTED_PROXIES": "127.0.0.1/32",
            "PLAYGATE_CLIENT_IP_HEADER": "x-real-ip",
            **extra,
        }


# --- processes -----------------------------------------------------------------------------


def wait_for(url: str, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited with {proc.returncode}")
        with contextlib.suppress(httpx.HTTPError):
            httpx.get(url, timeout=1)
            return
        time.sleep(0.1)
    raise TimeoutError(url)


def start(bench: Bench, argv: list[str], probe: str, env: dict[str, str] | None = None) -> int:
    """Start ``argv`` for the rest of the run, wait until ``probe`` answers; its pid. Its
    output (a validator logs every session it opens) goes to a file in the scratch folder."""
    port = urlsplit(probe).port
    log = bench.stack.enter_context((bench.work / f"process-{port}.log").open("wb"))
    proc = subprocess.Popen(
        argv, env={**os.environ, **(env or {})}, stdout=log, stderr=subprocess.STDOUT
    )
    bench.stack.callback(stop_process, proc)
    wait_for(probe, proc)
    return proc.pid


def peer_nginx(bench: Bench, name: str, locations: str) -> tuple[str, int]:
    """An nginx from ``NGINX_CONF`` with ``locations``; its base URL and master pid."""
    prefix = bench.work / f"nginx-{name}"
    for sub in ("tmp/body", "tmp/proxy", "tmp/fastcgi", "tmp/uwsgi", "tmp/scgi", "cache"):
        (prefix / sub).mkdir(parents=True, exist_ok=True)
    port = free_port()
    conf = prefix / "nginx.conf"
    conf.write_text(
        NGINX_CONF.format(
            workers=bench.args.workers,
            prefix=prefix,
            user=f"user {bench.user};" if bench.user else "",
            tcp_nopush="off",
            access_log="off" if name == "origin" else f"{prefix}/access.log bench",
            # The origin itself proxies nowhere; its upstream block still needs a server.
            origin=bench.origin.removeprefix("http://") or f"{LOOPBACK}:9",
            listen=f"{LOOPBACK}:{port}",
            locations=locations,
        )
    )
    base = f"http://{LOOPBACK}:{port}"
    pid = start(bench, [bench.nginx, "-p", str(prefix), "-c", str(conf), "-e", "stderr"], base)
    return base, pid


def serve_validator(bench: Bench, env: dict[str, str], workers: str = "1") -> tuple[str, int]:
    port = free_port()
    argv = [sys.executable, "-m", "playgate.cli", "serve-validator", "--port", str(port),
            "--workers", workers]  # fmt: skip
    base = f"http://{LOOPBACK}:{port}"
    return base, start(bench, argv, f"{base}/healthz", env)


def playgate_nginx(bench: Bench, name: str, validator_env: dict[str, str], **edge: Any) -> Edge:
    """The shipped edge config (``edge`` overrides EdgeConfig fields) and its validator."""
    validator, validator_pid = serve_validator(
        bench, {**validator_env, "PLAYGATE_ORIGIN_URL": bench.origin}
    )
    port = free_port()
    config = EdgeConfig(
        listen=f"{LOOPBACK}:{port}",
        validator_url=validator,
        origin_url=bench.origin,
        prefix=bench.work / f"nginx-{name}",
        workers=bench.args.workers,
        user=bench.user,
        **edge,
    )
    prepare_prefix(config)
    base = f"http://{LOOPBACK}:{port}"
    pid = start(bench, nginx_argv(bench.nginx, config), base)
    return Edge(base, playgate_prefixes, nginx=pid, validator=validator_pid)


# --- configurations: name -> (label, function starting it) --------------------------------


def playgate_prefixes(viewer: Viewer) -> tuple[str, str]:
    return f"/t/{viewer.start}", f"{SESSION_PREFIX}{viewer.session}"


def secure_link(bench: Bench) -> Edge:
    base, pid = peer_nginx(bench, "secure_link", SECURE_LINK_LOCATIONS.format(secret=SECRET))
    return Edge(base, lambda v: (f"/sl/{v.secure_link}",) * 2, nginx=pid)


def no_auth(bench: Bench) -> Edge:
    base, pid = peer_nginx(bench, "no_auth", NO_AUTH_LOCATIONS.format())
    return Edge(base, lambda v: ("", ""), nginx=pid)


def playgate_default(bench: Bench) -> Edge:
    return playgate_nginx(bench, "playgate", bench.validator_env())


def shield(bench: Bench) -> Edge:
    """As many uvicorn workers as the nginx configs have nginx workers (per core, fairly)."""
    env = bench.validator_env(PLAYGATE_MEDIA_ROOT=str(bench.media))
    workers = bench.args.workers
    base, pid = serve_validator(bench, env, str(os.cpu_count()) if workers == "auto" else workers)
    return Edge(base, playgate_prefixes, validator=pid)


def shield_uvicorn(bench: Bench) -> Edge:
    """The shield under plain uvicorn, which offers no zero-copy: files are read whole in a
    worker thread, as ``serve-validator`` did before it sent them with sendfile."""
    port = free_port()
    argv = [sys.executable, "-m", "uvicorn", "--factory", "edge_validator.asgi.app:app_from_env",
            "--port", str(port), "--http", "httptools", "--loop", "uvloop", "--no-access-log",
            "--no-proxy-headers", "--log-level", "warning"]  # fmt: skip
    base = f"http://{LOOPBACK}:{port}"
    env = bench.validator_env(PLAYGATE_MEDIA_ROOT=str(bench.media))
    return Edge(base, playgate_prefixes, validator=start(bench, argv, f"{base}/healthz", env))


def native(bench: Bench, fast: bool = True) -> Edge:
    """PlayGate's check inside nginx (playgate/nginx/lua), reading the validators' key ring,
    with its C fast path (playgate/nginx/module) unless ``fast`` is False."""
    keyring_file = bench.work / "keyring.json"
    keyring_file.write_text(bench.keyring_json)
    try:
        check_native(EdgeConfig("-", "http://x", "http://x", bench.work, keyring_file=keyring_file))
        module = built(bench.nginx) if fast else None
    except ConfigurationError as exc:
        raise Unavailable(str(exc)) from None
    name = "native" if fast else "native_lua"
    return playgate_nginx(
        bench, name, bench.validator_env(), keyring_file=keyring_file, fast_module=module
    )


def native_lua(bench: Bench) -> Edge:
    """The native verifier without its C fast path: Lua decides every request."""
    return native(bench, fast=False)


class Unavailable(Exception):
    """A configuration this checkout or machine cannot run (said once, then left out)."""


CONFIGS: dict[str, tuple[str, Callable[[Bench], Edge]]] = {
    "secure_link": ("nginx `secure_link` (the peer)", secure_link),
    "no_auth": ("nginx, no auth (ceiling)", no_auth),
    "playgate": ("nginx + PlayGate `auth_request` (no native verifier)", playgate_default),
    "shield": ("PlayGate origin shield alone (uvicorn serving files)", shield),
    "shield_uvicorn": ("origin shield, plain uvicorn: no zero-copy (before)", shield_uvicorn),
    "native": ("nginx + PlayGate native verifier (C fast path, then Lua, in nginx)", native),
    "native_lua": ("nginx + PlayGate native verifier, Lua alone (no C fast path)", native_lua),
}


# Measured on request only (--configs): the shield as it was, for the comparison.
EXTRA = ("shield_uvicorn",)
DEFAULT_CONFIGS = tuple(name for name in CONFIGS if name not in EXTRA)


# --- viewers, media ------------------------------------------------------------------------


def make_media(root: Path, segment_kb: int) -> None:
    """A real HLS rendition: ffmpeg test pattern, ten 2 s segments of about ``segment_kb``."""
    folder = root / "videos" / VIDEO / "v0"
    folder.mkdir(parents=True)
    kbit = segment_kb * 8 // 2
    subprocess.run(
        ["ffmpeg", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25",
         "-t", str(2 * SEGMENTS), "-c:v", "libx264", "-preset", "ultrafast",
         "-b:v", f"{kbit}k", "-minrate", f"{kbit}k", "-maxrate", f"{kbit}k",
         "-bufsize", f"{kbit}k", "-x264-params", "nal-hrd=cbr", "-g", "50",
         "-f", "hls", "-hls_time", "2", "-hls_list_size", "0",
         "-hls_segment_filename", str(folder / "seg_%03d.ts"), str(folder / "index.m3u8")],
        check=True,
    )  # fmt: skip
    (root / "videos" / VIDEO / "master.m3u8").write_text(
        "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=800000,RESOLUTION=640x360\nv0/index.m3u8\n"
    )


def make_viewers(keyring: KeyRing, n: int, now: float) -> list[Viewer]:
    """``n`` viewers, each with their own start token, the session token it opens, and a
    secure_link token, all signed in process (100,000 take a few seconds)."""
    sessions = Verifier(keyring, max_ttl=3600).sessions
    opener = Verifier(keyring, max_ttl=3600, memo_size=0)
    client = ClientAddress.parse(LOOPBACK)
    request = PlaybackRequest(VIDEO, 3600, session_seconds=3600)
    viewers = []
    for i in range(n):
        start = issue(request, keyring, now, public_url="http://edge").token
        grant = opener.verify_target(f"/t/{start}/videos/{VIDEO}/master.m3u8", client, now)
        claims = session_claims(grant, client, max_session=DEFAULT_MAX_SESSION)
        expires = int(now) + 3600 + i
        digest = hashlib.md5(f"{expires}/videos/{VIDEO}/ {SECRET}".encode()).digest()
        md5 = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
        viewers.append(Viewer(i, start, seal_session(claims, sessions), f"{md5}/{expires}"))
    return viewers


def write_url_list(path: Path, edge: Edge, viewers: list[Viewer]) -> None:
    """One line per viewer for the Lua script: the two path prefixes ("-" for none)."""
    lines = []
    for viewer in viewers:
        first, rest = edge.prefixes(viewer)
        lines.append(f"{first or '-'} {rest or '-'}\n")
    path.write_text("".join(lines))


def check(edge: Edge, viewer: Viewer, name: str) -> None:
    """One viewer plays every step and gets what a player expects (fills the media cache)."""
    first, rest = edge.prefixes(viewer)
    for step, file in enumerate(STEPS):
        url = f"{edge.base}{first if step == 0 else rest}/videos/{VIDEO}/{file}"
        for _ in range(2):  # a miss, then a hit
            resp = httpx.get(url, timeout=10)
            if resp.status_code not in (200, 302):
                raise RuntimeError(f"{name}: {file} answered {resp.status_code}")


# --- measuring ----------------------------------------------------------------------------


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU of ``pid`` and every process under it (nginx workers, uvicorn's)."""
    if pid is None:
        return 0.0
    parents: dict[int, int] = {}
    ticks: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        parents[int(entry)] = int(fields[1])
        ticks[int(entry)] = int(fields[11]) + int(fields[12])
    tree, frontier = {pid}, [pid]
    while frontier:
        parent = frontier.pop()
        children = [p for p, pp in parents.items() if pp == parent and p not in tree]
        tree.update(children)
        frontier.extend(children)
    return sum(ticks.get(p, 0) for p in tree) / TICK


def cpu_ticks() -> tuple[int, int]:
    """The machine's (steal, total) ticks since boot: a virtual machine's host taking the
    CPUs away shows as steal, and as a round slower for reasons not in the edge."""
    fields = [int(f) for f in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return fields[7], sum(fields)


@dataclass
class Run:
    rps: float
    requests: int
    p99_ms: float
    nginx_us: float  # CPU per request
    validator_us: float
    steal_pct: float  # of the machine's CPU time during the round


def wrk(edge: Edge, urls: Path, viewers: int, offset: int, args: argparse.Namespace) -> Run:
    before = cpu_seconds(edge.nginx), cpu_seconds(edge.validator)
    ticks_before = cpu_ticks()
    argv = ["wrk", f"-t{args.threads}", f"-c{args.connections}", f"-d{args.duration}s",
            "--latency", "-s", str(LUA), edge.base,
            "--", str(urls), str(viewers), str(offset),
            "playing" if args.playing else "full"]  # fmt: skip
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    after = cpu_seconds(edge.nginx), cpu_seconds(edge.validator)
    ticks_after = cpu_ticks()
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    done = re.search(r"(\d+) requests in", out)
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)\b", out)
    if rps is None or done is None or p99 is None or "Non-2xx" in out or "Socket errors" in out:
        raise RuntimeError(f"wrk failed or saw errors:\n{out}")
    requests = int(done.group(1))
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[p99.group(2)]
    per = 1e6 / max(requests, 1)
    return Run(
        float(rps.group(1)),
        requests,
        float(p99.group(1)) * scale,
        (after[0] - before[0]) * per,
        (after[1] - before[1]) * per,
        100 * (ticks_after[0] - ticks_before[0]) / max(ticks_after[1] - ticks_before[1], 1),
    )


def measure(bench: Bench, names: list[str], viewers: list[Viewer]) -> dict[str, list[Run]]:
    edges: dict[str, Edge] = {}
    for name in names:
        try:
            edges[name] = CONFIGS[name][1](bench)
        except Unavailable as exc:
            print(f"bench: {name} left out: {exc}", file=sys.stderr)
            continue
        check(edges[name], viewers[0], name)
    lists = {name: bench.work / f"viewers-{name}.txt" for name in edges}
    for name, edge in edges.items():
        write_url_list(lists[name], edge, viewers)
    offsets = dict.fromkeys(edges, 0)
    results: dict[str, list[Run]] = {name: [] for name in edges}
    n = len(viewers)
    # Warm-up, not counted: at least one request per viewer (up to --warmup-max seconds), so
    # memos hold the viewers as a long-running edge's do.
    warm = argparse.Namespace(**{**vars(bench.args), "duration": bench.args.warmup})
    for name, edge in edges.items():
        deadline = time.monotonic() + bench.args.warmup_max
        while offsets[name] < n or not offsets[name]:
            offsets[name] += wrk(edge, lists[name], n, offsets[name], warm).requests
            if time.monotonic() > deadline:
                break
    for round_no in range(bench.args.rounds):
        for name, edge in edges.items():
            run = wrk(edge, lists[name], n, offsets[name], bench.args)
            offsets[name] += run.requests
            results[name].append(run)
            print(
                f"N={n} round {round_no + 1}: {name} {run.rps:,.0f} req/s, "
                f"nginx {run.nginx_us:.0f} µs/req, steal {run.steal_pct:.1f} %",
                file=sys.stderr,
            )
    return results


def report(results: dict[str, list[Run]], n: int, args: argparse.Namespace) -> str:
    ref = results.get("secure_link")
    ref_best = max(r.rps for r in ref) if ref else None
    ref_median = statistics.median(r.rps for r in ref) if ref else None
    lines = [
        f"N = {n:,} viewers{' already playing' if args.playing else ''}; "
        f"wrk -t{args.threads} -c{args.connections} -d{args.duration}s, "
        f"{args.rounds} interleaved rounds, nginx workers={args.workers}, {os.cpu_count()} CPUs",
        "",
        "| edge | best req/s | median req/s | x secure_link (median) | x secure_link (paired) "
        "| p99 ms (median) | nginx CPU µs/req | validator CPU µs/req | steal % (max) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, runs in results.items():
        best = max(r.rps for r in runs)
        median = statistics.median(r.rps for r in runs)
        ratio = f"{median / ref_median:.2f}" if ref_median else "-"
        # Each round's ratio to secure_link's run of the same round (seconds apart), then
        # their median: what the machine did to both in that round cancels out.
        paired = (
            f"{statistics.median(r.rps / p.rps for r, p in zip(runs, ref, strict=True)):.2f}"
            if ref
            else "-"
        )
        p99 = statistics.median(r.p99_ms for r in runs)
        nginx_us = statistics.median(r.nginx_us for r in runs)
        val_us = statistics.median(r.validator_us for r in runs)
        steal = max(r.steal_pct for r in runs)
        lines.append(
            f"| {CONFIGS[name][0]} | {best:,.0f} | {median:,.0f} | {ratio} | {paired} | {p99:.1f} "
            f"| {nginx_us:.0f} | {val_us:.0f} | {steal:.1f} |"
        )
    if ref_best:
        lines.append("")
        lines.append(
            "best-of ratios: "
            + ", ".join(
                f"{name} {max(r.rps for r in runs) / ref_best:.2f}"
                for name, runs in results.items()
            )
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--viewers", type=int, nargs="+", default=[1, 1000, 20000, 100000])
    parser.add_argument("--configs", nargs="+", choices=CONFIGS, default=list(DEFAULT_CONFIGS))
    parser.add_argument("--duration", type=int, default=4, help="seconds per wrk run")
    parser.add_argument("--warmup", type=int, default=4, help="seconds per warm-up run")
    parser.add_argument(
        "--warmup-max", type=int, default=120, help="warm-up seconds per config at most"
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--workers", default="1", help="nginx worker_processes, same for all")
    parser.add_argument(
        "--playing",
        action="store_true",
        help="viewers already watching: leave out the request that opens playback",
    )
    parser.add_argument("--segment-kb", type=int, default=186)
    args = parser.parse_args(argv)
    try:
        nginx, *_ = (require_tool(tool) for tool in ("nginx", "wrk", "ffmpeg"))
    except FileNotFoundError as exc:  # ./bench/run-nginx installs them
        print(f"bench: {exc}", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="playgate-bench-"))
    try:
        media = work / "media"
        make_media(media, args.segment_kb)
        keyring_json = new_keyring_json("bench1")
        keyring = KeyRing.from_json(keyring_json)
        for n in args.viewers:
            started = time.perf_counter()
            viewers = make_viewers(keyring, n, time.time())
            print(f"bench: {n:,} viewers signed in {time.perf_counter() - started:.1f} s",
                  file=sys.stderr)  # fmt: skip
            results = run_one(args, nginx, work / f"n{n}", media, keyring_json, viewers)
            print(report(results, n, args))
            print(flush=True)
    finally:
        if not os.environ.get("BENCH_KEEP"):
            shutil.rmtree(work, ignore_errors=True)
    return 0


def run_one(
    args: argparse.Namespace,
    nginx: str,
    work: Path,
    media: Path,
    keyring_json: str,
    viewers: list[Viewer],
) -> dict[str, list[Run]]:
    """Every configuration for one N, fresh processes (empty memos and caches)."""
    work.mkdir(parents=True)
    bench = Bench(args, nginx, work, media, keyring_json, origin="")
    with bench.stack:
        bench.origin, _ = peer_nginx(bench, "origin", ORIGIN_LOCATIONS.format(media=media))
        return measure(bench, list(args.configs), viewers)


if __name__ == "__main__":
    raise SystemExit(main())
