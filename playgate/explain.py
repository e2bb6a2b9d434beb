"""Why a URL is accepted or rejected: the first thing a user with a 403 needs."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import urlsplit

from edge_validator.core.addresses import ClientAddress
from edge_validator.core.cat.claims import CatClaims
from edge_validator.core.decision import Verifier
from edge_validator.core.errors import PlaybackTokenError
from edge_validator.core.paths import split_target
from edge_validator.core.token import Claims


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
    optional: dict[str, object] = {
        "client network": claims.client_network,
        "session id": claims.session_id,
        "user id": claims.user_id,
        "max uses": claims.max_uses or None,
        "max streams": claims.max_streams or None,
    }
    if isinstance(claims, CatClaims):
        optional.update(_cat_lines(claims))
    lines += [f"  {k + ':':<15} {v}" for k, v in optional.items() if v is not None]
    return lines


def _cat_lines(claims: CatClaims) -> dict[str, object]:
    """What only a Common Access Token says (claim names as CTA-5007 spells them)."""
    rules = claims.rules
    renewal = rules.renewal
    return {
        "format": "CAT (CTA-5007)",
        "iss": rules.issuer,
        "catu": ", ".join(
            f"{name}={value}"
            for name, value in (
                ("scheme", rules.scheme),
                ("host", rules.host),
                ("path", rules.path_exact or f"{claims.scope}*"),
            )
            if value is not None
        ),
        "catnip": ", ".join(rules.network_texts) or None,
        "catm": ", ".join(rules.methods) if rules.methods else None,
        "catreplay": {0: None, 1: "prohibited", 2: "reuse detection"}[rules.replay],
        "catr": None
        if renewal is None
        else f"{renewal.type}, expadd {renewal.expadd} s, deadline {renewal.deadline} s",
    }


def explain(
    url: str, verifier: Verifier, now: float, client_ip: str | None = None
) -> tuple[bool, list[str]]:
    """Return (accepted, report lines). Never prints the token or a key."""
    parts = urlsplit(url)
    target = parts.path + ("?" + parts.query if parts.query else "")
    client = ClientAddress.parse(client_ip) if client_ip else None
    claims: Claims | None = None
    try:
        split = split_target(target)
        if split.token:
            try:
                claims = verifier.open(split.token)
            except PlaybackTokenError:
                claims = None
        grant = verifier.judge(split, client, now)
    except PlaybackTokenError as exc:
        lines = [f"REJECTED: {exc.reason} ({exc.message}), HTTP {exc.status}"]
        if exc.hint:
            lines.append(f"  hint: {exc.hint}")
        if claims is not None:
            lines += describe_claims(claims, now)
        return False, lines
    return True, [f"ACCEPTED: serves {grant.path}", *describe_claims(grant.claims, now)]
