"""The validator over real HTTP: the nginx auth_request contract and the origin shield."""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from edge_validator.asgi.app import create_app
from edge_validator.asgi.problems import internal_error
from edge_validator.core.keyring import KeyRing
from edge_validator.env import networks
from edge_validator.origins.base import OriginReply
from edge_validator.origins.media_types import MEDIA_TYPES
from edge_validator.settings import ValidatorSettings
from tests.support import factories
from tests.support.factories import SAMPLES
from tests.support.servers import free_port, raw_request, run_process, serve_app


def make_token(ring: KeyRing, video: str = "demo", ttl: int = 300, **extra: object) -> str:
    return factories.token(
        ring,
        now=time.time() - 1,
        ttl=ttl + 1,
        scope=f"/videos/{video}/",
        token_id=f"tid-{video}-{ttl}",
        **extra,
    )


@pytest.fixture(scope="module")
def media_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("media")
    folder = root / "videos" / "types"
    folder.mkdir(parents=True)
    for ext in MEDIA_TYPES:
        (folder / f"file{ext}").write_bytes(b"0123456789" * 10)
    # Links and special files: only what really is inside the root is served.
    outside = tmp_path_factory.mktemp("outside")
    (outside / "secret.ts").write_bytes(b"not yours")
    links = root / "videos" / "links"
    links.mkdir()
    (links / "big.ts").write_bytes(os.urandom(3 * 2**20 + 5))
    (links / "alias.ts").symlink_to(links / "big.ts")
    (links / "out.ts").symlink_to(outside / "secret.ts")
    (links / "dir").symlink_to(outside)
    os.mkfifo(links / "pipe.ts")
    (links / "folder").mkdir()
    return root


@pytest.fixture(scope="module")
def shield(keyring: KeyRing, media_root: Path) -> Iterator[str]:
    settings = ValidatorSettings(keyring=keyring, media_root=media_root)
    with serve_app(create_app(settings)) as url:
        yield url


def auth(base: str, uri: str | None, **headers: str) -> httpx.Response:
    if uri is not None:
        headers["X-Original-URI"] = uri
    return httpx.get(f"{base}/auth", headers=headers, timeout=10)


def test_auth_allows_with_204_and_token_id(validator_url: str, keyring: KeyRing) -> None:
    tok = make_token(keyring)
    resp = auth(validator_url, f"/t/{tok}/videos/demo/master.m3u8")
    assert resp.status_code == 204
    assert resp.headers["x-playgate-token-id"] == "tid-demo-300"
    assert resp.content == b""


@pytest.mark.parametrize(
    ("uri", "status", "reason"),
    [
        ("/videos/demo/master.m3u8", 401, "missing"),
        (None, 403, "bad_path"),
        ("/t/AAAA/videos/demo/master.m3u8", 403, "malformed"),
        ("/videos/demo/../x/master.m3u8", 403, "bad_path"),
    ],
)
def test_auth_denies_with_reason_and_no_store(
    validator_url: str, uri: str | None, status: int, reason: str
) -> None:
    resp = auth(validator_url, uri)
    assert resp.status_code == status
    assert resp.headers["x-playgate-reason"] == reason
    assert resp.headers["cache-control"] == "no-store"


def test_auth_denies_other_video_tampered_and_expired(validator_url: str, keyring: KeyRing) -> None:
    tok = make_token(keyring, "other")
    assert auth(validator_url, f"/t/{tok}/videos/demo/a.ts").headers["x-playgate-reason"] == (
        "out_of_scope"
    )
    good = make_token(keyring)
    tampered = good[:30] + ("B" if good[30] == "A" else "A") + good[31:]
    assert auth(validator_url, f"/t/{tampered}/videos/demo/a.ts").status_code == 403
    expired = make_token(keyring, ttl=-100)
    assert auth(validator_url, f"/t/{expired}/videos/demo/a.ts").headers["x-playgate-reason"] == (
        "expired"
    )


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    uri=st.binary(max_size=300).filter(lambda b: b"\r" not in b and b"\n" not in b)
    | st.text(st.sampled_from("/t.%2eAZaz09_-?&=\\;"), max_size=80).map(str.encode)
)
def test_auth_answers_only_204_401_403(validator_url: str, uri: bytes) -> None:
    head = (
        b"GET /auth HTTP/1.1\r\nHost: x\r\nX-Original-URI: "
        + uri
        + b"\r\nConnection: close\r\n\r\n"
    )
    status, _ = raw_request(validator_url, head)
    # uvicorn itself answers 400 to bytes that are not a valid header value; that never
    # reaches the validator, and nginx never forwards such a header.
    assert status in (204, 401, 403) or (status == 400 and not _valid_field(uri))


