"""The validator as a CloudFront viewer-request function (Lambda@Edge).

A viewer-request trigger runs before CloudFront looks in its cache, so cache hits are protected
too. Allowed requests go on with the token removed from the URI and the query string, which keeps
the token out of the cache key; denied requests get a generated 401/403 that CloudFront never
caches. Standard library only: this module and ``core/`` ship in a zip with the verification
key ring and policy baked in, because Lambda@Edge has no environment variables.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

from .core.addresses import ClientAddress
from .core.cat.claims import CatPolicy
from .core.cat.keys import CatKeyRing
from .core.cat.verify import CatVerifier
from .core.cors import DEFAULT_MAX_AGE, CorsPolicy, parse_origins
from .core.decision import DEFAULT_LEEWAY, DEFAULT_MAX_SESSION, Grant, Verifier
from .core.errors import (
    CorsRefused,
    InternalError,
    MalformedToken,
    MethodNotAllowed,
    PlaybackTokenError,
    PlayGateError,
    SessionRedirectRequired,
    StateUnavailable,
)
from .core.keyring import KeyRing
from .core.protocol import CAT_HEADER, NO_STORE, REASON_HEADER, TOKEN_ID_HEADER
from .core.sessions import opens_session, seal_session, session_claims, session_location
from .formats.lambda_formats import LambdaFormats

log = logging.getLogger("playgate.lambda_edge")

# Written next to this module by scripts/build-lambda: verification keys and the policy.
BAKED_CONFIG = Path(__file__).with_name("baked_config.json")
_ALLOWED_METHODS = frozenset({"GET", "HEAD"})
_STATUS_TEXT = {
    204: "No Content",
    302: "Found",
    401: "Unauthorized",
    403: "Forbidden",
    405: "Method Not Allowed",
}
_NO_CORS = CorsPolicy()
# No shared-secret format keys baked: every foreign format is refused by name.
_NO_FORMATS = LambdaFormats()

Event = Mapping[str, Any]
Result = dict[str, Any]


def _header(name: str, value: str) -> list[dict[str, str]]:
    return [{"key": name, "value": value}]


def _headers(values: Mapping[str, str]) -> dict[str, list[dict[str, str]]]:
    return {name.lower(): _header(name, value) for name, value in values.items()}


def denied_response(error: PlayGateError, cors: Mapping[str, str] | None = None) -> Result:
    """A generated response in CloudFront's shape: status as a string, lowercase header keys.
    ``cors``: the policy's headers for this viewer, so a web player can read the reason."""
    body = json.dumps({"error": error.reason, "message": error.message})
    headers = {
        "cache-control": _header("Cache-Control", NO_STORE),
        "content-type": _header("Content-Type", "application/json"),
        REASON_HEADER.lower(): _header(REASON_HEADER, error.reason),
        **_headers(cors or {}),
    }
    if error.status == 405:
        headers["allow"] = _header("Allow", "GET, HEAD")
    return {
        "status": str(error.status),
        "statusDescription": _STATUS_TEXT.get(error.status, "Forbidden"),
        "headers": headers,
        "bodyEncoding": "text",
        "body": body,
    }


def session_response(grant: Grant, client: ClientAddress | None, verifier: Verifier) -> Result:
    """Open a playback session: a generated 302 to the session URL, which CloudFront never
    caches (a viewer-request response). The edge holds the HMAC keys, so it mints the session
    token itself; the session id and token id are logged, never the token."""
    if grant.target.token_in_query:
        # A viewer-request function cannot rewrite the manifest's child URIs, so in query-token
        # mode the session token would reach only the manifest: refuse instead of a playback
        # that stops when the start window closes.
        raise SessionRedirectRequired(
            "query-token sessions need the origin shield", token_id=grant.token_id
        )
    session = session_claims(grant, client, max_session=verifier.max_session)
    location = session_location(grant, seal_session(session, verifier.sessions))
    log.info(
        "session opened token_id=%s session_id=%s expires_at=%d",
        session.token_id,
        session.session_id,
        session.expires_at,
    )
    return {
        "status": "302",
        "statusDescription": _STATUS_TEXT[302],
        "headers": {
            "location": _header("Location", location),
            "cache-control": _header("Cache-Control", NO_STORE),
            "referrer-policy": _header("Referrer-Policy", "no-referrer"),
            TOKEN_ID_HEADER.lower(): _header(TOKEN_ID_HEADER, grant.token_id),
        },
    }


