"""Web players on ANOTHER origin, in Debian Chromium: the shield, the nginx edge and the S3
redirect all let the allowed page play and read denial reasons, by PLAYGATE_CORS_ORIGINS alone.

The page is the demo's player page served from its own loopback port (another origin than the
edge); ``?src=`` makes it play a URL the test signs.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import boto3
import httpx
import pytest
import yaml
from playwright.sync_api import Browser, sync_playwright

from edge_validator.asgi.app import create_app
from edge_validator.core.cors import CorsPolicy
from edge_validator.core.keyring import KeyRing
from edge_validator.origins.s3_location import S3Location, S3Settings
from edge_validator.settings import ValidatorSettings
from playgate.demo.backend import create_backend_app
from playgate.demo.s3 import upload_samples
from tests.e2e.test_demo_player import CHROMIUM_ARGS
from tests.support import factories
from tests.support.factories import ROOT, SAMPLES
from tests.support.nginx_edge import nginx_edge
from tests.support.servers import LOOPBACK, free_port, require_tool, run_process, serve_app

pytestmark = pytest.mark.slow
AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}
BUCKET = "playgate-cors"


@pytest.fixture(scope="module")
def ring() -> KeyRing:
    return factories.keyring()


@pytest.fixture(scope="module")
def page_origin() -> Iterator[str]:
    """The allowed player page (its signer is never asked: the test passes ?src=)."""
    with serve_app(create_backend_app("http://127.0.0.1:9", "unused")) as url:
        yield url


@pytest.fixture(scope="module")
def other_origin() -> Iterator[str]:
    """The same page on an origin the edge does not list."""
    with serve_app(create_backend_app("http://127.0.0.1:9", "unused")) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    chromium = require_tool("chromium")
    with sync_playwright() as pw:
        launched = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def shield_edge(ring: KeyRing, page_origin: str) -> Iterator[str]:
    settings = ValidatorSettings(
        keyring=ring, media_root=SAMPLES, cors=CorsPolicy.from_text(page_origin)
    )
    with serve_app(create_app(settings)) as url:
        yield url


@pytest.fixture(scope="module")
def nginx(
    ring: KeyRing, page_origin: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    prefix = tmp_path_factory.mktemp("nginx-cors")
    with nginx_edge(ring, SAMPLES, prefix, cors=CorsPolicy.from_text(page_origin)) as edge:
        yield edge.url


def template_cors_rules() -> list[dict[str, Any]]:
    """The bucket CORS rules of infra/aws/playgate.yaml, in the S3 API's spelling."""

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_multi_constructor("!", lambda loader, suffix, node: None)
    doc = yaml.load((ROOT / "infra/aws/playgate.yaml").read_text(), Loader=Loader)
    rules = doc["Resources"]["VideoBucket"]["Properties"]["CorsConfiguration"]["CorsRules"]
    names = {"ExposedHeaders": "ExposeHeaders", "MaxAge": "MaxAgeSeconds", "Id": "ID"}
    return [{names.get(k, k): v for k, v in rule.items()} for rule in rules]


@contextlib.contextmanager
def s3_shield(ring: KeyRing, page_origin: str, bucket_cors: bool) -> Iterator[str]:
    """moto's S3 server WITHOUT its global CORS; the bucket configured as the template says
    (or with no CORS at all), behind a shield in redirect mode."""
    moto_server = Path(sys.executable).with_name("moto_server")
    assert moto_server.exists(), "moto[server] is required; ./scripts/install installs it"
    port = free_port()
    env = {**AWS_ENV, "MOTO_DISABLE_GLOBAL_CORS": "true", "AWS_SHARED_CREDENTIALS_FILE": "/x"}
    with contextlib.ExitStack() as stack, pytest.MonkeyPatch.context() as mp:
        for name, value in AWS_ENV.items():
            mp.setenv(name, value)
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
            mp.delenv(name, raising=False)
        argv = [str(moto_server), "-H", LOOPBACK, "-p", str(port)]
        stack.enter_context(run_process(argv, port=port, env=env))
        endpoint = f"http://{LOOPBACK}:{port}"
        settings = ValidatorSettings(
            keyring=ring,
            s3=S3Settings(S3Location(BUCKET, "media"), mode="redirect", endpoint_url=endpoint),
            cors=CorsPolicy.from_text(page_origin),
        )
        upload_samples(settings, SAMPLES)
        if bucket_cors:
            client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
            rules = {"CORSRules": template_cors_rules()}
            client.put_bucket_cors(Bucket=BUCKET, CORSConfiguration=rules)
            client.close()
        yield stack.enter_context(serve_app(create_app(settings)))


