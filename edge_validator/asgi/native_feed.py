"""``GET NATIVE_FEED_ROUTE``: what nginx's native verifier needs to decide like this validator.

Only a poller holding the key ring can read it (``FEED_AUTH_HEADER``, state/feed.py); nginx
never routes a viewer's request here (the edge template sends viewers to ``/auth`` and to the
shield's manifest paths only).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse

from ..core.errors import Unauthorized
from ..core.protocol import FEED_AUTH_HEADER, NO_STORE
from ..gate import Gate
from ..state.feed import FEED_VERSION, RevocationFeed, accepts, key_probes, revocation_line
from ..state.guard import StateGuard
from ..state.revocations import Revocation
from .problems import problem

# Revocation lines per part of a long answer.
_CHUNK = 5000


async def native_feed(request: Request) -> Response:
    gate: Gate = request.app.state.gate
    guard: StateGuard = request.app.state.guard
    feed: RevocationFeed = request.app.state.feed
    verifier = gate.verifier  # read once: a key ring reload swaps it
    if not accepts(verifier.keyring, request.headers.get(FEED_AUTH_HEADER), time.time()):
        return problem(Unauthorized("send a feed authentication made with the key ring"))
    epoch = request.query_params.get("epoch", "")
    cursor_text = request.query_params.get("cursor", "")
    cursor = int(cursor_text) if cursor_text.isdigit() and len(cursor_text) < 19 else -1
    # Both read before any await: the log and its cursor belong together.
    fresh = feed.since(epoch, cursor)
    full = fresh is None
    revocations = feed.everything(guard.sync.view) if fresh is None else fresh
    state = guard.settings
    # nginx decides natively only PlayGate's own tokens: with foreign formats accepted (they
    # can travel anywhere, cookies included) every request comes here; with CTA-5007, start
    # tokens that look like a CAT do (cat/verify.py looks_like_cat).
    native = gate.foreign is None
    cat = verifier.cat is not None
    trusted = feed.live and guard.sync.trusted()
    head = [
        FEED_VERSION,
        f"epoch {feed.epoch}",
        f"cursor {feed.cursor}",
        f"full {int(full)}",
        f"trusted {int(trusted)}",
        f"verify {int(native)} {verifier.leeway} {verifier.max_ttl} {verifier.max_session}"
        f" {state.failure_policy} {state.max_staleness!r} {state.stale_fallback} {int(cat)}",
        f"keys {key_probes(verifier.keyring)}",
    ]
    # Taken now, with the cursor: what comes later is in the next poll's answer.
    entries = list(revocations)
    if len(entries) <= _CHUNK:
        lines = [*head, *(revocation_line(rev) for rev in entries), "end", ""]
        return PlainTextResponse("\n".join(lines), headers={"Cache-Control": NO_STORE})
    return StreamingResponse(
        _streamed(head, entries), media_type="text/plain", headers={"Cache-Control": NO_STORE}
    )


async def _streamed(head: list[str], entries: list[Revocation]) -> AsyncIterator[str]:
    """A long answer (nginx's first poll with many revocations) in parts, so that formatting a
    million lines never holds up the checks this validator answers meanwhile."""
    yield "\n".join(head) + "\n"
    for start in range(0, len(entries), _CHUNK):
        yield "".join(revocation_line(rev) + "\n" for rev in entries[start : start + _CHUNK])
        await asyncio.sleep(0)
    yield "end\n"