def _valid_field(value: bytes) -> bool:
    return all(b == 0x09 or 0x20 <= b <= 0x7E or b >= 0x80 for b in value)


def test_forwarded_address_is_trusted_only_from_configured_proxies(keyring: KeyRing) -> None:
    tok = make_token(keyring, client_network="203.0.113.0/24")
    uri = f"/t/{tok}/videos/demo/master.m3u8"
    untrusting = ValidatorSettings(keyring=keyring)
    with serve_app(create_app(untrusting)) as url:
        for header in ("X-Real-IP", "X-Forwarded-For"):
            resp = auth(url, uri, **{header: "203.0.113.5"})
            assert resp.headers["x-playgate-reason"] == "ip_mismatch"
    loopback = networks("127.0.0.1/32")
    xff = ValidatorSettings(keyring=keyring, trusted_proxies=loopback)
    with serve_app(create_app(xff)) as url:
        assert auth(url, uri, **{"X-Forwarded-For": "203.0.113.77"}).status_code == 204
        assert auth(url, uri, **{"X-Forwarded-For": "203.0.113.7, 198.51.100.1"}).status_code == 403
        # The configured header only: a viewer-supplied X-Real-IP is ignored.
        spoofed = {"X-Forwarded-For": "198.51.100.1", "X-Real-IP": "203.0.113.5"}
        assert auth(url, uri, **spoofed).status_code == 403
    real_ip = ValidatorSettings(
        keyring=keyring, trusted_proxies=loopback, client_ip_header="x-real-ip"
    )
    with serve_app(create_app(real_ip)) as url:
        assert auth(url, uri, **{"X-Real-IP": "203.0.113.5"}).status_code == 204
        assert auth(url, uri, **{"X-Real-IP": "198.51.100.1"}).status_code == 403
        spoofed = {"X-Real-IP": "198.51.100.1", "X-Forwarded-For": "203.0.113.5"}
        assert auth(url, uri, **spoofed).status_code == 403


def test_file_name_too_long_is_404_not_500(shield: str, keyring: KeyRing) -> None:
    tok = make_token(keyring, "types")
    resp = httpx.get(f"{shield}/t/{tok}/videos/types/{'a' * 300}.ts", timeout=10)
    assert resp.status_code == 404
    assert resp.headers["cache-control"] == "no-store"


def test_http_origin_down_or_failing_is_json_5xx_no_store(keyring: KeyRing) -> None:
    async def broken(request: Request) -> Response:
        return Response(b"boom", 500)

    tok = make_token(keyring)
    with serve_app(Starlette(routes=[Route("/{p:path}", broken)])) as origin_url:
        settings = ValidatorSettings(keyring=keyring, origin_url=origin_url)
        with serve_app(create_app(settings)) as url:
            resp = httpx.get(f"{url}/t/{tok}/videos/demo/a.ts", timeout=10)
            assert resp.status_code == 502
            assert resp.headers["cache-control"] == "no-store"
            assert resp.json()["error"] == "origin_unavailable"
    down = ValidatorSettings(keyring=keyring, origin_url=f"http://127.0.0.1:{free_port()}")
    with serve_app(create_app(down)) as url:
        resp = httpx.get(f"{url}/t/{tok}/videos/demo/a.ts", timeout=10)
        assert resp.status_code == 502
        assert resp.headers["cache-control"] == "no-store"
        assert resp.json()["error"] == "origin_unavailable"


@pytest.mark.parametrize(("ext", "media_type"), sorted(MEDIA_TYPES.items()))
def test_shield_serves_content_types(
    shield: str, keyring: KeyRing, ext: str, media_type: str
) -> None:
    resp = httpx.get(
        f"{shield}/t/{make_token(keyring, 'types')}/videos/types/file{ext}", timeout=10
    )
    assert resp.status_code == 200
    assert resp.headers["content-type"].split(";")[0] == media_type
    if ext in (".m3u8", ".mpd"):  # revalidated every time: a live playlist changes
        assert resp.headers["cache-control"] == "private, no-cache"
    else:
        assert resp.headers["cache-control"].startswith("private, max-age=")


