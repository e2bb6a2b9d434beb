"""A real nginx edge for tests: validator + plain origin under uvicorn, nginx in a temp prefix."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from edge_validator.asgi.app import create_app as create_validator
from edge_validator.asgi.client_address import REAL_IP
from edge_validator.core.cat.verify import CatVerifier
from edge_validator.core.cors import CorsPolicy
from edge_validator.core.decision import DEFAULT_LEEWAY
from edge_validator.core.keyring import KeyRing
from edge_validator.env import networks
from edge_validator.settings import ValidatorSettings
from edge_validator.state.guard import StateGuard
from edge_validator.state.memory import MemoryStore
from playgate.demo.origin import create_origin_app
from playgate.nginx.config import EdgeConfig, current_user_if_root, prepare_prefix
from playgate.nginx.fast_module import built
from playgate.nginx.runner import ERROR_LOG, running_nginx
from tests.support.servers import LOOPBACK, free_port, require_tool, serve_app


@dataclass(frozen=True)
class Edge:
    url: str
    prefix: Path
    origin_hits: list[str]
    auth_calls: list[str]
    # What the origin received beyond the path: request bodies and Content-Length headers.
    origin_bodies: list[bytes]
    # The validator (and origin shield) itself, to ask Python directly.
    validator_url: str = ""
    # nginx's own /metrics (the native verifier's counts), when asked for.
    metrics_url: str = ""

    @property
    def access_log(self) -> Path:
        return self.prefix / "access.log"

    @property
    def error_log(self) -> Path:
        return self.prefix / ERROR_LOG


def _counting(app: ASGIApp, hits: list[str], bodies: list[bytes] | None = None) -> ASGIApp:
    """``app``, recording the path of every HTTP request it gets (and, with ``bodies``, any
    request body or Content-Length it is sent)."""

    async def wrapper(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        hits.append(scope["path"])
        if bodies is not None:
            for name, value in scope["headers"]:
                if name in (b"content-length", b"transfer-encoding") and value != b"0":
                    bodies.append(name + b": " + value)

        async def recording() -> Message:
            message = await receive()
            if bodies is not None and message.get("body"):
                bodies.append(message["body"])
            return message

        await app(scope, recording, send)

    return wrapper


@contextlib.contextmanager
def nginx_edge(
    keyring: KeyRing,
    media_root: Path,
    prefix: Path,
    *,
    leeway: int = DEFAULT_LEEWAY,
    cors: CorsPolicy | None = None,
    cat: CatVerifier | None = None,
    keyring_file: Path | None = None,
    guard: StateGuard | None = None,
    extra_locations: str = "",
    metrics: bool = False,
    validator_host: str = LOOPBACK,
    memo_slots: int | None = None,
    fast: bool = True,
) -> Iterator[Edge]:
    """``keyring_file``: the key ring's JSON file, for nginx's native verifier (None: off, every
    request goes through auth_request). ``guard``: the validator's state (to revoke in tests).
    ``extra_locations``: nginx lines added to the server block (test-only locations).
    ``metrics``: nginx serves its counts on an admin port of its own (``Edge.metrics_url``).
    ``validator_host``: the name nginx is given for the validator (it listens on loopback).
    ``memo_slots``: the native verifier's memo size (None: the default). ``fast``: with the
    native verifier, its C fast path too (playgate/nginx/fast_module.py; False: Lua alone)."""
    nginx = require_tool("nginx")
    hits: list[str] = []
    auth_calls: list[str] = []
    bodies: list[bytes] = []
    origin_app = _counting(create_origin_app(media_root), hits, bodies)
    with contextlib.ExitStack() as stack:
        origin_url = stack.enter_context(serve_app(origin_app))
        # The validator is also the shield that rewrites query-token manifests.
        settings = ValidatorSettings(
            keyring=keyring,
            trusted_proxies=networks("127.0.0.1/32"),
            client_ip_header=REAL_IP,
            origin_url=origin_url,
            leeway=leeway,
            cors=cors or CorsPolicy(),
            cat=cat,
        )
        # This one validator is the whole deployment: its store counts as shared, as the demo's
        # (a standalone validator's own memory refuses limited tokens).
        guard = guard or StateGuard(MemoryStore(), settings.state, shared=True)
        validator_app = _counting(create_validator(settings, guard=guard), auth_calls)
        validator_url = stack.enter_context(serve_app(validator_app))
        port = free_port()
        metrics_listen = f"{LOOPBACK}:{free_port()}" if metrics else None
        config = EdgeConfig(
            listen=f"{LOOPBACK}:{port}",
            validator_url=validator_url.replace(LOOPBACK, validator_host, 1),
            origin_url=origin_url,
            prefix=prefix,
            workers="1",
            user=current_user_if_root(),
            cors=cors or CorsPolicy(),
            keyring_file=keyring_file,
            metrics_listen=metrics_listen,
            fast_module=built(nginx) if fast and keyring_file is not None else None,
        )
        if memo_slots is not None:
            config = dataclasses.replace(config, native_memo_slots=memo_slots)
        conf = prepare_prefix(config)
        if extra_locations:
            anchor = "        location = /_playgate/auth {"
            text = conf.read_text(encoding="utf-8")
            conf.write_text(text.replace(anchor, extra_locations + anchor), encoding="utf-8")
        with running_nginx(nginx, config, port):
            metrics_url = f"http://{metrics_listen}/metrics" if metrics_listen else ""
            url = f"http://{LOOPBACK}:{port}"
            yield Edge(url, prefix, hits, auth_calls, bodies, validator_url, metrics_url)
