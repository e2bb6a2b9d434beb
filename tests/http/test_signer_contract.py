"""The signer's OpenAPI document is generated from the routes' declarations, and a route that
raises an error it did not declare is caught (the suite's signer runs in contract-check mode)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

import signer.app
from signer.api_keys import ApiKeys, hash_api_key
from signer.openapi import Endpoint
from signer.settings import SignerSettings
from tests.support import factories
from tests.support.factories import API_KEY, AUTH
from tests.support.servers import serve_app


def test_openapi_lists_every_error_each_route_declares(signer_url: str) -> None:
    doc = httpx.get(f"{signer_url}/openapi.json", timeout=10).json()
    paths = doc["paths"]
    for path, methods in paths.items():
        for method, op in methods.items():
            for status, answer in op["responses"].items():
                assert answer["description"], (path, method, status)
    post = paths["/v1/playback-urls"]["post"]["responses"]
    assert {"201", "400", "401", "403", "413", "415", "422", "429", "503"} == set(post)
    revoke = paths["/v1/revocations"]["post"]["responses"]
    assert {"201", "202", "400", "401", "403", "413", "415", "422", "429", "501", "503"} == set(
        revoke
    )
    unavailable = revoke["503"]["content"]["application/json"]["schema"]["properties"]["error"]
    assert unavailable["enum"] == ["store_unavailable", "store_busy", "not_replicated"]
    queued = revoke["202"]["content"]["application/json"]["schema"]
    assert "queued" in queued["required"]
    forbidden = revoke["403"]["content"]["application/json"]["schema"]["properties"]["error"]
    assert forbidden["enum"] == ["missing_scope", "video_not_allowed"]
    listing = paths["/v1/revocations"]["get"]["responses"]
    assert {"200", "401", "403", "503"} == set(listing)
    error = post["503"]["content"]["application/json"]["schema"]["properties"]["error"]
    assert error["enum"] == ["store_unavailable", "store_busy"]  # down, or every connection busy


@pytest.fixture
def undeclaring_signer(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A signer whose playback route forgets that it can answer 401."""
    declared = signer.app.endpoints

    def forgetful(*args: object) -> list[Endpoint]:
        routes = declared(*args)  # type: ignore[arg-type]
        first = routes[0]
        raises = tuple(e for e in first.raises if e.status != 401)
        return [Endpoint(**{**first.__dict__, "raises": raises}), *routes[1:]]

    monkeypatch.setattr(signer.app, "endpoints", forgetful)
    settings = SignerSettings(
        keyring=factories.keyring(), api_keys=ApiKeys({"test": hash_api_key(API_KEY)})
    )
    with serve_app(signer.app.create_app(settings, contract_check=True)) as url:
        yield url


def test_an_undeclared_error_is_caught_in_contract_check_mode(undeclaring_signer: str) -> None:
    url = f"{undeclaring_signer}/v1/playback-urls"
    resp = httpx.post(url, json={"video_id": "demo"}, timeout=10)
    assert resp.status_code == 500
    assert resp.json() == {"error": "undeclared_error", "reason": "unauthorized"}
    # Declared errors pass through as usual.
    resp = httpx.post(url, content=b"{", headers={**AUTH, "Content-Type": "application/json"})
    assert (resp.status_code, resp.json()["error"]) == (400, "malformed_json")
