"""Signing keys addressed by key id.

A key ring signs with its active key and verifies with any listed key, which is how keys rotate
without a failed playback: add the new key everywhere, then make it active, then drop the old one
once its last token has expired. Secrets never appear in a repr, a log line or an error.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import secrets
from collections.abc import Mapping
from pathlib import Path

from .errors import ConfigurationError, KeyTooShortError

MIN_KEY_BYTES = 32
_SHA256_BLOCK = 64
# Prepended to every signed byte string, so a MAC made for anything else never verifies here.
TOKEN_CONTEXT = b"PlayGate playback token\x00"
# Session tokens, which an edge mints when a start token opens a playback session, are MACed
# under their own context: a start token never verifies as a session token, nor the reverse,
# whatever its bytes say (TOKEN_FORMAT.md, "Session tokens").
SESSION_CONTEXT = b"PlayGate session token\x00"
# The revocation feed nginx's native verifier polls (edge_validator/feed.py) is authenticated
# with the same keys under a context of its own: nothing made for it is a token, nor the reverse.
FEED_CONTEXT = b"PlayGate native feed\x00"
# Derivation salt: a MAC key is used for playback tokens and nothing else, even if an operator
# reuses the secret elsewhere.
_PURPOSE = b"playgate/playback-token/mac-key/v1"
KEY_ID_RE = re.compile(r"[A-Za-z0-9_-]{1,32}")


def derive_mac_key(secret: bytes) -> bytes:
    return hmac.digest(secret, _PURPOSE, hashlib.sha256)


def encode_secret(secret: bytes) -> str:
    return base64.urlsafe_b64encode(secret).rstrip(b"=").decode("ascii")


def decode_secret(text: str) -> bytes:
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise ConfigurationError("a key secret is not valid base64url") from None
    if encode_secret(raw) != text.rstrip("="):
        raise ConfigurationError("a key secret is not canonical base64url")
    return raw


def generate_secret() -> str:
    """A new 32-byte secret, base64url encoded."""
    return encode_secret(secrets.token_bytes(MIN_KEY_BYTES))


class SigningKey:
    """One key: its id and a MAC function over ``context || message``.

    HMAC-SHA256 exactly as RFC 2104 defines it, with the inner and outer hash states (and the
    fixed context prefix) absorbed once at load time: per token this saves two block
    compressions and the object set-up of ``hmac.new``.
    """

    __slots__ = ("_bare_inner", "_inner", "_outer", "hmac_states", "key_id")

    def __init__(self, key_id: str, secret: bytes, context: bytes) -> None:
        if not KEY_ID_RE.fullmatch(key_id):
            raise ConfigurationError("key ids are 1-32 characters of A-Z a-z 0-9 _ -")
        if len(secret) < MIN_KEY_BYTES:
            raise KeyTooShortError(
                f"key {key_id!r} is {len(secret)} bytes; at least {MIN_KEY_BYTES} are required"
            )
        block = derive_mac_key(secret).ljust(_SHA256_BLOCK, b"\0")
        self.key_id = key_id
        # The inner state before any context: the same key under another context (sessions)
        # is derived from it, so no secret is kept around for that.
        self._bare_inner = hashlib.sha256(bytes(b ^ 0x36 for b in block))
        self._inner = self._bare_inner.copy()
        self._inner.update(context)
        self._outer = hashlib.sha256(bytes(b ^ 0x5C for b in block))
        # Both states in one attribute: open_token computes the MAC inline from it.
        self.hmac_states = (self._inner, self._outer)

    def with_context(self, context: bytes) -> SigningKey:
        """This key, MACing under another context."""
        twin = SigningKey.__new__(SigningKey)
        twin.key_id = self.key_id
        twin._bare_inner = self._bare_inner
        twin._inner = self._bare_inner.copy()
        twin._inner.update(context)
        twin._outer = self._outer
        twin.hmac_states = (twin._inner, twin._outer)
        return twin

    def mac(self, message: bytes) -> bytes:
        """HMAC-SHA256(mac key, context || message)."""
        inner = self._inner.copy()
        inner.update(message)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.digest()

    def __repr__(self) -> str:
        return f"SigningKey(key_id={self.key_id!r}, secret=<hidden>)"


class KeyRing:
    """Keys by id, one of them active for signing. Signs and verifies under ``context``."""

    __slots__ = ("_keys", "active_key_id", "by_raw_id")

    def __init__(
        self,
        keys: Mapping[str, bytes],
        active_key_id: str | None = None,
        *,
        context: bytes = TOKEN_CONTEXT,
    ) -> None:
        if not keys:
            raise ConfigurationError("the key ring holds no key")
        if active_key_id is not None and active_key_id not in keys:
            raise ConfigurationError(f"the active key {active_key_id!r} is not in the key ring")
        self._keys = {kid: SigningKey(kid, s, context) for kid, s in keys.items()}
        self.active_key_id = active_key_id
        self.by_raw_id = _by_raw_id(self._keys)

    def __repr__(self) -> str:
        return f"KeyRing(key_ids={sorted(self._keys)!r}, active={self.active_key_id!r})"

    def with_context(self, context: bytes) -> KeyRing:
        """The same keys MACing under another context (session tokens: ``SESSION_CONTEXT``)."""
        twin = KeyRing.__new__(KeyRing)
        twin._keys = {kid: key.with_context(context) for kid, key in self._keys.items()}
        twin.active_key_id = self.active_key_id
        twin.by_raw_id = _by_raw_id(twin._keys)
        return twin

    @property
    def key_ids(self) -> list[str]:
        return sorted(self._keys)

    def get(self, key_id: str) -> SigningKey | None:
        return self._keys.get(key_id)

    @property
    def active(self) -> SigningKey:
        if self.active_key_id is None:
            raise ConfigurationError("the key ring has no active key, so it cannot sign")
        return self._keys[self.active_key_id]

    @classmethod
    def from_json(cls, text: str) -> KeyRing:
        """Parse ``{"active": "k1", "keys": {"k1": "<base64url secret>", ...}}``."""
        try:
            doc = json.loads(text)
        except ValueError:
            raise ConfigurationError("the key ring is not valid JSON") from None
        if not isinstance(doc, dict) or not isinstance(doc.get("keys"), dict):
            raise ConfigurationError('the key ring needs a "keys" object')
        active = doc.get("active")
        if active is not None and not isinstance(active, str):
            raise ConfigurationError('"active" must be a key id')
        keys: dict[str, bytes] = {}
        for kid, secret in doc["keys"].items():
            if not isinstance(secret, str):
                raise ConfigurationError(f"key {kid!r} must be a base64url string")
            keys[kid] = decode_secret(secret)
        return cls(keys, active)

    @classmethod
    def from_file(cls, path: str | Path) -> KeyRing:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigurationError(f"cannot read key ring file {path}: {exc.strerror}") from None
        return cls.from_json(text)


def _by_raw_id(keys: Mapping[str, SigningKey]) -> Mapping[bytes, SigningKey]:
    """Keys by their id as a token carries it, a length byte then the ASCII bytes: a token's
    key is found without decoding its id first (key ids are ASCII, checked by SigningKey).
    Every entry's first byte counts the bytes after it, so a slice cut short by the end of a
    token matches no entry."""
    return {bytes((len(kid),)) + kid.encode("ascii"): key for kid, key in keys.items()}


def new_keyring_json(key_id: str = "k1") -> str:
    """A fresh key ring document with one active key."""
    return json.dumps({"active": key_id, "keys": {key_id: generate_secret()}}, indent=2) + "\n"
