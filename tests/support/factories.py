"""One place to make test keys, claims, tokens and request targets.

Every test builds claims with ``claims(...)`` (sensible defaults, override any field) and tokens
with ``token(...)``; the defaults say what a typical playback token looks like.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Any

from edge_validator.cat_es256 import load_es256
from edge_validator.core.cat.claims import CatPolicy, build_claims
from edge_validator.core.cat.keys import ES256, HS256, CatKey, CatKeyRing
from edge_validator.core.cat.verify import CatVerifier, seal_cat
from edge_validator.core.decision import Grant, Verifier
from edge_validator.core.keyring import SESSION_CONTEXT, KeyRing
from edge_validator.core.paths import Target
from edge_validator.core.protocol import SESSION_PARAM, SESSION_PREFIX, TOKEN_PARAM, TOKEN_PREFIX
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
# CAT keys: the RFC 8392 Appendix A.2.2 secret, and a P-256 key for ES256 (base64url parts).
CAT_SECRET = bytes.fromhex("403697de87af64611c1d32a05dab0fe1fcb715a86ab435f1ec99192d79569388")
CAT_ES256 = {
    "alg": "ES256",
    "x": "FDMpzOeGjkFpJ1mc9lo0884v_aVafspp7YkZo5TULw8",
    "y": "YPfxp4DYp4O_t6LdayeW6BKNu87509Fo25Uplxo257k",
    "d": "bBOCdlrsU1jxF3M9KBwce9w5iE0EpFoebGfIWLwgbBk",
}
CAT_ISSUER = "playgate-test"
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


def session_token(ring: KeyRing | None = None, **fields: Any) -> str:
    """A sealed session token (the session MAC context) for ``claims(**fields)``."""
    return seal(claims(**fields), (ring or keyring()).with_context(SESSION_CONTEXT))


def tampered(tok: str) -> str:
    """``tok`` with its last MAC character but one changed: always different bytes (the last
    character may carry only a few bits; a fixed replacement equals the original 1 time in ~1,000).
    """
    return tok[:-2] + ("B" if tok[-2] == "A" else "A") + tok[-1]


def target(tok: str, path: str = MASTER, *, query: bool = False, session: bool = False) -> str:
    """A request target carrying ``tok`` in the path (default) or the query; ``session``: as a
    session token (``/s/`` or ``session=``)."""
    if query:
        return f"{path}?{SESSION_PARAM if session else TOKEN_PARAM}={tok}"
    return f"{SESSION_PREFIX if session else TOKEN_PREFIX}{tok}{path}"


def grant(path: str = MASTER, *, now: float | None = None, **fields: Any) -> Grant:
    """A grant as the verifier makes it, for checks that run after the decision."""
    at = time.time() if now is None else now
    return Grant(claims(now=at, **fields), path, Target("tok", path, "", False), at)


def cat_keyring() -> CatKeyRing:
    """``c1`` (HS256, active) and ``e1`` (ES256 with its private part)."""
    return CatKeyRing(
        [
            CatKey("c1", HS256, secret=CAT_SECRET),
            CatKey("e1", ES256, public=load_es256("e1", CAT_ES256)),
        ],
        "c1",
    )


def cat_policy(**fields: Any) -> CatPolicy:
    fields.setdefault("issuer", CAT_ISSUER)
    return CatPolicy(**fields)


def cat_verifier(
    ring: KeyRing | None = None, cat_ring: CatKeyRing | None = None, **policy: Any
) -> Verifier:
    """A Verifier that takes PlayGate tokens and CATs (issuer ``CAT_ISSUER``)."""
    cat = CatVerifier(cat_ring or cat_keyring(), cat_policy(**policy.pop("cat", {})))
    return verifier(ring, cat=cat, **policy)


def cat_token(
    key_id: str = "c1",
    *,
    extra: dict[Any, Any] | None = None,
    drop: tuple[int, ...] = (),
    cwt_tag: bool = False,
    **fields: Any,
) -> str:
    """A CAT for ``claims(**fields)`` (hex token id), issued by ``CAT_ISSUER``; ``extra`` adds or
    replaces raw claims by label, ``drop`` removes labels."""
    fields.setdefault("token_id", "0b71" * 4)
    doc = build_claims(claims(**fields), issuer=CAT_ISSUER)
    doc.update(extra or {})
    for label in drop:
        doc.pop(label, None)
    key = cat_keyring().get(key_id.encode())
    assert key is not None
    return seal_cat(doc, key, cwt_tag=cwt_tag)
