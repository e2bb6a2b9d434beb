"""The shield's shortcut (``MediaShortcut``) answers exactly as the router's way to the shield,
and the server's own media path (``playgate/media_path.py``) exactly as the ASGI stack: the
same status, headers and body for every kind of request a viewer or an attacker sends, under
the real server (zero-copy) over loopback, one request per connection, kept alive, pipelined."""

from __future__ import annotations

import os
import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client import REGISTRY
from starlette.applications import Starlette
from starlette.middleware.gzip import GZipMiddleware
from starlette.responses import Response
from starlette.types import Scope

from edge_validator.asgi.app import create_app
from edge_validator.asgi.shield import MEDIA_ROUTE, MediaRoute, MediaShortcut
from edge_validator.core.cors import CorsPolicy
from edge_validator.core.keyring import KeyRing
from edge_validator.settings import ValidatorSettings
from playgate.media_fast import fast_media
from tests.support import factories
from tests.support.servers import serve_app

PLAYER = "https://player.example"
# Differ between any two answers: when, and the fresh session a start token opens.
VARYING = {"date", "location"}


@pytest.fixture(scope="module")
def media_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("media")
    video = root / "videos" / "demo"
    (video / "v0").mkdir(parents=True)
    (video / "master.m3u8").write_text("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\nv0/index.m3u8\n")
    (video / "v0" / "index.m3u8").write_text("#EXTM3U\n#EXTINF:2,\nseg_000.ts\n#EXT-X-ENDLIST\n")
    (video / "v0" / "seg_000.ts").write_bytes(os.urandom(200_000))
    (video / "folder").mkdir()
    outside = tmp_path_factory.mktemp("outside")
    (outside / "secret.ts").write_bytes(b"not yours")
    (video / "out.ts").symlink_to(outside / "secret.ts")
    os.mkfifo(video / "pipe.ts")
    return root


def router_only(app: Starlette) -> Starlette:
    """The app without the shortcut: media requests go through the router to the shield."""
    app.user_middleware = [m for m in app.user_middleware if m.cls is not MediaShortcut]
    if hasattr(app, MEDIA_ROUTE):  # CORS on: never offered, and never ready without it
        delattr(app, MEDIA_ROUTE)
    return app


@pytest.fixture(scope="module")
def servers(keyring: KeyRing, media_root: Path) -> Iterator[tuple[str, str]]:
    settings = ValidatorSettings(
        keyring=keyring, media_root=media_root, cors=CorsPolicy.from_text(PLAYER)
    )
    with (
        serve_app(create_app(settings)) as fast,
        serve_app(router_only(create_app(settings))) as routed,
    ):
        yield fast, routed


def requests(ring: KeyRing) -> list[tuple[str, str, dict[str, str]]]:
    now = time.time() - 1
    tok = factories.token(ring, now=now, ttl=301, scope="/videos/demo/", token_id="tid-demo")
    start = factories.token(
        ring, now=now, ttl=301, scope="/videos/demo/", token_id="tid-start", session_seconds=600
    )
    other = factories.token(ring, now=now, ttl=301, scope="/videos/other/", token_id="tid-o")
    expired = factories.token(ring, now=now - 1000, ttl=10, scope="/videos/demo/")
    net = "203.0.113.0/24"
    bound = factories.token(ring, now=now, ttl=301, scope="/videos/demo/", client_network=net)
    limited = factories.token(ring, now=now, ttl=301, scope="/videos/demo/", max_uses=1)
    tampered = tok[:20] + ("A" if tok[20] != "A" else "B") + tok[21:]
    seg = "/videos/demo/v0/seg_000.ts"
    cors = {"Origin": PLAYER}
    return [
        ("GET", f"/t/{tok}{seg}", {}),
        ("GET", f"/t/{tok}{seg}", cors),
        ("HEAD", f"/t/{tok}{seg}", {}),
        ("GET", f"/t/{tok}{seg}", {"Range": "bytes=10-99"}),
        ("GET", f"/t/{tok}{seg}", {"Range": "bytes=999999-"}),
        ("GET", f"/t/{tok}/videos/demo/v0/index.m3u8", {}),
        ("GET", f"/t/{tok}/videos/demo/master.m3u8", cors),
        ("GET", f"/videos/demo/master.m3u8?token={tok}", {}),  # rewritten manifest
        ("GET", f"/t/{start}/videos/demo/master.m3u8", cors),  # opens a session: 302
        ("GET", f"/t/{tok}/videos/demo/out.ts", {}),
        ("GET", f"/t/{tok}/videos/demo/pipe.ts", {}),
        ("GET", f"/t/{tok}/videos/demo/folder", {}),
        ("GET", f"/t/{tok}/videos/demo/missing.ts", {}),
        ("GET", f"/t/{tok}/videos/demo/../other/x.ts", {}),
        ("GET", f"/t/{tok}/videos/demo/%2e%2e/other/x.ts", {}),
        ("GET", f"/t/{other}{seg}", cors),
        ("GET", f"/t/{expired}{seg}", {}),
        ("GET", f"/t/{tampered}{seg}", {}),
        ("GET", f"/t/{bound}{seg}", {}),
        ("GET", f"/t/{limited}{seg}", {}),  # use limits need shared state: refused here
        ("GET", seg, {}),
        ("GET", f"/t/{tok}{seg}", {"CTA-Common-Access-Token": tok}),
        ("POST", f"/t/{tok}{seg}", {}),
        ("OPTIONS", f"/t/{tok}{seg}", {**cors, "Access-Control-Request-Method": "GET"}),
        ("GET", "/healthz", {}),
        ("GET", "/healthz/", {}),
        ("HEAD", "/readyz", {}),
        ("GET", "/auth", {"X-Original-URI": f"/t/{tok}{seg}"}),
        ("GET", "/metrics", {}),
    ]


