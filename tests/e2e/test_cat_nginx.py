"""CTA-5007 CATs through the real nginx edge (auth_request): path form, ?CAT= and the
CTA-Common-Access-Token header, each request judged by the validator; catr renewal by header
and cookie on auth_request allows, and by redirect for manifests only."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from edge_validator.core.cat.claims import CATR, CATU
from edge_validator.core.cat.verify import CatVerifier
from edge_validator.core.keyring import encode_secret
from edge_validator.core.protocol import AUTH_ROUTE
from tests.support import factories
from tests.support.factories import MASTER, SAMPLES
from tests.support.nginx_edge import Edge, nginx_edge

KEYRING = factories.keyring()
SEGMENT = "/videos/demo/hls/v0/seg_000.ts"


@pytest.fixture(scope="module")
def edge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Edge]:
    prefix = tmp_path_factory.mktemp("nginx-cat")
    cat = CatVerifier(factories.cat_keyring(), factories.cat_policy())
    with nginx_edge(KEYRING, SAMPLES, prefix, cat=cat) as running:
        yield running


def test_a_path_form_cat_plays_and_is_judged_on_every_request(edge: Edge) -> None:
    token = factories.cat_token(now=time.time(), token_id="aa01")
    url = f"{edge.url}{factories.target(token, '/videos/demo/hls/v0/seg_000.ts')}"
    before = len(edge.auth_calls)
    for _ in range(2):
        assert httpx.get(url, timeout=10).status_code == 200
    assert len(edge.auth_calls) - before == 2  # no allow is ever reused


def test_the_cat_header_is_judged_on_every_request(edge: Edge) -> None:
    token = factories.cat_token(now=time.time(), token_id="aa02")
    headers = {"CTA-Common-Access-Token": token}
    before = len(edge.auth_calls)
    for _ in range(2):
        resp = httpx.get(f"{edge.url}{MASTER}", headers=headers, timeout=10)
        assert resp.status_code == 200
    assert len(edge.auth_calls) - before == 2
    resp = httpx.get(f"{edge.url}{MASTER}", timeout=10)
    assert (resp.status_code, resp.headers["x-playgate-reason"]) == (401, "missing")
    forged = {"CTA-Common-Access-Token": token[:-2] + ("AA" if token[-2:] != "AA" else "BA")}
    assert httpx.get(f"{edge.url}{MASTER}", headers=forged, timeout=10).status_code == 403


def test_the_cat_query_parameter_plays(edge: Edge) -> None:
    token = factories.cat_token(now=time.time(), token_id="aa03")
    resp = httpx.get(f"{edge.url}/videos/demo/hls/v0/seg_000.ts?CAT={token}", timeout=10)
    assert resp.status_code == 200
    assert resp.content == (Path(SAMPLES) / "videos/demo/hls/v0/seg_000.ts").read_bytes()


def test_with_the_native_verifier_cats_still_reach_the_validator(tmp_path: Path) -> None:
    keyring_file = tmp_path / "keyring.json"
    secrets = {"k1": encode_secret(factories.SECRET_A), "k2": encode_secret(factories.SECRET_B)}
    keyring_file.write_text(json.dumps({"active": "k1", "keys": secrets}))
    cat = CatVerifier(factories.cat_keyring(), factories.cat_policy())
    with nginx_edge(
        KEYRING, SAMPLES, tmp_path / "nginx", cat=cat, keyring_file=keyring_file
    ) as edge:
        own = f"{edge.url}{factories.target(factories.token(now=time.time()), SEGMENT)}"
        deadline = time.monotonic() + 20
        while True:  # until nginx decides PlayGate tokens itself (its first feed poll)
            asked = checks(edge)
            assert httpx.get(own, timeout=10).status_code == 200
            if checks(edge) == asked or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert checks(edge) == asked
        cat_token = factories.cat_token(now=time.time(), token_id="aa09")
        for url, headers in (
            (f"{edge.url}{factories.target(cat_token, SEGMENT)}", {}),
            (f"{edge.url}{SEGMENT}?CAT={cat_token}", {}),
            (f"{edge.url}{SEGMENT}", {"CTA-Common-Access-Token": cat_token}),
        ):
            asked = checks(edge)
            assert httpx.get(url, headers=headers, timeout=10).status_code == 200
            assert checks(edge) == asked + 1  # the validator judged the CAT
        # A renewal the validator gives rides on the native verifier's allow too.
        for catr, kind, header in (
            ({0: 2, 1: 600, 2: 60}, "header", "cta-common-access-token"),
            ({0: 1, 1: 600, 2: 60}, "cookie", "set-cookie"),
        ):
            due = due_cat(catr, "bb0a")
            resp = httpx.get(f"{edge.url}{factories.target(due, SEGMENT)}", timeout=10)
            assert (resp.status_code, resp.headers["x-playgate-renewal"]) == (200, kind)
            assert header in resp.headers


def checks(edge: Edge) -> int:
    return edge.auth_calls.count(AUTH_ROUTE)


def test_an_exact_path_cat_opens_its_one_file_only(edge: Edge) -> None:
    one_file = "/videos/demo/poster.jpg"  # its folder is the video scope
    token = factories.cat_token(now=time.time(), token_id="aa09", extra={CATU: {3: {0: one_file}}})
    allowed = httpx.get(f"{edge.url}{factories.target(token, one_file)}", timeout=10)
    assert allowed.status_code == 404  # allowed, and the origin has no such file
    refused = httpx.get(f"{edge.url}{factories.target(token, SEGMENT)}", timeout=10)
    assert (refused.status_code, refused.headers["x-playgate-reason"]) == (403, "out_of_scope")


# --- catr renewal through nginx (docs/cat.md#renewal) ------------------------------------------


def due_cat(catr: dict[int, object], token_id: str) -> str:
    """A CAT whose renewal is due now: 40 s left, deadline 60 s."""
    return factories.cat_token(now=time.time(), ttl=40, token_id=token_id, extra={CATR: catr})


def test_header_renewal_rides_on_the_auth_request_allow(edge: Edge) -> None:
    token = due_cat({0: 2, 1: 600, 2: 60}, "bb01")
    url = f"{edge.url}{factories.target(token, SEGMENT)}"
    before = len(edge.auth_calls)
    first = httpx.get(url, timeout=10)
    second = httpx.get(url, timeout=10)
    assert len(edge.auth_calls) - before == 2  # an allow in the renewal window is never kept
    assert first.status_code == 200
    assert first.content == (Path(SAMPLES) / SEGMENT.lstrip("/")).read_bytes()
    assert first.headers["x-playgate-renewal"] == "header"
    renewed = first.headers["cta-common-access-token"]
    assert renewed != token
    assert second.headers["x-playgate-renewal"] == "header"
    follow = httpx.get(f"{edge.url}{factories.target(renewed, SEGMENT)}", timeout=10)
    assert follow.status_code == 200
    assert "cta-common-access-token" not in follow.headers  # not due: nothing to hand over
    # A path-form manifest is answered by the shield location: the header passes through.
    manifest = httpx.get(f"{edge.url}{factories.target(token)}", timeout=10)
    assert (manifest.status_code, manifest.headers["x-playgate-renewal"]) == (200, "header")
    assert manifest.headers["cta-common-access-token"] != token


def test_a_header_carried_token_is_renewed_in_the_header_through_nginx(edge: Edge) -> None:
    token = due_cat({0: 0, 1: 600, 2: 60}, "bb02")
    resp = httpx.get(f"{edge.url}{SEGMENT}", headers={"CTA-Common-Access-Token": token}, timeout=10)
    assert (resp.status_code, resp.headers["x-playgate-renewal"]) == (200, "header")
    renewed = {"CTA-Common-Access-Token": resp.headers["cta-common-access-token"]}
    assert httpx.get(f"{edge.url}{SEGMENT}", headers=renewed, timeout=10).status_code == 200


def test_cookie_renewal_rides_on_the_auth_request_allow(edge: Edge) -> None:
    token = due_cat({0: 1, 1: 600, 2: 60, 3: "cta-common-access-token"}, "bb03")
    resp = httpx.get(f"{edge.url}{factories.target(token, SEGMENT)}", timeout=10)
    assert (resp.status_code, resp.headers["x-playgate-renewal"]) == (200, "cookie")
    assert resp.headers["set-cookie"].startswith("cta-common-access-token=")
    assert "Max-Age=" in resp.headers["set-cookie"]


def test_redirect_renewal_works_for_manifests_not_for_segments(edge: Edge) -> None:
    """A path-form manifest reaches the shield location, which can redirect; a segment goes
    through auth_request, which honours only 2xx/401/403: served, renewal refused, said so."""
    token = due_cat({0: 3, 1: 600, 2: 60}, "bb04")
    manifest = httpx.get(f"{edge.url}{factories.target(token)}", timeout=10)
    assert manifest.status_code == 302
    location = manifest.headers["location"]
    assert location.endswith(MASTER)
    assert token not in location
    assert httpx.get(f"{edge.url}{location}", timeout=10).status_code == 200
    segment = httpx.get(f"{edge.url}{factories.target(token, SEGMENT)}", timeout=10)
    assert segment.status_code == 200
    assert segment.headers["x-playgate-renewal"] == "refused; needs_redirect"