@pytest.fixture(scope="module")
def s3_redirect(ring: KeyRing, page_origin: str) -> Iterator[str]:
    with s3_shield(ring, page_origin, bucket_cors=True) as url:
        yield url


def test_without_the_bucket_cors_rule_redirected_segments_fail(
    ring: KeyRing, page_origin: str, browser: Browser
) -> None:
    """Why the template's bucket has a CORS rule: the page gets the playlist, not the media."""
    with s3_shield(ring, page_origin, bucket_cors=False) as edge:
        status, _ = play(browser, page_origin, signed(edge, ring))
    assert status != "Playing"
    blocked = [m for m in CONSOLE if "blocked by CORS policy" in m]
    assert blocked, CONSOLE
    assert all("X-Amz-Signature" in m for m in blocked)  # only the bucket's answers


def signed(edge: str, ring: KeyRing) -> str:
    token = factories.token(ring, now=time.time() - 5, ttl=600, token_id="tid-cors")
    return f"{edge}/t/{token}/videos/demo/master.m3u8"


def tampered(url: str) -> str:
    token = url.split("/t/", 1)[1].split("/", 1)[0]
    return url.replace(token, token[:20] + ("B" if token[20] != "B" else "C") + token[21:])


CONSOLE: list[str] = []


def play(browser: Browser, page_url: str, src: str) -> tuple[str, list[tuple[int, str]]]:
    """Open the player page on ``src``; the status once it plays or fails, and every response.
    The page's console messages are left in CONSOLE."""
    page = browser.new_page(bypass_csp=True)
    seen: list[tuple[int, str]] = []
    CONSOLE.clear()
    page.on("response", lambda r: seen.append((r.status, r.url)))
    page.on("console", lambda m: CONSOLE.append(m.text))
    try:
        page.goto(f"{page_url}/player/?src={quote(src, safe='')}")
        page.wait_for_function(
            "document.body.dataset.state === 'error' || "
            "document.querySelector('video').currentTime > 1.0",
            timeout=45_000,
        )
        return page.locator("#status").text_content() or "", seen
    finally:
        page.close()


MODES = ["shield_edge", "nginx", "s3_redirect"]


@pytest.mark.parametrize("mode", MODES)
def test_a_page_on_another_origin_plays(
    mode: str, request: pytest.FixtureRequest, browser: Browser, page_origin: str, ring: KeyRing
) -> None:
    edge: str = request.getfixturevalue(mode)
    status, seen = play(browser, page_origin, signed(edge, ring))
    assert status == "Playing", (status, seen)
    assert any(u.endswith(".ts") or ".ts?" in u for _, u in seen)
    assert not [(s, u) for s, u in seen if s in (401, 403)]
    if mode == "s3_redirect":  # segments really came from the bucket, after a redirect
        assert any(s == 302 for s, _ in seen)
        assert any(".ts?" in u and "X-Amz-Signature" in u for _, u in seen)


@pytest.mark.parametrize("mode", MODES)
def test_the_page_reads_why_it_was_refused(
    mode: str, request: pytest.FixtureRequest, browser: Browser, page_origin: str, ring: KeyRing
) -> None:
    edge: str = request.getfixturevalue(mode)
    status, _ = play(browser, page_origin, tampered(signed(edge, ring)))
    assert status == "Playback denied: the link was refused (HTTP 403, bad_signature)."


