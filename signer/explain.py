"""Why a URL is accepted or rejected: the first thing a user with a 403 needs."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import urlsplit

from edge_validator.decision import DEFAULT_LEEWAY, verify
from edge_validator.errors import PlaybackTokenError
from edge_validator.keyring import KeyRing
from edge_validator.paths import split_target
from edge_validator.token import Claims, open_token

HINTS = {
    "missing": "the URL carries no token: expected /t/<token>/... or ?token=...",
    "malformed": "the token was cut or altered in transit (check URL encoding and length)",
    "bad_path": "the path is ambiguous (dot segments, encoded slashes, //, non-ASCII...)",
    "bad_signature": "the token was altered, or signed with another secret under this key id",
    "unknown_key": "this key ring lacks the token's key id: deploy the key to the validator",
    "expired": "issue a new URL; players must refresh URLs before expiry",
    "not_yet_valid": "the signer's clock is ahead of the validator's; check NTP",
    "out_of_scope": "the token covers another video; relative URIs must stay inside its scope",
    "lifetime_exceeded": "the token lives longer than PLAYGATE_MAX_TTL allows; issue a shorter one",
    "ip_mismatch": "the viewer's address differs from the bound one (proxies, mobile networks)",
}


def _when(ts: int, now: float) -> str:
    iso = datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    delta = int(ts - now)
    return f"{iso} ({'in ' + str(delta) if delta >= 0 else str(-delta) + ' ago'} s)"


def describe_claims(claims: Claims, now: float) -> list[str]:
    lines = [
        f"  token id:       {claims.token_id}",
        f"  key id:         {claims.key_id}",
        f"  scope:          {claims.scope}",
        f"  not before:     {_when(claims.not_before, now)}",
        f"  expires:        {_when(claims.expires_at, now)}",
    ]
    optional = {
        "client network": claims.client_network,
        "session id": claims.session_id,
        "user id": claims.user_id,
        "max uses": claims.max_uses or None,
        "max streams": claims.max_streams or None,
    }
    lines += [f"  {k + ':':<15} {v}" for k, v in optional.items() if v is not None]
    return lines


def explain(
    url: str,
    keyring: KeyRing,
    now: float,
    client_ip: str | None = None,
    leeway: int = DEFAULT_LEEWAY,
    max_lifetime: int | None = None,
) -> tuple[bool, list[str]]:
    """Return (accepted, report lines). Never prints the token or a key."""
    parts = urlsplit(url)
    target = parts.path + ("?" + parts.query if parts.query else "")
    claims: Claims | None = None
    try:
        token, path, _ = split_target(target)
        if token:
            try:
                claims = open_token(token, keyring)
            except PlaybackTokenError:
                claims = None
        grant = verify(
            token, path, client_ip, now, keyring, leeway=leeway, max_lifetime=max_lifetime
        )
    except PlaybackTokenError as exc:
        lines = [f"REJECTED: {exc.reason} ({exc.message}), HTTP {exc.status}"]
        if exc.reason in HINTS:
            lines.append(f"  hint: {HINTS[exc.reason]}")
        if claims is not None:
            lines += describe_claims(claims, now)
        return False, lines
    lines = [f"ACCEPTED: serves {grant.path}", *describe_claims(grant.claims, now)]
    return True, lines