def answer(base: str, method: str, path: str, headers: dict[str, str]) -> tuple[object, ...]:
    resp = httpx.request(method, f"{base}{path}", headers=headers, timeout=10)
    # max-age counts down the token's seconds left: the two answers may be a second apart.
    kept = sorted(
        (k, re.sub(r"max-age=\d+", "max-age=N", v) if k == "cache-control" else v)
        for k, v in resp.headers.multi_items()
        if k not in VARYING
    )
    return resp.status_code, kept, resp.content, "location" in resp.headers


def test_the_shortcut_answers_as_the_router_does(
    servers: tuple[str, str], keyring: KeyRing
) -> None:
    fast, routed = servers
    statuses = set()
    for method, path, headers in requests(keyring):
        ours = answer(fast, method, path, headers)
        assert ours == answer(routed, method, path, headers), (method, path, headers)
        statuses.add(ours[0])
    # The table reaches every kind of answer.
    assert {200, 204, 206, 302, 401, 403, 404, 405, 416} <= statuses


# The server's own media path (playgate/media_path.py) against the ASGI stack: CORS off (with a
# policy every request takes the stack), the same app otherwise.


class _Counted:
    """Counts the requests the server's media path answers (the stack's shortcut calls the
    shield without ``MediaRoute.answer``)."""

    def __init__(self, route: MediaRoute) -> None:
        self.route = route
        self.answered = 0
        self.answer = route.answer
        route.answer = self  # type: ignore[method-assign]

    async def __call__(self, scope: Scope) -> Response:
        self.answered += 1
        return await self.answer(scope)


@pytest.fixture(scope="module")
def paths(keyring: KeyRing, media_root: Path) -> Iterator[tuple[str, str, _Counted]]:
    settings = ValidatorSettings(keyring=keyring, media_root=media_root)
    direct, stacked = create_app(settings), create_app(settings)
    route = getattr(direct, MEDIA_ROUTE)
    assert route.ready()
    delattr(stacked, MEDIA_ROUTE)  # every request through the middleware stack
    counted = _Counted(route)
    with serve_app(direct) as fast, serve_app(stacked) as asgi:
        yield fast, asgi, counted


def test_the_server_media_path_answers_as_the_asgi_stack(
    paths: tuple[str, str, _Counted], keyring: KeyRing
) -> None:
    fast, asgi, counted = paths
    quick = fast_media(counted.route)
    assert quick is not None
    before = counted.answered + quick.answered
    taken = 0
    for method, path, headers in requests(keyring):
        ours = answer(fast, method, path, headers)
        assert ours == answer(asgi, method, path, headers), (method, path, headers)
        fixed = path in ("/healthz", "/readyz", "/auth", "/metrics")
        taken += method in ("GET", "HEAD") and not fixed
    # The media path did answer them, or the server's fast path before it (media_fast.py).
    assert counted.answered + quick.answered - before == taken


def _normal(stream: bytes) -> bytes:
    """A connection's bytes with what differs between any two answers made alike."""
    stream = re.sub(rb"(?im)^(date|location): [^\r\n]*\r\n", b"", stream)
    return re.sub(rb"max-age=\d+", b"max-age=N", stream)


def _exchange(base: str, data: bytes) -> bytes:
    """``data`` written at once on one connection; every byte read until the server closes."""
    host, port = base.removeprefix("http://").rsplit(":", 1)
    received = b""
    with socket.create_connection((host, int(port)), timeout=10) as conn:
        conn.sendall(data)
        try:
            while chunk := conn.recv(1 << 20):
                received += chunk
        except ConnectionResetError:
            received += b"<reset>"
    return received