def test_shield_supports_range_and_head(shield: str, keyring: KeyRing) -> None:
    url = f"{shield}/t/{make_token(keyring, 'types')}/videos/types/file.ts"
    part = httpx.get(url, headers={"Range": "bytes=10-19"}, timeout=10)
    assert part.status_code == 206
    assert part.content == b"0123456789"
    assert part.headers["content-range"] == "bytes 10-19/100"
    assert httpx.get(url, headers={"Range": "bytes=500-"}, timeout=10).status_code == 416
    head = httpx.head(url, timeout=10)
    assert head.status_code == 200
    assert head.headers["content-length"] == "100"


@pytest.mark.parametrize(
    ("value", "status", "reason"),
    [
        ("bytes=5-1", 400, "bad_range"),
        ("bytes=", 400, "bad_range"),
        ("items=0-1", 400, "bad_range"),
        ("bytes=0--1", 400, "bad_range"),
        ("bytes=-0", 416, "range_not_satisfiable"),
        ("bytes=100-", 416, "range_not_satisfiable"),
        ("bytes=99999999999999999999999-", 416, "range_not_satisfiable"),
    ],
)
def test_shield_refuses_a_bad_range_with_a_reason_never_cached(
    shield: str, keyring: KeyRing, value: str, status: int, reason: str
) -> None:
    url = f"{shield}/t/{make_token(keyring, 'types')}/videos/types/file.ts"
    for method in ("GET", "HEAD"):
        resp = httpx.request(method, url, headers={"Range": value}, timeout=10)
        assert resp.status_code == status, (method, resp.status_code)
        assert resp.headers["x-playgate-reason"] == reason, method
        assert resp.headers["cache-control"] == "no-store", method
        if method == "GET":
            assert resp.json()["error"] == reason
        if status == 416:
            assert resp.headers["content-range"] == "bytes */100"


def test_shield_whole_reads_agree_with_streamed_ones(shield: str, keyring: KeyRing) -> None:
    # A plain GET is sent whole (edge_validator/origins/files.py); HEAD and Range go through
    # FileResponse: same bytes, same validators, so conditional and partial requests still work.
    url = f"{shield}/t/{make_token(keyring, 'types')}/videos/types/file.ts"
    whole = httpx.get(url, timeout=10)
    head = httpx.head(url, timeout=10)
    part = httpx.get(url, headers={"Range": "bytes=0-99"}, timeout=10)
    assert whole.status_code == 200
    assert part.status_code == 206
    assert whole.content == part.content
    assert whole.headers["content-length"] == head.headers["content-length"] == "100"
    for name in ("etag", "last-modified", "accept-ranges", "content-type"):
        assert whole.headers[name] == head.headers[name], name
    missing = httpx.get(url.replace("file.ts", "nothing.ts"), timeout=10)
    assert missing.status_code == 404
    assert missing.headers["cache-control"] == "no-store"


def test_shield_sends_files_zero_copy_on_a_keep_alive_connection(
    shield: str, keyring: KeyRing, media_root: Path
) -> None:
    # A plain GET goes out with sendfile (playgate/file_sending.py); HEAD and Range through
    # FileResponse; a player fetches them one after the other on one connection.
    data = (media_root / "videos" / "links" / "big.ts").read_bytes()
    base = f"/t/{make_token(keyring, 'links')}/videos/links"
    with httpx.Client(base_url=shield, timeout=30) as client:
        whole = client.get(f"{base}/big.ts")
        head = client.head(f"{base}/big.ts")
        part = client.get(f"{base}/big.ts", headers={"Range": "bytes=100-199"})
        again = client.get(f"{base}/alias.ts")  # a link inside the root is the file it names
        since = client.get(f"{base}/big.ts", headers={"If-None-Match": whole.headers["etag"]})
    assert whole.content == data == again.content
    assert whole.headers["content-length"] == head.headers["content-length"] == str(len(data))
    for name in ("etag", "last-modified", "accept-ranges", "content-type"):
        assert whole.headers[name] == head.headers[name], name
    assert whole.headers["cache-control"].startswith("private, max-age=")
    assert part.status_code == 206
    assert part.content == data[100:200]
    assert since.status_code == 200  # no 304 today: FileResponse does not answer one either
    assert since.content == data


@pytest.mark.parametrize("name", ["out.ts", "dir/secret.ts", "pipe.ts", "folder", "nothing.ts"])
def test_shield_never_serves_links_out_of_the_root_or_special_files(
    shield: str, keyring: KeyRing, name: str
) -> None:
    url = f"{shield}/t/{make_token(keyring, 'links')}/videos/links/{name}"
    for method in ("GET", "HEAD"):
        resp = httpx.request(method, url, timeout=10)
        assert resp.status_code == 404, (method, resp.status_code)
        assert resp.headers["cache-control"] == "no-store"
        assert b"not yours" not in resp.content


