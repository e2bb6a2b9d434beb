"""Where the origin shield fetches an object once a request is allowed."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol
from urllib.parse import quote

import httpx
from starlette.background import BackgroundTask
from starlette.datastructures import Headers
from starlette.responses import FileResponse, Response, StreamingResponse

from .errors import ObjectNotFound, OriginTimeout, OriginUnavailable
from .media import media_type

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


class Origin(Protocol):
    async def fetch(self, path: str, headers: Headers, method: str) -> Response: ...

    async def close(self) -> None: ...


class FileOrigin:
    """Objects from a local folder. ``path`` is already judged safe; resolving is a second wall."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    async def fetch(self, path: str, headers: Headers, method: str) -> Response:
        try:
            candidate = (self.root / path.lstrip("/")).resolve()
            found = candidate.is_relative_to(self.root) and candidate.is_file()
        except OSError:  # a name too long for the file system, a loop of links: no such object
            found = False
        if not found:
            raise ObjectNotFound("no such object")
        # FileResponse answers Range (206, 416) and HEAD itself.
        return FileResponse(candidate, media_type=media_type(path))

    async def close(self) -> None:
        return None


class HttpOrigin:
    """Objects from an HTTP origin, streamed through without buffering."""

    def __init__(self, base_url: str, timeout: float) -> None:
        self.base_url = base_url.rstrip("/")
        self.client = httpx.AsyncClient(timeout=timeout, follow_redirects=False)

    async def fetch(self, path: str, headers: Headers, method: str) -> Response:
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
            raise ObjectNotFound("no such object")
        passed = {k: upstream.headers[k] for k in _PASS_BACK if k in upstream.headers}
        passed["content-type"] = media_type(path)
        return StreamingResponse(
            upstream.aiter_raw(),
            status_code=upstream.status_code,
            headers=passed,
            background=BackgroundTask(upstream.aclose),
        )

    async def close(self) -> None:
        await self.client.aclose()
