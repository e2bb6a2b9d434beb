"""The signer's revocation endpoints: POST and GET /v1/revocations."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from edge_validator.core.errors import StateNotShared, VideoNotAllowed
from edge_validator.core.protocol import NO_STORE
from edge_validator.state.store import StateStore

from .api_keys import READ, REVOKE
from .requests import authenticate, read_json
from .revoking import parse_revocation, revocation_json
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
    ) -> None:
        self.settings = settings
        self.shared = shared
        self.store = store
        self.clock = clock

    async def revoke(self, request: Request) -> Response:
        caller = authenticate(request, self.settings, REVOKE)
        if not self.shared:
            raise StateNotShared("revocations need REDIS_URL: this memory reaches no validator")
        doc = await read_json(request, self.settings.max_body_bytes)
        rev = parse_revocation(doc, self.clock(), self.settings.max_ttl)
        if caller.video_prefix and rev.kind != "video_id":
            # Users, sessions and token ids belong to no video: a key limited to some videos
            # could otherwise cut off viewers of every other video.
            raise VideoNotAllowed(
                "a key limited to a video prefix revokes only videos (video_id) under it"
            )
        if rev.kind == "video_id":
            caller.require_video(rev.value)
        await self.store.revoke(rev)  # StoreUnavailable: a 503 to retry
        log.info("revoked %s=%s caller=%s", rev.kind, rev.value, caller.name)
        return JSONResponse(revocation_json(rev), 201, _NO_STORE)

    async def list_revocations(self, request: Request) -> Response:
        caller = authenticate(request, self.settings, READ)
        revs = await self.store.revocations(self.clock())
        if caller.video_prefix:
            # Only its own videos: other callers' users and sessions are not its business.
            revs = [r for r in revs if r.kind == "video_id" and caller.covers(r.value)]
        return JSONResponse({"revocations": [revocation_json(r) for r in revs]}, 200, _NO_STORE)
