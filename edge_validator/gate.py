"""The validator's request-time core shared by every HTTP adapter.

It runs the pure decision, then the stateful checks a token asks for (revocation, use limits,
concurrent streams), and logs the outcome by token id. Adapters only translate HTTP to and
from it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Sequence

from .decision import Grant, verify_target
from .errors import PlaybackTokenError, StateUnavailable
from .settings import ValidatorSettings

log = logging.getLogger("playgate.validator")

StateCheck = Callable[[Grant, float], Awaitable[None]]
"""A check that needs shared state. Raises PlaybackTokenError to deny."""


class Gate:
    def __init__(
        self,
        settings: ValidatorSettings,
        checks: Sequence[StateCheck] = (),
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.checks = tuple(checks)
        # Deny by default: a token with use or stream limits needs a check that enforces them.
        self.enforces_limits = any(getattr(c, "enforces_limits", False) for c in self.checks)
        self.clock = clock

    async def authorize(self, target: str, client_ip: str | None) -> tuple[Grant, str]:
        """Verify a raw request target; returns the grant and the query without the token."""
        now = self.clock()
        try:
            grant, query = verify_target(
                target,
                client_ip,
                now,
                self.settings.keyring,
                leeway=self.settings.leeway,
                max_lifetime=self.settings.max_token_lifetime,
            )
            for check in self.checks:
                await check(grant, now)
            claims = grant.claims
            if (claims.max_uses or claims.max_streams) and not self.enforces_limits:
                raise StateUnavailable("no shared state enforces limits", token_id=claims.token_id)
        except PlaybackTokenError as exc:
            log.info("deny reason=%s token_id=%s client=%s", exc.reason, exc.token_id, client_ip)
            raise
        log.debug("allow token_id=%s path=%s client=%s", grant.token_id, grant.path, client_ip)
        return grant, query
