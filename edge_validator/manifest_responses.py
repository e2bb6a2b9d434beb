"""Origin shield, query-token mode: read a manifest from the origin, rewrite it, answer it."""

from __future__ import annotations

import anyio
from starlette.datastructures import Headers
from starlette.responses import FileResponse, Response, StreamingResponse

from .manifest_rewrite import ManifestError, rewrite_manifest
from .media import media_type
from .paths import TOKEN_PREFIX, split_target

MAX_MANIFEST_BYTES = 4 * 1024 * 1024
# A rewritten manifest differs per token: partial or conditional answers of the origin's bytes
# would not match it, so those request headers are not forwarded for manifests.
_DROP = (b"range", b"if-range", b"if-none-match", b"if-modified-since")


def query_token(target: str) -> str | None:
    """The token when it travelled in the query of a manifest request, else None."""
    path = target.partition("?")[0]
    if path.startswith(TOKEN_PREFIX) or not path.lower().endswith((".m3u8", ".mpd")):
        return None
    return split_target(target)[0]


def manifest_request_headers(headers: Headers) -> Headers:
    return Headers(raw=[(k, v) for k, v in headers.raw if k.lower() not in _DROP])


async def _body(response: Response) -> bytes:
    if isinstance(response, FileResponse):
        data = await anyio.Path(response.path).read_bytes()
    elif isinstance(response, StreamingResponse):
        chunks: list[bytes] = []
        size = 0
        try:
            async for chunk in response.body_iterator:
                piece = chunk.encode() if isinstance(chunk, str) else bytes(chunk)
                size += len(piece)
                if size > MAX_MANIFEST_BYTES:
                    raise ManifestError("the manifest is too large")
                chunks.append(piece)
        finally:
            if response.background is not None:
                await response.background()
        data = b"".join(chunks)
    else:
        data = bytes(response.body)
    if len(data) > MAX_MANIFEST_BYTES:
        raise ManifestError("the manifest is too large")
    return data


async def rewritten_manifest(
    response: Response, path: str, token: str, *, target: str, public_url: str | None
) -> Response:
    """``response`` with child URIs of this edge carrying the token; other statuses unchanged.

    ``target`` is the raw request target and ``public_url`` the configured public URL: which
    URIs are ours never depends on the request's Host header, which the viewer chooses.
    """
    if response.status_code != 200:
        return response
    body = rewrite_manifest(
        path,
        await _body(response),
        token,
        public_url=public_url,
        base_path=target.partition("?")[0],
    )
    if body is None:
        return response
    return Response(body, 200, media_type=media_type(path))
