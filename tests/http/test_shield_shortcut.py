"""The shield's shortcut (``MediaShortcut``) answers exactly as the router's way to the shield:
the same status, headers and body for every kind of request a viewer or an attacker sends,
under the real server (zero-copy) and with CORS on."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette

from edge_validator.asgi.app import create_app
from edge_validator.asgi.shield import MediaShortcut
from edge_validator.core.cors import CorsPolicy
from edge_validator.core.keyring import KeyRing
from edge_validator.settings import ValidatorSettings
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
