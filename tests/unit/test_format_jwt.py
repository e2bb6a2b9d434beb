"""JWT playback tokens as Mux and Cloudflare Stream sign them; algorithms pinned per key id."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from edge_validator.core.errors import (
    BadSignature,
    ConfigurationError,
    Expired,
    MalformedToken,
    MissingToken,
    NotYetValid,
    OutOfScope,
    UnknownKey,
)
from edge_validator.formats import jwt_playback
from edge_validator.formats.jwt_playback import JwtKey
from edge_validator.formats.policy import judge
from tests.support.formats import NOW, policy

RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
SIGNING = {
    "RS256": JwtKey("mux-rs", "RS256", RSA_KEY, audience="v"),
    "ES256": JwtKey("es", "ES256", ec.generate_private_key(ec.SECP256R1())),
    "EdDSA": JwtKey("ed", "EdDSA", ed25519.Ed25519PrivateKey.generate()),
}
PUBLIC = {key.kid: key.public() for key in SIGNING.values()}
ENTRY = "/videos/demo/master.m3u8"


@pytest.mark.parametrize("algorithm", sorted(SIGNING))
def test_emitted_tokens_verify_with_the_public_key_only(algorithm: str) -> None:
    path = jwt_playback.emit_path(policy(session_id="s-1"), SIGNING[algorithm])
    token, _, rest = path.removeprefix("/t/").partition("/")
    assert f"/{rest}" == ENTRY
    assert jwt.get_unverified_header(token) == {
        "alg": algorithm,
        "kid": SIGNING[algorithm].kid,
        "typ": "JWT",
    }
    access = jwt_playback.verify(token, PUBLIC)
    assert (access.scope, access.token_id, access.session_id) == (
        "/videos/demo/",
        "tid-test",
        "s-1",
    )
    assert judge(access, "/videos/demo/hls/v0/seg_001.ts", None, NOW)
    with pytest.raises(OutOfScope):
        judge(access, "/videos/demo2/master.m3u8", None, NOW)
    with pytest.raises(Expired):
        judge(access, ENTRY, None, NOW + 1000)
    with pytest.raises(NotYetValid):
        judge(access, ENTRY, None, NOW - 100)


def test_a_token_signed_as_mux_documents_it_verifies() -> None:
    # Mux's signed playback: RS256, kid = signing key id, sub = playback id, aud "v", exp.
    token = jwt.encode(
        {"sub": "demo", "aud": "v", "exp": NOW + 600, "kid": "mux-rs"},
        RSA_KEY,
        algorithm="RS256",
        headers={"kid": "mux-rs"},
    )
    access = jwt_playback.verify(token, PUBLIC)
    assert (access.scope, access.not_before, access.token_id) == ("/videos/demo/", 0, None)
    thumbnail = jwt.encode(
        {"sub": "demo", "aud": "t", "exp": NOW + 600}, RSA_KEY, "RS256", {"kid": "mux-rs"}
    )
    with pytest.raises(OutOfScope):
        jwt_playback.verify(thumbnail, PUBLIC)
    no_aud = jwt.encode({"sub": "demo", "exp": NOW + 600}, RSA_KEY, "RS256", {"kid": "mux-rs"})
    with pytest.raises(MalformedToken):
        jwt_playback.verify(no_aud, PUBLIC)


def test_a_token_signed_as_cloudflare_stream_documents_it_verifies() -> None:
    # Cloudflare Stream: kid in header and claims, sub = video uid, exp, nbf; no aud.
    key = SIGNING["ES256"].key
    claims = {"sub": "demo", "kid": "es", "exp": NOW + 600, "nbf": NOW, "accessRules": []}
    access = jwt_playback.verify(jwt.encode(claims, key, "ES256", {"kid": "es"}), PUBLIC)
    assert (access.scope, access.not_before) == ("/videos/demo/", NOW)


def _forge(header: dict[str, object], claims: dict[str, object], signature: bytes) -> str:
    def part(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    return ".".join(
        [part(json.dumps(header).encode()), part(json.dumps(claims).encode()), part(signature)]
    )


def test_the_algorithm_comes_from_the_key_never_from_the_header() -> None:
    claims = {"sub": "demo", "aud": "v", "exp": NOW + 600}
    public_pem = RSA_KEY.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    # The classic confusion: HS256 keyed with the RSA public key.
    header = {"alg": "HS256", "kid": "mux-rs"}
    unsigned = _forge(header, claims, b"").rsplit(".", 1)[0]
    mac = hmac.new(public_pem, unsigned.encode(), hashlib.sha256).digest()
    with pytest.raises(BadSignature):
        jwt_playback.verify(_forge(header, claims, mac), PUBLIC)
    with pytest.raises((BadSignature, MalformedToken)):
        jwt_playback.verify(_forge({"alg": "none", "kid": "mux-rs"}, claims, b"x"), PUBLIC)
    # An ES256 token under the RS256 key's id.
    es = jwt.encode(claims, SIGNING["ES256"].key, "ES256", {"kid": "mux-rs"})
    with pytest.raises(BadSignature):
        jwt_playback.verify(es, PUBLIC)


@pytest.mark.parametrize(
    ("token", "error"),
    [
        (None, MissingToken),
        ("", MissingToken),
        ("a.b", MalformedToken),
        ("a.b.c" + "x" * 3000, MalformedToken),
        (_forge({"alg": "ES256", "kid": "nope"}, {"sub": "demo"}, b"x"), UnknownKey),
        (_forge({"alg": "ES256"}, {"sub": "demo"}, b"x"), UnknownKey),
    ],
)
def test_missing_malformed_and_unknown(token: str | None, error: type[Exception]) -> None:
    with pytest.raises(error):
        jwt_playback.verify(token, PUBLIC)


@pytest.mark.parametrize(
    "claims",
    [
        {"sub": "demo"},
        {"exp": NOW + 60},
        {"sub": "../etc", "exp": NOW + 60},
        {"sub": "demo", "exp": "soon"},
        {"sub": "demo", "exp": NOW + 60, "jti": "a b"},
    ],
)
def test_claims_that_are_not_a_playback_token(claims: dict[str, object]) -> None:
    token = jwt.encode(claims, SIGNING["EdDSA"].key, "EdDSA", {"kid": "ed"})
    with pytest.raises(MalformedToken):
        jwt_playback.verify(token, PUBLIC)


def test_keys_and_policies_that_cannot_be_used() -> None:
    with pytest.raises(ConfigurationError):
        JwtKey("k", "HS256", b"secret" * 8)
    with pytest.raises(ConfigurationError):
        JwtKey("k", "ES256", RSA_KEY)
    with pytest.raises(ConfigurationError):
        JwtKey("k", "ES256", ec.generate_private_key(ec.SECP384R1()))
    with pytest.raises(ValueError, match="client"):
        jwt_playback.emit(policy(client_network="192.0.2.1/32"), SIGNING["EdDSA"])
    with pytest.raises(ValueError, match="public"):
        jwt_playback.emit(policy(), PUBLIC["ed"])
    assert "PRIVATE" not in repr(SIGNING["RS256"])
