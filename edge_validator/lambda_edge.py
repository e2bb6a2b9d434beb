"""The validator as a CloudFront viewer-request function (Lambda@Edge).

A viewer-request trigger runs before CloudFront looks in its cache, so cache hits are protected
too. Allowed requests go on with the token removed from the URI and the query string, which keeps
the token out of the cache key; denied requests get a generated 401/403 that CloudFront never
caches. Standard library only: this module ships in a zip with the verification key ring baked
in, because Lambda@Edge has no environment variables.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

from .decision import DEFAULT_LEEWAY, verify
from .errors import InternalError, PlaybackTokenError, PlayGateError, StateUnavailable
from .keyring import KeyRing
from .paths import split_target

log = logging.getLogger("playgate.lambda_edge")

# Written next to this module by scripts/build-lambda; holds verification keys only.
BAKED_KEYRING = Path(__file__).with_name("baked_keyring.json")
REASON_HEADER = "X-PlayGate-Reason"
_ALLOWED_METHODS = frozenset({"GET", "HEAD"})
_STATUS_TEXT = {401: "Unauthorized", 403: "Forbidden", 405: "Method Not Allowed"}

Event = Mapping[str, Any]
Result = dict[str, Any]


class _MethodNotAllowed(PlaybackTokenError):
    """Only GET and HEAD are served."""

    reason = "method_not_allowed"
    status = 405


def _header(name: str, value: str) -> list[dict[str, str]]:
    return [{"key": name, "value": value}]


def denied_response(error: PlayGateError) -> Result:
    """A generated response in CloudFront's shape: status as a string, lowercase header keys."""
    status = error.status if 400 <= error.status < 500 else 403
    body = json.dumps({"error": error.reason, "message": error.message})
    headers = {
        "cache-control": _header("Cache-Control", "no-store"),
        "content-type": _header("Content-Type", "application/json"),
        REASON_HEADER.lower(): _header(REASON_HEADER, error.reason),
    }
    if status == 405:
        headers["allow"] = _header("Allow", "GET, HEAD")
    return {
        "status": str(status),
        "statusDescription": _STATUS_TEXT.get(status, "Forbidden"),
        "headers": headers,
        "bodyEncoding": "text",
        "body": body,
    }


def viewer_request(
    request: Mapping[str, Any], keyring: KeyRing, now: float, *, leeway: int = DEFAULT_LEEWAY
) -> Result:
    """Judge one CloudFront request object; return the request to forward or a response."""
    try:
        if request.get("method") not in _ALLOWED_METHODS:
            raise _MethodNotAllowed("only GET and HEAD")
        query: str = request.get("querystring") or ""
        uri: str = request["uri"]
        token, path, kept = split_target(f"{uri}?{query}" if query else uri)
        grant = verify(token, path, request.get("clientIp"), now, keyring, leeway=leeway)
        claims = grant.claims
        # No shared state reaches a CloudFront POP: a token that needs it is refused, not waved on.
        if claims.max_uses or claims.max_streams:
            raise StateUnavailable("use and stream limits are not enforced at Lambda@Edge")
    except PlaybackTokenError as exc:
        log.info(
            "deny reason=%s token_id=%s client=%s",
            exc.reason,
            exc.token_id,
            request.get("clientIp"),
        )
        return denied_response(exc)
    except Exception:  # deny by default: a bug must never open the gate
        log.exception("viewer-request check failed")
        return denied_response(InternalError())
    # A new dict: the event stays as CloudFront sent it. The path is still percent-encoded, as
    # CloudFront expects; the query keeps every parameter except the token.
    return {**request, "uri": path, "querystring": kept}


def make_handler(
    load_keyring: Callable[[], KeyRing], clock: Callable[[], float] = time.time
) -> Callable[[Event, object], Result]:
    def handle(event: Event, context: object) -> Result:
        try:
            request = event["Records"][0]["cf"]["request"]
            keyring = load_keyring()
        except Exception:  # a malformed event or a broken bundle: deny, never forward
            log.exception("cannot read the event or the key ring")
            return denied_response(InternalError())
        return viewer_request(request, keyring, clock())

    return handle


@lru_cache(maxsize=1)
def baked_keyring() -> KeyRing:
    """The key ring shipped in the bundle, loaded once per container on first use."""
    return KeyRing.from_file(BAKED_KEYRING)


handler = make_handler(baked_keyring)
"""The Lambda entry point: ``edge_validator.lambda_edge.handler``."""
