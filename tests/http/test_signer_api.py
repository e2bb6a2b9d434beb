"""The signer API over real HTTP: contract, authentication, and bad input never a 5xx."""

from __future__ import annotations

import json
import time

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge_validator.core.keyring import KeyRing
from edge_validator.core.token import open_token
from tests.support.factories import API_KEY

AUTH = {"Authorization": f"Bearer {API_KEY}"}


def post(url: str, body: object, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.post(f"{url}/v1/playback-urls", json=body, headers=headers or AUTH, timeout=10)


def test_issues_a_playback_url(signer_url: str, validator_url: str, keyring: KeyRing) -> None:
    before = int(time.time())
    resp = post(
        signer_url,
        {"video_id": "demo", "ttl_seconds": 120, "session_id": "s-1", "client_ip": "203.0.113.9"},
    )
    assert resp.status_code == 201
    assert resp.headers["cache-control"] == "no-store"
    body = resp.json()
    assert set(body) == {"url", "token", "token_id", "expires_at"}
    assert body["url"] == f"{validator_url}/t/{body['token']}/videos/demo/master.m3u8"
    claims = open_token(body["token"], keyring)
    assert claims.token_id == body["token_id"]
    assert claims.scope == "/videos/demo/"
    assert claims.client_network == "203.0.113.9/32"
    assert claims.session_id == "s-1"
    assert before + 120 <= claims.expires_at <= int(time.time()) + 120
    assert body["expires_at"].endswith("Z")


@pytest.mark.parametrize(
    ("given", "bound"),
    [("::ffff:203.0.113.9", "203.0.113.9/32"), ("::ffff:203.0.113.0/120", "203.0.113.0/24")],
)
def test_ipv4_mapped_client_ip_is_bound_as_ipv4(
    signer_url: str, keyring: KeyRing, given: str, bound: str
) -> None:
    body = post(signer_url, {"video_id": "demo", "client_ip": given}).json()
    assert open_token(body["token"], keyring).client_network == bound


def test_default_ttl_and_entry_file(signer_url: str, keyring: KeyRing) -> None:
    body = post(signer_url, {"video_id": "v_1", "file": "dash/manifest.mpd"}).json()
    claims = open_token(body["token"], keyring)
    # Issued now, starting PLAYGATE_NOT_BEFORE_MARGIN (5) earlier: clocks behind accept it.
    assert claims.expires_at - claims.not_before == 300 + 5
    assert body["url"].endswith("/videos/v_1/dash/manifest.mpd")


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": f"Basic {API_KEY}"},
        {"Authorization": "Bearer"},
        {"Authorization": API_KEY},
    ],
)
def test_missing_or_unknown_api_key_is_401(signer_url: str, headers: dict[str, str]) -> None:
    resp = httpx.post(
        f"{signer_url}/v1/playback-urls", json={"video_id": "demo"}, headers=headers, timeout=10
    )
    assert resp.status_code == 401
    assert resp.json()["error"] == "unauthorized"
    assert resp.headers["www-authenticate"] == "Bearer"
    # A wrong key and a missing one are different mistakes, with different fixes.
    presented = headers.get("Authorization", "").startswith("Bearer ") and headers != {
        "Authorization": "Bearer"
    }
    expected = "is not one of the signer's PLAYGATE_API_KEYS" if presented else "no API key: send"
    assert expected in resp.json()["message"]


def test_malformed_json_is_400(signer_url: str) -> None:
    resp = httpx.post(
        f"{signer_url}/v1/playback-urls",
        content=b'{"video_id":',
        headers={**AUTH, "Content-Type": "application/json"},
        timeout=10,
    )
    assert resp.status_code == 400
    assert resp.json()["error"] == "malformed_json"


def test_wrong_content_type_is_415(signer_url: str) -> None:
    resp = httpx.post(
        f"{signer_url}/v1/playback-urls",
        content=b"video_id=demo",
        headers={**AUTH, "Content-Type": "application/x-www-form-urlencoded"},
        timeout=10,
    )
    assert resp.status_code == 415


