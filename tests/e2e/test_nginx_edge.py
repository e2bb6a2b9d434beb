"""The nginx edge, for real: auth_request before the cache, shared cache, path attacks, players."""

from __future__ import annotations

import contextlib
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from edge_validator.core.keyring import KeyRing
from edge_validator.core.protocol import SHORTEST_TOKEN_CHARS, TOKEN_CHARS
from edge_validator.core.token import open_token
from playgate.nginx.config import EdgeConfig, current_user_if_root, prepare_prefix
from playgate.nginx.runner import ERROR_LOG, running_nginx
from signer.issuing import PlaybackRequest, issue
from tests.support.factories import SAMPLES, tampered
from tests.support.nginx_edge import Edge, nginx_edge
from tests.support.servers import LOOPBACK, free_port, require_tool

SEGMENT = "hls/v0/seg_001.ts"
KEYRING = KeyRing({"k1": b"E" * 32}, "k1")


@pytest.fixture(scope="module")
def media_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample video twice: ``demo`` and ``other`` (for the "another video's token" case)."""
    root = tmp_path_factory.mktemp("media")
    for name in ("demo", "other"):
        shutil.copytree(SAMPLES / "videos" / "demo", root / "videos" / name)
    return root


@pytest.fixture(scope="module")
def edge(media_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Edge]:
    # Decision caching on: the riskier configuration is the one the attacks are run against.
    prefix = tmp_path_factory.mktemp("nginx")
    with nginx_edge(KEYRING, media_root, prefix) as running:
        yield running


def signed(
    edge: Edge,
    file: str = "master.m3u8",
    video: str = "demo",
    max_uses: int = 0,
    client_network: str | None = None,
) -> str:
    request = PlaybackRequest(
        video, 600, file=file, max_uses=max_uses, client_network=client_network
    )
    return issue(request, KEYRING, time.time(), public_url=edge.url).url


def raw_status(edge: Edge, target: bytes) -> int:
    """Send an unnormalized request target as-is and return the status code."""
    host, port = edge.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(b"GET " + target + b" HTTP/1.1\r\nHost: edge\r\nConnection: close\r\n\r\n")
        head = sock.recv(4096)
    return int(head.split(b" ", 2)[1])


def token_of(url: str) -> str:
    return url.split("/t/", 1)[1].split("/", 1)[0]


def test_token_is_stripped_and_cache_is_shared_between_viewers(edge: Edge) -> None:
    file = "hls/v1/seg_002.ts"
    body = (SAMPLES / "videos" / "demo" / file).read_bytes()
    first, second = signed(edge, file), signed(edge, file)
    assert token_of(first) != token_of(second)
    r1, r2 = httpx.get(first, timeout=10), httpx.get(second, timeout=10)
    assert (r1.status_code, r2.status_code) == (200, 200)
    assert r1.content == r2.content == body
    assert r2.headers["x-playgate-cache"] == "HIT"
    assert edge.origin_hits.count(f"/videos/demo/{file}") == 1


def test_access_log_has_token_ids_never_tokens(edge: Edge) -> None:
    url = signed(edge, "hls/v0/seg_000.ts")
    httpx.get(url, timeout=10)
    httpx.get(url.replace("/t/", "/t/x"), timeout=10)
    httpx.get(f"{edge.url}/videos/demo/master.m3u8?token={token_of(url)}", timeout=10)
    time.sleep(0.2)  # nginx writes the log line after the response
    log = edge.access_log.read_text()
    assert token_of(url) not in log
    assert "token_id=" in log
    assert "/videos/demo/hls/v0/seg_000.ts" in log


@pytest.mark.parametrize(
    ("make_url", "status", "reason"),
    [
        (lambda e, good: good.replace(f"/t/{token_of(good)}", ""), 401, "missing"),
        (lambda e, good: good.replace(token_of(good), tampered(token_of(good))), 403, None),
        (
            lambda e, good: good.replace(token_of(good), token_of(signed(e, video="other")), 1),
            403,
            "out_of_scope",
        ),
    ],
    ids=["no-token", "tampered-token", "other-videos-token"],
)
def test_warm_cache_does_not_serve_unauthorized_viewers(
    edge: Edge, make_url: object, status: int, reason: str | None
) -> None:
    good = signed(edge, SEGMENT)
    assert httpx.get(good, timeout=10).status_code == 200  # warms the media cache
    bad = make_url(edge, good)  # type: ignore[operator]
    for _ in range(2):  # the second try would be a decision-cache hit if one were stored
        resp = httpx.get(bad, timeout=10)
        assert resp.status_code == status
        assert resp.headers["cache-control"] == "no-store"
        assert resp.headers["x-playgate-reason"] == (reason or resp.headers["x-playgate-reason"])
        assert resp.headers.get("x-playgate-cache") is None
        assert not resp.content.startswith(b"\x47")  # no MPEG-TS bytes leaked


def test_only_media_a_viewer_may_keep_is_private(edge: Edge) -> None:
    """Cache-Control names the statuses that may be kept (the media, also when a range of it
    is sent, and "not modified"); anything else the origin answers, here a missing file, is
    no-store like a denial."""
    url = signed(edge, "hls/v1/seg_001.ts")
    whole = httpx.get(url, timeout=10)
    assert (whole.status_code, whole.headers["cache-control"]) == (200, "private")
    part = httpx.get(url, headers={"Range": "bytes=0-99"}, timeout=10)
    assert (part.status_code, part.headers["cache-control"]) == (206, "private")
    assert part.content == whole.content[:100]
    same = httpx.get(url, headers={"If-None-Match": whole.headers["etag"]}, timeout=10)
    assert (same.status_code, same.headers["cache-control"]) == (304, "private")
    missing = httpx.get(signed(edge, "hls/v1/seg_999.ts"), timeout=10)
    assert (missing.status_code, missing.headers["cache-control"]) == (404, "no-store")


def test_denied_request_does_not_poison_the_cache(edge: Edge) -> None:
    file = "hls/v1/seg_000.ts"
    good = signed(edge, file)
    denied = httpx.get(good.replace(token_of(good), tampered(token_of(good))), timeout=10)
    assert denied.status_code in (401, 403)
    assert f"/videos/demo/{file}" not in edge.origin_hits
    resp = httpx.get(good, timeout=10)
    assert resp.status_code == 200
    assert resp.content == (SAMPLES / "videos" / "demo" / file).read_bytes()


@pytest.mark.parametrize(
    ("network", "status"), [("127.0.0.1/32", 200), ("10.0.0.0/8", 403), ("::1/128", 403)]
)
def test_ip_bound_tokens_are_judged_by_the_viewers_address(
    edge: Edge, network: str, status: int
) -> None:
    url = signed(edge, SEGMENT, client_network=network)
    spoof = {"X-Forwarded-For": "10.1.2.3", "X-Real-IP": "10.1.2.3"}
    for headers in ({}, spoof, {}):  # spoofed headers never reach the validator
        resp = httpx.get(url, headers=headers, timeout=10)
        assert resp.status_code == status
        if status == 403:
            assert resp.headers["x-playgate-reason"] == "ip_mismatch"


TRAVERSALS = [
    b"/videos/demo/../other/master.m3u8",
    b"/videos/demo/%2e%2e/other/master.m3u8",
    b"/videos/demo/.%2e/other/master.m3u8",
    b"/videos/demo/%2E%2E/other/master.m3u8",
    b"/videos/demo/./master.m3u8",
    b"/videos/demo/hls%2fv0/seg_000.ts",
    b"/videos/demo/hls%2Fv0/seg_000.ts",
    b"/videos/demo/hls%5cv0/seg_000.ts",
    b"/videos/demo/hls\\v0/seg_000.ts",
    b"/videos/demo//hls/v0/seg_000.ts",
    b"/videos/demo/hls/v0/seg_000.ts%00",
    b"/videos/demo/hls/v0/seg_000.ts%00.m3u8",
    "/videos/demo/hls/v0/s\u00e9g_000.ts".encode(),
    b"/videos/demo/hls/v0/s%C3%A9g_000.ts",
    b"/videos/demo/%252e%252e/other/master.m3u8",
    b"/videos/demo/hls/v0/seg_000%252ets",
    b"/videos/demo/hls/v0/seg_000.ts;x=1",
]


@pytest.mark.parametrize("path", TRAVERSALS, ids=lambda p: p.decode("latin-1"))
def test_path_attacks_are_denied_through_nginx(edge: Edge, path: bytes) -> None:
    good = signed(edge, "master.m3u8")
    assert httpx.get(good, timeout=10).status_code == 200  # decision cache warm for this token
    token = token_of(good).encode()
    before = list(edge.origin_hits)
    for target in (
        b"/t/" + token + path,
        path + (b"&" if b"?" in path else b"?") + b"token=" + token,
    ):
        assert raw_status(edge, target) in (400, 401, 403), target
    assert edge.origin_hits == before


@pytest.mark.parametrize(
    "target",
    [
        b"/videos/demo/master.m3u8?token={t}&token={t}",
        b"/t/{t}/videos/demo/master.m3u8?token={t}",
        b"/videos/demo/master.m3u8?token={t}&TOKEN={t}",
        b"/videos/demo/master.m3u8?%74oken={t}",
    ],
)
def test_ambiguous_tokens_are_denied_through_nginx(edge: Edge, target: bytes) -> None:
    token = token_of(signed(edge)).encode()
    assert raw_status(edge, target.replace(b"{t}", token)) in (400, 401, 403)


def _decoded_frames(url: str) -> int:
    ffprobe = require_tool("ffprobe")
    out = subprocess.run(
        [ffprobe, "-v", "error", "-count_frames", "-select_streams", "v:0",
         "-show_entries", "stream=nb_read_frames", "-of", "csv=p=0", url],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    return int(out.stdout.split()[0])


@pytest.mark.parametrize("file", ["master.m3u8", "dash/manifest.mpd"])
def test_ffprobe_decodes_frames_through_nginx(edge: Edge, file: str) -> None:
    url = signed(edge, file)
    assert _decoded_frames(url) >= 50  # the sample's first rendition: 150 frames at 25 fps
    time.sleep(0.2)  # nginx writes the log line after the response
    lines = edge.access_log.read_text().splitlines()
    token_id = open_token(token_of(url), KEYRING).token_id
    mine = [ln.split('"')[2].split() for ln in lines if f"token_id={token_id}" in ln]
    assert len(mine) > 5
    assert not [status for status, *_ in mine if status in ("401", "403")]


@pytest.mark.parametrize("file", ["master.m3u8", "dash/manifest.mpd"])
def test_ffprobe_plays_query_token_urls_through_nginx(edge: Edge, file: str) -> None:
    request = PlaybackRequest("demo", 600, file=file)
    url = issue(request, KEYRING, time.time(), public_url=edge.url, mode="query").url
    assert _decoded_frames(url) >= 50


def test_query_token_manifests_are_rewritten_and_never_shared(edge: Edge) -> None:
    request = PlaybackRequest("other", 600)
    url = issue(request, KEYRING, time.time(), public_url=edge.url, mode="query").url
    token = url.split("token=")[1]
    for _ in range(2):
        before = len(edge.auth_calls)
        resp = httpx.get(url, timeout=10)
        assert resp.status_code == 200
        assert f"hls/v0/index.m3u8?token={token}" in resp.text
        assert resp.headers["cache-control"] == "private, no-cache"
        assert "x-playgate-cache" not in resp.headers  # the shared cache was not used
        assert len(edge.auth_calls) - before == 1  # validated once (a use is counted once)
    denied = httpx.get(url.replace(token, tampered(token)), timeout=10)
    assert denied.status_code == 403
    assert denied.headers["cache-control"] == "no-store"
    assert denied.headers["x-playgate-reason"] == "bad_signature"
    # Segments with a query token are plain media: cached without the token, shared.
    segment_url = url.replace("master.m3u8", "hls/v1/seg_001.ts")
    assert httpx.get(segment_url, timeout=10).headers["x-playgate-cache"] == "MISS"
    assert httpx.get(segment_url, timeout=10).headers["x-playgate-cache"] == "HIT"


def test_validator_outage_is_503_no_store_never_allowed(tmp_path: Path) -> None:
    nginx = require_tool("nginx")
    port = free_port()
    config = EdgeConfig(
        listen=f"{LOOPBACK}:{port}",
        validator_url=f"http://{LOOPBACK}:{free_port()}",  # nothing listens there
        origin_url=f"http://{LOOPBACK}:{free_port()}",
        prefix=tmp_path,
        workers="1",
        user=current_user_if_root(),
    )
    prepare_prefix(config)
    with running_nginx(nginx, config, port):
        url = issue(
            PlaybackRequest("demo", 600),
            KEYRING,
            time.time(),
            public_url=f"http://{LOOPBACK}:{port}",
        ).url
        resp = httpx.get(url, timeout=10)
        # A segment goes through auth_request; a start-token manifest to the shield location.
        segment = httpx.get(url.replace("master.m3u8", "hls/v0/seg_000.ts"), timeout=10)
        time.sleep(0.3)  # the error line passes through the redacting pipe
    for answer in (resp, segment):
        assert answer.status_code == 503
        assert answer.headers["cache-control"] == "no-store"
        assert answer.headers["x-playgate-reason"] == "validator_unavailable"
    # nginx's error line about it names the cause, never the request line.
    errors = (tmp_path / ERROR_LOG).read_text()
    assert "(111: Connection refused)" in errors
    assert_no_token(errors, token_of(url))


@pytest.mark.parametrize(
    "body",
    [
        b"Content-Length: 7\r\n\r\nSMUGGLE",
        b"Transfer-Encoding: chunked\r\n\r\n7\r\nSMUGGLE\r\n0\r\n\r\n",
    ],
    ids=["length", "chunked"],
)
def test_a_viewers_get_body_never_reaches_the_origin(edge: Edge, body: bytes) -> None:
    # A file no other test fetches, so this request misses the cache and reaches the origin.
    file = "dash/chunk-1-00003.m4s" if b"Length" in body else "dash/chunk-2-00003.m4s"
    path = signed(edge, file).split(edge.url, 1)[1]
    before = len(edge.origin_hits)
    host, port = edge.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: edge\r\nConnection: close\r\n".encode() + body)
        reply = b"".join(iter(lambda: sock.recv(65536), b""))
    assert reply.startswith(b"HTTP/1.1 200 "), reply[:200]
    assert len(edge.origin_hits) == before + 1
    assert edge.origin_bodies == []


# --- No log line holds a token ---------------------------------------------------------------

TOKEN_RUN = re.compile(f"[{TOKEN_CHARS}]{{{SHORTEST_TOKEN_CHARS},}}")


def assert_no_token(log: str, token: str) -> None:
    assert token not in log, log
    # Structural: no run of token characters long enough to be any token, in any spelling.
    assert TOKEN_RUN.search(log) is None, log


NEAR_MISSES = [
    "/%74/{t}/videos/demo/master.m3u8",
    "/T/{t}/videos/demo/master.m3u8",
    "/x/../t/{t}/videos/demo/master.m3u8",
    "/t/{t}/t/{t}/videos/demo/master.m3u8",
    "/t/{t}/videos/demo/{t}.ts",
    "/videos/demo/master.m3u8?token={t}",
    "/videos/demo/{t}/master.m3u8",
    "/t/{t}/videos/demo/master.m3u8?x={t}",
    "/t/%{t}/videos/demo/master.m3u8",
    '/t/{t}/videos/"demo"/{t}',
]


def test_no_access_or_error_log_line_holds_a_token(edge: Edge) -> None:
    url = signed(edge, "hls/v0/seg_000.ts")
    tok = token_of(url)
    assert httpx.get(url, timeout=10).status_code == 200
    for spelling in NEAR_MISSES:
        raw_status(edge, spelling.format(t=tok).encode())
    raw_status(edge, b"G" + tok.encode() + b" /t/" + tok.encode() + b"/videos/demo/ HTTP/1.1")
    time.sleep(0.3)  # nginx writes the log line after the response
    log = edge.access_log.read_text()
    assert_no_token(log, tok)
    assert_no_token(edge.error_log.read_text(), tok)
    # What the log is for is still there: the path of what was served, its token id.
    assert '"GET /videos/demo/hls/v0/seg_000.ts" 200' in log
    assert f"token_id={open_token(tok, KEYRING).token_id}" in log


def test_a_cache_io_error_is_logged_without_the_request_line(
    media_root: Path, tmp_path: Path
) -> None:
    with nginx_edge(KEYRING, media_root, tmp_path) as broken:
        # The media cache folder becomes a file: nginx cannot write the object ("crit").
        cache = tmp_path / "cache" / "media"
        shutil.rmtree(cache)
        cache.write_text("not a folder")
        url = signed(broken, "hls/v0/seg_002.ts")
        with contextlib.suppress(httpx.HTTPError):  # nginx drops the response it cannot store
            httpx.get(url, timeout=10)
        time.sleep(0.5)
        errors = broken.error_log.read_text()
    assert "[crit]" in errors
    assert "(20: Not a directory)" in errors
    assert_no_token(errors, token_of(url))
