"""Caller API keys, stored only as SHA-256 hashes.

API keys are 32 random bytes, so a plain hash is enough: there is nothing to brute-force, and a
lookup by hash never compares secrets byte by byte.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Mapping

from edge_validator.core.errors import ConfigurationError

PREFIX = "pgk_"
_HASH_RE = re.compile(r"[0-9a-f]{64}")
_NAME_RE = re.compile(r"[A-Za-z0-9_.-]{1,64}")


def hash_api_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def generate_api_key() -> str:
    return PREFIX + secrets.token_urlsafe(32)


class ApiKeys:
    """Caller names by key hash."""

    def __init__(self, hashes: Mapping[str, str]) -> None:
        for name, digest in hashes.items():
            if not _NAME_RE.fullmatch(name) or not _HASH_RE.fullmatch(digest):
                raise ConfigurationError(f"API key entry {name!r} must be name:sha256-hex")
        self._by_hash = {digest: name for name, digest in hashes.items()}

    def __repr__(self) -> str:
        return f"ApiKeys(callers={sorted(self._by_hash.values())!r})"

    def __len__(self) -> int:
        return len(self._by_hash)

    def caller(self, key: str) -> str | None:
        """The caller's name for a presented key, or None."""
        return self._by_hash.get(hash_api_key(key))

    @classmethod
    def parse(cls, text: str) -> ApiKeys:
        """``name:sha256hex[,name:sha256hex...]``."""
        entries: dict[str, str] = {}
        for item in filter(None, (p.strip() for p in text.split(","))):
            name, sep, digest = item.partition(":")
            if not sep:
                raise ConfigurationError("PLAYGATE_API_KEYS entries are name:sha256-hex")
            entries[name] = digest.lower()
        return cls(entries)
