"""The keys of every foreign format, read once from one JSON document (``PLAYGATE_FORMAT_KEYS``).

The signer holds private keys and signs with the first private key listed per format; a
validator keeps only the public half of each asymmetric key (``public_only``), so an edge that
verifies CloudFront, JWT or Media CDN Ed25519 tokens holds no secret that can sign. HMAC and MD5
formats (Akamai, nginx secure_link, Media CDN HMAC short tokens) are shared secrets by nature.

    {"public_url": "https://cdn.example.com",
     "secure_link": [{"id": "sl1", "secret": "<32+ chars>", "bind_client": false}],
     "akamai": [{"id": "ak1", "key_hex": "<64+ hex digits>"}],
     "cloudfront": [{"id": "K2JCJMDEHXQW5F", "private_key_pem": "..."}],
     "jwt": [{"id": "kid-1", "alg": "EdDSA", "public_key_pem": "...", "audience": "v"}],
     "mediacdn": [{"id": "key-1", "ed25519_seed": "<b64>"}, {"id": "mac", "hmac_secret": "<b64>"}],
     "mediacdn_long": [{"id": "long-1", "ed25519_seed": "<b64>"}]}

``mediacdn_long``: the Ed25519 key(s) a validator signs Media CDN long tokens with when it
exchanges a short token (``mediacdn_dual``); the first private one signs, all verify.

Private keys are given as ``private_key_pem`` (or ``ed25519_seed``), public ones as
``public_key_pem`` (or ``ed25519_public``). Secrets never appear in a repr or an error.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from ..core.errors import ConfigurationError
from .akamai import AkamaiKey
from .cloudfront import CloudFrontPublicKey, CloudFrontSigningKey
from .jwt_playback import JwtKey
from .mediacdn import MediaCdnHmacKey, MediaCdnKey
from .secure_link import SecureLinkKey

FORMATS = ("cloudfront", "akamai", "mediacdn", "secure_link", "jwt")
CloudFrontKey = CloudFrontSigningKey | CloudFrontPublicKey
MediaKey = MediaCdnKey | MediaCdnHmacKey


@dataclass(frozen=True)
class FormatKeys:
    """Every format's keys, by format, in the order listed (the first private key signs)."""

    public_url: str | None = None
    secure_link: tuple[SecureLinkKey, ...] = ()
    akamai: tuple[AkamaiKey, ...] = ()
    cloudfront: dict[str, CloudFrontKey] = field(default_factory=dict)
    jwt: dict[str, JwtKey] = field(default_factory=dict)
    mediacdn: dict[str, MediaKey] = field(default_factory=dict)
    # Media CDN dual-token long tokens: a keyset of their own (mediacdn_dual.py).
    mediacdn_long: dict[str, MediaCdnKey] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if set(self.mediacdn) & set(self.mediacdn_long):
            raise ConfigurationError("format keys: mediacdn and mediacdn_long share a key id")

    def configured(self) -> tuple[str, ...]:
        return tuple(name for name in FORMATS if getattr(self, name))

    def public_only(self) -> FormatKeys:
        """What a validator keeps: the public half of every asymmetric key."""
        cloudfront: dict[str, CloudFrontKey] = {k: _public(v) for k, v in self.cloudfront.items()}
        mediacdn = {
            k: v.public() if isinstance(v, MediaCdnKey) else v for k, v in self.mediacdn.items()
        }
        jwt = {k: v.public() for k, v in self.jwt.items()}
        long = {k: v.public() for k, v in self.mediacdn_long.items()}
        return FormatKeys(
            self.public_url, self.secure_link, self.akamai, cloudfront, jwt, mediacdn, long
        )

    @classmethod
    def from_file(cls, path: str) -> FormatKeys:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigurationError(f"cannot read the format keys file: {exc.strerror}") from None
        return cls.from_json(text)

    @classmethod
    def from_json(cls, text: str) -> FormatKeys:
        try:
            doc = json.loads(text)
        except ValueError:
            raise ConfigurationError("the format keys are not JSON") from None
        if not isinstance(doc, dict) or not set(doc) <= {"public_url", *FORMATS, "mediacdn_long"}:
            raise ConfigurationError(
                f"format keys: an object of public_url, {', '.join(FORMATS)}, mediacdn_long"
            )
        public_url = doc.get("public_url")
        if public_url is not None and (
            not isinstance(public_url, str)
            or not public_url.startswith(("http://", "https://"))
            or public_url.endswith("/")
        ):
            raise ConfigurationError("format keys: public_url is http(s)://host without a '/'")
        try:
            return cls(
                public_url,
                tuple(_secure_link(e) for e in _entries(doc, "secure_link")),
                tuple(_akamai(e) for e in _entries(doc, "akamai")),
                {_id(e): _cloudfront(e) for e in _entries(doc, "cloudfront")},
                {_id(e): _jwt(e) for e in _entries(doc, "jwt")},
                {_id(e): _mediacdn(e) for e in _entries(doc, "mediacdn")},
                {_id(e): _mediacdn_ed25519(e) for e in _entries(doc, "mediacdn_long")},
            )  # fmt: skip
        except (KeyError, TypeError, ValueError, binascii.Error) as exc:
            # Never the message: it could quote key material.
            raise ConfigurationError(f"format keys: {type(exc).__name__} in an entry") from None


