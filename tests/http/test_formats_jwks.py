"""Public keys at the edge: the signer's JWKS, fetched and kept by validators."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from edge_validator.asgi.app import create_app as create_validator
from edge_validator.core.errors import ConfigurationError, UnknownKey
from edge_validator.core.keyring import KeyRing
from edge_validator.formats import jwt_playback
from edge_validator.formats.accept import ForeignVerifier
from edge_validator.formats.jwks import JWKS_PATH, JwksCache, jwks_document, keys_from_jwks
from edge_validator.formats.jwt_playback import JwtKey
from edge_validator.formats.keys import FormatKeys
from edge_validator.settings import ValidatorSettings
from signer.api_keys import ApiKeys, hash_api_key
from signer.app import create_app as create_signer
from signer.settings import SignerSettings
from tests.support.factories import API_KEY, AUTH, SAMPLES
from tests.support.formats import format_keys_json, policy
from tests.support.servers import serve_app

ED = JwtKey("ed-1", "EdDSA", ed25519.Ed25519PrivateKey.generate())
ES = JwtKey("es-1", "ES256", ec.generate_private_key(ec.SECP256R1()))


def test_jwks_round_trip_pins_each_keys_algorithm() -> None:
    doc = jwks_document([ED, ES])
    assert {k["kid"]: k["alg"] for k in doc["keys"]} == {"ed-1": "EdDSA", "es-1": "ES256"}
    assert all("d" not in k for k in doc["keys"])  # public halves only
    keys = keys_from_jwks(doc)
    assert not keys["ed-1"].is_private
    token = jwt_playback.emit(policy(), ES)
    assert jwt_playback.verify(token, keys).key_id == "es-1"


@pytest.mark.parametrize(
    "doc",
    [{}, {"keys": [{"kty": "OKP"}]}, {"keys": [{**jwks_document([ED])["keys"][0], "alg": None}]}],
)
def test_jwks_entries_without_kid_or_alg_are_refused(doc: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        keys_from_jwks(doc)


class JwksServer:
    """A JWKS endpoint whose keys the test changes, counting fetches."""

    def __init__(self, *keys: JwtKey) -> None:
        self.keys = list(keys)
        self.hits = 0

    async def serve(self, request: Request) -> JSONResponse:
        self.hits += 1
        return JSONResponse(jwks_document(self.keys))

    def app(self) -> Starlette:
        return Starlette(routes=[Route(JWKS_PATH, self.serve)])


@pytest.fixture
def jwks_server() -> Iterator[tuple[JwksServer, str]]:
    server = JwksServer(ED)
    with serve_app(server.app()) as url:
        yield server, url + JWKS_PATH


def test_a_new_key_reaches_the_validator_without_a_redeploy(
    jwks_server: tuple[JwksServer, str],
) -> None:
    asyncio.run(_new_key_reaches_the_validator(*jwks_server))


async def _new_key_reaches_the_validator(server: JwksServer, url: str) -> None:
    now = time.time()
    verifier = ForeignVerifier(FormatKeys(), ("jwt",), jwks=JwksCache(url, min_interval=0))
    first = "/t/" + jwt_playback.emit(policy(now=int(now)), ED) + "/videos/demo/master.m3u8"
    assert await verifier.authorize_async(first, {}, None, now) is not None
    server.keys.append(ES)  # the signer adds a key
    second = "/t/" + jwt_playback.emit(policy(now=int(now)), ES) + "/videos/demo/master.m3u8"
    assert await verifier.authorize_async(second, {}, None, now) is not None
    assert server.hits == 2
    server.keys = [ES]  # and retires the first: what was verified with it is forgotten
    await verifier._refresh(verifier.jwks, now)  # type: ignore[arg-type]
    with pytest.raises(UnknownKey):
        verifier.authorize(first, {}, None, now)


def test_a_flood_of_unknown_key_ids_costs_one_fetch_per_interval(
    jwks_server: tuple[JwksServer, str],
) -> None:
    asyncio.run(_flood(*jwks_server))


async def _flood(server: JwksServer, url: str) -> None:
    now = time.time()
    verifier = ForeignVerifier(FormatKeys(), ("jwt",), jwks=JwksCache(url, min_interval=30))
    for n in range(20):
        stranger = JwtKey(f"nope-{n}", "EdDSA", ed25519.Ed25519PrivateKey.generate())
        token = jwt_playback.emit(policy(now=int(now)), stranger)
        with pytest.raises(UnknownKey):
            await verifier.authorize_async(f"/t/{token}/videos/demo/x.ts", {}, None, now + n)
    assert server.hits == 1


def test_an_unreachable_jwks_keeps_the_last_copy() -> None:
    cache = JwksCache("http://127.0.0.1:9/jwks.json", min_interval=0, timeout=0.5)
    assert asyncio.run(cache.refresh(time.time())) is False
    assert cache.keys == {}


def test_the_signer_publishes_its_jwks_and_a_validator_with_only_the_url_verifies() -> None:
    keyring = KeyRing({"k1": b"J" * 32}, "k1")
    signer_keys = FormatKeys.from_json(format_keys_json())
    with serve_app(create_validator(ValidatorSettings(keyring=keyring))) as placeholder:
        settings = SignerSettings(
            keyring=keyring,
            api_keys=ApiKeys({"test": hash_api_key(API_KEY)}),
            public_url=placeholder,
            format_keys=signer_keys,
        )
        with serve_app(create_signer(settings, contract_check=True)) as signer:
            doc = httpx.get(signer + JWKS_PATH, timeout=10)
            assert doc.status_code == 200
            assert {k["kid"] for k in doc.json()["keys"]} == {"jwt-ed", "jwt-rs"}
            assert all("d" not in k for k in doc.json()["keys"])
            # The validator holds no JWT key, only where to fetch them.
            validator = ValidatorSettings(
                keyring=keyring,
                media_root=SAMPLES,
                accept_formats=("jwt",),
                jwks=JwksCache(signer + JWKS_PATH),
            )
            with serve_app(create_validator(validator)) as shield:
                issued = httpx.post(
                    f"{signer}/v1/playback-urls",
                    json={"video_id": "demo", "format": "jwt"},
                    headers=AUTH,
                    timeout=10,
                ).json()
                url = str(issued["url"]).replace(placeholder, shield)
                assert httpx.get(url, timeout=10).status_code == 200
