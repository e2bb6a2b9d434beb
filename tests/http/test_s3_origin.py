"""The origin shield in front of a private S3 bucket, against moto's real S3 server over HTTP."""

from __future__ import annotations

import os
import queue
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
import httpx
import pytest
from botocore.credentials import CredentialProvider, RefreshableCredentials
from botocore.session import Session as BotocoreSession
from starlette.applications import Starlette

from edge_validator.asgi.app import create_app
from edge_validator.core.keyring import KeyRing
from edge_validator.origins.s3 import S3Origin
from edge_validator.origins.s3_location import S3Location, S3Settings
from edge_validator.settings import ValidatorSettings
from playgate.demo.s3 import upload_samples
from tests.support import factories
from tests.support.factories import SAMPLES
from tests.support.servers import LOOPBACK, free_port, run_process, serve_app

BUCKET = "playgate-videos"
PREFIX = "media"
DEMO = SAMPLES / "videos" / "demo"
AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@pytest.fixture(scope="module")
def aws_env() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as mp:
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_CONFIG_FILE"):
            mp.delenv(name, raising=False)
        for name, value in AWS_ENV.items():
            mp.setenv(name, value)
        mp.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
        yield


@pytest.fixture(scope="module")
def endpoint(aws_env: None) -> Iterator[str]:
    moto_server = Path(sys.executable).with_name("moto_server")
    assert moto_server.exists(), "moto[server] is required; ./scripts/install installs it"
    port = free_port()
    with run_process([str(moto_server), "-H", LOOPBACK, "-p", str(port)], port=port):
        yield f"http://{LOOPBACK}:{port}"


@pytest.fixture(scope="module")
def uploaded(endpoint: str) -> str:
    settings = ValidatorSettings(
        keyring=KeyRing({"k1": b"A" * 32}),
        s3=S3Settings(S3Location(BUCKET, PREFIX), endpoint_url=endpoint),
    )
    assert upload_samples(settings, SAMPLES) == len([p for p in DEMO.rglob("*") if p.is_file()])
    return endpoint


def shield(keyring: KeyRing, endpoint: str, mode: str, **extra: Any) -> Starlette:
    settings = ValidatorSettings(
        keyring=keyring,
        s3=S3Settings(S3Location(BUCKET, PREFIX), mode=mode, endpoint_url=endpoint),
        **extra,
    )
    return create_app(settings)


@pytest.fixture(scope="module")
def module_keyring() -> KeyRing:
    return KeyRing({"k1": b"A" * 32, "k2": bytes(range(32, 64))}, "k1")


@pytest.fixture(scope="module")
def redirect_url(module_keyring: KeyRing, uploaded: str) -> Iterator[str]:
    with serve_app(shield(module_keyring, uploaded, "redirect")) as url:
        yield url


@pytest.fixture(scope="module")
def stream_url(module_keyring: KeyRing, uploaded: str) -> Iterator[str]:
    with serve_app(shield(module_keyring, uploaded, "stream")) as url:
        yield url


def mint(keyring: KeyRing, *, ttl: int = 300, **extra: Any) -> str:
    return factories.token(keyring, now=time.time() - 5, ttl=ttl + 5, token_id="tid-s3", **extra)


def signed(base: str, token: str, path: str = "master.m3u8") -> str:
    return f"{base}/t/{token}/videos/demo/{path}"


def walk_hls(client: httpx.Client, master_url: str) -> tuple[int, int]:
    """Fetch the master playlist, both variants and every segment; check bytes against disk.

    Relative URIs resolve against the URL a playlist finally came from, as hls.js and AVPlayer
    do. Returns (segments fetched, responses that came through a redirect).
    """
    master = client.get(master_url)
    assert master.status_code == 200, master.headers
    assert master.content == (DEMO / "master.m3u8").read_bytes()
    segments = redirected = 0
    for variant in [ln for ln in master.text.splitlines() if ln and not ln.startswith("#")]:
        media = client.get(master.url.join(variant))
        assert media.status_code == 200
        for seg in re.findall(r"^(seg_\d+\.ts)$", media.text, re.M):
            resp = client.get(media.url.join(seg))
            assert resp.status_code == 200
            assert resp.content == (DEMO / "hls" / variant.split("/")[1] / seg).read_bytes()
            segments += 1
            redirected += bool(resp.history)
    return segments, redirected


# -- redirect mode ---------------------------------------------------------------------------


def test_redirect_to_a_presigned_url_on_the_configured_endpoint(
    redirect_url: str, module_keyring: KeyRing, uploaded: str
) -> None:
    token = mint(module_keyring)
    resp = httpx.get(
        signed(redirect_url, token, "hls/v1/seg_002.ts"),
        headers={"Host": "evil.example", "X-Forwarded-Host": "evil.example", "Forwarded": "host=x"},
        timeout=10,
    )
    assert resp.status_code == 302
    assert resp.headers["cache-control"] == "no-store"
    location = urlsplit(resp.headers["location"])
    assert f"{location.scheme}://{location.netloc}" == uploaded
    assert location.path == f"/{BUCKET}/{PREFIX}/videos/demo/hls/v1/seg_002.ts"
    query = parse_qs(location.query)
    assert 0 < int(query["X-Amz-Expires"][0]) <= 60
    assert token not in resp.headers["location"]


