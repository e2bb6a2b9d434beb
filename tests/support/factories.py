"""One place to make test keys, claims, tokens and request targets.

Every test builds claims with ``claims(...)`` (sensible defaults, override any field) and tokens
with ``token(...)``; the defaults say what a typical playback token looks like.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Any

from edge_validator.core.decision import Grant, Verifier
from edge_validator.core.keyring import KeyRing
from edge_validator.core.paths import Target
from edge_validator.core.protocol import TOKEN_PARAM, TOKEN_PREFIX
from edge_validator.core.token import Claims, seal
from playgate.demo import SAMPLES

TESTS = Path(__file__).resolve().parent.parent
ROOT = TESTS.parent
SECRET_A = b"A" * 32
SECRET_B = bytes(range(32, 64))
API_KEY = "pgk_test-key-0123456789abcdefghijklmnopqrstuv"
AUTH = {"Authorization": f"Bearer {API_KEY}"}
# The operators' key for /metrics and /admin/health (servers hold its hash).
ADMIN_KEY = "pgk_admin-key-0123456789abcdefghijklmnopqrstu"
ADMIN_AUTH = {"Authorization": f"Bearer {ADMIN_KEY}"}
ADMIN_KEY_HASH = hashlib.sha256(ADMIN_KEY.encode()).hexdigest()
SCOPE = "/videos/demo/"
MASTER = "/videos/demo/master.m3u8"

__all__ = [
    "ADMIN_AUTH",
    "ADMIN_KEY",
    "ADMIN_KEY_HASH",
    "API_KEY",
    "AUTH",
    "MASTER",
    "ROOT",
    "SAMPLES",
    "SCOPE",
    "SECRET_A",
    "SECRET_B",
    "TESTS",
]


def keyring() -> KeyRing:
    """Two keys, ``k1`` active: the ring every test signs with unless it needs another."""
    return KeyRing({"k1": SECRET_A, "k2": SECRET_B}, "k1")


def verifier(ring: KeyRing | None = None, **policy: Any) -> Verifier:
    policy.setdefault("max_ttl", 3600)
    return Verifier(ring or keyring(), **policy)


def claims(*, now: float | None = None, ttl: int = 300, **fields: Any) -> Claims:
    """Claims valid from ``now`` for ``ttl`` seconds on the demo video; override any field."""
    start = int(time.time() if now is None else now)
    fields.setdefault("key_id", "k1")
    fields.setdefault("expires_at", start + ttl)
    fields.setdefault("not_before", start)
    fields.setdefault("scope", SCOPE)
    fields.setdefault("token_id", "tid-test")
    return Claims(**fields)


def token(ring: KeyRing | None = None, **fields: Any) -> str:
    """A sealed token for ``claims(**fields)``."""
    return seal(claims(**fields), ring or keyring())


def target(tok: str, path: str = MASTER, *, query: bool = False) -> str:
    """A request target carrying ``tok`` in the path (default) or the query."""
    if query:
        return f"{path}?{TOKEN_PARAM}={tok}"
    return f"{TOKEN_PREFIX}{tok}{path}"


def grant(path: str = MASTER, *, now: float | None = None, **fields: Any) -> Grant:
    """A grant as the verifier makes it, for checks that run after the decision."""
    at = time.time() if now is None else now
    return Grant(claims(now=at, **fields), path, Target("tok", path, "", False), at)
