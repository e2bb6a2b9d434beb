"""The origin shield: validate, strip the token, serve the object from the origin.

``Shield`` is a plain ASGI app: Starlette's Route calls it as it is, with no Request built and
no wrapping of the endpoint per request (docs/performance.md#origin-shield: the framework cost
more than the decision). Everything it reads comes from the scope (``requests.py``).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping

from starlette.background import BackgroundTask
from starlette.datastructures import Headers
from starlette.requests import HTTPConnection, Request
from starlette.responses import FileResponse, Response, StreamingResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..core.cat.renewal import RenewalRefused, RenewedCat, renewal_headers
from ..core.decision import Grant
from ..core.errors import (
    BadManifest,
    BadRange,
    InternalError,
    NotFound,
    OriginError,
    PlaybackTokenError,
    RangeNotSatisfiable,
)
from ..core.protocol import MANIFEST_CACHE, NO_STORE, TOKEN_ID_HEADER, is_manifest
from ..gate import Gate
from ..manifests.query_mode import manifest_request_headers, needs_rewrite, rewritten_manifest
from ..origins.base import Origin, OriginReply
from ..origins.files import FileOrigin
from ..settings import ValidatorSettings
from .admin import RequestMetrics, ResponseMetrics
from .file_body import ZEROCOPY, ZeroCopyFileResponse
from .problems import denied, problem
from .requests import header_token, raw_target, viewer

log = logging.getLogger("playgate.validator")
_CACHEABLE = frozenset({200, 206, 304})
_RANGE = b"range"
_SHIELD_METHODS = frozenset({"GET", "HEAD"})
_TOKEN_ID = TOKEN_ID_HEADER.lower().encode("latin-1")
_NOSNIFF = (b"x-content-type-options", b"nosniff")
# The attribute of an app whose shield requests the server may answer itself (``MediaRoute``).
MEDIA_ROUTE = "playgate_media"


class Shield:
    """The shield's route endpoint (GET and HEAD of every path the other routes leave)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = await shield(scope)
        await response(scope, receive, send)


class MediaRoute:
    """Which requests go straight to the shield, and what the middleware around it does per
    request, for the two ways there: ``MediaShortcut`` (the innermost middleware) and the
    server's own media path (``playgate/media_path.py``, inside ``playgate serve-validator``'s
    protocol, with no ASGI middleware stack). Both ask ``takes``, both call ``shield``.

    ``fixed``: the paths of the other routes, all without parameters; ``recorded`` and
    ``route_of``: the request metrics (``RequestMetrics``), recorded the same way by both."""

    def __init__(
        self,
        fixed: frozenset[str],
        recorded: ResponseMetrics,
        route_of: Callable[[str], str],
        error_handler: Callable[[Request, Exception], Awaitable[Response]],
    ) -> None:
        self.fixed = fixed
        self.recorded = recorded
        self.route_of = route_of
        self.error_handler = error_handler
        self.app: ASGIApp | None = None  # the Starlette app (its state), set once built

    def ready(self) -> bool:
        """Whether the app's middleware is still what the server's media path repeats: the
        request metrics, then the shortcut on this route (tests remove the shortcut, an
        operator's build could add a layer: then every request takes the stack)."""
        stack = getattr(self.app, "user_middleware", None)
        if stack is None or len(stack) != 2:
            return False
        metrics, shortcut = stack
        handlers = getattr(self.app, "exception_handlers", {})
        return (
            not getattr(self.app, "debug", True)
            and handlers.get(Exception) is self.error_handler
            and metrics.cls is RequestMetrics
            and metrics.kwargs.get("recorded") is self.recorded
            and metrics.kwargs.get("route_of") is self.route_of
            and shortcut.cls is MediaShortcut
            and shortcut.kwargs.get("route") is self
        )

    def takes(self, scope: Scope) -> bool:
        """A GET or HEAD of a path no fixed route has (the router strips a root path: a
        request with one is left to it)."""
        return (
            scope["method"] in _SHIELD_METHODS
            and not scope.get("root_path")
            and scope["path"] not in self.fixed
        )

    async def answer(self, scope: Scope) -> Response:
        """The shield's response, the scope completed as Starlette does (``scope["app"]``)."""
        scope["app"] = self.app
        return await shield(scope)

    def record(self, scope: Scope, started: float, status: int) -> None:
        """What ``RequestMetrics`` records for a response begun at ``started``."""
        self.recorded.record(self.route_of(scope["path"]), started, status)

    def record_path(self, path: str, started: float, status: int) -> None:
        """``record`` for a request of ``path`` answered without a scope."""
        self.recorded.record(self.route_of(path), started, status)

    async def failed(self, scope: Scope, exc: Exception) -> Response:
        """What ``ServerErrorMiddleware`` answers (and logs) for an unexpected error."""
        return await self.error_handler(Request(scope), exc)


