"""Playback sessions over real HTTP: the shield's redirect, both token kinds, the session cap,
``/auth``, revocation and stream limits (real uvicorn, real Redis). The real-time plays with
real players are in tests/e2e/test_sessions_realtime.py."""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest

from edge_validator.asgi.app import create_app as create_validator
from edge_validator.core.keyring import SESSION_CONTEXT, KeyRing
from edge_validator.core.token import open_token
from edge_validator.settings import ValidatorSettings
from edge_validator.state import StateSettings
from signer.issuing import PlaybackRequest, issue
from tests.support import factories
from tests.support.factories import SAMPLES
from tests.support.servers import serve_app
from tests.support.state_helpers import Stack, stack

SEG = "/videos/demo/hls/v0/seg_000.ts"
MAX_SESSION = 1800


@pytest.fixture(scope="module")
def shield(keyring: KeyRing) -> Iterator[str]:
    settings = ValidatorSettings(keyring=keyring, media_root=SAMPLES, max_session=MAX_SESSION)
    with serve_app(create_validator(settings)) as url:
        yield url


def start(keyring: KeyRing, base: str, *, mode: str = "path", **fields: object) -> str:
    fields.setdefault("ttl_seconds", 5)
    fields.setdefault("session_seconds", 3600)
    request = PlaybackRequest(video_id="demo", **fields)  # type: ignore[arg-type]
    return issue(request, keyring, time.time(), public_url=base, mode=mode).url


def session_of(location: str) -> str:
    return location.split("/s/", 1)[1].split("/", 1)[0]


def test_a_start_url_opens_a_session_with_a_redirect(shield: str, keyring: KeyRing) -> None:
    resp = httpx.get(start(keyring, shield), timeout=10, follow_redirects=True)
    first = resp.history[0]
    assert first.status_code == 302
    assert first.headers["cache-control"] == "no-store"
    assert first.headers["location"].startswith("/s/")
    assert first.headers["location"].endswith("/videos/demo/master.m3u8")
    assert resp.status_code == 200
    assert resp.headers["cache-control"] == "private, no-cache"
    assert "hls/v0/index.m3u8" in resp.text  # relative: resolves under /s/<session>/
    child = httpx.get(str(resp.url).replace("master.m3u8", "hls/v0/index.m3u8"), timeout=10)
    assert child.status_code == 200
    session = session_of(first.headers["location"])
    assert httpx.get(f"{shield}/s/{session}{SEG}", timeout=10).status_code == 200


def test_the_session_keeps_the_lineage_and_never_outlives_the_cap(
    shield: str, keyring: KeyRing
) -> None:
    url = start(keyring, shield, user_id="u-1", session_seconds=7200)
    token = url.split("/t/", 1)[1].split("/", 1)[0]
    start_claims = open_token(token, keyring)
    location = httpx.get(url, timeout=10, follow_redirects=False).headers["location"]
    session = open_token(session_of(location), keyring.with_context(SESSION_CONTEXT))
    assert session.token_id == start_claims.token_id
    assert session.user_id == "u-1"
    assert session.session_id
    assert session.client_network == "127.0.0.0/24"  # narrowed to the viewer's network
    # Asked for 2 h; the validator's PLAYGATE_MAX_SESSION is 30 min.
    assert session.expires_at - session.not_before <= MAX_SESSION


def test_a_session_token_longer_than_the_cap_is_refused(shield: str, keyring: KeyRing) -> None:
    forged = factories.session_token(keyring, ttl=MAX_SESSION + 60)
    resp = httpx.get(f"{shield}/s/{forged}{SEG}", timeout=10)
    assert resp.status_code == 403
    assert resp.headers["x-playgate-reason"] == "lifetime_exceeded"


def test_a_tampered_session_token_is_refused(shield: str, keyring: KeyRing) -> None:
    location = httpx.get(start(keyring, shield), timeout=10, follow_redirects=False).headers[
        "location"
    ]
    session = session_of(location)
    raw = bytearray(base64.urlsafe_b64decode(session + "=" * (-len(session) % 4)))
    raw[12] ^= 1  # one bit of the expiry
    tampered = base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()
    resp = httpx.get(f"{shield}/s/{tampered}{SEG}", timeout=10)
    assert resp.status_code == 403
    assert resp.headers["x-playgate-reason"] == "bad_signature"


def test_neither_kind_passes_for_the_other(shield: str, keyring: KeyRing) -> None:
    url = start(keyring, shield)
    token = url.split("/t/", 1)[1].split("/", 1)[0]
    as_session = httpx.get(f"{shield}/s/{token}{SEG}", timeout=10)
    assert as_session.headers["x-playgate-reason"] == "bad_signature"
    location = httpx.get(url, timeout=10, follow_redirects=False).headers["location"]
    as_start = httpx.get(f"{shield}/t/{session_of(location)}{SEG}", timeout=10)
    assert as_start.headers["x-playgate-reason"] == "bad_signature"


