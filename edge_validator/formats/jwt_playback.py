"""JWT playback tokens as Mux and Cloudflare Stream sign them, emitted and verified with pyjwt.

Header ``{"alg": "RS256"|"ES256"|"EdDSA", "kid": <key id>}``; claims ``sub`` (the playback or
video id), ``exp``, ``aud`` where the key names an audience (Mux: ``v`` for video), optionally
``nbf``, ``jti`` and ``sid``. Mux sends the token as ``?token=``; Cloudflare Stream puts it in
the path. PlayGate emits ``/t/<jwt>/videos/<sub>/<file>``, so relative segment URIs carry it.

Scope mapping: ``sub`` is the video id, the scope ``/videos/<sub>/``; ``jti`` the token id
(revocations and logs name it), ``sid`` the session id. JWTs of this kind bind no client
address: a policy with a client network is refused rather than issued unbound.

Safety: the size is capped before decoding; the key is looked up by ``kid`` and its algorithm is
pinned per key id, never taken from the token header (an RS256 key never verifies an HS256
token); ``exp`` and ``sub`` are required, and ``aud`` when the key names one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from ..core.errors import (
    BadSignature,
    ConfigurationError,
    MalformedToken,
    MissingToken,
    OutOfScope,
    UnknownKey,
)
from ..core.protocol import MAX_TOKEN_CHARS, TOKEN_PREFIX
from .policy import IDENTIFIER_RE, VIDEO_PREFIX, Access, Policy

FORMAT = "jwt"
_KID_RE = re.compile(r"[A-Za-z0-9_.-]{1,128}")
_SUB_RE = re.compile(r"[A-Za-z0-9_-]{1,128}")
_JWT_RE = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
# The algorithm each key type signs with: one per key, never chosen by a token.
_ALGORITHMS: dict[str, tuple[type, ...]] = {
    "RS256": (rsa.RSAPrivateKey, rsa.RSAPublicKey),
    "ES256": (ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey),
    "EdDSA": (ed25519.Ed25519PrivateKey, ed25519.Ed25519PublicKey),
}


@dataclass(frozen=True, repr=False)
class JwtKey:
    """A key id, its pinned algorithm, and a key: private on the signer, public at the edge."""

    kid: str
    algorithm: str
    key: Any
    audience: str | None = None

    def __post_init__(self) -> None:
        if not _KID_RE.fullmatch(self.kid):
            raise ConfigurationError("JWT key ids are 1-128 characters of A-Z a-z 0-9 _ . -")
        types = _ALGORITHMS.get(self.algorithm)
        if types is None or not isinstance(self.key, types):
            raise ConfigurationError(
                f"JWT key {self.kid!r}: {self.algorithm} needs an "
                "RSA (RS256), P-256 (ES256) or Ed25519 (EdDSA) key"
            )
        if self.algorithm == "ES256" and not isinstance(
            getattr(self.key, "curve", None), ec.SECP256R1
        ):
            raise ConfigurationError(f"JWT key {self.kid!r}: ES256 needs a P-256 key")

    def __repr__(self) -> str:
        return f"JwtKey({self.kid!r}, {self.algorithm!r})"

    @property
    def is_private(self) -> bool:
        return hasattr(self.key, "sign")

    def public(self) -> JwtKey:
        key = self.key.public_key() if self.is_private else self.key
        return JwtKey(self.kid, self.algorithm, key, self.audience)


def claims_of(policy: Policy, audience: str | None) -> dict[str, Any]:
    if policy.client_network is not None:
        raise ValueError("JWT playback tokens bind no client address")
    video = policy.scope[len(VIDEO_PREFIX) : -1]
    claims: dict[str, Any] = {
        "sub": video,
        "exp": policy.expires_at,
        "nbf": policy.not_before,
        "jti": policy.token_id,
    }
    if audience is not None:
        claims["aud"] = audience
    if policy.session_id is not None:
        claims["sid"] = policy.session_id
    return claims


def emit(policy: Policy, key: JwtKey) -> str:
    """The JWT for ``policy``, signed with ``key`` (private), ``kid`` in the header."""
    if not key.is_private:
        raise ValueError("a public key cannot sign")
    return jwt.encode(
        claims_of(policy, key.audience), key.key, algorithm=key.algorithm, headers={"kid": key.kid}
    )


def emit_path(policy: Policy, key: JwtKey) -> str:
    """``/t/<jwt>/videos/<id>/<file>``: the token in the path, so every segment carries it."""
    return f"{TOKEN_PREFIX}{emit(policy, key)}{policy.entry_path}"


def looks_like_jwt(token: str | None) -> bool:
    """Three base64url parts: how a dispatcher tells a JWT from a PlayGate token (no dots)."""
    if not token or len(token) > MAX_TOKEN_CHARS:
        return False
    return _JWT_RE.fullmatch(token) is not None


def verify(token: str | None, keys: dict[str, JwtKey]) -> Access:
    """Authenticate a playback JWT; the caller judges the access (``policy.judge``)."""
    if not token:
        raise MissingToken("no playback token")
    if not looks_like_jwt(token):
        raise MalformedToken("not a JWT")
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise MalformedToken("not a JWT") from None
    kid = header.get("kid")
    key = keys.get(kid) if isinstance(kid, str) else None
    if key is None:
        raise UnknownKey("the token names an unknown key")
    required = ["exp", "sub"] + (["aud"] if key.audience is not None else [])
    try:
        claims = jwt.decode(
            token,
            key.key,
            algorithms=[key.algorithm],
            audience=key.audience,
            # Expiry and not-before are judged by policy.judge, with PlayGate's leeway.
            options={"require": required, "verify_exp": False, "verify_nbf": False},
        )
    except (jwt.InvalidSignatureError, jwt.InvalidAlgorithmError):
        raise BadSignature("JWT signature mismatch") from None
    except jwt.InvalidAudienceError:
        # A thumbnail or storyboard token (Mux aud t, s) presented for video.
        raise OutOfScope("the JWT is for another audience") from None
    except jwt.PyJWTError:
        raise MalformedToken("the JWT's claims are not a playback token") from None
    return _access(claims, key.kid)


def _access(claims: dict[str, Any], kid: str) -> Access:
    sub, exp, nbf = claims["sub"], claims["exp"], claims.get("nbf", 0)
    jti, sid = claims.get("jti"), claims.get("sid")
    if not isinstance(sub, str) or not _SUB_RE.fullmatch(sub):
        raise MalformedToken("sub is not a video id")
    for value in (exp, nbf):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise MalformedToken("exp and nbf are integer times")
    for value in (jti, sid):
        if value is not None and not (isinstance(value, str) and IDENTIFIER_RE.fullmatch(value)):
            raise MalformedToken("jti and sid are short identifiers")
    return Access(FORMAT, kid, exp, nbf, f"{VIDEO_PREFIX}{sub}/", False, jti, sid, None)
