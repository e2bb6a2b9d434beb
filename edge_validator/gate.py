"""The validator's request-time core shared by every HTTP adapter.

It reads the clock once, runs the pure decision, then the stateful checks a token asks for
(revocation, use limits, concurrent streams), and logs the outcome by token id. A start token
fetching a manifest opens a playback session (core/sessions.py): adapters that can answer a
redirect (the origin shield, Lambda@Edge) call ``admit`` and send the player to the session URL;
``/auth`` cannot, so it calls ``authorize``, which refuses such a request clearly. Adapters only
translate HTTP to and from it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, NamedTuple

from prometheus_client import Counter

from .core.addresses import ClientAddress
from .core.cat.claims import CatClaims
from .core.cat.renewal import RenewalRefused, RenewedCat, query_param_of, renew
from .core.decision import Grant, Verifier
from .core.errors import PlaybackTokenError, SessionRedirectRequired, StateUnavailable
from .core.sessions import opens_session, seal_session, session_claims, session_location
from .core.token import Claims
from .formats.accept import ForeignVerifier
from .formats.mediacdn_dual import DualToken, Exchange
from .metrics import metrics
from .state.guard import StateGuard

if TYPE_CHECKING:
    from .asgi.admin import BatchedCounts

log = logging.getLogger("playgate.validator")


class Admission(NamedTuple):
    """An allowed request; ``location`` is set when it opened a session (answer 302 there).

    ``set_cookie``: a Media CDN short token exchanged for a long cookie (serve, and set it).
    """

    grant: Grant
    session: Claims | None = None
    location: str | None = None
    set_cookie: str | None = None
    # A CAT's catr renewal (core/cat/renewal.py): the renewed token to hand over, or why not.
    renewal: RenewedCat | RenewalRefused | None = None


class Gate:
    def __init__(
        self,
        verifier: Verifier,
        guard: StateGuard | None,
        clock: Callable[[], float] = time.time,
        foreign: ForeignVerifier | None = None,
        *,
        narrow_sessions: bool = True,
        log_allowed: bool = False,
        dual: DualToken | None = None,
        counts: BatchedCounts | None = None,
    ) -> None:
        self.verifier = verifier
        # The CDN formats this validator also accepts (PLAYGATE_ACCEPT_FORMATS), or None.
        self.foreign = foreign
        # None: no shared state at all, so tokens with use or stream limits are denied.
        self.guard = guard
        self.clock = clock
        # Narrow an unbound start token's session to the viewer's /24 or /64 (sessions.py).
        self.narrow_sessions = narrow_sessions
        # Allowed requests are logged at INFO (one line per decision) or only at DEBUG.
        self.allow_level = logging.INFO if log_allowed else logging.DEBUG
        # Media CDN's dual-token flow: short tokens exchanged for long ones (mediacdn_dual.py).
        self.dual = dual
        # The decision counter per (outcome, reason), bound once: ``labels()`` takes a lock and
        # builds its key on every call. Reasons are a fixed set of codes.
        self._decisions: dict[tuple[str, str], Counter] = {}
        # The decision counter and latency written in batches (the app's, shared with its
        # request metrics: one flush for both), or, with None, by each decision.
        self.counts = counts

    async def authorize(
        self,
        target: str,
        client: ClientAddress | None,
        header_token: str | None = None,
        cookies: Mapping[str, str] | None = None,
    ) -> Grant:
        """Verify a raw request target; the grant carries the query without the token.

        For adapters that cannot redirect (nginx ``auth_request``): a request that would open
        a session is refused with ``session_redirect_required`` rather than served under a
        token that stops working when its start window closes.
        """
        return (await self.check(target, client, header_token, cookies)).grant

    async def check(
        self,
        target: str,
        client: ClientAddress | None,
        header_token: str | None = None,
        cookies: Mapping[str, str] | None = None,
    ) -> Admission:
        """``authorize`` for ``/auth``, with a CAT renewal its allow can carry (headers only)."""
        return await self._admit(target, client, header_token, cookies, redirect=False)

    async def admit(
        self,
        target: str,
        client: ClientAddress | None,
        header_token: str | None = None,
        cookies: Mapping[str, str] | None = None,
    ) -> Admission:
        """Verify a raw request target; open a session when a start token fetches a manifest.

        ``header_token``: a CTA-5007 token from its request header, if one came. ``cookies``:
        CloudFront, Akamai and Media CDN tokens may travel as cookies.
        """
        return await self._admit(target, client, header_token, cookies, redirect=True)

    async def _verify(
        self,
        target: str,
        client: ClientAddress | None,
        header_token: str | None,
        cookies: Mapping[str, str] | None,
    ) -> Grant:
        now = self.clock()
        if self.foreign is not None and header_token is None:
            grant = await self.foreign.authorize_async(target, cookies or {}, client, now)
            if grant is not None:
                return grant
        return self.verifier.verify_target(target, client, now, header_token)

    async def _admit(
        self,
        target: str,
        client: ClientAddress | None,
        header_token: str | None,
        cookies: Mapping[str, str] | None,
        *,
        redirect: bool,
    ) -> Admission:
        session: Claims | None = None
        exchange: Exchange | None = None
        started = time.perf_counter()
        try:
            # Read once: a key ring reload (SIGHUP) swaps the verifier between two requests.
            grant = await self._verify(target, client, header_token, cookies)
            if opens_session(grant):
                if not redirect:
                    raise SessionRedirectRequired(
                        "this edge cannot open a playback session", token_id=grant.token_id
                    )
                session = self.session_for(grant, client)
            elif self.dual is not None and self.foreign is not None and header_token is None:
                opened = self.foreign.opened(target, cookies or {})
                exchange = self.dual.exchange(target, grant, opened, redirect=redirect)
            await self._check_state(grant, session)
        except PlaybackTokenError as exc:
            self.decided(started, client, None, exc)
            raise
        self.decided(started, client, grant, None)
        if exchange is not None:
            return _exchanged(grant, exchange, client)
        if session is None:
            if grant.claims.__class__ is CatClaims:
                return Admission(grant, renewal=self._renewal(grant, target, header_token))
            return Admission(grant)
        location = self.session_url(grant, session)
        self.session_opened(session, client)
        return Admission(grant, session, location)

    def session_for(self, grant: Grant, client: ClientAddress | None) -> Claims:
        """The session ``grant``'s start token opens for ``client`` (``opens_session``)."""
        return session_claims(
            grant, client, max_session=self.verifier.max_session, narrow=self.narrow_sessions
        )

    def session_url(self, grant: Grant, session: Claims) -> str:
        """Where the redirect that opens ``session`` sends the player (sealed, not counted)."""
        return session_location(grant, seal_session(session, self.verifier.sessions))

    def session_opened(self, session: Claims, client: ClientAddress | None) -> None:
        """Count and log a session whose redirect is answered."""
        metrics().sessions_renewed.inc()
        log.info(
            "session opened token_id=%s session_id=%s expires_at=%d client=%s",
            session.token_id,
            session.session_id,
            session.expires_at,
            client.text if client else None,
        )

    def _renewal(
        self, grant: Grant, target: str, header_token: str | None
    ) -> RenewedCat | RenewalRefused | None:
        """Renew a CAT whose catr is due. Runs after the state checks: a revoked token, user,
        video or session was refused there and is never renewed."""
        assert isinstance(grant.claims, CatClaims)
        assert self.verifier.cat is not None
        outcome = renew(
            grant.claims,
            grant.target,
            self.verifier.cat.keyring,
            grant.now,
            max_session=self.verifier.max_session,
            in_header=header_token is not None,
            query_param=query_param_of(target),
        )
        if isinstance(outcome, RenewalRefused):
            log.info("cat renewal refused token_id=%s: %s", grant.token_id, outcome.why)
        elif outcome is not None:
            metrics().cat_renewals.labels(outcome.kind).inc()
            log.info(
                "cat renewed token_id=%s kind=%s expires_at=%d",
                grant.token_id,
                outcome.kind,
                outcome.expires_at,
            )
        return outcome

    def settled(self, grant: Grant) -> bool:
        """Whether ``_check_state`` allows ``grant`` with nothing to ask Redis: no use or
        stream limit, and the revocation view's checks pass (``StateGuard.check_view``). For
        the server's fast path (playgate/media_fast.py): False declines, and the full path
        decides as before; an answer counts ``judged_fail_open``."""
        claims = grant.claims
        if claims.max_uses or claims.max_streams:
            return False
        if self.guard is None:
            return True
        try:
            self.guard.check_view(claims, grant.now)
        except PlaybackTokenError:
            return False
        return True

    def judged_fail_open(self) -> None:
        """Count a ``settled`` grant judged while the revocation view may be behind."""
        if self.guard is not None:
            self.guard.judged_fail_open()

    async def _check_state(self, grant: Grant, session: Claims | None) -> None:
        if self.guard is not None:
            # A stream is counted per session: the start request claims the new session's.
            await self.guard.check(grant, stream_id=session.session_id if session else None)
        elif grant.claims.max_uses or grant.claims.max_streams:
            raise StateUnavailable("no shared state enforces limits", token_id=grant.token_id)

    def decided(
        self,
        started: float,
        client: ClientAddress | None,
        grant: Grant | None,
        error: PlaybackTokenError | None,
    ) -> None:
        """Count the decision, time it, and log it by token id (never the token)."""
        latency = time.perf_counter() - started
        m = metrics()
        if error is not None:
            outcome, reason, token_id, session_id = "deny", error.reason, error.token_id, None
            level = logging.INFO
        else:
            assert grant is not None
            outcome, reason = "allow", "ok"
            token_id, session_id = grant.token_id, grant.claims.session_id
            level = self.allow_level
        counter = self._decisions.get((outcome, reason))
        if counter is None:
            counter = self._decisions[outcome, reason] = m.decisions.labels(outcome, reason)
        counts = self.counts
        if counts is None:
            m.verification_seconds.observe(latency)
            counter.inc()
        else:
            counts.add(m.verification_seconds, latency, counter)
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


def _exchanged(grant: Grant, exchange: Exchange, client: ClientAddress | None) -> Admission:
    metrics().sessions_renewed.inc()
    log.info(
        "media cdn long token issued token_id=%s long_token_id=%s cookie_token_id=%s"
        " expires_at=%d client=%s",
        grant.token_id,
        exchange.token_id,
        exchange.cookie_token_id,
        exchange.expires_at,
        client.text if client else None,
    )
    return Admission(grant, None, exchange.location, exchange.set_cookie)
