"""Public /healthz (the process answers) and /readyz (may it take traffic?), with no details:
state details are for operators, at /admin/health behind the admin key (``admin.py``)."""

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
    return JSONResponse({"status": "ok"}, headers=_NO_STORE)


async def readyz(request: Request) -> Response:
    """200 when the state this process needs is usable under its failure policy, else 503."""
    guard = _guard(request)
    ready = guard is None or guard.ready()
    return JSONResponse({"ready": ready}, 200 if ready else 503, headers=_NO_STORE)


def health_details(guard: StateGuard) -> dict[str, Any]:
    """What /admin/health shows: the state backend, the view's size and age, the last error."""
    return {"status": "ok", "ready": guard.ready(), "state": guard.health()}