def test_oversized_body_is_413(signer_url: str) -> None:
    resp = post(signer_url, {"video_id": "demo", "session_id": "x" * 20000})
    assert resp.status_code == 413
    assert resp.json()["error"] == "body_too_large"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ([], "body"),
        ({}, "video_id"),
        ({"video_id": ""}, "video_id"),
        ({"video_id": "../etc"}, "video_id"),
        ({"video_id": "a/b"}, "video_id"),
        ({"video_id": "x" * 129}, "video_id"),
        ({"video_id": 12}, "video_id"),
        ({"video_id": "d", "ttl_seconds": 0}, "ttl_seconds"),
        ({"video_id": "d", "ttl_seconds": 3601}, "ttl_seconds"),
        ({"video_id": "d", "ttl_seconds": True}, "ttl_seconds"),
        ({"video_id": "d", "ttl_seconds": 1.5}, "ttl_seconds"),
        ({"video_id": "d", "ttl_seconds": "60"}, "ttl_seconds"),
        ({"video_id": "d", "client_ip": "300.1.1.1"}, "client_ip"),
        ({"video_id": "d", "client_ip": "10.0.0.1/8"}, "client_ip"),
        ({"video_id": "d", "client_ip": 7}, "client_ip"),
        ({"video_id": "d", "session_id": "a b"}, "session_id"),
        ({"video_id": "d", "file": "../x.m3u8"}, "file"),
        ({"video_id": "d", "file": "/abs.m3u8"}, "file"),
        ({"video_id": "d", "file": "a//b"}, "file"),
        ({"video_id": "d", "file": "%2e%2e/b"}, "file"),
        ({"video_id": "d", "extra": 1}, "extra"),
        ({"video_id": "d", "file": "x?token=abc"}, "file"),
        ({"video_id": "d", "file": "m%3F#x"}, "file"),
        ({"video_id": "d", "file": ".hidden/x.m3u8"}, "file"),
        ({"video_id": "d", "file": "a/../b.m3u8"}, "file"),
        ({"video_id": "d", "client_ip": "fe80::1%eth0"}, "client_ip"),
        ({"video_id": "d", "client_ip": "::ffff:0:0/64"}, "client_ip"),
    ],
)
def test_invalid_fields_are_422_with_field(signer_url: str, body: object, field: str) -> None:
    resp = post(signer_url, body)
    assert resp.status_code == 422, resp.text
    assert resp.json() == {
        "error": "invalid_field",
        "message": resp.json()["message"],
        "field": field,
    }


def test_unknown_route_and_method_are_json_4xx(signer_url: str) -> None:
    assert httpx.get(f"{signer_url}/nope", timeout=10).json()["error"] == "not_found"
    resp = httpx.get(f"{signer_url}/v1/playback-urls", timeout=10)
    assert resp.status_code == 405
    assert resp.json()["error"] == "method_not_allowed"
    assert resp.headers["allow"] == "POST"
    assert resp.headers["x-playgate-reason"] == "method_not_allowed"
    # A path with several methods lists them all (one route per method listed only one).
    resp = httpx.put(f"{signer_url}/v1/revocations", timeout=10)
    assert resp.status_code == 405
    assert {m.strip() for m in resp.headers["allow"].split(",")} == {"GET", "HEAD", "POST"}


def test_healthz_and_openapi(signer_url: str) -> None:
    assert httpx.get(f"{signer_url}/healthz", timeout=10).json()["status"] == "ok"
    spec = httpx.get(f"{signer_url}/openapi.json", timeout=10).json()
    assert spec["openapi"].startswith("3.")
    post_op = spec["paths"]["/v1/playback-urls"]["post"]
    assert {"201", "400", "401", "422"} <= set(post_op["responses"])


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)
bodies = st.one_of(
    json_values.map(lambda v: json.dumps(v).encode()),
    st.fixed_dictionaries(
        {"video_id": json_values},
        optional={"ttl_seconds": json_values, "client_ip": json_values, "file": json_values},
    ).map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=64),
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=bodies)
def test_no_body_ever_yields_a_5xx(signer_url: str, body: bytes) -> None:
    resp = httpx.post(
        f"{signer_url}/v1/playback-urls",
        content=body,
        headers={**AUTH, "Content-Type": "application/json"},
        timeout=10,
    )
    assert resp.status_code in (201, 400, 413, 422), resp.text
    if resp.status_code != 201:
        assert resp.json()["error"]
