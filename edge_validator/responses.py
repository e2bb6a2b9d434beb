"""How errors become HTTP responses, for the validator and the signer alike: one JSON shape
(``{"error": reason, "message", "field"?}``), the reason in a header, never cached."""

from __future__ import annotations

from collections.abc import Mapping

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .errors import PlayGateError

REASON_HEADER = "X-PlayGate-Reason"
TOKEN_ID_HEADER = "X-PlayGate-Token-Id"
NO_STORE = "no-store"
_HTTP_REASONS = {404: "not_found", 405: "method_not_allowed"}


def problem(error: PlayGateError, headers: Mapping[str, str] | None = None) -> JSONResponse:
    """Any error as JSON with its own status: reason in a header and the body, never cached."""
    body = {"error": error.reason, "message": error.message}
    field = getattr(error, "field", None)
    if field:
        body["field"] = field
    all_headers = {REASON_HEADER: error.reason, "Cache-Control": NO_STORE, **(headers or {})}
    retry_after = getattr(error, "retry_after", None)
    if retry_after is not None:
        all_headers["Retry-After"] = str(retry_after)
    return JSONResponse(body, error.status, all_headers)


def denied(error: PlayGateError, *, body: bool = True) -> Response:
    """A 4xx for ``error`` (the auth contract allows no other status); no body for nginx."""
    status = error.status if 400 <= error.status < 500 else 403
    if not body:
        return Response(
            status_code=status, headers={REASON_HEADER: error.reason, "Cache-Control": NO_STORE}
        )
    return problem(PlayGateError(error.message, reason=error.reason, status=status))


async def http_error(request: Request, exc: Exception) -> Response:
    """Starlette's own 404/405 in the same shape, keeping its headers (``Allow``)."""
    assert isinstance(exc, HTTPException)
    reason = _HTTP_REASONS.get(exc.status_code, "bad_request")
    error = PlayGateError(str(exc.detail), reason=reason, status=exc.status_code)
    return problem(error, exc.headers)