def _request_header(request: Mapping[str, Any], name: str) -> str | None:
    """A header of CloudFront's request object (lowercase keys, lists of key/value)."""
    values = (request.get("headers") or {}).get(name)
    if not isinstance(values, list) or not values or not isinstance(values[0], Mapping):
        return None
    value = values[0].get("value")
    return value if isinstance(value, str) else None


def preflight_response(request: Mapping[str, Any], cors: CorsPolicy) -> Result:
    """A CORS preflight, answered at the edge: 204 with the policy's headers, or 403."""
    try:
        headers = cors.preflight(
            _request_header(request, "origin"),
            _request_header(request, "access-control-request-method") or "",
            _request_header(request, "access-control-request-headers"),
        )
    except CorsRefused as exc:
        return denied_response(exc)
    return {"status": "204", "statusDescription": "No Content", "headers": _headers(headers)}


def viewer_request(
    request: Mapping[str, Any],
    verifier: Verifier,
    now: float,
    cors: CorsPolicy = _NO_CORS,
    formats: LambdaFormats = _NO_FORMATS,
) -> Result:
    """Judge one CloudFront request object; return the request to forward or a response.

    Allowed media gets its CORS headers from the distribution's response headers policy
    (infra/aws/playgate.yaml); the responses generated here carry them from ``cors``.
    ``formats``: the foreign formats verified here (secure_link, Akamai); the others are
    refused by name (formats/lambda_formats.py)."""
    client_ip = request.get("clientIp")
    method = request.get("method")
    if method == "OPTIONS" and _request_header(request, "access-control-request-method"):
        return preflight_response(request, cors)
    try:
        if method not in _ALLOWED_METHODS:
            raise MethodNotAllowed("only GET and HEAD")
        query: str = request.get("querystring") or ""
        uri: str = request["uri"]
        client = client_ip if isinstance(client_ip, str) else None  # parsed only if needed
        target = f"{uri}?{query}" if query else uri
        try:
            grant = verifier.verify_target(target, client, now, _header_token(request))
        except PlaybackTokenError:
            # Not a good PlayGate token: a foreign format's, or refused by name? A valid
            # PlayGate token never pays for the question.
            found = formats.authorize(uri, query, _request_cookies(request), client, now)
            if found is None:
                raise
            grant = found
        claims = grant.claims
        # No shared state reaches a CloudFront POP: a token that needs it is refused, not waved on.
        if claims.max_uses or claims.max_streams:
            raise StateUnavailable("use and stream limits are not enforced at Lambda@Edge")
        if opens_session(grant):
            return session_response(
                grant, ClientAddress.parse(client) if client else None, verifier
            )
    except PlayGateError as exc:
        log.info("deny reason=%s token_id=%s client=%s", exc.reason, exc.token_id, client_ip)
        return denied_response(exc, cors.response_headers(_request_header(request, "origin")))
    except Exception:  # deny by default: a bug must never open the gate
        log.exception("viewer-request check failed")
        return denied_response(InternalError())
    # A new dict: the event stays as CloudFront sent it. The path is still percent-encoded, as
    # CloudFront expects; the query keeps every parameter except the token.
    return {**request, "uri": grant.target.path, "querystring": grant.target.query}


def _request_cookies(request: Mapping[str, Any]) -> str | None:
    """The ``Cookie`` header; CloudFront may pass it as several entries."""
    values = (request.get("headers") or {}).get("cookie") or []
    found = [v.get("value") for v in values if isinstance(v, Mapping)]
    return "; ".join(v for v in found if isinstance(v, str)) or None


