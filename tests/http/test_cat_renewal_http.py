"""catr renewal through real servers: the origin shield and the nginx auth_request endpoint
under uvicorn, state in the validator's store (revocation checked before any renewal)."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY

from edge_validator.asgi.app import create_app as create_validator
from edge_validator.cat_es256 import load_es256
from edge_validator.core.cat.claims import CATR
from edge_validator.core.cat.keys import CatKeyRing
from edge_validator.core.cat.verify import CatVerifier
from edge_validator.core.keyring import KeyRing
from edge_validator.settings import ValidatorSettings
from edge_validator.state import Revocation, StateGuard
from edge_validator.state.memory import MemoryStore
from edge_validator.state.settings import StateSettings
from tests.support import factories
from tests.support.factories import CAT_ES256, CAT_SECRET, MASTER, SAMPLES
from tests.support.servers import serve_app

CAT = "CTA-Common-Access-Token"
RENEWAL = "X-PlayGate-Renewal"
STORE = MemoryStore()


def edge_ring() -> CatKeyRing:
    """The HS256 secret, and only the public half of the ES256 key (an edge with no secret)."""
    k = base64.urlsafe_b64encode(CAT_SECRET).rstrip(b"=").decode()
    public = {name: v for name, v in CAT_ES256.items() if name != "d"}
    doc = {"keys": {"c1": {"alg": "HS256", "k": k}, "e1": public}}
    return CatKeyRing.from_json(json.dumps(doc), es256=load_es256)


@pytest.fixture(scope="module")
def edge(keyring: KeyRing) -> Iterator[str]:
    cat = CatVerifier(edge_ring(), factories.cat_policy())
    settings = ValidatorSettings(keyring=keyring, media_root=SAMPLES, cat=cat)
    guard = StateGuard(STORE, StateSettings())
    with serve_app(create_validator(settings, guard=guard)) as url:
        yield url


def due(catr: dict[int, Any], **fields: Any) -> str:
    """A CAT with ``catr`` whose renewal is due now (40 s left, deadline 60 s)."""
    fields.setdefault("token_id", "0b71cafe")
    return factories.cat_token(now=time.time(), ttl=40, extra={CATR: catr}, **fields)


def expires_in(token: str, edge: str) -> int:
    """Seconds the edge says the token has left (its max-age on an allowed segment)."""
    resp = httpx.get(f"{edge}/t/{token}/videos/demo/hls/v0/seg_000.ts", timeout=10)
    assert resp.status_code == 200, resp.headers
    return int(resp.headers["cache-control"].rpartition("=")[2])


def test_header_renewal_hands_a_longer_token_over_in_the_response(edge: str) -> None:
    token = due({0: 2, 1: 600, 2: 60})
    resp = httpx.get(f"{edge}{factories.target(token)}", timeout=10)
    assert resp.status_code == 200
    assert resp.headers[RENEWAL] == "header"
    renewed = resp.headers[CAT]
    assert renewed != token
    assert expires_in(renewed, edge) > 500
    # The renewed token is not due yet: it plays without another renewal.
    again = httpx.get(f"{edge}{factories.target(renewed)}", timeout=10)
    assert (again.status_code, again.headers.get(RENEWAL)) == (200, None)


def test_a_header_carried_token_is_renewed_in_the_header(edge: str) -> None:
    token = due({0: 0, 1: 600, 2: 60})  # automatic: the way it came
    resp = httpx.get(f"{edge}{MASTER}", headers={CAT: token}, timeout=10)
    assert (resp.status_code, resp.headers[RENEWAL]) == (200, "header")
    follow = httpx.get(f"{edge}{MASTER}", headers={CAT: resp.headers[CAT]}, timeout=10)
    assert (follow.status_code, follow.headers.get(RENEWAL)) == (200, None)


def test_redirect_renewal_sends_the_player_to_the_same_path_under_the_new_token(edge: str) -> None:
    token = due({0: 3, 1: 600, 2: 60})
    resp = httpx.get(f"{edge}{factories.target(token)}?lang=en", timeout=10)
    assert (resp.status_code, resp.headers[RENEWAL]) == (302, "redirect")
    assert resp.headers["cache-control"] == "no-store"
    location = resp.headers["location"]
    assert location.endswith("/videos/demo/master.m3u8?lang=en")
    assert token not in location
    # A player follows it, and relative URIs resolve under the renewed token.
    played = httpx.get(f"{edge}{location}", timeout=10)
    assert played.status_code == 200
    assert "#EXTM3U" in played.text


def test_query_redirect_renewal_keeps_the_cat_parameter(edge: str) -> None:
    token = due({0: 0, 1: 600, 2: 60})
    resp = httpx.get(f"{edge}/videos/demo/hls/v0/seg_000.ts?CAT={token}", timeout=10)
    assert resp.status_code == 302
    location = resp.headers["location"]
    assert location.startswith("/videos/demo/hls/v0/seg_000.ts?CAT=")
    assert httpx.get(f"{edge}{location}", timeout=10).status_code == 200


def test_cookie_renewal_sets_the_cookie_named_in_catr(edge: str) -> None:
    token = due({0: 1, 1: 600, 2: 60, 3: "cta-common-access-token"})
    resp = httpx.get(f"{edge}{factories.target(token)}", timeout=10)
    assert (resp.status_code, resp.headers[RENEWAL]) == (200, "cookie")
    cookie = resp.headers["set-cookie"]
    name, _, rest = cookie.partition("=")
    value, _, attributes = rest.partition(";")
    assert name == "cta-common-access-token"
    assert "Max-Age=600" in attributes or "Max-Age=599" in attributes
    assert expires_in(value, edge) > 500


def renewals(delivery: str) -> float:
    """The validator's renewal counter (it runs in this process: its registry is this one's)."""
    value = REGISTRY.get_sample_value("playgate_cat_renewals_total", {"delivery": delivery})
    return value or 0.0


@pytest.mark.parametrize(("mode", "delivery"), [(2, "header"), (1, "cookie"), (3, "redirect")])
def test_each_renewal_is_counted_by_how_it_was_delivered(
    edge: str, mode: int, delivery: str
) -> None:
    before = {d: renewals(d) for d in ("header", "cookie", "redirect")}
    token = due({0: mode, 1: 600, 2: 60})
    resp = httpx.get(f"{edge}{factories.target(token)}", timeout=10)
    assert resp.headers[RENEWAL] == delivery
    after = {d: renewals(d) for d in before}
    assert after == {**before, delivery: before[delivery] + 1}
    # A token not yet due is not renewed, nor counted.
    fresh = factories.cat_token(now=time.time(), ttl=600, extra={CATR: {0: mode, 1: 600, 2: 60}})
    assert RENEWAL not in httpx.get(f"{edge}{factories.target(fresh)}", timeout=10).headers
    assert {d: renewals(d) for d in before} == after


def test_a_revoked_token_is_refused_not_renewed(edge: str) -> None:
    token = due({0: 2, 1: 600, 2: 60}, token_id="0badcafe")
    assert httpx.get(f"{edge}{factories.target(token)}", timeout=10).headers[RENEWAL] == "header"
    now = time.time()
    asyncio.run(STORE.revoke(Revocation("token_id", "0badcafe", now, now + 3600)))
    deadline = time.monotonic() + 10
    while True:  # the validator's view follows the store within its sync interval
        resp = httpx.get(f"{edge}{factories.target(token)}", timeout=10)
        if resp.status_code != 200 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert resp.status_code == 403
    assert resp.headers["x-playgate-reason"] == "revoked"
    assert RENEWAL not in resp.headers
    assert CAT not in resp.headers


def test_an_edge_without_the_es256_private_key_serves_but_refuses_to_renew(edge: str) -> None:
    token = due({0: 2, 1: 600, 2: 60}, key_id="e1")
    resp = httpx.get(f"{edge}{factories.target(token)}", timeout=10)
    assert resp.status_code == 200
    assert resp.headers[RENEWAL] == "refused; no_signing_key"
    assert CAT not in resp.headers


def test_auth_request_carries_header_and_cookie_renewals(
    edge: str,
) -> None:
    for catr, expect in (
        ({0: 2, 1: 600, 2: 60}, "header"),
        ({0: 1, 1: 600, 2: 60}, "cookie"),
        ({0: 3, 1: 600, 2: 60}, "refused; needs_redirect"),
        ({0: 2, 1: 600, 2: 60, 4: "X-Other"}, "refused; header_name"),
    ):
        token = due(catr)
        headers = {"X-Original-URI": factories.target(token, "/videos/demo/hls/v0/seg_000.ts")}
        resp = httpx.get(f"{edge}/auth", headers=headers, timeout=10)
        assert (resp.status_code, resp.headers[RENEWAL]) == (204, expect)
        assert resp.headers["cache-control"] == "no-store"
        assert (CAT in resp.headers) is (expect == "header")
        assert ("set-cookie" in resp.headers) is (expect == "cookie")
    # Not yet due: an ordinary allow.
    token = factories.cat_token(now=time.time(), ttl=300, extra={CATR: {0: 2, 1: 600, 2: 60}})
    headers = {"X-Original-URI": factories.target(token, "/videos/demo/hls/v0/seg_000.ts")}
    resp = httpx.get(f"{edge}/auth", headers=headers, timeout=10)
    assert resp.status_code == 204
    assert RENEWAL not in resp.headers


def test_the_signer_issues_catr_and_the_edge_renews_it(keyring: KeyRing, edge: str) -> None:
    from signer.api_keys import ApiKeys, hash_api_key
    from signer.app import create_app as create_signer
    from signer.issuing import CatIssuer
    from signer.settings import SignerSettings

    signer = SignerSettings(
        keyring=keyring,
        api_keys=ApiKeys({"test": hash_api_key(factories.API_KEY)}),
        public_url=edge,
        cat=CatIssuer(factories.cat_keyring(), factories.cat_policy()),
    )
    with serve_app(create_signer(signer, contract_check=True)) as signer_url:

        def issue(**body: object) -> httpx.Response:
            body = {"video_id": "demo", "format": "cat", **body}
            return httpx.post(
                f"{signer_url}/v1/playback-urls", json=body, headers=factories.AUTH, timeout=10
            )

        issued = issue(ttl_seconds=30, cat_renewal="redirect:900:60")
        assert issued.status_code == 201, issued.text
        first = httpx.get(issued.json()["url"], timeout=10)
        assert first.status_code == 302  # 30 s left, deadline 60 s: renewed at once
        assert httpx.get(f"{edge}{first.headers['location']}", timeout=10).status_code == 200
        for bad in (
            {"cat_renewal": "sideways:10"},
            {"cat_renewal": "header:0"},
            {"cat_renewal": "header:60", "format": "playgate"},
        ):
            refused = issue(**bad)
            assert (refused.status_code, refused.json()["field"]) == (422, "cat_renewal")
