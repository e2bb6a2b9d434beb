"""The signer HTTP API (Starlette): the app backend asks it for playback URLs."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import json
import logging
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping
from json.encoder import encode_basestring
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from edge_validator.asgi.admin import (
    BatchedCounts,
    RequestMetrics,
    ResponseMetrics,
    admin_routes,
    flush_counts,
)
from edge_validator.asgi.problems import http_error, internal_error, problem
from edge_validator.core.errors import (
    BodyTooLarge,
    InvalidField,
    MalformedJson,
    MissingScope,
    NotReplicated,
    PlayGateError,
    RateLimited,
    StateNotShared,
    StoreBusy,
    StoreUnavailable,
    Unauthorized,
    UnsupportedMediaType,
    VideoNotAllowed,
)
from edge_validator.core.protocol import NO_STORE
from edge_validator.env import Env
from edge_validator.formats.jwks import JWKS_PATH, jwks_document
from edge_validator.metrics import metrics
from edge_validator.state.clock_skew import ClockSkew
from edge_validator.state.store import StateStore, build_store

from .api_keys import SIGN
from .clock_margin import backdated
from .health import SignerHealth
from .issuance_log import IssuanceLog
from .issuing import PLAYGATE_FORMAT, IssuedUrl, iso_time, issue, parse_playback_request
from .openapi import (
    JWKS,
    PLAYBACK_REQUEST,
    PLAYBACK_URL,
    QUEUED,
    REVOCATION,
    REVOCATION_LIST,
    REVOCATION_REQUEST,
    Endpoint,
    Handler,
    openapi_document,
)
from .rate_limits import RateLimiter
from .requests import authenticate, read_json
from .revocation_spool import RevocationSpool
from .revocations_api import RevocationsApi
from .settings import SignerSettings

log = logging.getLogger("playgate.signer")
# Who may call: a known key (401), with the route's scope and covering the video (403).
_CALLER_ERRORS = (Unauthorized, MissingScope, VideoNotAllowed)
ErrorHandler = Callable[[Request, Exception], Awaitable[Response]]
_BODY_ERRORS = (UnsupportedMediaType, BodyTooLarge, MalformedJson, InvalidField)
# JSONResponse's own encoding, built once: JSONResponse makes an encoder per response.
_JSON = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))
_string = encode_basestring  # what _JSON (ensure_ascii=False) escapes a str with
_ISSUED_HEADERS = [(b"content-type", b"application/json"), (b"cache-control", NO_STORE.encode())]
PLAYBACK_URLS = "/v1/playback-urls"


def issued_body(issued: IssuedUrl) -> bytes:
    """The 201's body: ``issued.as_json()`` as ``_JSON`` encodes it. The usual answer (four
    strings) is written directly, each string escaped by the encoder's own function: building
    the dict and walking it cost 5 µs of the 7."""
    if issued.format != PLAYGATE_FORMAT or issued.cookies:
        return _JSON.encode(issued.as_json()).encode()
    return (
        f'{{"url":{_string(issued.url)},"token":{_string(issued.token)},'
        f'"token_id":{_string(issued.token_id)},'
        f'"expires_at":{_string(iso_time(issued.expires_at))}}}'
    ).encode()


class IssuedResponse(Response):
    """The 201 of an issued URL, its headers built once (Response builds them per response)."""

    media_type = "application/json"

    def __init__(self, body: bytes) -> None:
        self.status_code = 201
        self.body = body
        self.background = None
        self.raw_headers = [(b"content-length", str(len(body)).encode()), *_ISSUED_HEADERS]


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
        self.issued = IssuanceLog()
        self.counts = BatchedCounts()
        # The counter of one caller's URLs, looked up once per caller (labels() takes a lock).
        self._issued_count = functools.lru_cache(maxsize=1024)(metrics().urls_issued.labels)

    async def playback_urls(self, request: Request) -> Response:
        s = self.settings
        caller = authenticate(request, s, SIGN)
        doc = await read_json(request, s.max_body_bytes)
        req = parse_playback_request(
            doc,
            default_ttl=s.default_ttl,
            max_ttl=s.max_ttl,
            entry_file=s.entry_file,
            default_session=s.default_session,
            max_session=s.max_session,
        )
        caller.require_video(req.video_id)
        if self.limiter is not None:
            await self.limiter.check(caller.name, req)
        req, issued_at = backdated(req, self.clock(), s.not_before_margin, s.max_ttl)
        issued = issue(
            req,
            s.keyring,
            issued_at,
            public_url=s.public_url,
            mode=s.token_mode,
            cat=s.cat,
            format_keys=s.format_keys,
        )
        self.issued.add(issued.token_id, req.video_id, caller.name)
        self.counts.inc(self._issued_count(caller.name))
        return IssuedResponse(issued_body(issued))

    async def jwks(self, request: Request) -> Response:
        """The public halves of the signer's JWT keys, for validators (PLAYGATE_JWKS_URL)."""
        keys = self.settings.format_keys
        private = [k for k in keys.jwt.values() if k.is_private] if keys else []
        headers = {"Cache-Control": "public, max-age=300"}
        return JSONResponse(jwks_document(private), headers=headers)