def test_a_url_without_a_session_plays_as_before(shield: str, keyring: KeyRing) -> None:
    resp = httpx.get(start(keyring, shield, session_seconds=0), timeout=10)
    assert resp.status_code == 200
    assert not resp.history


def test_query_mode_moves_the_session_into_child_uris(shield: str, keyring: KeyRing) -> None:
    url = start(keyring, shield, mode="query")
    resp = httpx.get(url, timeout=10, follow_redirects=True)
    first = resp.history[0]
    assert first.status_code == 302
    location = first.headers["location"]
    assert location.startswith("/videos/demo/master.m3u8?session=")
    session = location.split("session=", 1)[1]
    assert f"hls/v0/index.m3u8?session={session}" in resp.text
    assert "token=" not in resp.text


def test_auth_request_refuses_to_open_a_session_clearly(shield: str, keyring: KeyRing) -> None:
    url = start(keyring, shield)
    target = url[len(shield) :]
    resp = httpx.get(f"{shield}/auth", headers={"X-Original-URI": target}, timeout=10)
    assert resp.status_code == 403
    assert resp.headers["x-playgate-reason"] == "session_redirect_required"
    location = httpx.get(url, timeout=10, follow_redirects=False).headers["location"]
    segment = location.replace("master.m3u8", "hls/v0/seg_000.ts")
    assert httpx.get(f"{shield}/auth", headers={"X-Original-URI": segment}).status_code == 204


# --- with shared state ------------------------------------------------------------------------


@pytest.fixture
def shared(keyring: KeyRing, redis_url: str) -> Iterator[Stack]:
    state = StateSettings(redis_url=redis_url, key_prefix=f"t{uuid.uuid4().hex[:8]}")
    with stack(keyring, state) as s:
        yield s


def wait_status(url: str, status: int, timeout: float = 5.0) -> int:
    deadline = time.monotonic() + timeout
    while True:
        got = httpx.get(url, timeout=10, follow_redirects=False).status_code
        if got == status or time.monotonic() > deadline:
            return got
        time.sleep(0.05)


def test_a_session_is_revocable_by_session_id(shared: Stack) -> None:
    url = shared.issue(session_seconds=600, ttl_seconds=30)["url"]
    location = httpx.get(url, timeout=10, follow_redirects=False).headers["location"]
    session = open_token(session_of(location), shared.keyring.with_context(SESSION_CONTEXT))
    segment = shared.validator + location.replace("master.m3u8", "hls/v0/seg_000.ts")
    assert httpx.get(segment, timeout=10).status_code == 200
    assert shared.revoke(session_id=session.session_id).status_code == 201
    assert wait_status(segment, 403, timeout=1.5) == 403
    # Another session of the same URL is untouched.
    other = httpx.get(url, timeout=10, follow_redirects=False).headers["location"]
    assert httpx.get(shared.validator + other, timeout=10).status_code == 200


@pytest.mark.parametrize("kind", ["token_id", "user_id", "video_id"])
def test_a_session_is_revocable_like_its_url(shared: Stack, kind: str) -> None:
    issued = shared.issue(session_seconds=600, ttl_seconds=30, user_id="u-rev")
    location = httpx.get(issued["url"], timeout=10, follow_redirects=False).headers["location"]
    segment = shared.validator + location.replace("master.m3u8", "hls/v0/seg_000.ts")
    assert httpx.get(segment, timeout=10).status_code == 200
    value = {"token_id": issued["token_id"], "user_id": "u-rev", "video_id": "demo"}[kind]
    assert shared.revoke(**{kind: value}).status_code == 201
    assert wait_status(segment, 403, timeout=1.5) == 403


def test_streams_are_counted_per_session(shared: Stack) -> None:
    url = shared.issue(session_seconds=600, ttl_seconds=30, user_id="u-s", max_streams=1)["url"]
    first = httpx.get(url, timeout=10, follow_redirects=False)
    assert first.status_code == 302
    segment = shared.validator + first.headers["location"].replace(
        "master.m3u8", "hls/v0/seg_000.ts"
    )
    for _ in range(3):  # the session's own requests count once
        assert httpx.get(segment, timeout=10).status_code == 200
    second = httpx.get(url, timeout=10, follow_redirects=False)
    assert second.status_code == 403
    assert second.headers["x-playgate-reason"] == "too_many_streams"


def test_revoking_a_video_never_covers_urls_issued_after_it(shared: Stack) -> None:
    before = shared.issue(session_seconds=0)["url"]
    assert shared.revoke(video_id="demo").status_code == 201
    after = shared.issue(session_seconds=0)["url"]  # at once, maybe in the same second
    assert wait_status(before, 403, timeout=1.5) == 403
    assert httpx.get(after, timeout=10).status_code == 200