def _header_token(request: Mapping[str, Any]) -> str | None:
    """A ``CTA-Common-Access-Token`` header (CloudFront lower-cases header names), or None."""
    values = (request.get("headers") or {}).get(CAT_HEADER.lower()) or []
    if len(values) > 1:
        raise MalformedToken("more than one token in the request")
    return str(values[0].get("value", "")) if values else None


def make_handler(
    load_verifier: Callable[[], Verifier],
    clock: Callable[[], float] = time.time,
    load_cors: Callable[[], CorsPolicy] = lambda: _NO_CORS,
    load_formats: Callable[[], LambdaFormats] = lambda: _NO_FORMATS,
) -> Callable[[Event, object], Result]:
    def handle(event: Event, context: object) -> Result:
        try:
            request = event["Records"][0]["cf"]["request"]
            verifier = load_verifier()
            cors = load_cors()
            formats = load_formats()
        except Exception:  # a malformed event or a broken bundle: deny, never forward
            log.exception("cannot read the event or the baked configuration")
            return denied_response(InternalError())
        return viewer_request(request, verifier, clock(), cors, formats)

    return handle


def verifier_from_config(text: str) -> Verifier:
    """``{"keys": {...}, "max_ttl": N, "leeway": N, "max_session": N}``, as
    scripts/build-lambda writes it."""
    doc = json.loads(text)
    keyring = KeyRing.from_json(json.dumps({"keys": doc["keys"]}))
    return Verifier(
        keyring,
        max_ttl=int(doc["max_ttl"]),
        leeway=int(doc.get("leeway", DEFAULT_LEEWAY)),
        max_session=int(doc.get("max_session", DEFAULT_MAX_SESSION)),
        cat=None if doc.get("cat") is None else cat_verifier(doc["cat"]),
    )


def cors_from_config(text: str) -> CorsPolicy:
    """``{"cors": {"origins": "*" or "https://a,https://b", "max_age": N}}``; absent: no CORS."""
    doc = json.loads(text).get("cors") or {}
    origins = parse_origins(str(doc.get("origins", "")), "baked cors.origins")
    return CorsPolicy(origins, int(doc.get("max_age", DEFAULT_MAX_AGE)))


def cat_verifier(doc: Mapping[str, Any]) -> CatVerifier:
    """HS256 CAT keys baked by build-lambda (no ES256 here: no ``cryptography`` at the edge)."""
    keyring = CatKeyRing.from_json(json.dumps({"keys": doc["keys"]}), es256=None)
    origin = doc.get("origin")
    scheme, _, host = origin.partition("://") if isinstance(origin, str) else ("", "", "")
    policy = CatPolicy(doc.get("issuer"), doc.get("audience"), (scheme, host) if host else None)
    return CatVerifier(keyring, policy)


@lru_cache(maxsize=1)
def baked_verifier() -> Verifier:
    """The verifier shipped in the bundle, loaded once per container on first use."""
    return verifier_from_config(BAKED_CONFIG.read_text(encoding="utf-8"))


def formats_from_config(text: str) -> LambdaFormats:
    """``{"formats": {"secure_link": [...], "akamai": [...]}, "max_ttl": N, "leeway": N}``;
    absent: no foreign format is verified here."""
    doc = json.loads(text)
    return LambdaFormats.from_config(
        doc.get("formats") or {},
        max_ttl=int(doc["max_ttl"]),
        leeway=int(doc.get("leeway", DEFAULT_LEEWAY)),
    )


@lru_cache(maxsize=1)
def baked_cors() -> CorsPolicy:
    return cors_from_config(BAKED_CONFIG.read_text(encoding="utf-8"))


@lru_cache(maxsize=1)
def baked_formats() -> LambdaFormats:
    return formats_from_config(BAKED_CONFIG.read_text(encoding="utf-8"))


handler = make_handler(baked_verifier, load_cors=baked_cors, load_formats=baked_formats)
"""The Lambda entry point: ``edge_validator.lambda_edge.handler``."""
