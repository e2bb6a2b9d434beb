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
from .state.guard import StateGuard

log = logging.getLogger("playgate.validator")


class Gate:
    def __init__(
        self,
        verifier: Verifier,
        guard: StateGuard | None,
        clock: Callable[[], float] = time.time,
        foreign: ForeignVerifier | None = None,
    ) -> None:
        self.verifier = verifier
        # The CDN formats this validator also accepts (PLAYGATE_ACCEPT_FORMATS), or None.
        self.foreign = foreign
        # None: no shared state at all, so tokens with use or stream limits are denied.
        self.guard = guard
        self.clock = clock

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
        try:
            now = self.clock()
            grant = None
            if self.foreign is not None and header_token is None:
                grant = await self.foreign.authorize_async(target, cookies or {}, client, now)
            if grant is None:
                grant = self.verifier.verify_target(target, client, now, header_token)
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
