"""Objects from an HTTP origin, streamed through without buffering."""

from __future__ import annotations

from urllib.parse import quote

import httpx
from starlette.datastructures import Headers

from ..core.errors import NotFound, OriginTimeout, OriginUnavailable
from .base import OriginReply
from .media_types import media_type

# Request headers forwarded to an HTTP origin, and response headers passed back.
_FORWARD = ("range", "if-range", "if-none-match", "if-modified-since")
_PASS_BACK = (
    "content-length",
    "content-range",
    "accept-ranges",
    "etag",
    "last-modified",
)
_PASSED_STATUSES = {200, 206, 304, 404, 416}


class HttpOrigin:
    def __init__(self, base_url: str, timeout: float) -> None:
        self.base_url = base_url.rstrip("/")
        self.client = httpx.AsyncClient(timeout=timeout, follow_redirects=False)

    async def fetch(self, path: str, headers: Headers, method: str) -> OriginReply:
        forward = {k: headers[k] for k in _FORWARD if k in headers}
        # The body is passed through as is, so it must not arrive compressed.
        forward["accept-encoding"] = "identity"
        # ``path`` is decoded: re-encode everything but '/', so a decoded '?', '#' or ';' stays
        # part of the object name instead of starting a query, fragment or parameter upstream.
        url = self.base_url + quote(path, safe="/")
        request = self.client.build_request(method, url, headers=forward)
        try:
            upstream = await self.client.send(request, stream=True)
        except httpx.TimeoutException:
            raise OriginTimeout("the origin did not answer in time") from None
        except httpx.HTTPError:
            raise OriginUnavailable("the origin cannot be reached") from None
        if upstream.status_code not in _PASSED_STATUSES:
            await upstream.aclose()
            raise OriginUnavailable(f"the origin answered {upstream.status_code}")
        if upstream.status_code == 404:
            await upstream.aclose()
            raise NotFound("no such object")
        passed = {k: upstream.headers[k] for k in _PASS_BACK if k in upstream.headers}
        passed["content-type"] = media_type(path)
        return OriginReply(
            upstream.status_code, passed, body=upstream.aiter_raw(), close=upstream.aclose
        )

    async def close(self) -> None:
        await self.client.aclose()
