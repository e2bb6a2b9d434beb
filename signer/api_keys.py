"""Caller API keys, stored only as SHA-256 hashes, each with what its caller may do.

API keys are 32 random bytes, so a plain hash is enough: there is nothing to brute-force, and a
lookup by hash never compares secrets byte by byte.

An entry is ``name:sha256hex[:scopes[:video_prefix]]``. ``scopes`` joins ``sign``, ``revoke``
and ``read`` (read revocations) with ``+``; an entry without them has every scope and every
video (the format before scopes, unchanged). ``video_prefix`` limits the key to video ids that
start with it: it signs only those, revokes only those videos, and lists only their
revocations, so one platform gives its CMS, its player backend and its support tool
different keys.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from edge_validator.core.errors import ConfigurationError, MissingScope, VideoNotAllowed

PREFIX = "pgk_"
_HASH_RE = re.compile(r"[0-9a-f]{64}")
_NAME_RE = re.compile(r"[A-Za-z0-9_.-]{1,64}")
# A video id prefix: video ids are [A-Za-z0-9_-]{1,128}.
_VIDEO_PREFIX_RE = re.compile(r"[A-Za-z0-9_-]{1,127}")
SIGN, REVOKE, READ = "sign", "revoke", "read"
SCOPES = (SIGN, REVOKE, READ)


@dataclass(frozen=True)
class Caller:
    """Who presented a key, and what that key allows."""

    name: str
    scopes: frozenset[str] = frozenset(SCOPES)
    video_prefix: str = ""

    def require(self, scope: str) -> None:
        if scope not in self.scopes:
            raise MissingScope(f"this API key lacks the {scope!r} scope")

    def covers(self, video_id: str) -> bool:
        return video_id.startswith(self.video_prefix)

    def require_video(self, video_id: str) -> None:
        if not self.covers(video_id):
            raise VideoNotAllowed(
                f"this API key is limited to video ids starting with {self.video_prefix!r}"
            )

    def entry_suffix(self) -> str:
        """The ``:scopes[:prefix]`` part of a PLAYGATE_API_KEYS entry ("" for a full key)."""
        if self.scopes == frozenset(SCOPES) and not self.video_prefix:
            return ""
        scopes = "+".join(s for s in SCOPES if s in self.scopes)
        return f":{scopes}" + (f":{self.video_prefix}" if self.video_prefix else "")


def make_caller(name: str, scopes: Iterable[str], video_prefix: str = "") -> Caller:
    """A caller from names a person typed; ConfigurationError says what is wrong."""
    chosen = frozenset(scopes)
    unknown = sorted(chosen - set(SCOPES))
    if unknown or not chosen:
        raise ConfigurationError(
            f"API key {name!r}: scopes are one or more of {', '.join(SCOPES)}"
            + (f" (not {', '.join(unknown)})" if unknown else "")
        )
    if video_prefix and not _VIDEO_PREFIX_RE.fullmatch(video_prefix):
        raise ConfigurationError(
            f"API key {name!r}: a video prefix is 1-127 characters of A-Z a-z 0-9 _ -"
        )
    return Caller(name, chosen, video_prefix)


def hash_api_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def generate_api_key() -> str:
    return PREFIX + secrets.token_urlsafe(32)


class ApiKeys:
    """Callers by key hash. ``hashes`` maps a name to its hash (a key with every scope) or to
    ``(hash, Caller)``."""

    def __init__(self, hashes: Mapping[str, str | tuple[str, Caller]]) -> None:
        self._by_hash: dict[str, Caller] = {}
        for name, value in hashes.items():
            digest, caller = value if isinstance(value, tuple) else (value, Caller(name))
            if not _NAME_RE.fullmatch(name) or not _HASH_RE.fullmatch(digest):
                raise ConfigurationError(f"API key entry {name!r} must be name:sha256-hex")
            self._by_hash[digest] = caller

    def __repr__(self) -> str:
        return f"ApiKeys(callers={sorted(c.name for c in self._by_hash.values())!r})"

    def caller(self, key: str) -> Caller | None:
        """The caller for a presented key, or None."""
        return self._by_hash.get(hash_api_key(key))

    @classmethod
    def parse(cls, text: str) -> ApiKeys:
        """``name:sha256hex[:scopes[:video_prefix]][,...]``."""
        entries: dict[str, str | tuple[str, Caller]] = {}
        for item in filter(None, (p.strip() for p in text.split(","))):
            parts = item.split(":")
            if not 2 <= len(parts) <= 4:
                raise ConfigurationError(
                    "PLAYGATE_API_KEYS entries are name:sha256-hex[:scopes[:video_prefix]]"
                )
            name, digest = parts[0], parts[1].lower()
            if name in entries:
                raise ConfigurationError(f"API key {name!r} is listed twice")
            if len(parts) == 2:
                entries[name] = digest
            else:
                prefix = parts[3] if len(parts) == 4 else ""
                entries[name] = (digest, make_caller(name, parts[2].split("+"), prefix))
        return cls(entries)