def _raw(method: str, path: str, headers: dict[str, str], last: bool = False) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    if last:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def test_pipelined_and_kept_alive_requests_are_answered_alike(
    paths: tuple[str, str, _Counted], keyring: KeyRing
) -> None:
    fast, asgi, counted = paths
    table = requests(keyring)
    # Every request of the table on one kept-alive connection, all written at once: answered
    # in order, files and refusals interleaved, the last closing the connection.
    pipelined = b"".join(_raw(m, p, h) for m, p, h in table[:-1]) + _raw(*table[-1], last=True)
    before = counted.answered
    ours = _exchange(fast, pipelined)
    assert counted.answered > before
    assert _normal(ours) == _normal(_exchange(asgi, pipelined))
    assert ours.count(b"HTTP/1.1 ") == len(table)
    # One after the other on one connection (the client waits for each answer).
    with httpx.Client(base_url=fast) as one, httpx.Client(base_url=asgi) as other:
        for method, path, headers in table:
            a = one.request(method, path, headers=headers)
            b = other.request(method, path, headers=headers)
            assert (a.status_code, a.content) == (b.status_code, b.content), (method, path)


def test_hostile_requests_meet_the_media_path_as_they_meet_the_stack(
    paths: tuple[str, str, _Counted], keyring: KeyRing
) -> None:
    fast, asgi, _ = paths
    tok = factories.token(keyring, now=time.time() - 1, ttl=301, scope="/videos/demo/")
    seg = f"/t/{tok}/videos/demo/v0/seg_000.ts"
    get = f"GET {seg} HTTP/1.1\r\nHost: x\r\n".encode()
    cases = [
        get + b"\r\n" + b"\x00GARBAGE\r\n\r\n",  # a request that does not parse, pipelined
        get + b"Content-Length: 5\r\n\r\nhello" + get + b"Connection: close\r\n\r\n",  # a body
        get + b"Expect: 100-continue\r\nConnection: close\r\n\r\n",
        f"GET {seg} HTTP/1.0\r\n\r\n".encode(),  # no keep-alive
        get + b"Content-Length: 999999\r\n\r\n",  # a body over the limit: 413
        get + b"X-Big: " + b"a" * 20_000 + b"\r\n\r\n",  # a head over the limit: 431
        get + b"Connection: close\r\n\r\n" + get + b"\r\n",  # nothing after a close
        get + b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        b"GET /t/%00/videos/demo/v0/seg_000.ts HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        b"GET /t/" + b"A" * 8000 + b"/x.ts HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        b"GET //etc/passwd HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    ]
    for data in cases:
        ours = _exchange(fast, data)
        assert _normal(ours) == _normal(_exchange(asgi, data)), data[:120]
        assert b" 500 " not in ours, data[:120]
        assert b"Traceback" not in ours, data[:120]


def _counts() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of the request and decision metrics, by name and labels (bucket bounds
    and sums aside: latencies differ)."""
    kept = ("playgate_http_responses", "playgate_request_seconds", "playgate_decisions")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in REGISTRY.collect()
        if family.name in kept
        for sample in family.samples
        if sample.name.endswith(("_total", "_count"))
    }


def test_the_media_path_counts_as_the_stack_does(
    paths: tuple[str, str, _Counted], keyring: KeyRing
) -> None:
    fast, asgi, _ = paths
    table = requests(keyring)

    def deltas(base: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        time.sleep(0.5)  # earlier tests' counts written first (every FLUSH_SECONDS, 0.1 s)
        before = _counts()
        for method, path, headers in table:
            answer(base, method, path, headers)
        time.sleep(0.5)  # and these
        after = _counts()
        return {k: v - before.get(k, 0.0) for k, v in after.items() if v != before.get(k, 0.0)}

    ours = deltas(fast)
    assert ours == deltas(asgi)
    assert any(name == "playgate_http_responses_total" for name, _ in ours)


def test_the_media_path_is_offered_only_where_the_stack_does_nothing_else(
    keyring: KeyRing, media_root: Path
) -> None:
    plain = ValidatorSettings(keyring=keyring, media_root=media_root)
    with_cors = ValidatorSettings(
        keyring=keyring, media_root=media_root, cors=CorsPolicy.from_text(PLAYER)
    )
    assert not hasattr(create_app(with_cors), MEDIA_ROUTE)  # CORS headers come from the stack
    assert not hasattr(create_app(ValidatorSettings(keyring=keyring)), MEDIA_ROUTE)  # no origin
    app = create_app(plain)
    route = getattr(app, MEDIA_ROUTE)
    assert route.ready()
    app.add_middleware(GZipMiddleware)  # a layer the media path would skip: not ready
    assert not route.ready()
    app = create_app(plain)
    route = getattr(app, MEDIA_ROUTE)
    app.debug = True  # tracebacks by the stack's error middleware
    assert not route.ready()
    scope = {"method": "GET", "root_path": "", "path": "/t/x/videos/demo/v0/seg_000.ts"}
    assert route.takes(scope)
    assert not route.takes({**scope, "root_path": "/edge"})  # the router strips it
    assert not route.takes({**scope, "method": "POST"})  # 405 with Allow from the router
    assert not route.takes({**scope, "path": "/healthz"})
