"""The signer's public /healthz and /readyz (no details), and /admin/health's details."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from edge_validator.core.errors import StoreUnavailable
from edge_validator.core.protocol import NO_STORE
from edge_validator.state.store import StateStore

from .revocation_spool import RevocationSpool

_NO_STORE = {"Cache-Control": NO_STORE}


class SignerHealth:
    def __init__(
        self, store: StateStore, *, shared: bool, spool: RevocationSpool | None = None
    ) -> None:
        self.store = store
        self.shared = shared
        self.spool = spool

    async def _state(self) -> dict[str, Any]:
        state: dict[str, Any] = {"backend": self.store.backend, "connected": True}
        try:
            await self.store.ping()
        except StoreUnavailable as exc:
            state.update(connected=False, last_error=str(exc))
        state["shared"] = self.shared
        if self.spool is not None:
            # Revocations accepted (202) that Redis does not hold yet, and why.
            state["revocations_queued"] = self.spool.pending()
            state["spool_error"] = self.spool.last_error
        return state

    async def healthz(self, request: Request) -> Response:
        return JSONResponse({"status": "ok"}, headers=_NO_STORE)

    async def readyz(self, request: Request) -> Response:
        state = await self._state()
        ready = bool(state["connected"])
        return JSONResponse({"ready": ready}, 200 if ready else 503, _NO_STORE)

    async def details(self) -> dict[str, Any]:
        """For /admin/health: the store, whether it answers, and its last error."""
        state = await self._state()
        return {"status": "ok", "ready": bool(state["connected"]), "state": state}
