"""``playgate demo``: the signer and the origin shield on loopback, serving the sample video.

Everything it needs is generated into a temporary folder: a key ring and an API key. State is
in memory (the embedded default). Ctrl-C stops both servers.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import os
import shlex
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import uvicorn
from starlette.types import ASGIApp

from edge_validator.asgi.app import create_app as create_validator
from edge_validator.core.cat.claims import CatPolicy
from edge_validator.core.cat.keys import CatKeyRing, new_cat_keyring_json
from edge_validator.core.cat.verify import CatVerifier
from edge_validator.core.cors import CorsPolicy
from edge_validator.core.keyring import KeyRing, new_keyring_json
from edge_validator.core.protocol import REAL_IP
from edge_validator.env import Env, networks
from edge_validator.formats.keys import FORMATS
from edge_validator.settings import ValidatorSettings
from edge_validator.state.guard import StateGuard
from edge_validator.state.settings import StateSettings
from edge_validator.state.store import build_store
from signer.api_keys import ApiKeys, generate_api_key, hash_api_key
from signer.app import create_app as create_signer
from signer.clock_margin import backdated
from signer.issuing import CatIssuer, PlaybackRequest, issue
from signer.settings import SignerSettings

from ..nginx.config import INSTALL_HINT, nginx_binary
from ..nginx.runner import NginxEdge
from ..processes import bind, free_port
from ..serving import ServerLimits, uvicorn_config
from . import DEMO_VIDEO, SAMPLES
from .backend import create_backend_app
from .formats import demo_format_keys
from .origin import create_origin_app

# The issuer every demo CAT names, and the demo edge expects (PLAYGATE_CAT_ISSUER).
DEMO_CAT_ISSUER = "playgate-demo"


class _Server(uvicorn.Server):
    """A uvicorn server that leaves signal handling to the demo, which runs several."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def server(
    app: ASGIApp, sock: socket.socket, limits: ServerLimits
) -> tuple[_Server, socket.socket]:
    return _Server(uvicorn_config(app, limits, log_level="warning", lifespan="on")), sock


def base_url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://{host}:{port}"


async def _serve_all(
    servers: list[tuple[_Server, socket.socket]], ready: str, nginx: NginxEdge | None = None
) -> None:
    loop = asyncio.get_running_loop()

    def stop() -> None:
        for srv, _ in servers:
            srv.should_exit = True

    # SIGHUP too: closing the demo's terminal stops it as Ctrl-C does, so its folder (key ring,
    # API key) is removed and nginx stopped, instead of both left behind.
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        loop.add_signal_handler(sig, stop)
    tasks = [asyncio.create_task(s.serve(sockets=[sock])) for s, sock in servers]
    while not all(s.started for s, _ in servers):
        if any(t.done() for t in tasks):
            break
        await asyncio.sleep(0.05)
    else:
        if nginx is not None:
            nginx.start()
            await nginx.wait_ready()
        print(ready, flush=True)
    await asyncio.gather(*tasks)


def _validator_settings(
    keyring: KeyRing, keyring_text: str, args: argparse.Namespace
) -> ValidatorSettings:
    origin: str | None = args.origin
    if origin is None:
        return ValidatorSettings(keyring=keyring, media_root=SAMPLES)
    if origin.startswith(("http://", "https://")):
        return ValidatorSettings(keyring=keyring, origin_url=origin.rstrip("/"))
    if origin.startswith("s3://"):
        from .s3 import s3_validator_settings, upload_samples

        settings = s3_validator_settings(keyring_text, origin)
        if getattr(args, "upload_samples", False):
            count = upload_samples(settings, SAMPLES)
            print(f"Uploaded {count} sample files to {origin}", flush=True)
        return settings
    return ValidatorSettings(keyring=keyring, media_root=Path(origin))


def origin_problem(origin: str | None) -> str | None:
    """``--origin`` that could serve nothing: a scheme the shield has no origin for, or a folder
    that is not there (every URL the demo prints would be a 404)."""
    if origin is None or origin.startswith(("http://", "https://", "s3://")):
        return None
    if "://" in origin:
        return f"--origin {origin}: give a folder, an http(s):// origin or s3://bucket/prefix"
    if not Path(origin).is_dir():
        return f"--origin {origin} is not a folder: give the folder that holds videos/<id>/..."
    return None


def _describe_origin(settings: ValidatorSettings) -> str:
    if settings.s3 is not None:
        s3 = settings.s3
        return f"{s3.location} ({s3.mode}, endpoint {s3.endpoint_url or 'AWS'})"
    return str(settings.origin_url or settings.media_root)