def test_an_unexpected_error_is_logged_without_the_token_in_the_path(
    keyring: KeyRing, caplog: pytest.LogCaptureFixture
) -> None:
    # The handler every validator and signer app installs for a bug past the checks (a file
    # that fails mid-send, say): the request's path holds the token when it travels as /t/.
    async def boom(request: Request) -> Response:
        raise RuntimeError("a bug")

    app = Starlette(
        routes=[Route("/t/{token}/videos/{rest:path}", boom)],
        exception_handlers={Exception: internal_error},
    )
    tok = make_token(keyring, "types")
    with caplog.at_level(logging.ERROR), serve_app(app) as url:
        resp = httpx.get(f"{url}/t/{tok}/videos/types/file.ts", timeout=10)
        media_cdn = httpx.get(f"{url}/t/x/videos/edge-cache-token=Expires=1~Sig={tok}/a.ts")
    assert resp.status_code == media_cdn.status_code == 403  # denied, never a bare 500
    assert resp.headers["x-playgate-reason"] == "internal_error"
    assert "unexpected RuntimeError on GET /videos/types/file.ts" in caplog.text
    assert "unexpected RuntimeError on GET /videos/(hidden)/a.ts" in caplog.text
    assert tok not in caplog.text


def test_shield_query_token_form(shield: str, keyring: KeyRing) -> None:
    tok = make_token(keyring, "types")
    assert httpx.get(f"{shield}/videos/types/file.mp4?token={tok}", timeout=10).status_code == 200
    both = httpx.get(f"{shield}/t/{tok}/videos/types/file.mp4?token={tok}", timeout=10)
    assert both.status_code == 403
    assert both.json()["error"] == "malformed"


def test_shield_denial_is_json_no_store_and_never_echoes_the_token(
    shield: str, keyring: KeyRing
) -> None:
    tok = make_token(keyring, "other")
    resp = httpx.get(f"{shield}/t/{tok}/videos/types/file.ts", timeout=10)
    assert resp.status_code == 403
    assert resp.headers["cache-control"] == "no-store"
    assert resp.json()["error"] == "out_of_scope"
    assert tok not in resp.text
    assert httpx.get(f"{shield}/videos/types/file.ts", timeout=10).status_code == 401


def test_shield_refuses_writes_and_missing_objects(shield: str, keyring: KeyRing) -> None:
    tok = make_token(keyring, "types")
    post = httpx.post(f"{shield}/t/{tok}/videos/types/file.ts", content=b"x", timeout=10)
    assert post.status_code == 405
    assert post.headers["cache-control"] == "no-store"
    assert set(post.headers["allow"].split(", ")) == {"GET", "HEAD"}
    assert post.headers["x-playgate-reason"] == "method_not_allowed"
    missing = httpx.get(f"{shield}/t/{tok}/videos/types/nope.ts", timeout=10)
    assert missing.status_code == 404
    assert missing.json()["error"] == "not_found"


def test_logs_carry_token_id_never_the_token(
    shield: str, keyring: KeyRing, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="playgate")
    good = make_token(keyring, "types", ttl=301)
    bad = make_token(keyring, "other", ttl=302)
    httpx.get(f"{shield}/t/{good}/videos/types/file.ts", timeout=10)
    httpx.get(f"{shield}/t/{bad}/videos/types/file.ts", timeout=10)
    assert "tid-types-301" in caplog.text
    assert "tid-other-302" in caplog.text
    assert good not in caplog.text
    assert bad not in caplog.text


def test_shield_in_front_of_a_real_http_origin(keyring: KeyRing) -> None:
    # The origin is a separate uvicorn process serving static files (with Range support).
    port = free_port()
    code = (
        "import sys, uvicorn; from starlette.applications import Starlette; "
        "from starlette.routing import Mount; from starlette.staticfiles import StaticFiles; "
        "app = Starlette(routes=[Mount('/', StaticFiles(directory=sys.argv[1]))]); "
        f"uvicorn.run(app, host='127.0.0.1', port={port}, log_level='warning')"
    )
    with run_process([sys.executable, "-c", code, str(SAMPLES)], port=port):
        settings = ValidatorSettings(keyring=keyring, origin_url=f"http://127.0.0.1:{port}")
        with serve_app(create_app(settings)) as url:
            tok = make_token(keyring)
            master = httpx.get(f"{url}/t/{tok}/videos/demo/master.m3u8", timeout=10)
            assert master.status_code == 200
            assert master.text == (SAMPLES / "videos/demo/master.m3u8").read_text()
            assert master.headers["content-type"] == "application/vnd.apple.mpegurl"
            seg = httpx.get(
                f"{url}/t/{tok}/videos/demo/hls/v0/seg_000.ts",
                headers={"Range": "bytes=0-187"},
                timeout=10,
            )
            assert seg.status_code == 206
            assert len(seg.content) == 188
            assert seg.content[0] == 0x47
            assert httpx.get(f"{url}/t/{tok}/videos/demo/none.ts", timeout=10).status_code == 404
            other = make_token(keyring, "other")
            assert (
                httpx.get(f"{url}/t/{other}/videos/demo/master.m3u8", timeout=10).status_code == 403
            )


