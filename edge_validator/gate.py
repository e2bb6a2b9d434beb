"""The validator's request-time core shared by every HTTP adapter.

It reads the clock once, runs the pure decision, then the stateful checks a token asks for
(revocation, use limits, concurrent streams), and logs the outcome by token id. Adapters only
translate HTTP to and from it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from .core.addresses import ClientAddress
from .core.decision import Grant, Verifier
from .core.errors import PlaybackTokenError, StateUnavailable
from .metrics import metrics
from .state.guard import StateGuard

log = logging.getLogger("playgate.validator")


class Gate:
    def __init__(
        self,
        verifier: Verifier,
        guard: StateGuard | None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.verifier = verifier
        # None: no shared state at all, so tokens with use or stream limits are denied.
        self.guard = guard
        self.clock = clock

    async def authorize(self, target: str, client: ClientAddress | None) -> Grant:
        """Verify a raw request target; the grant carries the query without the token."""
        started = time.perf_counter()
        try:
            grant = await self._authorize(target, client)
        except PlaybackTokenError as exc:
            self._count(started, "deny", exc.reason)
            raise
        self._count(started, "allow", "ok")
        return grant

    def _count(self, started: float, outcome: str, reason: str) -> None:
        m = metrics()
        m.verification_seconds.observe(time.perf_counter() - started)
        m.decisions.labels(outcome, reason).inc()

    async def _authorize(self, target: str, client: ClientAddress | None) -> Grant:
        try:
            grant = self.verifier.verify_target(target, client, self.clock())
            if self.guard is not None:
                await self.guard.check(grant)
            elif grant.claims.max_uses or grant.claims.max_streams:
                raise StateUnavailable(
                    "no shared state enforces limits", token_id=grant.claims.token_id
                )
        except PlaybackTokenError as exc:
            log.info(
                "deny reason=%s token_id=%s client=%s",
                exc.reason,
                exc.token_id,
                client.text if client else None,
            )
            raise
        log.debug("allow token_id=%s path=%s", grant.token_id, grant.path)
        return grant