def test_redirect_mode_plays_the_whole_hls_set(redirect_url: str, module_keyring: KeyRing) -> None:
    with httpx.Client(timeout=10, follow_redirects=True) as client:
        assert walk_hls(client, signed(redirect_url, mint(module_keyring))) == (6, 6)


def test_redirect_mode_serves_playlists_itself(redirect_url: str, module_keyring: KeyRing) -> None:
    # A redirected playlist would make players resolve its children against the S3 URL.
    with httpx.Client(timeout=10) as client:
        for path, kind in (
            ("master.m3u8", "application/vnd.apple.mpegurl"),
            ("dash/manifest.mpd", "application/dash+xml"),
        ):
            resp = client.get(signed(redirect_url, mint(module_keyring), path))
            assert resp.status_code == 200
            assert resp.headers["content-type"] == kind
            assert "location" not in resp.headers


def test_redirect_mode_range_request(redirect_url: str, module_keyring: KeyRing) -> None:
    url = signed(redirect_url, mint(module_keyring), "hls/v0/seg_001.ts")
    with httpx.Client(timeout=10, follow_redirects=True) as client:
        resp = client.get(url, headers={"Range": "bytes=188-375"})
    assert resp.status_code == 206
    assert resp.content == (DEMO / "hls/v0/seg_001.ts").read_bytes()[188:376]
    assert resp.history[0].status_code == 302


def test_presigned_urls_are_reused_per_object(module_keyring: KeyRing, uploaded: str) -> None:
    app = shield(module_keyring, uploaded, "redirect")
    origin: S3Origin = app.state.origin
    token = mint(module_keyring)
    with serve_app(app) as base, httpx.Client(timeout=10) as client:
        first = client.get(signed(base, token, "hls/v0/seg_000.ts")).headers["location"]
        again = client.get(signed(base, mint(module_keyring), "hls/v0/seg_000.ts"))
        other = client.get(signed(base, token, "hls/v0/seg_001.ts")).headers["location"]
        head = client.head(signed(base, token, "hls/v0/seg_000.ts")).headers["location"]
        assert again.headers["location"] == first
        assert other != first
        assert head != first  # a HEAD needs its own signature
        assert client.head(head).status_code == 200
    assert origin.urls.signed == 3


# -- stream mode -----------------------------------------------------------------------------


def test_stream_mode_plays_the_whole_hls_set(stream_url: str, module_keyring: KeyRing) -> None:
    with httpx.Client(timeout=10) as client:
        assert walk_hls(client, signed(stream_url, mint(module_keyring))) == (6, 0)
        resp = client.get(signed(stream_url, mint(module_keyring), "dash/manifest.mpd"))
    assert resp.headers["content-type"] == "application/dash+xml"
    assert resp.headers["cache-control"] == "private, no-cache"
    assert "x-amz" not in str(resp.headers).lower()


def test_stream_mode_ranges(stream_url: str, module_keyring: KeyRing) -> None:
    data = (DEMO / "dash/chunk-0-00001.m4s").read_bytes()
    url = signed(stream_url, mint(module_keyring), "dash/chunk-0-00001.m4s")
    with httpx.Client(timeout=10) as client:
        part = client.get(url, headers={"Range": "bytes=10-99"})
        tail = client.get(url, headers={"Range": "bytes=-50"})
        bad = client.get(url, headers={"Range": f"bytes={len(data) + 10}-"})
        odd = client.get(url, headers={"Range": "bytes=0-1,5-9"})
        head = client.head(url)
    assert part.status_code == 206
    assert part.content == data[10:100]
    assert part.headers["content-range"] == f"bytes 10-99/{len(data)}"
    assert part.headers["content-type"] == "video/iso.segment"
    assert tail.status_code == 206
    assert tail.content == data[-50:]
    assert bad.status_code == 416
    assert odd.status_code == 200  # an unsupported multi-range is ignored, not guessed at
    assert odd.content == data
    assert head.status_code == 200
    assert head.headers["content-length"] == str(len(data))
    assert head.headers["accept-ranges"] == "bytes"


def test_stream_mode_missing_object_is_404(stream_url: str, module_keyring: KeyRing) -> None:
    resp = httpx.get(signed(stream_url, mint(module_keyring), "nope.ts"), timeout=10)
    assert resp.status_code == 404
    assert resp.headers["cache-control"] == "no-store"