@pytest.mark.parametrize("method", ["HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"])
def test_auth_answers_every_method_of_a_subrequest(
    validator_url: str, keyring: KeyRing, method: str
) -> None:
    uri = f"/t/{make_token(keyring)}/videos/demo/master.m3u8"
    resp = httpx.request(
        method, f"{validator_url}/auth", headers={"X-Original-URI": uri}, timeout=10
    )
    assert resp.status_code == 204
    assert httpx.request(method, f"{validator_url}/auth", timeout=10).status_code == 403


def test_unknown_routes_are_json_no_store(keyring: KeyRing) -> None:
    with serve_app(create_app(ValidatorSettings(keyring=keyring))) as url:  # no origin
        resp = httpx.get(f"{url}/videos/demo/master.m3u8", timeout=10)
        assert resp.status_code == 404
        assert resp.headers["cache-control"] == "no-store"
        assert resp.json()["error"] == "not_found"
        assert httpx.post(f"{url}/healthz", timeout=10).status_code == 405


def test_http_origin_receives_the_path_re_encoded(keyring: KeyRing) -> None:
    seen: list[str] = []

    async def record(request: Request) -> Response:
        seen.append(request.scope["raw_path"].decode() + "?" + request.url.query)
        return Response(b"ok")

    with serve_app(Starlette(routes=[Route("/{p:path}", record)])) as origin_url:
        settings = ValidatorSettings(keyring=keyring, origin_url=origin_url)
        with serve_app(create_app(settings)) as url:
            tok = make_token(keyring)
            resp = httpx.get(f"{url}/t/{tok}/videos/demo/a%20b%26c%2Bd=e.ts", timeout=10)
            assert resp.status_code == 200
    # The decoded name is re-encoded whole: nothing in it becomes syntax at the origin.
    assert seen == ["/videos/demo/a%20b%26c%2Bd%3De.ts?"]


class _BrokenOrigin:
    """An origin with a bug: every fetch raises something no one planned for."""

    async def fetch(self, path: str, headers: object, method: str) -> object:
        raise RuntimeError("bug in an origin")

    async def close(self) -> None:
        return None


def test_an_unexpected_origin_failure_denies_with_a_reason_never_a_bare_500(
    keyring: KeyRing,
) -> None:
    settings = ValidatorSettings(keyring=keyring)
    with serve_app(create_app(settings, origin=_BrokenOrigin())) as url:  # type: ignore[arg-type]
        for target in (
            factories.target(make_token(keyring), "/videos/demo/hls/v0/seg_000.ts"),
            factories.target(make_token(keyring), "/videos/demo/master.m3u8", query=True),
        ):
            resp = httpx.get(url + target, timeout=10)
            assert resp.status_code == 403
            assert resp.headers["x-playgate-reason"] == "internal_error"
            assert resp.headers["cache-control"] == "no-store"
            assert resp.json()["error"] == "internal_error"
            assert "Traceback" not in resp.text


class _VanishingFileOrigin:
    """An origin whose file disappears between its answer and the send (a real race)."""

    async def fetch(self, path: str, headers: object, method: str) -> OriginReply:
        return OriginReply(200, {"content-type": "video/mp2t"}, file=Path("/nonexistent/seg.ts"))

    async def close(self) -> None:
        return None


def test_an_unexpected_error_after_the_check_is_a_denial_with_a_reason(keyring: KeyRing) -> None:
    settings = ValidatorSettings(keyring=keyring, media_root=SAMPLES)
    app = create_app(settings, origin=_VanishingFileOrigin())  # type: ignore[arg-type]
    with serve_app(app) as base:
        resp = httpx.get(base + factories.target(factories.token(keyring)), timeout=10)
    assert resp.headers["x-playgate-reason"] == "internal_error"
    assert resp.headers["cache-control"] == "no-store"
    assert resp.json()["error"] == "internal_error"