class MediaShortcut:
    """The innermost middleware: a GET or HEAD of a path no fixed route has goes straight to
    the shield, where the router would reach it after one regular expression per route and
    through two exception layers with nothing to catch (the shield answers its own errors; an
    unexpected one still reaches the outer ``ServerErrorMiddleware``). Everything else, and
    every method the shield refuses (405), goes the router's way."""

    def __init__(self, app: ASGIApp, shield: Shield, route: MediaRoute) -> None:
        self.app = app
        self.shield = shield
        self.route = route

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.route.takes(scope):
            response = await shield(scope)  # what self.shield does, one call less
            await response(scope, receive, send)
        else:
            await self.app(scope, receive, send)


async def shield(scope: Scope) -> Response:
    # Starlette's State keeps its values in ``_state`` (0.49 to 1.10 at least) and finds one by
    # attribute only after a failed lookup and its exception: 0.45 against 0.04 µs, three times.
    state = scope["app"].state._state
    gate: Gate = state["gate"]
    settings: ValidatorSettings = state["settings"]
    try:
        admission = await gate.admit(
            raw_target(scope),
            viewer(scope, settings),
            header_token(scope),
            _cookies(scope, gate),
        )
    except PlaybackTokenError as exc:
        return denied(exc)
    except Exception:  # deny by default: a bug must never open the gate
        log.exception("shield check failed")
        return denied(InternalError())
    grant = admission.grant
    if admission.location is not None:
        return _with_cookie(session_redirect(admission.location, grant), admission.set_cookie)
    renewal = admission.renewal
    if isinstance(renewal, RenewedCat) and renewal.location is not None:
        redirect = session_redirect(renewal.location, grant)  # catr redirect: the same shape
        return _with_renewal(redirect, renewal, grant.now)
    try:
        reply = await _fetch(scope, state["origin"], settings, grant)
    except BadManifest as exc:
        log.warning("manifest refused: %s token_id=%s", exc.message, grant.token_id)
        return denied(exc)
    except (NotFound, OriginError) as exc:
        log.warning("origin: %s token_id=%s", exc.reason, grant.token_id)
        return problem(exc)
    except Exception:  # an origin or rewriting bug: deny with a reason, never a bare 500
        log.exception("shield fetch failed token_id=%s", grant.token_id)
        return denied(InternalError())
    response = _with_cookie(_response(reply, grant), admission.set_cookie)
    return response if renewal is None else _with_renewal(response, renewal, grant.now)


def _with_cookie(response: Response, set_cookie: str | None) -> Response:
    """A Media CDN long token for this viewer (mediacdn_dual.py): never kept by a cache."""
    if set_cookie is not None:
        response.headers["Cache-Control"] = NO_STORE
        response.headers.append("Set-Cookie", set_cookie)
    return response


async def _fetch(
    scope: Scope, origin: Origin, settings: ValidatorSettings, grant: Grant
) -> OriginReply:
    if not needs_rewrite(grant):
        if _zero_copy(scope, origin):
            assert isinstance(origin, FileOrigin)
            return await origin.open(grant.path)
        return await origin.fetch(grant.path, Headers(scope=scope), scope["method"])
    headers = manifest_request_headers(Headers(scope=scope))
    reply = await origin.fetch(grant.path, headers, scope["method"])
    return await rewritten_manifest(reply, grant, settings.public_url)


def _zero_copy(scope: Scope, origin: Origin) -> bool:
    """Whether a whole file from disk is asked and the server sends it itself
    (``playgate serve-validator``)."""
    if (
        scope["method"] != "GET"
        or not isinstance(origin, FileOrigin)
        or ZEROCOPY not in scope.get("extensions", ())
    ):
        return False
    # A loop, not all(): a generator costs a function object and a frame per request.
    for key, _ in scope["headers"]:  # noqa: SIM110
        if key == _RANGE:
            return False
    return True