def run_demo(args: argparse.Namespace) -> int:
    nginx_bin = nginx_binary() if args.edge == "nginx" else None
    if args.edge == "nginx" and nginx_bin is None:
        print(f"playgate demo: {INSTALL_HINT}", file=sys.stderr)
        return 2
    if args.edge == "nginx" and args.origin and "://" in args.origin:
        print("playgate demo: with --edge nginx, --origin must be a folder", file=sys.stderr)
        return 2
    problem = origin_problem(args.origin)
    if problem is not None:
        print(f"playgate demo: {problem}", file=sys.stderr)
        return 2
    # In memory unless REDIS_URL is set; then Redis must answer now, or every URL the demo
    # prints would be refused (state_unavailable) behind a log line.
    state_settings = StateSettings.from_env(os.environ)
    problem = redis_problem(state_settings)
    if problem is not None:
        print(f"playgate demo: {REDIS_DOWN} ({problem})", file=sys.stderr)
        return 2
    workdir = Path(tempfile.mkdtemp(prefix="playgate-demo-"))
    try:
        return _run_in(workdir, args, nginx_bin, state_settings)
    finally:
        # The key ring lives as long as the demo: nothing of it stays behind in /tmp.
        shutil.rmtree(workdir, ignore_errors=True)


REDIS_DOWN = (
    "Redis at REDIS_URL does not answer: start redis-server there (docs/redis.md), or unset "
    "REDIS_URL to keep the demo's state in memory"
)


def redis_problem(settings: StateSettings) -> str | None:
    """With REDIS_URL: None if Redis answers a PING, else what went wrong, in one line."""
    if not settings.uses_redis:
        return None

    async def ping() -> None:
        store = build_store(settings)
        try:
            await store.ping()
        finally:
            await store.close()

    try:
        asyncio.run(ping())
    except Exception as exc:  # noqa: BLE001 - any failure (refused, bad port, auth) is reported
        return f"{type(exc).__name__}: {exc}"
    return None


