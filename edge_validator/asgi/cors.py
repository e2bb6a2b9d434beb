"""CORS for the validator's answers: a plain ASGI middleware around the whole app.

Every response gets the policy's headers, denials included, so a web player on another origin
can read ``X-PlayGate-Reason``; preflights are answered here, before routing.
"""

from __future__ import annotations

from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..core.cors import CorsPolicy, is_preflight
from ..core.errors import CorsRefused
from .problems import problem


class CorsMiddleware:
    def __init__(self, app: ASGIApp, policy: CorsPolicy) -> None:
        self.app = app
        self.policy = policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.policy.enabled:
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        origin = headers.get("origin")
        if is_preflight(scope["method"], headers.items()):
            await self._preflight(origin, headers)(scope, receive, send)
            return
        extra = self.policy.response_headers(origin)

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                out = MutableHeaders(scope=message)
                for name, value in extra.items():
                    if name == "Vary":
                        out.add_vary_header(value)
                    else:
                        out[name] = value
            await send(message)

        await self.app(scope, receive, send_with_cors)

    def _preflight(self, origin: str | None, headers: Headers) -> Response:
        try:
            answer = self.policy.preflight(
                origin,
                headers["access-control-request-method"],
                headers.get("access-control-request-headers"),
            )
        except CorsRefused as exc:
            return problem(exc)
        return Response(status_code=204, headers=answer)
