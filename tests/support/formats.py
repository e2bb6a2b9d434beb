"""Factories for the CDN formats: one policy, keys for each format, the published vectors."""

from __future__ import annotations

import base64
import json
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from edge_validator.formats.policy import Policy
from edge_validator.formats.secure_link import SecureLinkKey
from tests.support.factories import SCOPE, TESTS

VECTORS = TESTS / "vectors" / "formats"
NOW = 1_767_200_000
SECURE_LINK_SECRET = "nginx-secure-link-secret-0123456789abcdef"


def vectors(name: str) -> Any:
    """A vector file of ``tests/vectors/formats`` (each names its source)."""
    return json.loads((VECTORS / f"{name}.json").read_text(encoding="utf-8"))


def policy(*, now: int = NOW, ttl: int = 300, **fields: Any) -> Policy:
    """A policy for the demo video valid from ``now`` for ``ttl`` seconds; override any field."""
    fields.setdefault("scope", SCOPE)
    fields.setdefault("expires_at", now + ttl)
    fields.setdefault("not_before", now)
    fields.setdefault("token_id", "tid-test")
    return Policy(**fields)


def secure_link_key(*, bind_client: bool = False) -> SecureLinkKey:
    return SecureLinkKey("sl1", SECURE_LINK_SECRET, bind_client=bind_client)


def _pem_private(key: Any) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def format_keys_json(public_url: str = "https://cdn.example.com") -> str:
    """A signer's format keys document: a private key for every format (generated per call)."""
    seed = ed25519.Ed25519PrivateKey.generate().private_bytes_raw()
    doc = {
        "public_url": public_url,
        "secure_link": [{"id": "sl1", "secret": SECURE_LINK_SECRET}],
        "akamai": [{"id": "ak1", "key_hex": "ab" * 32}],
        "cloudfront": [
            {
                "id": "K2ECDSA",
                "private_key_pem": _pem_private(ec.generate_private_key(ec.SECP256R1())),
            },
            {"id": "K1RSA", "private_key_pem": _pem_private(_RSA)},
        ],
        "jwt": [
            {
                "id": "jwt-ed",
                "alg": "EdDSA",
                "private_key_pem": _pem_private(ed25519.Ed25519PrivateKey.generate()),
            },
            {
                "id": "jwt-rs",
                "alg": "RS256",
                "private_key_pem": _pem_private(_RSA),
                "audience": "v",
            },
        ],
        "mediacdn": [
            {"id": "mcdn-1", "ed25519_seed": base64.urlsafe_b64encode(seed).decode()},
            {"id": "mcdn-mac", "hmac_secret": base64.urlsafe_b64encode(b"m" * 32).decode()},
        ],
    }
    return json.dumps(doc)


_RSA = rsa.generate_private_key(public_exponent=65537, key_size=2048)
