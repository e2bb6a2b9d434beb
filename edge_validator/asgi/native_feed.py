"""``GET NATIVE_FEED_ROUTE``: what nginx's native verifier needs to decide like this validator.

Only a poller holding the key ring can read it (``FEED_AUTH_HEADER``, state/feed.py); nginx
never routes a viewer's request here (the edge template sends viewers to ``/auth`` and to the
shield's manifest paths only).
"""

from __future__ import annotations

import time

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from ..core.errors import Unauthorized
from ..core.protocol import FEED_AUTH_HEADER, NO_STORE
from ..gate import Gate
from ..state.feed import FEED_VERSION, RevocationFeed, accepts, key_probes, revocation_line
from ..state.guard import StateGuard
from .problems import problem


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
    # nginx decides natively only PlayGate's own tokens: with CTA-5007 or foreign formats
    # accepted, which can travel where PlayGate tokens do, every request comes here.
    native = gate.foreign is None and verifier.cat is None
    trusted = feed.live and guard.sync.trusted()
    lines = [
        FEED_VERSION,
        f"epoch {feed.epoch}",
        f"cursor {feed.cursor}",
        f"full {int(full)}",
        f"trusted {int(trusted)}",
        f"verify {int(native)} {verifier.leeway} {verifier.max_ttl} {verifier.max_session}"
        f" {state.failure_policy} {state.max_staleness!r} {state.stale_fallback}",
        f"keys {key_probes(verifier.keyring)}",
        *(revocation_line(rev) for rev in revocations),
        "end",
        "",
    ]
    return PlainTextResponse("\n".join(lines), headers={"Cache-Control": NO_STORE})
