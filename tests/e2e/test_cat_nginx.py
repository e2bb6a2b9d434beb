"""CTA-5007 CATs through the real nginx edge (auth_request): path form, ?CAT= and the
CTA-Common-Access-Token header, with the grant cache on; a header token is never kept."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

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
    with nginx_edge(KEYRING, SAMPLES, prefix, grant_cache_seconds=30, cat=cat) as running:
        yield running


def test_a_path_form_cat_plays_and_its_allow_is_kept(edge: Edge) -> None:
    token = factories.cat_token(now=time.time(), token_id="aa01")
    url = f"{edge.url}{factories.target(token, '/videos/demo/hls/v0/seg_000.ts')}"
    before = len(edge.auth_calls)
    for _ in range(2):
        assert httpx.get(url, timeout=10).status_code == 200
    assert len(edge.auth_calls) - before == 1  # the second request used the kept allow


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


def checks(edge: Edge) -> int:
    return edge.auth_calls.count(AUTH_ROUTE)