def _with_renewal(response: Response, renewal: RenewedCat | RenewalRefused, now: float) -> Response:
    """A CAT's catr outcome (core/cat/renewal.py); a renewed token is for this response only."""
    for name, value in renewal_headers(renewal, now).items():
        response.headers.append(name, value)
    if isinstance(renewal, RenewedCat):
        response.headers["Cache-Control"] = NO_STORE
    return response


def session_redirect(location: str, grant: Grant) -> Response:
    """Send the player to the session URL (relative URIs then resolve under it).

    302, which every player follows for a GET; never stored, since it holds a fresh session.
    """
    headers = {
        "Location": location,
        TOKEN_ID_HEADER: grant.token_id,
        "Cache-Control": NO_STORE,
        "Referrer-Policy": "no-referrer",
    }
    return Response(status_code=302, headers=headers)


def _response(reply: OriginReply, grant: Grant) -> Response:
    # Browsers may keep a success; shared caches must not key it by a token URL for longer than
    # it lives. Other statuses are never kept; an origin that chose its own header (a redirect
    # to a short-lived URL: no-store) keeps it.
    cache_control: str | None = None
    if "cache-control" not in reply.headers:
        cacheable = reply.status in _CACHEABLE
        cache_control = success_cache_control(grant) if cacheable else NO_STORE
    if reply.opened is not None and reply.head is not None:
        # A file sent whole: its own head is encoded once per file version (origins/files.py),
        # the same headers in the same order as below.
        raw = [*reply.head, *file_headers(grant, cache_control)]
        length = int(reply.headers["content-length"])
        return ZeroCopyFileResponse(reply.opened, reply.status, raw, length, reply.head)
    headers = {
        **reply.headers,
        TOKEN_ID_HEADER: grant.token_id,
        "X-Content-Type-Options": "nosniff",
    }
    if cache_control is not None:
        headers["Cache-Control"] = cache_control
    return build_response(reply, headers)


def success_cache_control(grant: Grant) -> str:
    """``Cache-Control`` of a success the origin left without one."""
    if is_manifest(grant.path):
        # A live playlist changes every segment, and a session lives for hours: a browser
        # keeping it would replay a stale playlist until the player stalls.
        return MANIFEST_CACHE
    return f"private, max-age={grant.seconds_left()}"


def file_headers(grant: Grant, cache_control: str | None) -> list[tuple[bytes, bytes]]:
    """What the shield adds, encoded, to a file's own head (origins/files.py): the token id,
    ``nosniff`` and ``cache_control`` when there is one (the server's fast path too)."""
    raw = [(_TOKEN_ID, grant.token_id.encode("latin-1")), _NOSNIFF]
    if cache_control is not None:
        raw.append((b"cache-control", cache_control.encode("latin-1")))
    return raw


def build_response(reply: OriginReply, headers: dict[str, str]) -> Response:
    if reply.opened is not None:
        return ZeroCopyFileResponse.from_headers(reply.opened, reply.status, headers)
    if reply.file is not None:
        # FileResponse answers Range (206, 416) and HEAD itself.
        media_type = headers.pop("content-type", None)
        return _FileResponse(reply.file, headers=headers, media_type=media_type)
    if reply.body is not None:
        background = BackgroundTask(reply.release)
        return StreamingResponse(reply.body, reply.status, headers, background=background)
    return Response(reply.content, reply.status, headers)


class _FileResponse(FileResponse):
    """FileResponse whose own refusals of a Range header (a bare 400 or 416, no reason, no
    ``Cache-Control``) are answered as every PlayGate refusal is (problems.problem)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        refused: Response | None = None

        async def sending(message: Message) -> None:
            nonlocal refused
            if message["type"] == "http.response.start" and message["status"] in (400, 416):
                if message["status"] == 400:
                    refused = problem(BadRange())
                else:
                    range_ = Headers(raw=message["headers"]).get("content-range", "")
                    refused = problem(RangeNotSatisfiable(), {"Content-Range": range_})
            if refused is None:
                await send(message)
            elif message["type"] == "http.response.body" and not message.get("more_body"):
                await refused(scope, receive, send)

        await super().__call__(scope, receive, sending)


def _cookies(scope: Scope, gate: Gate) -> Mapping[str, str] | None:
    # Parsed only where a foreign format may travel in a cookie (CloudFront, Akamai, Media CDN).
    return HTTPConnection(scope).cookies if gate.foreign is not None else None
