"""How errors become HTTP responses, for the validator and the signer alike: one JSON shape
(``{"error": reason, "message", "field"?}``), the reason in a header, never cached."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..core.errors import (
    InternalError,
    MethodNotAllowed,
    NotFound,
    PlaybackTokenError,
    PlayGateError,
    RequestError,
)
from ..core.paths import split_target
from ..core.protocol import NO_STORE, REASON_HEADER

_HTTP_ERRORS: dict[int, type[PlayGateError]] = {404: NotFound, 405: MethodNotAllowed}


def problem(error: PlayGateError, headers: Mapping[str, str] | None = None) -> JSONResponse:
    """Any error as JSON with its own status: reason in a header and the body, never cached."""
    body = {"error": error.reason, "message": error.message}
    if error.field:
        body["field"] = error.field
    all_headers = {REASON_HEADER: error.reason, "Cache-Control": NO_STORE, **(headers or {})}
    if error.retry_after is not None:
        all_headers["Retry-After"] = str(error.retry_after)
    return JSONResponse(body, error.status, all_headers)


def denied(error: PlaybackTokenError, *, body: bool = True) -> Response:
    """A 401 or 403 for ``error``; without a body for nginx's auth_request."""
    if body:
        return problem(error)
    headers = {REASON_HEADER: error.reason, "Cache-Control": NO_STORE}
    return Response(status_code=error.status, headers=headers)


async def http_error(request: Request, exc: Exception) -> Response:
    """Starlette's own 404/405 in the same shape, keeping its headers (``Allow``)."""
    assert isinstance(exc, HTTPException)
    error = _HTTP_ERRORS.get(exc.status_code, RequestError)(str(exc.detail))
    return problem(error, exc.headers)


async def internal_error(request: Request, exc: Exception) -> Response:
    """A bug anywhere (a file gone between stat and send, a broken store): denied with a
    reason and never cached, instead of Starlette's bare, cacheable 500 page."""
    logging.getLogger("playgate").error(
        "unexpected %s on %s %s", type(exc).__name__, request.method, _without_token(request)
    )
    return problem(InternalError("an unexpected error; the request is denied"))


def _without_token(request: Request) -> str:
    """The request's path without its token: never log one. A ``/t/<token>/`` or
    ``/s/<token>/`` segment is dropped, a segment holding ``=`` (Media CDN's
    ``edge-cache-token=...``) hidden; the query, where the others travel, is not logged."""
    try:
        path = split_target(request.url.path).path
    except PlaybackTokenError:
        return "(a path that does not parse)"
    return "/".join("(hidden)" if "=" in segment else segment for segment in path.split("/"))
