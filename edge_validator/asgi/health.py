"""/healthz (liveness, with state details) and /readyz (may this process take traffic?)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..core.protocol import NO_STORE
from ..state.guard import StateGuard

_NO_STORE = {"Cache-Control": NO_STORE}


def _guard(request: Request) -> StateGuard | None:
    guard: StateGuard | None = request.app.state.guard
    return guard


async def healthz(request: Request) -> Response:
    guard = _guard(request)
    body: dict[str, Any] = {"status": "ok"}
    if guard is not None:
        body["state"] = guard.health()
    return JSONResponse(body, headers=_NO_STORE)


async def readyz(request: Request) -> Response:
    """200 when the state this process needs is usable under its failure policy, else 503."""
    guard = _guard(request)
    ready = guard is None or guard.ready()
    body: dict[str, Any] = {"ready": ready}
    if guard is not None:
        body["state"] = guard.health()
    return JSONResponse(body, 200 if ready else 503, headers=_NO_STORE)
