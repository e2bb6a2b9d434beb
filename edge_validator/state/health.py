"""/healthz (liveness, with state details) and /readyz (may this process take traffic?)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

_NO_STORE = {"Cache-Control": "no-store"}


def _state(request: Request) -> Any:
    return getattr(request.app.state, "playgate_state", None)


async def healthz(request: Request) -> Response:
    state = _state(request)
    body: dict[str, Any] = {"status": "ok"}
    if state is not None:
        body["state"] = state.health()
    return JSONResponse(body, headers=_NO_STORE)


async def readyz(request: Request) -> Response:
    """200 when the state this process needs is usable under its failure policy, else 503."""
    state = _state(request)
    ready = state is None or state.ready()
    body: dict[str, Any] = {"ready": ready}
    if state is not None:
        body["state"] = state.health()
    return JSONResponse(body, 200 if ready else 503, headers=_NO_STORE)