def endpoints(api: SignerApi, revocations: RevocationsApi, health: SignerHealth) -> list[Endpoint]:
    """Every route with its contract; /openapi.json is generated from this list."""
    return [
        Endpoint(
            "POST",
            PLAYBACK_URLS,
            api.playback_urls,
            "Issue a signed playback URL for one video",
            {201: ("issued", PLAYBACK_URL)},
            (*_CALLER_ERRORS, RateLimited, *_BODY_ERRORS, StoreUnavailable, StoreBusy),
            PLAYBACK_REQUEST,
        ),
        Endpoint(
            "POST",
            "/v1/revocations",
            revocations.revoke,
            "Revoke a token, session, video or user before expiry",
            {
                201: (
                    "revoked: in Redis, and on enough replicas to survive a failover",
                    REVOCATION,
                ),
                202: ("queued: Redis could not take it; the signer's spool will write it", QUEUED),
            },
            (
                *_CALLER_ERRORS,
                StateNotShared,
                RateLimited,
                *_BODY_ERRORS,
                StoreUnavailable,
                StoreBusy,
                NotReplicated,
            ),
            REVOCATION_REQUEST,
        ),
        Endpoint(
            "GET",
            "/v1/revocations",
            revocations.list_revocations,
            "List live revocations",
            {200: ("live revocations", REVOCATION_LIST)},
            (Unauthorized, MissingScope, StoreUnavailable, StoreBusy),
        ),
        Endpoint(
            "GET",
            "/healthz",
            health.healthz,
            "Liveness",
            {200: ("ok", None)},
            bearer=False,
        ),
        Endpoint(
            "GET",
            "/readyz",
            health.readyz,
            "Readiness: shared state reachable",
            {200: ("ready", None), 503: ("not ready", None)},
            bearer=False,
        ),
        Endpoint(
            "GET",
            JWKS_PATH,
            api.jwks,
            "The public keys of the signer's JWT formats (JWKS)",
            {200: ("JWKS", JWKS)},
            bearer=False,
        ),
    ]


def _routes(contract: list[Endpoint]) -> list[Route]:
    """One route per path holding all its methods: Starlette's 405 lists the ``Allow`` of the
    first route matching the path only, so one route per method hid the others."""
    by_path: dict[str, dict[str, Handler]] = {}
    for e in contract:
        by_path.setdefault(e.path, {})[e.method] = e.handler
    routes = []
    for path, handlers in by_path.items():

        async def dispatch(request: Request, handlers: dict[str, Handler] = handlers) -> Response:
            method = "GET" if request.method == "HEAD" else request.method
            return await handlers[method](request)

        routes.append(Route(path, dispatch, methods=sorted(handlers)))
    return routes


class IssueRoute:
    """POST /v1/playback-urls without Starlette's layers (error middleware, metrics middleware,
    exception middleware, router, endpoint wrapper), which together cost more than signing.
    The same handler, the same error handlers and the same metrics as the routed way."""

    def __init__(self, handler: Handler, on_error: ErrorHandler, recorded: ResponseMetrics):
        self.handler = handler
        self.on_error = on_error
        self.recorded = recorded

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        request = Request(scope, receive)
        try:
            response = await self.handler(request)
        except PlayGateError as exc:
            response = await self.on_error(request, exc)
        except Exception as exc:
            # As Starlette's ServerErrorMiddleware: the problem answer, then the exception for
            # the server to log.
            await self.answer(await internal_error(request, exc), started, scope, receive, send)
            raise
        await self.answer(response, started, scope, receive, send)

    async def answer(
        self, response: Response, started: float, scope: Scope, receive: Receive, send: Send
    ) -> None:
        try:
            await response(scope, receive, send)
        finally:
            self.recorded.record(PLAYBACK_URLS, started, response.status_code)


