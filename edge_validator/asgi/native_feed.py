"""``GET NATIVE_FEED_ROUTE``: what nginx's native verifier needs to decide like this validator.

Only a poller holding the key ring can read it (``FEED_AUTH_HEADER``, state/feed.py); nginx
never routes a viewer's request here (the edge template sends viewers to ``/auth`` and to the
shield's manifest paths only).
"""

from __future__ import annotations

import asyncio
import time

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from ..core.errors import Unauthorized
from ..core.protocol import FEED_AUTH_HEADER, NO_STORE
from ..gate import Gate
from ..state.feed import FEED_VERSION, RevocationFeed, accepts, key_probes, revocation_line
from ..state.guard import StateGuard
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
    ok = cursor_text.isascii() and cursor_text.isdigit() and len(cursor_text) < 19  # not '²'
    cursor = int(cursor_text) if ok else -1
    # Both read before any await: the log and its cursor belong together.
    fresh = feed.since(epoch, cursor)
    full = fresh is None
    revocations = feed.everything() if fresh is None else fresh
    state = guard.settings
    # nginx decides natively only PlayGate's own tokens: with foreign formats accepted (they
    # can travel anywhere, cookies included) every request comes here; with CTA-5007, start
    # tokens that look like a CAT do (cat/verify.py looks_like_cat).
    native = gate.foreign is None
    cat = verifier.cat is not None
    trusted = guard.sync.trusted()
    # nginx opens playback sessions itself only where this validator would (it has a shield).
    shield = request.app.state.origin is not None
    head = [
        FEED_VERSION,
        f"epoch {feed.epoch}",
        f"cursor {feed.cursor}",
        f"full {int(full)}",
        f"trusted {int(trusted)}",
        f"verify {int(native)} {verifier.leeway} {verifier.max_ttl} {verifier.max_session}"
        f" {state.failure_policy} {state.max_staleness!r} {state.stale_fallback} {int(cat)}"
        f" {int(shield)} {int(gate.narrow_sessions)}",
        f"keys {key_probes(verifier.keyring)}",
    ]
    # Taken now, with the cursor: what comes later is in the next poll's answer.
    entries = revocations
    parts = ["\n".join(head) + "\n"]
    for start in range(0, len(entries), _CHUNK):
        parts.append(
            "".join(revocation_line(rev) + "\n" for rev in entries[start : start + _CHUNK])
        )
        if len(entries) > _CHUNK:
            # A long answer (nginx's first poll with many revocations) is formatted in parts, so
            # the checks this validator answers meanwhile are not held up.
            await asyncio.sleep(0)
    parts.append("end\n")
    # One body with its length, never chunked: nginx reads it line by line as sent.
    return PlainTextResponse("".join(parts), headers={"Cache-Control": NO_STORE})
