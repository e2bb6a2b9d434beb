"""Why a URL is accepted or rejected: the first thing a user with a 403 needs."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import urlsplit

from edge_validator.core.addresses import ClientAddress
from edge_validator.core.cat.claims import CatClaims
from edge_validator.core.cat.renewal import DEFAULT_DEADLINE, seconds_until_due
from edge_validator.core.cat.verify import looks_like_cat
from edge_validator.core.decision import Verifier
from edge_validator.core.errors import Expired, PlaybackTokenError
from edge_validator.core.paths import Target, split_target
from edge_validator.core.protocol import CAT_HEADER
from edge_validator.core.sessions import opens_session
from edge_validator.core.token import Claims

DAY = 86400


def span(seconds: int) -> str:
    """A duration as a reader takes it in: seconds up to two days, whole days past that
    (``explain --at 2000-01-01`` would otherwise print 849545150 s)."""
    return f"{seconds} s" if seconds < 2 * DAY else f"{seconds // DAY} days"


NO_CAT_KEYS = (
    "this looks like a CTA-5007 Common Access Token: give its keys with --cat-keys FILE "
    "(or PLAYGATE_CAT_KEYS_FILE)"
)


def _when(ts: int, now: float) -> str:
    iso = datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    delta = int(ts - now)
    return f"{iso} ({f'in {span(delta)}' if delta >= 0 else f'{span(-delta)} ago'})"


def describe_claims(
    claims: Claims, now: float, session: bool = False, max_session: int | None = None
) -> list[str]:
    lines = [_kind(claims, now, session)]
    lines += [
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
        "session length": f"{claims.session_seconds} s" if claims.session_seconds else None,
    }
    if isinstance(claims, CatClaims):
        optional.update(_cat_lines(claims, now, max_session))
    lines += [f"  {k + ':':<15} {v}" for k, v in optional.items() if v is not None]
    return lines


def _kind(claims: Claims, now: float, session: bool) -> str:
    left = max(0, int(claims.expires_at - now))
    if session:
        return f"  kind:           session token (playback session, {span(left)} left)"
    if isinstance(claims, CatClaims) and claims.rules.renewal is not None:
        return (
            f"  kind:           renewable CAT ({span(left)} left; the edge renews it near its end)"
        )
    if claims.session_seconds:
        return (
            f"  kind:           start token (start window {span(left)} left; a manifest fetched in "
            f"it opens a session of up to {claims.session_seconds} s)"
        )
    return f"  kind:           start token without a session (plays only within {span(left)} left)"


def _expired_note(claims: Claims, session: bool) -> str:
    if isinstance(claims, CatClaims) and claims.rules.renewal is not None:
        return (
            "a renewable CAT is renewed only by a request inside its deadline before exp; "
            "once expired it is not renewed: ask the app backend for a new URL"
        )
    if session:
        return "the playback session is over: the player must start again from a new URL"
    if claims.session_seconds:
        return (
            "the start window is over: playbacks started in it go on under their session URLs, "
            "but this URL starts none; ask the app backend for a new one"
        )
    return "this URL opens no session, so playback stops when it expires"


def _cat_lines(claims: CatClaims, now: float, max_session: int | None) -> dict[str, object]:
    """What only a Common Access Token says (claim names as CTA-5007 spells them)."""
    rules = claims.rules
    renewed = rules.issued_at is not None and rules.issued_at > claims.not_before
    return {
        "format": "CAT (CTA-5007)",
        "iss": rules.issuer,
        "iat": None
        if not renewed or rules.issued_at is None
        else f"{_when(rules.issued_at, now)}: renewed (iat after nbf)",
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
        **_renewal_lines(claims, now, max_session),
    }


def _renewal_lines(claims: CatClaims, now: float, max_session: int | None) -> dict[str, object]:
    """catr as the edge will apply it (core/cat/renewal.py): when, how, and until when."""
    renewal = claims.rules.renewal
    if renewal is None:
        return {}
    deadline = DEFAULT_DEADLINE if renewal.deadline is None else renewal.deadline
    how = {
        "automatic": "the way the token came (header: header; URL: redirect)",
        "header": f"response header {renewal.name or CAT_HEADER}",
        "cookie": f"cookie {renewal.name or CAT_HEADER}",
        "redirect": "302 to the same URL with the new token",
    }[renewal.type]
    due = seconds_until_due(claims, now)
    lines: dict[str, object] = {
        "catr": f"{renewal.type}, expadd {renewal.expadd} s, deadline {deadline} s",
        "renewal": f"{'due now' if due == 0 else f'due in {due} s'}: {how}",
    }
    if max_session is not None:
        lines["renewals end"] = (
            f"{_when(claims.not_before + max_session, now)} (PLAYGATE_MAX_SESSION after nbf)"
        )
    return lines


def explain(
    url: str, verifier: Verifier, now: float, client_ip: str | None = None
) -> tuple[bool, list[str]]:
    """Return (accepted, report lines). Never prints the token or a key."""
    parts = urlsplit(url)
    target = parts.path + ("?" + parts.query if parts.query else "")
    client = ClientAddress.parse(client_ip) if client_ip else None
    claims: Claims | None = None
    split = Target(None, "", "", False)
    try:
        split = split_target(target)
        if split.token:
            try:
                claims = verifier.open(split.token, split.session)
            except PlaybackTokenError:
                claims = None
        grant = verifier.judge(split, client, now)
    except PlaybackTokenError as exc:
        lines = [f"REJECTED: {exc.reason} ({exc.message}), HTTP {exc.status}"]
        if verifier.cat is None and split.token and looks_like_cat(split.token):
            # Not "cut or altered": a CAT judged without CAT keys, the likelier mistake.
            lines.append(f"  hint: {NO_CAT_KEYS}")
        elif exc.hint:
            lines.append(f"  hint: {exc.hint}")
        if isinstance(exc, Expired) and claims is not None:
            lines.append(f"  {_expired_note(claims, split.session)}")
        if claims is not None:
            lines += describe_claims(claims, now, split.session, verifier.max_session)
        return False, lines
    described = describe_claims(grant.claims, now, split.session, verifier.max_session)
    lines = [f"ACCEPTED: serves {grant.path}", *described]
    if opens_session(grant):
        lines.append("  the edge answers this manifest with a redirect to a new session URL")
    return True, lines