@pytest.mark.parametrize("mode", MODES)
def test_a_page_on_an_unlisted_origin_cannot_read(
    mode: str, request: pytest.FixtureRequest, browser: Browser, other_origin: str, ring: KeyRing
) -> None:
    edge: str = request.getfixturevalue(mode)
    status, _ = play(browser, other_origin, signed(edge, ring))
    assert status.startswith("Playback failed: manifestLoadError"), status


@pytest.mark.parametrize("mode", ["shield_edge", "nginx"])
def test_preflight_and_headers(
    mode: str, request: pytest.FixtureRequest, page_origin: str, ring: KeyRing
) -> None:
    edge: str = request.getfixturevalue(mode)
    url = signed(edge, ring)
    asks = {"Origin": page_origin, "Access-Control-Request-Method": "GET"}
    ok = httpx.options(url, headers={**asks, "Access-Control-Request-Headers": "range"}, timeout=10)
    assert ok.status_code == 204
    assert ok.headers["access-control-allow-origin"] == page_origin
    assert ok.headers["access-control-allow-headers"].lower() == "range"
    # A CAT in its request header (renewal by header), asked the way Chromium asks.
    cat = httpx.options(
        url,
        headers={**asks, "Access-Control-Request-Headers": "cta-common-access-token,range"},
        timeout=10,
    )
    assert cat.status_code == 204
    allowed = {h.strip().lower() for h in cat.headers["access-control-allow-headers"].split(",")}
    assert allowed == {"cta-common-access-token", "range"}
    for other in ("cta-common-access-token,cookie", "authorization", "range;x"):
        asked = {**asks, "Access-Control-Request-Headers": other}
        refused_header = httpx.options(url, headers=asked, timeout=10)
        assert refused_header.status_code == 403, other
        assert "access-control-allow-headers" not in refused_header.headers
    refused = httpx.options(url, headers={**asks, "Origin": "https://evil.example"}, timeout=10)
    assert refused.status_code == 403
    assert "access-control-allow-origin" not in refused.headers
    media = httpx.get(url, headers={"Origin": page_origin}, timeout=10)
    assert media.status_code == 200
    assert media.headers.get_list("access-control-allow-origin") == [page_origin]
    assert "Origin" in media.headers["vary"]
    # A player reads a CAT renewed in the response header (the header renewal sets it).
    exposed = {h.strip().lower() for h in media.headers["access-control-expose-headers"].split(",")}
    assert {"cta-common-access-token", "x-playgate-renewal"} <= exposed
    # Query-token manifests go through the shield behind nginx: still exactly one header.
    token = url.split("/t/", 1)[1].split("/", 1)[0]
    query = httpx.get(
        f"{edge}/videos/demo/master.m3u8?token={token}", headers={"Origin": page_origin}, timeout=10
    )
    assert query.status_code == 200
    assert query.headers.get_list("access-control-allow-origin") == [page_origin]
    denied = httpx.get(tampered(url), headers={"Origin": page_origin}, timeout=10)
    assert denied.status_code == 403
    assert denied.headers["access-control-allow-origin"] == page_origin
    assert "X-PlayGate-Reason" in denied.headers["access-control-expose-headers"]


@pytest.mark.parametrize("mode", ["shield_edge", "nginx"])
def test_a_page_may_send_the_cat_header_and_read_the_answer(
    mode: str, request: pytest.FixtureRequest, browser: Browser, page_origin: str, ring: KeyRing
) -> None:
    """Chromium's own preflight for the CTA-5007 request header passes, and the page reads the
    answer's headers (this edge has no CAT keys: the header token is refused, readably)."""
    edge: str = request.getfixturevalue(mode)
    page = browser.new_page()
    try:
        page.goto(f"{page_origin}/player/")
        answer = page.evaluate(
            """async (url) => {
                const r = await fetch(url, {headers: {"CTA-Common-Access-Token": "x.y.z"}});
                return [r.status, r.headers.get("X-PlayGate-Reason")];
            }""",
            f"{edge}/videos/demo/hls/v0/seg_000.ts",
        )
    finally:
        page.close()
    status, reason = answer
    assert status in (401, 403), answer  # answered and readable: not a CORS failure
    assert reason, answer
