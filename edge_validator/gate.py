"""The validator's request-time core shared by every HTTP adapter.

It reads the clock once, runs the pure decision, then the stateful checks a token asks for
(revocation, use limits, concurrent streams), and logs the outcome by token id. Adapters only
translate HTTP to and from it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping

from .core.addresses import ClientAddress
from .core.decision import Grant, Verifier
from .core.errors import PlaybackTokenError, StateUnavailable
from .formats.accept import ForeignVerifier
from .metrics import metrics
from .state.guard import StateGuard

log = logging.getLogger("playgate.validator")


class Gate:
    def __init__(
        self,
        verifier: Verifier,
        guard: StateGuard | None,
        clock: Callable[[], float] = time.time,
        foreign: ForeignVerifier | None = None,
        *,
        log_allowed: bool = False,
    ) -> None:
        self.verifier = verifier
        # The CDN formats this validator also accepts (PLAYGATE_ACCEPT_FORMATS), or None.
        self.foreign = foreign
        # None: no shared state at all, so tokens with use or stream limits are denied.
        self.guard = guard
        self.clock = clock
        # Allowed requests are logged at INFO (one line per decision) or only at DEBUG.
        self.allow_level = logging.INFO if log_allowed else logging.DEBUG

    async def authorize(
        self,
        target: str,
        client: ClientAddress | None,
        header_token: str | None = None,
        cookies: Mapping[str, str] | None = None,
    ) -> Grant:
        """Verify a raw request target; the grant carries the query without the token.

        ``header_token``: a CAT from its CTA-Common-Access-Token header. ``cookies``:
        CloudFront, Akamai and Media CDN tokens may travel as cookies.
        """
        started = time.perf_counter()
        try:
            grant = await self._authorize(target, client, header_token, cookies)
        except PlaybackTokenError as exc:
            self._decided(started, client, None, exc)
            raise
        self._decided(started, client, grant, None)
        return grant

    async def _authorize(
        self,
        target: str,
        client: ClientAddress | None,
        header_token: str | None,
        cookies: Mapping[str, str] | None,
    ) -> Grant:
        now = self.clock()
        grant = None
        if self.foreign is not None and header_token is None:
            grant = await self.foreign.authorize_async(target, cookies or {}, client, now)
        if grant is None:
            # Read once: a key ring reload (SIGHUP) swaps the verifier between two requests.
            grant = self.verifier.verify_target(target, client, now, header_token)
        if self.guard is not None:
            await self.guard.check(grant)
        elif grant.claims.max_uses or grant.claims.max_streams:
            raise StateUnavailable(
                "no shared state enforces limits", token_id=grant.claims.token_id
            )
        return grant

    def _decided(
        self,
        started: float,
        client: ClientAddress | None,
        grant: Grant | None,
        error: PlaybackTokenError | None,
    ) -> None:
        """Count the decision, time it, and log it by token id (never the token)."""
        latency = time.perf_counter() - started
        m = metrics()
        m.verification_seconds.observe(latency)
        if error is not None:
            outcome, reason, token_id, session_id = "deny", error.reason, error.token_id, None
            level = logging.INFO
        else:
            assert grant is not None
            outcome, reason = "allow", "ok"
            token_id, session_id = grant.token_id, grant.claims.session_id
            level = self.allow_level
        m.decisions.labels(outcome, reason).inc()
        if not log.isEnabledFor(level):
            return
        fields = {
            "event": "decision",
            "outcome": outcome,
            "reason": reason,
            "token_id": token_id,
            "session_id": session_id,
            "client": client.text if client else None,
            "latency_ms": round(latency * 1000, 3),
        }
        if grant is not None:
            fields["path"] = grant.path  # the token is not part of it
        log.log(
            level,
            "%s reason=%s token_id=%s session_id=%s client=%s latency_ms=%.3f",
            outcome,
            reason,
            token_id,
            session_id,
            fields["client"],
            fields["latency_ms"],
            extra={"fields": fields},
        )