def _run_in(
    workdir: Path, args: argparse.Namespace, nginx_bin: str | None, state_settings: StateSettings
) -> int:
    keyring_text = new_keyring_json("demo1")
    (workdir / "keyring.json").write_text(keyring_text)
    keyring = KeyRing.from_json(keyring_text)
    # CTA-5007 Common Access Tokens next to PlayGate's own: one HS256 key, one issuer.
    cat_text = new_cat_keyring_json("cat1")
    (workdir / "cat-keys.json").write_text(cat_text)
    cat_ring = CatKeyRing.from_json(cat_text)
    cat_policy = CatPolicy(issuer=DEMO_CAT_ISSUER)
    api_key = generate_api_key()

    nginx: NginxEdge | None = None
    origin_sock: socket.socket | None = None
    player_sock = bind(args.host, 8082)
    # The player page is on its own origin: the edge lets it read media and denial reasons.
    cors = demo_cors(base_url(player_sock))
    if nginx_bin is not None:
        # nginx is the edge; the validator answers its auth_request, a plain app is the origin.
        edge_sock = bind(args.host, 0)
        origin_sock = bind(args.host, 0)
        nginx_port = free_port(args.host, args.edge_port or 8081)
        nginx = NginxEdge(
            nginx_bin,
            args.host,
            nginx_port,
            base_url(edge_sock),
            base_url(origin_sock),
            cors,
            keyring_file=workdir / "keyring.json",
        )
    else:
        edge_sock = bind(args.host, args.edge_port or 8081)
    signer_sock = bind(args.host, args.signer_port or 8080)
    edge_url = nginx.url if nginx else base_url(edge_sock)
    signer_url = base_url(signer_sock)

    if nginx is not None and origin_sock is not None:
        # Behind nginx the validator also rewrites query-token manifests, fetched from the origin.
        validator_settings = ValidatorSettings(
            keyring=keyring,
            origin_url=base_url(origin_sock),
            trusted_proxies=networks("127.0.0.1/32,::1/128"),
            client_ip_header=REAL_IP,
        )
    else:
        validator_settings = _validator_settings(keyring, keyring_text, args)
    # One store shared, so a revocation reaches the edge.
    store = build_store(state_settings)
    validator_settings = dataclasses.replace(
        validator_settings, state=state_settings, cat=CatVerifier(cat_ring, cat_policy), cors=cors
    )
    # Every CDN format too, at the shield (nginx's template routes PlayGate's URL shapes only).
    format_keys = None if nginx else demo_format_keys(edge_url, workdir / "formats.json")
    if format_keys is not None:
        validator_settings = dataclasses.replace(
            validator_settings, accept_formats=FORMATS, format_keys=format_keys
        )
    signer_settings = SignerSettings(
        keyring=keyring,
        api_keys=ApiKeys({"demo": hash_api_key(api_key)}),
        public_url=edge_url,
        state=state_settings,
        cat=CatIssuer(cat_ring, cat_policy),
        format_keys=format_keys,
    )

    def signed_now(request: PlaybackRequest) -> tuple[PlaybackRequest, float]:
        # As the signer signs: not_before set back by its margin, which revocations assume.
        s = signer_settings
        return backdated(request, time.time(), s.not_before_margin, s.max_ttl)

    hls_request, hls_now = signed_now(PlaybackRequest(DEMO_VIDEO, 600))
    first = issue(hls_request, keyring, hls_now, public_url=edge_url)
    dash_request, dash_now = signed_now(PlaybackRequest(DEMO_VIDEO, 600, file="dash/manifest.mpd"))
    dash = issue(dash_request, keyring, dash_now, public_url=edge_url)
    cat_request, cat_now = signed_now(PlaybackRequest(DEMO_VIDEO, 600, format="cat"))
    cat_url = CatIssuer(cat_ring, cat_policy).issue(cat_request, cat_now, public_url=edge_url)
    body = json.dumps({"video_id": DEMO_VIDEO})
    cat_body = json.dumps({"video_id": DEMO_VIDEO, "format": "cat"})
    player_url = f"{base_url(player_sock)}/player/"
    env_file = write_env_file(
        workdir / "env",
        PLAYBACK_URL=first.url,
        DASH_URL=dash.url,
        PLAYER_URL=player_url,
        PLAYGATE_SIGNER_URL=signer_url,
        PLAYGATE_API_KEY=api_key,
        PLAYGATE_KEYRING_FILE=str(workdir / "keyring.json"),
    )
    lines = [
        f"Signer: {signer_url}",
        f"API key: {api_key}",
        f"Playback URL: {first.url}",
        f"DASH URL: {dash.url}",
        f"Player: {player_url}",
        "New URL: curl -s -X POST -H 'Authorization: Bearer " + api_key + "' "
        f"-H 'Content-Type: application/json' -d '{body}' {signer_url}/v1/playback-urls",
        f"CAT URL: {cat_url.url}",
        "New CAT URL: curl -s -X POST -H 'Authorization: Bearer " + api_key + "' "
        f"-H 'Content-Type: application/json' -d '{cat_body}' {signer_url}/v1/playback-urls",
        f"Key ring: {workdir / 'keyring.json'} (removed when the demo stops)",
        f"CAT keys: {workdir / 'cat-keys.json'}",
        f"Formats: {','.join(('playgate', 'cat', *FORMATS)) if format_keys else 'playgate,cat'}",
        f"Shell: source {env_file}",
        f"Origin: {_describe_origin(validator_settings)}",
        f"State: {store.backend}",
        "Press Ctrl-C to stop.",
    ]
    # The limits are per server; the descriptors are the process's, shared by all of them.
    limits = ServerLimits.from_env(os.environ).within_file_limit()
    limits = dataclasses.replace(limits, max_connections=limits.max_connections // 4)
    servers = [
        server(
            create_validator(validator_settings, guard=StateGuard(store, state_settings)),
            edge_sock,
            limits,
        ),
        server(create_signer(signer_settings, store=store), signer_sock, limits),
        server(create_backend_app(signer_url, api_key), player_sock, limits),
    ]
    if nginx is not None and origin_sock is not None:
        lines.insert(-1, f"Edge: nginx at {nginx.url}, config {nginx.prefix / 'nginx.conf'}")
        media = Path(args.origin) if args.origin else SAMPLES
        servers.append(server(create_origin_app(media), origin_sock, limits))
    try:
        asyncio.run(_serve_all(servers, "\n".join(lines), nginx))
    finally:
        if nginx is not None:
            nginx.stop()
    return 0


def write_env_file(path: Path, **values: str) -> Path:
    """The demo's URLs and credentials as shell exports, for README's tour in a second terminal
    (``playgate explain`` and ``playgate revoke`` read the PLAYGATE_* ones). Private: it holds
    the API key and names the key ring."""
    text = "".join(f"export {name}={shlex.quote(value)}\n" for name, value in values.items())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    return path


def demo_cors(player_url: str) -> CorsPolicy:
    """PLAYGATE_CORS_ORIGINS as in production; unset, the demo's own player page."""
    cors = Env(os.environ).cors()
    return cors if cors.enabled else CorsPolicy((player_url,), cors.max_age)
