"""CAT keys: each key id names one key and ONE algorithm, fixed when the key ring is loaded.

The algorithm a token names in its header is only compared with the pinned one, never used to
choose how to verify: a token cannot turn an ES256 public key into an HMAC secret, or ask for a
weaker MAC. HS256 and (for the RFC 8392 vectors) HS256/64 are stdlib; ES256 needs the
``cryptography`` package, so the key ring takes an ES256 factory from outside the stdlib core
and refuses to load an ES256 key without one (the Lambda@Edge bundle has none).

Key ring document (``PLAYGATE_CAT_KEYS`` / ``PLAYGATE_CAT_KEYS_FILE``)::

    {"active": "k1",
     "keys": {"k1": {"alg": "HS256", "k": "<base64url secret, >= 32 bytes>"},
              "e1": {"alg": "ES256", "x": "<b64url>", "y": "<b64url>", "d": "<b64url, signer>"}}}

HMAC secrets are used as they are (no derivation): another CDN holding the same bytes must
compute the same MAC. Secrets never appear in a repr.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Protocol

from ..errors import ConfigurationError, KeyTooShortError
from ..keyring import KEY_ID_RE, MIN_KEY_BYTES, decode_secret, generate_secret

# COSE algorithm identifiers (RFC 9053), and how many bytes of HMAC-SHA256 each keeps.
HS256, HS256_64, ES256 = 5, 4, -7
ALG_NAMES = {HS256: "HS256", HS256_64: "HS256/64", ES256: "ES256"}
_ALG_IDS = {name: alg for alg, name in ALG_NAMES.items()}
MAC_BYTES = {HS256: 32, HS256_64: 8}


class PublicKey(Protocol):
    """An ES256 key as the core sees it: verify (and, with a private part, sign)."""

    def verify(self, signature: bytes, message: bytes) -> bool: ...

    def sign(self, message: bytes) -> bytes: ...

    @property
    def can_sign(self) -> bool: ...


Es256Factory = Callable[[str, Mapping[str, str]], PublicKey]


class CatKey:
    """One key id, its pinned algorithm, and its secret (HMAC) or public key (ES256)."""

    __slots__ = ("_public", "_secret", "alg", "key_id", "kid")

    def __init__(
        self, key_id: str, alg: int, *, secret: bytes = b"", public: PublicKey | None = None
    ) -> None:
        if not KEY_ID_RE.fullmatch(key_id):
            raise ConfigurationError("key ids are 1-32 characters of A-Z a-z 0-9 _ -")
        if alg in MAC_BYTES and len(secret) < MIN_KEY_BYTES:
            raise KeyTooShortError(
                f"CAT key {key_id!r} is {len(secret)} bytes; at least {MIN_KEY_BYTES} are required"
            )
        if alg == ES256 and public is None:
            raise ConfigurationError(f"CAT key {key_id!r}: ES256 needs a public key")
        self.key_id = key_id
        self.kid = key_id.encode("ascii")  # the COSE kid: a byte string
        self.alg = alg
        self._secret = secret
        self._public = public

    @property
    def is_mac(self) -> bool:
        return self.alg in MAC_BYTES

    @property
    def can_sign(self) -> bool:
        return self.is_mac or (self._public is not None and self._public.can_sign)

    def tag(self, message: bytes) -> bytes:
        """The MAC of ``message`` under this key, truncated as the pinned algorithm says."""
        return hmac.digest(self._secret, message, hashlib.sha256)[: MAC_BYTES[self.alg]]

    def verify(self, message: bytes, tag: bytes) -> bool:
        if self.is_mac:
            return hmac.compare_digest(self.tag(message), tag)
        assert self._public is not None
        return self._public.verify(tag, message)

    def sign(self, message: bytes) -> bytes:
        if self.is_mac:
            return self.tag(message)
        assert self._public is not None
        return self._public.sign(message)

    def __repr__(self) -> str:
        return f"CatKey(key_id={self.key_id!r}, alg={ALG_NAMES[self.alg]}, secret=<hidden>)"


class CatKeyRing:
    """CAT keys by id (text), one of them active for signing."""

    __slots__ = ("_by_kid", "active_key_id")

    def __init__(self, keys: list[CatKey], active_key_id: str | None = None) -> None:
        if not keys:
            raise ConfigurationError("the CAT key ring holds no key")
        self._by_kid = {key.kid: key for key in keys}
        if active_key_id is not None and active_key_id.encode() not in self._by_kid:
            raise ConfigurationError(f"the active CAT key {active_key_id!r} is not in the ring")
        self.active_key_id = active_key_id

    def __repr__(self) -> str:
        return f"CatKeyRing(key_ids={self.key_ids!r}, active={self.active_key_id!r})"

    @property
    def key_ids(self) -> list[str]:
        return sorted(key.key_id for key in self._by_kid.values())

    def get(self, kid: bytes) -> CatKey | None:
        return self._by_kid.get(kid)

    def signing_key(self, key_id: str | None = None) -> CatKey:
        key_id = key_id or self.active_key_id
        key = self._by_kid.get(key_id.encode()) if key_id else None
        if key is None or not key.can_sign:
            raise ConfigurationError("the CAT key ring has no key to sign with")
        return key

    @classmethod
    def from_json(cls, text: str, es256: Es256Factory | None = None) -> CatKeyRing:
        try:
            doc = json.loads(text)
        except ValueError:
            raise ConfigurationError("the CAT key ring is not valid JSON") from None
        if not isinstance(doc, dict) or not isinstance(doc.get("keys"), dict):
            raise ConfigurationError('the CAT key ring needs a "keys" object')
        active = doc.get("active")
        if active is not None and not isinstance(active, str):
            raise ConfigurationError('"active" must be a key id')
        keys = [_load_key(kid, spec, es256) for kid, spec in doc["keys"].items()]
        return cls(keys, active)

    @classmethod
    def from_file(cls, path: str | Path, es256: Es256Factory | None = None) -> CatKeyRing:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigurationError(f"cannot read CAT key ring {path}: {exc.strerror}") from None
        return cls.from_json(text, es256)


def _load_key(key_id: str, spec: object, es256: Es256Factory | None) -> CatKey:
    if not isinstance(spec, dict) or not all(isinstance(v, str) for v in spec.values()):
        raise ConfigurationError(f"CAT key {key_id!r} must be an object of strings")
    alg = _ALG_IDS.get(spec.get("alg", ""))
    if alg is None:
        raise ConfigurationError(f'CAT key {key_id!r}: "alg" must be one of {sorted(_ALG_IDS)}')
    if alg in MAC_BYTES:
        if set(spec) != {"alg", "k"}:
            raise ConfigurationError(f'CAT key {key_id!r}: an HMAC key has "alg" and "k" only')
        return CatKey(key_id, alg, secret=decode_secret(spec["k"]))
    if es256 is None:
        raise ConfigurationError(
            f"CAT key {key_id!r} is ES256, which needs the cryptography package; this build "
            "verifies HS256 only (Lambda@Edge): give the edge an HS256 key or use nginx"
        )
    return CatKey(key_id, alg, public=es256(key_id, spec))


def new_cat_keyring_json(key_id: str = "cat1") -> str:
    """A fresh CAT key ring document with one active HS256 key."""
    doc = {"active": key_id, "keys": {key_id: {"alg": "HS256", "k": generate_secret()}}}
    return json.dumps(doc, indent=2) + "\n"
