"""The validator's stateful checks (revocation, use and stream limits) and their health.

``StateGuard`` runs after the pure decision, for every request: a revocation is a dict lookup in
the view that ``RevocationSync`` keeps fresh; only tokens with use or stream limits pay a round
trip to the store.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from ..core.decision import Grant
from ..core.errors import (
    Revoked,
    StateBusy,
    StateUnavailable,
    StoreBusy,
    StoreUnavailable,
    TooManyStreams,
    UseLimitReached,
)
from ..core.token import Claims
from ..metrics import metrics
from .clock_skew import ClockSkew
from .settings import FAIL_OPEN, StateSettings
from .store import StateStore
from .sync import RevocationSync

log = logging.getLogger("playgate.state")


class StateGuard:
    """The validator's stateful checks, run by the Gate, plus health for /healthz and /readyz."""

    def __init__(self, store: StateStore, settings: StateSettings, *, shared: bool = True) -> None:
        """``shared``: other processes see this store (Redis, or the demo's one store shared
        by its signer and validator). A validator's own memory is seen by no signer and no
        other validator, and forgets on restart: counts kept there would be a lie."""
        self.store = store
        self.settings = settings
        self.shared = shared
        self.sync = RevocationSync(store, settings)
        self.clock_skew = ClockSkew(store, settings.clock_skew_warning)
        self._skew_task: asyncio.Task[None] | None = None

    async def check(self, grant: Grant, *, stream_id: str | None = None) -> None:
        """Raise PlaybackTokenError when shared state denies the grant.

        ``stream_id``: the stream to claim, when not the token's own (a session being opened).
        """
        claims = grant.claims
        now = grant.now
        self.check_view(claims, now)
        self.judged_fail_open()
        if claims.max_uses:
            await self._check_uses(grant, now)
        if claims.max_streams:
            await self._check_streams(grant, stream_id)

    def judged_fail_open(self) -> None:
        """Count a decision judged on a view that may miss revocations (the fail-open policy
        at work); apart from ``check_view`` so a caller that may still decline counts once."""
        if not self.sync.healthy:
            metrics().fail_open_decisions.inc()

    def check_view(self, claims: Claims, now: float) -> None:
        """What ``check`` judges from the revocation view, without Redis (uncounted:
        ``judged_fail_open``)."""
        rev = self.sync.view.revoked(claims, now)
        if rev is not None:
            raise Revoked(f"revoked by {rev.kind}", token_id=claims.token_id)
        if not self.sync.trusted():
            raise StateUnavailable("revocation state is unavailable", token_id=claims.token_id)
        if (claims.max_uses or claims.max_streams) and not self.shared:
            raise StateUnavailable(
                "use and stream limits need state shared by every validator (REDIS_URL)",
                token_id=claims.token_id,
            )

    async def _check_uses(self, grant: Grant, now: float) -> None:
        claims = grant.claims
        epoch = self.sync.epoch
        if epoch is not None and epoch.replaced and claims.not_before <= epoch.since:
            # Redis lost its data: uses counted before are gone, so this link cannot be counted.
            raise StateUnavailable(
                "use counts made before Redis lost its data are gone", token_id=claims.token_id
            )
        try:
            used = await self.store.count_use(claims.token_id, claims.expires_at - now + 60)
        except StoreBusy:
            raise StateBusy("shared state is busy; retry", token_id=claims.token_id) from None
        except StoreUnavailable as exc:
            # Never fail open here: a one-time link that cannot be counted is not one-time.
            log.warning("use count unavailable token_id=%s: %s", claims.token_id, exc)
            raise StateUnavailable("use counts are unavailable", token_id=claims.token_id) from None
        if used > claims.max_uses:
            raise UseLimitReached("the use limit is spent", token_id=claims.token_id)

    async def _check_streams(self, grant: Grant, stream_id: str | None) -> None:
        claims = grant.claims
        owner = claims.user_id or f"token:{claims.token_id}"
        session = stream_id or claims.session_id or claims.token_id
        try:
            ok = await self.store.claim_stream(
                owner, session, claims.max_streams, self.settings.stream_idle_seconds
            )
        except StoreBusy:
            # Load is not an outage: a flood of requests must never select fail-open.
            raise StateBusy("shared state is busy; retry", token_id=claims.token_id) from None
        except StoreUnavailable as exc:
            log.warning("stream count unavailable token_id=%s: %s", claims.token_id, exc)
            if self.sync.healthy:
                # Redis answers the sync's own connection (its heartbeat has a deadline): this
                # call failed under load, a viewer's flood maybe, and load never selects the
                # failure policy. Only an outage the sync has seen may fail open.
                metrics().state_busy.inc()
                raise StateBusy("shared state is busy; retry", token_id=claims.token_id) from None
            if self._young_outage():
                metrics().fail_open_decisions.inc()
                return  # fail-open and the outage is young enough: let the stream play
            raise StateUnavailable(
                "stream counts are unavailable", token_id=claims.token_id
            ) from None
        if not ok:
            raise TooManyStreams("too many concurrent streams", token_id=claims.token_id)

    def _young_outage(self) -> bool:
        """Fail-open lets an uncounted stream play only within PLAYGATE_STATE_MAX_STALENESS:
        the "serve" fallback keeps revocations served past it, never limits that cannot be
        counted."""
        s = self.settings
        return (
            s.failure_policy == FAIL_OPEN
            and self.sync.trusted()
            and self.sync.staleness() <= s.max_staleness
        )

    def health(self) -> dict[str, Any]:
        sync = self.sync
        staleness = sync.staleness()
        return {
            "backend": self.store.backend,
            "shared": self.shared,
            "connected": sync.healthy,
            "failure_policy": self.settings.failure_policy,
            "revocations": len(sync.view),
            "view_staleness_seconds": None if staleness == float("inf") else round(staleness, 3),
            "last_resync": sync.last_resync,
            "last_error": None if sync.healthy else sync.last_error,
            "epoch": sync.epoch.id if sync.epoch else None,
            "sequence": sync.seq,
            "data_losses": sync.data_losses,
            "last_data_loss": sync.last_data_loss,
            "clock_offset_seconds": _rounded(self.clock_skew.offset),
        }

    def ready(self) -> bool:
        return self.sync.trusted()

    async def start(self) -> None:
        self._skew_task = asyncio.create_task(self.clock_skew.run(), name="playgate-clock-skew")
        await self.sync.start()

    async def stop(self) -> None:
        if self._skew_task is not None:
            self._skew_task.cancel()
            await asyncio.wait([self._skew_task], timeout=1)
        await self.sync.stop()
        await self.store.close()


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 3)
