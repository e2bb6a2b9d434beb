"""The signer's revocation endpoints: POST and GET /v1/revocations."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from edge_validator.core.errors import StateNotShared, StoreUnavailable, VideoNotAllowed
from edge_validator.core.protocol import NO_STORE
from edge_validator.state.revocations import Revocation
from edge_validator.state.store import StateStore

from .api_keys import READ, REVOKE
from .rate_limits import RateLimiter
from .requests import authenticate, read_json
from .revocation_spool import RevocationSpool
from .revoking import parse_revocation, revocation_json, settle_seconds
from .settings import SignerSettings

log = logging.getLogger("playgate.signer")
_NO_STORE = {"Cache-Control": NO_STORE}


class RevocationsApi:
    def __init__(
        self,
        settings: SignerSettings,
        store: StateStore,
        clock: Callable[[], float] = time.time,
        *,
        shared: bool = True,
        spool: RevocationSpool | None = None,
        limiter: RateLimiter | None = None,
    ) -> None:
        self.settings = settings
        self.limiter = limiter
        self.shared = shared
        self.spool = spool
        self.store = store
        self.clock = clock

    async def revoke(self, request: Request) -> Response:
        caller = authenticate(request, self.settings, REVOKE)
        if not self.shared:
            raise StateNotShared("revocations need REDIS_URL: this memory reaches no validator")
        doc = await read_json(request, self.settings.max_body_bytes)
        margin = self.settings.not_before_margin
        rev = parse_revocation(doc, self.clock(), self.settings.revocation_retention, margin)
        if caller.video_prefix and rev.kind != "video_id":
            # Users, sessions and token ids belong to no video: a key limited to some videos
            # could otherwise cut off viewers of every other video.
            raise VideoNotAllowed(
                "a key limited to a video prefix revokes only videos (video_id) under it"
            )
        if rev.kind == "video_id":
            caller.require_video(rev.value)
        if self.limiter is not None:
            await self.limiter.check_revocation(caller.name)
        queued = await self._store(rev)
        log.info("revoked %s=%s caller=%s queued=%s", rev.kind, rev.value, caller.name, queued)
        # Answer once the revocation's second is over: URLs issued after the answer are never
        # covered by it (revoking.py).
        await asyncio.sleep(settle_seconds(rev, self.clock(), margin))
        if queued:
            return JSONResponse({**revocation_json(rev), "queued": True}, 202, _NO_STORE)
        return JSONResponse(revocation_json(rev), 201, _NO_STORE)

    async def _store(self, rev: Revocation) -> bool:
        """Write ``rev`` to the store (False), or to the spool when the store cannot take it
        (True). Without a spool, StoreUnavailable is a 503 to retry."""
        spool = self.spool
        if spool is None:
            await self.store.revoke(rev)
            return False
        if not spool.holds_any():  # else join the queue: this host's writes stay in order
            try:
                await self.store.revoke(rev)
                return False
            except StoreUnavailable as exc:
                log.warning("revocation %s=%s not stored: %s", rev.kind, rev.value, exc.message)
        try:
            await spool.append(rev)
        except OSError as exc:
            log.error("revocation spool %s cannot be written: %s", spool.path, exc)
            raise StoreUnavailable("the revocation could not be stored or queued") from None
        return True

    async def list_revocations(self, request: Request) -> Response:
        caller = authenticate(request, self.settings, READ)
        revs = await self.store.revocations(self.clock())
        if caller.video_prefix:
            # Only its own videos: other callers' users and sessions are not its business.
            revs = [r for r in revs if r.kind == "video_id" and caller.covers(r.value)]
        return JSONResponse({"revocations": [revocation_json(r) for r in revs]}, 200, _NO_STORE)
