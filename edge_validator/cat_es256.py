"""ES256 (ECDSA P-256 with SHA-256) keys for CAT, through the ``cryptography`` package.

Outside the stdlib core on purpose: the Lambda@Edge bundle has no ``cryptography``, so there a
key ring holding an ES256 key refuses to load instead of failing per request. Edges that must
hold no secret verify with the public part (``x``, ``y``); the signer also holds ``d``.
"""

from __future__ import annotations

from collections.abc import Mapping

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from .core.errors import ConfigurationError
from .core.keyring import decode_secret

_COORD = 32
_ECDSA = ec.ECDSA(hashes.SHA256())


class Es256Key:
    """A P-256 public key (and optionally its private scalar); COSE signatures are r || s."""

    __slots__ = ("_private", "_public")

    def __init__(
        self, public: ec.EllipticCurvePublicKey, private: ec.EllipticCurvePrivateKey | None
    ):
        self._public = public
        self._private = private

    @property
    def can_sign(self) -> bool:
        return self._private is not None

    def verify(self, signature: bytes, message: bytes) -> bool:
        if len(signature) != 2 * _COORD:
            return False
        r = int.from_bytes(signature[:_COORD], "big")
        s = int.from_bytes(signature[_COORD:], "big")
        try:
            self._public.verify(encode_dss_signature(r, s), message, _ECDSA)
        except InvalidSignature:
            return False
        return True

    def sign(self, message: bytes) -> bytes:
        if self._private is None:
            raise ConfigurationError("this ES256 key has no private part (d): it cannot sign")
        r, s = decode_dss_signature(self._private.sign(message, _ECDSA))
        return r.to_bytes(_COORD, "big") + s.to_bytes(_COORD, "big")

    def __repr__(self) -> str:
        return "Es256Key(<P-256>)"


def _coordinate(spec: Mapping[str, str], name: str, key_id: str) -> int:
    raw = decode_secret(spec[name]) if name in spec else b""
    if len(raw) != _COORD:
        raise ConfigurationError(f"CAT key {key_id!r}: {name!r} must be 32 bytes, base64url")
    return int.from_bytes(raw, "big")


def load_es256(key_id: str, spec: Mapping[str, str]) -> Es256Key:
    """The ES256 key of a CAT key ring entry ``{"alg": "ES256", "x", "y"[, "d"]}``."""
    if not set(spec) <= {"alg", "x", "y", "d"}:
        raise ConfigurationError(f'CAT key {key_id!r}: an ES256 key has "x", "y" and "d" only')
    numbers = ec.EllipticCurvePublicNumbers(
        _coordinate(spec, "x", key_id), _coordinate(spec, "y", key_id), ec.SECP256R1()
    )
    try:
        public = numbers.public_key()
        private = (
            ec.derive_private_key(_coordinate(spec, "d", key_id), ec.SECP256R1())
            if "d" in spec
            else None
        )
    except ValueError:
        raise ConfigurationError(f"CAT key {key_id!r} is not a P-256 key") from None
    if private is not None and private.public_key().public_numbers() != numbers:
        raise ConfigurationError(f"CAT key {key_id!r}: d does not match x and y")
    return Es256Key(public, private)
