"""How decisions become HTTP responses: one place for status, reason header and no-store."""

from __future__ import annotations

from starlette.responses import JSONResponse, Response

from .errors import PlayGateError

REASON_HEADER = "X-PlayGate-Reason"
TOKEN_ID_HEADER = "X-PlayGate-Token-Id"
NO_STORE = "no-store"


def problem(error: PlayGateError) -> Response:
    """Any error as JSON with its own status: reason in a header and the body, never cached."""
    headers = {REASON_HEADER: error.reason, "Cache-Control": NO_STORE}
    return JSONResponse({"error": error.reason, "message": error.message}, error.status, headers)


def denied(error: PlayGateError, *, body: bool = True) -> Response:
    """A 4xx for ``error``: reason in a header and a JSON body, never cached, no secrets."""
    status = error.status if 400 <= error.status < 500 else 403
    headers = {REASON_HEADER: error.reason, "Cache-Control": NO_STORE}
    if not body:
        return Response(status_code=status, headers=headers)
    return JSONResponse({"error": error.reason, "message": error.message}, status, headers)