class SignerApp(Starlette):
    """Starlette, with POST /v1/playback-urls, the request the signer exists for, answered by
    ``issue``; every other request (and that one under a root path) is routed as usual."""

    def __init__(self, issue: IssueRoute, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.issue = issue

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["path"] == PLAYBACK_URLS
            and scope["method"] == "POST"
            and not scope.get("root_path")
        ):
            scope["app"] = self
            await self.issue(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def create_app(
    settings: SignerSettings,
    clock: Callable[[], float] = time.time,
    store: StateStore | None = None,
    *,
    contract_check: bool = False,
    on_started: Callable[[Callable[[], object]], None] | None = None,
) -> SignerApp:
    """``store``: share one state store (the demo); by default built from settings.state.

    ``contract_check`` (tests): an error its route did not declare becomes a 500, so a test
    notices the OpenAPI document would have missed it. ``on_started(reload)``: called once
    serving, with the function that reloads the signing key ring (run on SIGHUP).
    """
    own_store = store is None
    state_store = store or build_store(settings.state)
    # A store of its own in memory is seen by no validator: revocations there would be a lie.
    shared = not (own_store and state_store.backend == "memory")
    limiter = RateLimiter(state_store, settings.state)
    api = SignerApi(settings, clock, limiter)
    spool = None
    if shared and settings.revocation_spool is not None:
        spool = RevocationSpool(settings.revocation_spool, state_store, clock)
    revocations = RevocationsApi(
        settings, state_store, clock, shared=shared, spool=spool, limiter=limiter
    )
    health = SignerHealth(state_store, shared=shared, spool=spool)
    contract = endpoints(api, revocations, health)

    document = openapi_document(contract)

    async def openapi(request: Request) -> Response:
        return JSONResponse(document)

    declared = {(e.method, e.path): e.raises for e in contract}

    async def playgate_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, PlayGateError)
        route = (request.method, request.url.path)
        if contract_check and type(exc) not in declared.get(route, ()):
            log.error("undeclared error %s on %s %s", exc.reason, *route)
            return JSONResponse({"error": "undeclared_error", "reason": exc.reason}, 500)
        # Bearer challenge on 401; reason header, no-store, field and Retry-After: problem().
        extra = {"WWW-Authenticate": "Bearer"} if isinstance(exc, Unauthorized) else None
        return problem(exc, extra)

    routes = _routes(contract)
    routes.append(Route("/openapi.json", openapi, methods=["GET"]))
    routes += admin_routes(settings.admin_key, health.details)
    known = {e.path for e in contract} | {"/openapi.json", "/metrics", "/admin/health"}

    def route_name(path: str) -> str:
        return path if path in known else "other"

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if on_started is not None:
            on_started(lambda: reload_keyring(api, os.environ))
        async with background(spool.run() if spool else None, watch_clock(state_store, settings)):
            yield
        flush_counts()  # a stopping worker's last counts stay in the sums
        api.issued.flush()
        if own_store:
            await state_store.close()

    recorded = ResponseMetrics("signer")
    return SignerApp(
        IssueRoute(api.playback_urls, playgate_error, recorded),
        routes=routes,
        lifespan=lifespan,
        exception_handlers={
            PlayGateError: playgate_error,
            HTTPException: http_error,
            Exception: internal_error,
        },
        middleware=[Middleware(RequestMetrics, recorded=recorded, route_of=route_name)],
    )


@contextlib.asynccontextmanager
async def background(*jobs: Coroutine[Any, Any, None] | None) -> AsyncIterator[None]:
    """Run ``jobs`` (None: skipped) as tasks while the app serves; cancel them when it stops."""
    tasks = [asyncio.create_task(job) for job in jobs if job is not None]
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=2)


def watch_clock(store: StateStore, settings: SignerSettings) -> Coroutine[Any, Any, None]:
    """The signer stamps not_before and revocation times: warn when its clock drifts."""
    return ClockSkew(store, settings.state.clock_skew_warning).run()


def reload_keyring(api: SignerApi, environ: Mapping[str, str]) -> bool:
    """Re-read the key ring; the next URL is signed with its active key. A ring that does not
    load, or has no active key, is logged and the running one kept."""
    try:
        keyring = Env(environ).keyring()
        keyring.active  # noqa: B018 - raises when the ring cannot sign
    except PlayGateError as exc:
        log.error("key ring reload refused, keeping the running ring: %s", exc.message)
        return False
    api.settings = dataclasses.replace(api.settings, keyring=keyring)
    log.info("key ring reloaded: active key %s", keyring.active_key_id)
    return True


def app_from_env() -> SignerApp:
    """App factory for ``playgate serve-signer`` (under plain uvicorn: ``--no-proxy-headers``,
    and without ``playgate.serving``'s limits: expose that only behind a proxy)."""
    return create_app(SignerSettings.from_env())
