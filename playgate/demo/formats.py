"""The demo's keys for every CDN format, generated at start (docs/formats.md).

The demo's shield accepts every format and its signer issues any of them (``"format"``), so a
URL in any format plays through the demo. CloudFront and Media CDN sign the viewers' host into
their tokens: here, the demo's edge.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from edge_validator.formats.keys import FormatKeys


def _pem(key: ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode("ascii")


def _seed() -> str:
    raw = ed25519.Ed25519PrivateKey.generate().private_bytes_raw()
    return base64.urlsafe_b64encode(raw).decode()


def demo_format_keys(public_url: str, path: Path) -> FormatKeys:
    """New keys for every format, written (mode 600) to ``path`` for the curious."""
    doc = {
        "public_url": public_url,
        "secure_link": [{"id": "demo-sl", "secret": secrets.token_urlsafe(32)}],
        "akamai": [{"id": "demo-ak", "key_hex": secrets.token_hex(32)}],
        "cloudfront": [
            {"id": "KDEMO", "private_key_pem": _pem(ec.generate_private_key(ec.SECP256R1()))}
        ],
        "jwt": [
            {
                "id": "demo-jwt",
                "alg": "EdDSA",
                "private_key_pem": _pem(ed25519.Ed25519PrivateKey.generate()),
            }
        ],
        "mediacdn": [{"id": "demo-mcdn", "ed25519_seed": _seed()}],
        # The shield's own key for Media CDN long tokens (dual-token exchange).
        "mediacdn_long": [{"id": "demo-mcdn-long", "ed25519_seed": _seed()}],
    }
    text = json.dumps(doc, indent=1)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    return FormatKeys.from_json(text)
