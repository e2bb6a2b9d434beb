"""The signer's stateful endpoints: POST/GET /v1/revocations, and health that reports Redis."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from edge_validator.state.store import StateStore, StoreUnavailable

from .errors import StateNotShared
from .revoking import parse_revocation, revocation_json
from .settings import SignerSettings

log = logging.getLogger("playgate.signer")
_NO_STORE = {"Cache-Control": "no-store"}


class StateApi:
    def __init__(
        self,
        settings: SignerSettings,
        store: StateStore,
        authenticate: Callable[[Request, SignerSettings], str],
        read_json: Callable[[Request, int], Any],
        clock: Callable[[], float] = time.time,
        *,
        shared: bool = True,
    ) -> None:
        self.settings = settings
        self.shared = shared
        self.store = store
        self.authenticate = authenticate
        self.read_json = read_json
        self.clock = clock

    async def revoke(self, request: Request) -> Response:
        caller = self.authenticate(request, self.settings)
        if not self.shared:
            raise StateNotShared("revocations need REDIS_URL: this memory reaches no validator")
        doc = await self.read_json(request, self.settings.max_body_bytes)
        rev = parse_revocation(doc, self.clock(), self.settings.max_ttl)
        await self.store.revoke(rev)  # StoreUnavailable: a 503 to retry
        log.info("revoked %s=%s caller=%s", rev.kind, rev.value, caller)
        return JSONResponse(revocation_json(rev), 201, _NO_STORE)

    async def list_revocations(self, request: Request) -> Response:
        self.authenticate(request, self.settings)
        revs = await self.store.revocations(self.clock())
        return JSONResponse({"revocations": [revocation_json(r) for r in revs]}, 200, _NO_STORE)

    async def _state(self) -> dict[str, Any]:
        try:
            await self.store.ping()
        except StoreUnavailable as exc:
            return {
                "backend": self.store.backend,
                "connected": False,
                "last_error": str(exc),
                "shared": self.shared,
            }
        return {"backend": self.store.backend, "connected": True, "shared": self.shared}

    async def healthz(self, request: Request) -> Response:
        return JSONResponse({"status": "ok", "state": await self._state()}, headers=_NO_STORE)

    async def readyz(self, request: Request) -> Response:
        state = await self._state()
        ready = bool(state["connected"])
        return JSONResponse({"ready": ready, "state": state}, 200 if ready else 503, _NO_STORE)
