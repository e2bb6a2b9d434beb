"""The validator as an ASGI app: the nginx ``auth_request`` endpoint and the origin shield."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.routing import BaseRoute, Route

from ..core.errors import PlayGateError
from ..core.protocol import AUTH_ROUTE, NATIVE_FEED_ROUTE
from ..env import Env
from ..gate import Gate
from ..origins.base import Origin
from ..origins.files import FileOrigin
from ..origins.http import HttpOrigin
from ..settings import ValidatorSettings
from ..state.feed import RevocationFeed
from ..state.guard import StateGuard
from ..state.store import build_store
from .admin import RequestMetrics, ResponseMetrics, admin_routes, flush_counts
from .auth import auth
from .cors import CorsMiddleware
from .health import health_details, healthz, readyz
from .native_feed import native_feed
from .problems import http_error, internal_error
from .shield import MEDIA_ROUTE, MediaRoute, MediaShortcut, Shield
from .state_gauges import state_gauges

log = logging.getLogger("playgate.validator")
_ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


def make_origin(settings: ValidatorSettings) -> Origin | None:
    if settings.media_root is not None:
        return FileOrigin(settings.media_root)
    if settings.origin_url is not None:
        return HttpOrigin(settings.origin_url, settings.origin_timeout)
    if settings.s3 is not None:
        from ..origins.s3 import S3Origin  # boto3 loads only when S3 is used

        return S3Origin(settings.s3)
    return None


def create_app(
    settings: ValidatorSettings,
    *,
    guard: StateGuard | None = None,
    origin: Origin | None = None,
    on_started: Callable[[Callable[[], object]], None] | None = None,
) -> Starlette:
    """``guard``: share one state guard (the demo); by default built from ``settings.state``.

    ``on_started(reload)``: called once serving, with the function that reloads the key ring
    (``playgate serve-validator`` runs it on SIGHUP)."""
    if guard is None:
        # A store of its own in memory is shared with nobody: limits there are refused.
        store = build_store(settings.state)
        guard = StateGuard(store, settings.state, shared=store.backend != "memory")
    origin = origin or make_origin(settings)
    # What nginx's native verifier polls: what the revocation view takes in, and the policy.
    feed = RevocationFeed(guard.sync.view)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await guard.start()
        if on_started is not None:
            on_started(lambda: reload_keyring(app, os.environ))
        async with state_gauges(guard):
            yield
        flush_counts()  # a stopping worker's last counts stay in the sums
        await guard.stop()
        if origin is not None:
            await origin.close()

    async def details() -> dict[str, Any]:
        return health_details(guard)

    routes = [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        *admin_routes(settings.admin_key, details),
        # auth_request subrequests carry the viewer's method; every method gets 204/401/403.
        Route(AUTH_ROUTE, auth, methods=_ALL_METHODS),
        Route(NATIVE_FEED_ROUTE, native_feed, methods=["GET"]),
    ]
    # Outside the routes: preflights never reach them, and denials carry CORS headers too.
    recorded = ResponseMetrics("validator")
    middleware = [Middleware(RequestMetrics, recorded=recorded, route_of=route_name)]
    if settings.cors.enabled:  # without a policy CorsMiddleware passes every request through
        middleware.append(Middleware(CorsMiddleware, policy=settings.cors))
    media: MediaRoute | None = None
    if origin is not None:
        shield = Shield()
        fixed = frozenset(_fixed_path(route) for route in routes)
        media = MediaRoute(fixed, recorded, route_name, internal_error)
        middleware.append(Middleware(MediaShortcut, shield=shield, route=media))
        # GET and HEAD only: Starlette answers anything else 405 with Allow (see http_error).
        routes.append(Route("/{path:path}", shield, methods=["GET", "HEAD"]))
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={HTTPException: http_error, Exception: internal_error},
        middleware=middleware,
    )
    if media is not None:
        media.app = app
        if not settings.cors.enabled:
            # playgate serve-validator's protocol answers these requests itself, without the
            # middleware stack (playgate/media_path.py): the stack must then be exactly the
            # error handler, the request metrics and the shortcut, whose work it repeats by
            # calling the same functions. With CORS on, every request takes the stack.
            setattr(app, MEDIA_ROUTE, media)
    app.state.settings = settings
    app.state.gate = Gate(
        settings.verifier(),
        guard,
        foreign=settings.foreign_verifier(),
        narrow_sessions=settings.session_binding,
        log_allowed=settings.log_allowed,
        dual=settings.mediacdn_dual(),
        counts=recorded.counts,
    )
    app.state.guard = guard
    app.state.feed = feed
    app.state.origin = origin
    return app


def reload_keyring(app: Starlette, environ: Mapping[str, str]) -> bool:
    """Re-read the key ring (PLAYGATE_KEYRING_FILE) and swap in a new Verifier: one attribute
    assignment between two requests, so each request is judged wholly by the old or the new
    ring. A ring that does not load is logged and the running one kept."""
    try:
        keyring = Env(environ).keyring()
    except PlayGateError as exc:
        log.error("key ring reload refused, keeping the running ring: %s", exc.message)
        return False
    settings = dataclasses.replace(app.state.settings, keyring=keyring)
    app.state.gate.verifier = settings.verifier()
    app.state.settings = settings
    log.info("key ring reloaded: key ids %s", ",".join(keyring.key_ids))
    return True


def _fixed_path(route: BaseRoute) -> str:
    """The one path a route answers (MediaShortcut sends every other path to the shield)."""
    if not isinstance(route, Route) or route.param_convertors:
        raise TypeError(f"{route!r}: only routes of one fixed path go before the shield")
    return route.path


def route_name(path: str) -> str:
    """A fixed label per route for the request metrics (never the path: it holds tokens)."""
    if path == AUTH_ROUTE:
        return "auth"
    if path == NATIVE_FEED_ROUTE:
        return "native_feed"
    if path in ("/healthz", "/readyz", "/metrics") or path.startswith("/admin/"):
        return "admin"
    return "shield"


def app_from_env() -> Starlette:
    """App factory for ``playgate serve-validator``.

    Under plain uvicorn, pass ``--no-proxy-headers --no-access-log``: uvicorn's defaults would
    believe X-Forwarded-For from loopback and write every token into its access log. Plain
    uvicorn also lacks the head, body, timeout and connection limits that ``playgate
    serve-validator`` adds (``playgate.serving``): expose it only behind nginx.
    """
    return create_app(ValidatorSettings.from_env())
