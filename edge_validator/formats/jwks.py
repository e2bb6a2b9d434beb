"""Public keys at the edge: the signer publishes its JWT keys as a JWKS, validators fetch it.

With HMAC every edge holds a key that could also sign. With Ed25519 or ES256 key pairs the
signer keeps the private keys and publishes the public ones at ``GET /.well-known/jwks.json``;
a validator given ``PLAYGATE_JWKS_URL`` fetches it, keeps it, and fetches again when a token
names a key it has not seen (a new key reaches every validator without a redeploy) or when its
copy is older than ``max_age``. Fetches are rate-limited (``min_interval``): a flood of tokens
naming random key ids costs at most one fetch per interval. Every JWK must state its ``alg``,
which is then pinned to its ``kid`` (pyjwt's JWK parser; never the token's header).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Any

import httpx
import jwt
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

from ..core.errors import ConfigurationError
from .jwt_playback import JwtKey

log = logging.getLogger("playgate.validator")
JWKS_PATH = "/.well-known/jwks.json"
MAX_JWKS_BYTES = 64 * 1024
_TO_JWK: dict[str, Any] = {"RS256": RSAAlgorithm, "ES256": ECAlgorithm, "EdDSA": OKPAlgorithm}


def jwks_document(keys: Iterable[JwtKey]) -> dict[str, Any]:
    """The JWKS of the public halves of ``keys`` (what the signer publishes)."""
    found = []
    for key in keys:
        public = key.public()
        jwk = _TO_JWK[key.algorithm].to_jwk(public.key, as_dict=True)
        found.append({**jwk, "kid": key.kid, "alg": key.algorithm, "use": "sig"})
    return {"keys": found}


def keys_from_jwks(doc: object, audience: str | None = None) -> dict[str, JwtKey]:
    """Public keys by kid from a JWKS document; a key without ``kid`` or ``alg`` is refused."""
    if not isinstance(doc, dict) or not isinstance(doc.get("keys"), list):
        raise ConfigurationError("a JWKS is an object with a list of keys")
    found: dict[str, JwtKey] = {}
    for entry in doc["keys"]:
        if not isinstance(entry, dict) or not entry.get("kid") or not entry.get("alg"):
            raise ConfigurationError("every JWK needs a kid and an alg")
        if entry.get("use", "sig") != "sig" or entry["kid"] in found:
            raise ConfigurationError("JWKs are signing keys, one per kid")
        try:
            parsed = jwt.PyJWK(entry)
        except jwt.PyJWTError as exc:
            raise ConfigurationError(f"JWK {entry['kid']!r}: {exc}") from None
        found[entry["kid"]] = JwtKey(entry["kid"], parsed.algorithm_name, parsed.key, audience)
    return found


class JwksCache:
    """The validator's copy of the signer's JWKS, refreshed on an unknown kid or when old."""

    def __init__(
        self,
        url: str,
        *,
        audience: str | None = None,
        max_age: float = 300.0,
        min_interval: float = 30.0,
        timeout: float = 2.0,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise ConfigurationError("PLAYGATE_JWKS_URL must be an http(s) URL")
        self.url = url
        self.audience = audience
        self.max_age = max_age
        self.min_interval = min_interval
        self.timeout = timeout
        self.keys: dict[str, JwtKey] = {}
        self.fetched_at: float | None = None  # last successful fetch
        self._tried_at: float | None = None  # last attempt, successful or not
        self._document: object = None
        self._lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"JwksCache({self.url!r}, keys={sorted(self.keys)})"

    def due(self, now: float, *, unknown_kid: bool) -> bool:
        if self._tried_at is not None and now - self._tried_at < self.min_interval:
            return False
        if unknown_kid or self.fetched_at is None:
            return True
        return now - self.fetched_at > self.max_age

    async def refresh(self, now: float) -> bool:
        """Fetch the JWKS; True when the keys changed. A failed fetch keeps the last copy."""
        async with self._lock:
            if self._tried_at is not None and now - self._tried_at < self.min_interval:
                return False
            self._tried_at = now
            try:
                async with httpx.AsyncClient(timeout=self.timeout) as client:
                    resp = await client.get(self.url, headers={"Accept": "application/json"})
                if resp.status_code != 200 or len(resp.content) > MAX_JWKS_BYTES:
                    raise ConfigurationError(f"the JWKS answered {resp.status_code}")
                doc = resp.json()
                keys = keys_from_jwks(doc, self.audience)
            except (httpx.HTTPError, ValueError, ConfigurationError) as exc:
                log.warning("JWKS fetch from %s failed: %s", self.url, exc)
                return False
            # Any change at all (a key added, removed or replaced under its kid) is "changed":
            # the caller then forgets what it verified with the old keys.
            changed = bool(doc != self._document)
            self.keys, self._document = keys, doc
            self.fetched_at = now
            return changed