# -- denied, in both modes -------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["redirect", "stream"])
def test_denied_requests_never_reach_s3(
    mode: str, redirect_url: str, stream_url: str, module_keyring: KeyRing
) -> None:
    base = redirect_url if mode == "redirect" else stream_url
    good = mint(module_keyring)
    cases = {
        "expired": signed(base, mint(module_keyring, ttl=-60)),
        "bad_signature": signed(base, factories.tampered(good)),
        "out_of_scope": f"{base}/t/{good}/videos/other/master.m3u8",
        "bad_path": f"{base}/t/{good}/videos/demo/%2e%2e/secret.ts",
        "missing": f"{base}/videos/demo/master.m3u8",
    }
    with httpx.Client(timeout=10) as client:
        for reason, url in cases.items():
            resp = client.get(url)
            assert resp.status_code == (401 if reason == "missing" else 403), reason
            assert resp.headers["x-playgate-reason"] == reason
            assert resp.headers["cache-control"] == "no-store"
            assert "location" not in resp.headers
            assert "x-amz" not in resp.text.lower()
            assert "x-amz" not in str(resp.headers).lower()


def test_root_path_names_no_object(stream_url: str, module_keyring: KeyRing) -> None:
    resp = httpx.get(f"{stream_url}/t/{mint(module_keyring, scope='/')}/", timeout=10)
    assert resp.status_code == 404


def test_ip_bound_token_from_another_address(redirect_url: str, module_keyring: KeyRing) -> None:
    token = mint(module_keyring, client_network="203.0.113.0/24")
    resp = httpx.get(signed(redirect_url, token), timeout=10)
    assert resp.status_code == 403
    assert "location" not in resp.headers


# -- credentials lifetime --------------------------------------------------------------------


class _ShortLivedProvider(CredentialProvider):
    """A provider whose credentials expire soon, like an assumed role near its end."""

    METHOD = "short-lived-test"

    def __init__(self, seconds: int = 30) -> None:
        super().__init__()
        self.seconds = seconds

    def load(self) -> RefreshableCredentials:
        def fetch() -> dict[str, str]:
            expiry = time.gmtime(time.time() + self.seconds)
            expiry = time.strftime("%Y-%m-%dT%H:%M:%SZ", expiry)
            return {
                "access_key": "testing",
                "secret_key": "testing",
                "token": "session-token",
                "expiry_time": expiry,
            }

        return RefreshableCredentials.create_from_metadata(fetch(), fetch, self.METHOD)


def short_lived_session(seconds: int) -> boto3.session.Session:
    core = BotocoreSession()
    core.get_component("credential_provider").insert_before("env", _ShortLivedProvider(seconds))
    return boto3.session.Session(botocore_session=core, region_name="us-east-1")


def test_presigned_url_never_outlives_its_credentials(uploaded: str) -> None:
    session = short_lived_session(30)
    origin = S3Origin(
        S3Settings(S3Location(BUCKET, PREFIX), endpoint_url=uploaded), session=session
    )
    url = origin.urls.url("GET", "media/videos/demo/master.m3u8")
    expires = int(parse_qs(urlsplit(url).query)["X-Amz-Expires"][0])
    assert 0 < expires <= 30 - 5
    assert origin.client.meta.region_name == "us-east-1"


def test_expiring_credentials_sign_nothing(uploaded: str, module_keyring: KeyRing) -> None:
    origin = S3Origin(
        S3Settings(S3Location(BUCKET, PREFIX), endpoint_url=uploaded),
        session=short_lived_session(8),
    )
    settings = ValidatorSettings(keyring=module_keyring)
    with serve_app(create_app(settings, origin=origin)) as base:
        resp = httpx.get(signed(base, mint(module_keyring), "hls/v0/seg_000.ts"), timeout=10)
    assert resp.status_code == 503
    assert resp.headers["x-playgate-reason"] == "credentials_expiring"
    assert resp.headers["cache-control"] == "no-store"
    assert "location" not in resp.headers
    assert resp.json()["error"] == "credentials_expiring"  # the one JSON error shape


# -- the demo --------------------------------------------------------------------------------


def test_demo_with_an_s3_origin(uploaded: str, tmp_path: Path) -> None:
    playgate = Path(sys.executable).with_name("playgate")
    env = {**os.environ, **AWS_ENV, "AWS_ENDPOINT_URL": uploaded, "PLAYGATE_S3_MODE": "stream"}
    origin = f"s3://{BUCKET}/demo-run"
    argv = [str(playgate), "demo", "--origin", origin, "--upload-samples"]
    with subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT) as proc:
        try:
            lines = _read_until(proc, "Press Ctrl-C", timeout=30)
            url = next(ln.split(": ", 1)[1] for ln in lines if ln.startswith("Playback URL:"))
            assert any(ln.startswith(f"Origin: {origin} (stream") for ln in lines)
            with httpx.Client(timeout=10) as client:
                assert walk_hls(client, url) == (6, 0)
        finally:
            proc.terminate()
            proc.wait(10)


def _read_until(proc: subprocess.Popen[bytes], marker: str, timeout: float) -> list[str]:
    """Lines the process prints until one contains ``marker`` (a thread reads; we wait)."""
    assert proc.stdout is not None
    stdout = proc.stdout
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(
        target=lambda: [lines.put(raw.decode().rstrip("\n")) for raw in stdout], daemon=True
    ).start()
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            seen.append(lines.get(timeout=0.2))
        except queue.Empty:
            continue
        if marker in seen[-1]:
            return seen
    raise AssertionError(f"demo did not start: {seen}")
