"""The signer HTTP API (Starlette): the app backend asks it for playback URLs."""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Callable

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from edge_validator.errors import PlayGateError
from edge_validator.responses import http_error, problem
from edge_validator.state.runtime import build_store
from edge_validator.state.store import StateStore

from .errors import BodyTooLarge, MalformedJson, Unauthorized, UnsupportedMediaType
from .issuing import issue, parse_playback_request
from .openapi import openapi_document
from .rate_limits import RateLimiter
from .settings import SignerSettings
from .state_api import StateApi

log = logging.getLogger("playgate.signer")


def error_response(exc: PlayGateError) -> JSONResponse:
    # Bearer challenge on 401; reason header, no-store, field and Retry-After come with problem().
    extra = {"WWW-Authenticate": "Bearer"} if isinstance(exc, Unauthorized) else None
    return problem(exc, extra)


def authenticate(request: Request, settings: SignerSettings) -> str:
    scheme, _, key = request.headers.get("authorization", "").partition(" ")
    caller = settings.api_keys.caller(key.strip()) if scheme.lower() == "bearer" and key else None
    if caller is None:
        raise Unauthorized("send Authorization: Bearer <api key>")
    return caller


async def read_json(request: Request, max_bytes: int) -> object:
    content_type = request.headers.get("content-type", "")
    if content_type.split(";")[0].strip().lower() != "application/json":
        raise UnsupportedMediaType("send Content-Type: application/json")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > max_bytes:
            raise BodyTooLarge(f"body is larger than {max_bytes} bytes")
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        raise MalformedJson("body is not valid JSON") from None


class SignerApi:
    def __init__(
        self,
        settings: SignerSettings,
        clock: Callable[[], float] = time.time,
        limiter: RateLimiter | None = None,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.limiter = limiter

    async def playback_urls(self, request: Request) -> Response:
        s = self.settings
        caller = authenticate(request, s)
        if self.limiter is not None:
            await self.limiter.check_caller(caller)
        doc = await read_json(request, s.max_body_bytes)
        req = parse_playback_request(
            doc, default_ttl=s.default_ttl, max_ttl=s.max_ttl, entry_file=s.entry_file
        )
        if self.limiter is not None:
            await self.limiter.check_viewer(caller, req)
        issued = issue(req, s.keyring, self.clock(), public_url=s.public_url, mode=s.token_mode)
        log.info("issued token_id=%s video=%s caller=%s", issued.token_id, req.video_id, caller)
        return JSONResponse(issued.as_json(), 201, {"Cache-Control": "no-store"})


async def _openapi(request: Request) -> Response:
    return JSONResponse(openapi_document())


async def _playgate_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, PlayGateError)
    return error_response(exc)


def create_app(
    settings: SignerSettings,
    clock: Callable[[], float] = time.time,
    store: StateStore | None = None,
) -> Starlette:
    """``store``: share one state store (the demo); by default built from settings.state."""
    own_store = store is None
    state_store = store or build_store(settings.state)
    # A store of its own in memory is seen by no validator: revocations there would be a lie.
    shared = not (own_store and state_store.backend == "memory")
    api = SignerApi(settings, clock, RateLimiter(state_store, settings.state))
    state = StateApi(settings, state_store, authenticate, read_json, clock, shared=shared)
    routes = [
        Route("/v1/playback-urls", api.playback_urls, methods=["POST"]),
        Route("/v1/revocations", state.revoke, methods=["POST"]),
        Route("/v1/revocations", state.list_revocations, methods=["GET"]),
        Route("/healthz", state.healthz, methods=["GET"]),
        Route("/readyz", state.readyz, methods=["GET"]),
        Route("/openapi.json", _openapi, methods=["GET"]),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        if own_store:
            await state_store.close()

    return Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={PlayGateError: _playgate_error, HTTPException: http_error},
    )


def app_from_env() -> Starlette:
    """App factory for ``playgate serve-signer`` (under plain uvicorn: ``--no-proxy-headers``)."""
    return create_app(SignerSettings.from_env())