def _entries(doc: dict[str, Any], name: str) -> list[dict[str, Any]]:
    entries = doc.get(name, [])
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise ConfigurationError(f"format keys: {name} is a list of objects")
    ids = [e.get("id") for e in entries]
    if len(set(ids)) != len(ids):
        raise ConfigurationError(f"format keys: {name} lists a key id twice")
    return entries


def _text(entry: dict[str, Any], name: str) -> str:
    value = entry[name]
    if not isinstance(value, str):
        raise ConfigurationError(f"format keys: {name} is text")
    return value


def _id(entry: dict[str, Any]) -> str:
    return _text(entry, "id")


def _secure_link(entry: dict[str, Any]) -> SecureLinkKey:
    return SecureLinkKey(_id(entry), _text(entry, "secret"), bool(entry.get("bind_client", False)))


def _public(key: CloudFrontKey) -> CloudFrontPublicKey:
    return key.public() if isinstance(key, CloudFrontSigningKey) else key


def _akamai(entry: dict[str, Any]) -> AkamaiKey:
    return AkamaiKey.from_hex(_id(entry), _text(entry, "key_hex"))


def _cloudfront(entry: dict[str, Any]) -> CloudFrontKey:
    if "private_key_pem" in entry:
        return CloudFrontSigningKey.from_pem(_id(entry), _text(entry, "private_key_pem").encode())
    return CloudFrontPublicKey.from_pem(_id(entry), _text(entry, "public_key_pem").encode())


def _jwt(entry: dict[str, Any]) -> JwtKey:
    if "private_key_pem" in entry:
        key: Any = serialization.load_pem_private_key(
            _text(entry, "private_key_pem").encode(), password=None
        )
    else:
        key = serialization.load_pem_public_key(_text(entry, "public_key_pem").encode())
    audience = entry.get("audience")
    return JwtKey(
        _id(entry), _text(entry, "alg"), key, audience if isinstance(audience, str) else None
    )


def _mediacdn(entry: dict[str, Any]) -> MediaKey:
    if "hmac_secret" in entry:
        return MediaCdnHmacKey(_id(entry), _b64(_text(entry, "hmac_secret")))
    return _mediacdn_ed25519(entry)


def _mediacdn_ed25519(entry: dict[str, Any]) -> MediaCdnKey:
    if "ed25519_seed" in entry:
        return MediaCdnKey.from_seed(_id(entry), _text(entry, "ed25519_seed"))
    raw = _b64(_text(entry, "ed25519_public"))
    return MediaCdnKey(_id(entry), ed25519.Ed25519PublicKey.from_public_bytes(raw))


def _b64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
