"""The validator as an ASGI app: nginx ``auth_request`` endpoint and origin shield."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Sequence

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .client_address import client_address
from .decision_cache import ACCEL_EXPIRES_HEADER, decision_cache_seconds
from .errors import (
    BadPath,
    InternalError,
    ObjectNotFound,
    OriginUnavailable,
    PlaybackTokenError,
    PlayGateError,
)
from .gate import Gate, StateCheck
from .manifest_responses import manifest_request_headers, query_token, rewritten_manifest
from .manifest_rewrite import ManifestError
from .origins import FileOrigin, HttpOrigin, Origin
from .responses import NO_STORE, TOKEN_ID_HEADER, denied, http_error, problem
from .settings import ValidatorSettings
from .state.health import healthz, readyz
from .state.runtime import StateChecks, build_store

log = logging.getLogger("playgate.validator")
ORIGINAL_URI_HEADER = "x-original-uri"
_ALL_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
_CACHEABLE = frozenset({200, 206, 304})


def _client_ip(request: Request, gate: Gate) -> str | None:
    peer = request.client.host if request.client else None
    header = gate.settings.client_ip_header
    return client_address(
        peer, request.headers.getlist(header), gate.settings.trusted_proxies, header
    )


def _raw_target(request: Request) -> str:
    # The raw, still percent-encoded path: judging a decoded copy would hide double encoding.
    raw_path: bytes | None = request.scope.get("raw_path")
    if raw_path is None:  # a server that does not give the raw path: refuse, never re-encode
        raise BadPath("the server did not provide the raw request path")
    query: bytes = request.scope.get("query_string", b"")
    target = raw_path.decode("latin-1")
    return target + "?" + query.decode("latin-1") if query else target


async def _auth(request: Request) -> Response:
    """nginx auth_request: 204 allow, 401 or 403 deny; never another status."""
    gate: Gate = request.app.state.gate
    target = request.headers.get(ORIGINAL_URI_HEADER)
    try:
        if target is None:
            raise BadPath("no X-Original-URI header")
        grant, _ = await gate.authorize(target, _client_ip(request, gate))
    except PlaybackTokenError as exc:
        return denied(exc, body=False)
    except Exception:  # deny by default: a bug must never open the gate
        log.exception("auth check failed")
        return denied(InternalError(), body=False)
    headers = {TOKEN_ID_HEADER: grant.token_id, "Cache-Control": NO_STORE}
    # nginx's proxy_cache honours X-Accel-Expires; 0 says "never reuse" explicitly.
    limit = gate.settings.grant_cache_seconds  # <= the staleness bound (ValidatorSettings)
    cache_seconds = decision_cache_seconds(grant, gate.clock(), limit)
    headers[ACCEL_EXPIRES_HEADER] = str(cache_seconds)
    return Response(status_code=204, headers=headers)


async def _shield(request: Request) -> Response:
    """Origin shield: validate, strip the token, serve the object."""
    gate: Gate = request.app.state.gate
    origin: Origin = request.app.state.origin
    target = _raw_target(request)
    try:
        grant, _ = await gate.authorize(target, _client_ip(request, gate))
    except PlaybackTokenError as exc:
        return denied(exc)
    except Exception:
        log.exception("shield check failed")
        return denied(InternalError())
    token = query_token(target)
    headers = request.headers if token is None else manifest_request_headers(request.headers)
    try:
        response = await origin.fetch(grant.path, headers, request.method)
        if token is not None:
            response = await rewritten_manifest(
                response, grant.path, token, target=target, public_url=gate.settings.public_url
            )
    except ManifestError as exc:
        log.warning("manifest refused: %s token_id=%s", exc.message, grant.token_id)
        return denied(exc)
    except (ObjectNotFound, OriginUnavailable) as exc:
        log.warning("origin: %s token_id=%s", exc.reason, grant.token_id)
        return problem(exc)
    response.headers[TOKEN_ID_HEADER] = grant.token_id
    response.headers["X-Content-Type-Options"] = "nosniff"
    # Browsers may keep a success; shared caches must not key it by a token URL for longer than
    # it lives. Other statuses are never kept; an origin that chose its own header (a redirect
    # to a short-lived URL: no-store) keeps it.
    if "cache-control" not in response.headers:
        left = grant.seconds_left(gate.clock())
        cacheable = response.status_code in _CACHEABLE
        response.headers["Cache-Control"] = f"private, max-age={left}" if cacheable else NO_STORE
    return response


def _make_origin(settings: ValidatorSettings) -> Origin | None:
    if settings.media_root is not None:
        return FileOrigin(settings.media_root)
    if settings.origin_url is not None:
        return HttpOrigin(settings.origin_url, settings.origin_timeout)
    if settings.s3_origin is not None:
        from .s3_origin import origin_from_settings  # boto3 loads only when S3 is used

        return origin_from_settings(settings)
    return None


def create_app(
    settings: ValidatorSettings,
    *,
    checks: Sequence[StateCheck] | None = None,
    origin: Origin | None = None,
    state: StateChecks | None = None,
) -> Starlette:
    """``checks`` None: the stateful checks built from settings (``state`` to share a store)."""
    if checks is None:
        state = state or StateChecks(build_store(settings.state), settings.state)
        checks = (state,)
    gate = Gate(settings, checks)
    origin = origin or _make_origin(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if state is not None:
            await state.start()
        yield
        if state is not None:
            await state.stop()
        if origin is not None:
            await origin.close()

    routes = [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        # auth_request subrequests carry the viewer's method; every method gets 204/401/403.
        Route("/auth", _auth, methods=list(_ALL_METHODS)),
    ]
    if origin is not None:
        # GET and HEAD only: Starlette answers anything else 405 with Allow (see http_error).
        routes.append(Route("/{path:path}", _shield, methods=["GET", "HEAD"]))
    app = Starlette(
        routes=routes, lifespan=lifespan, exception_handlers={HTTPException: http_error}
    )
    app.state.gate = gate
    app.state.origin = origin
    app.state.playgate_state = state
    return app


def app_from_env() -> Starlette:
    """App factory for ``playgate serve-validator``.

    Under plain uvicorn, pass ``--no-proxy-headers --no-access-log``: uvicorn's defaults would
    believe X-Forwarded-For from loopback and write every token into its access log.
    """
    return create_app(ValidatorSettings.from_env())


__all__ = ["PlayGateError", "app_from_env", "create_app"]
