"""Origin shield, query-token mode: read a manifest from the origin, rewrite it, answer it."""

from __future__ import annotations

from starlette.datastructures import Headers

from ..core.decision import Grant
from ..core.protocol import is_manifest
from ..origins.base import OriginReply
from ..origins.media_types import media_type
from . import rewrite_manifest
from .urls import Url

MAX_MANIFEST_BYTES = 4 * 1024 * 1024
# A rewritten manifest differs per token: partial or conditional answers of the origin's bytes
# would not match it, so those request headers are not forwarded for manifests.
_DROP = (b"range", b"if-range", b"if-none-match", b"if-modified-since")


def needs_rewrite(grant: Grant) -> bool:
    """A manifest whose token travelled in the query: its child URIs must get the token."""
    return grant.target.token_in_query and is_manifest(grant.path)


def manifest_request_headers(headers: Headers) -> Headers:
    return Headers(raw=[(k, v) for k, v in headers.raw if k.lower() not in _DROP])


async def rewritten_manifest(reply: OriginReply, grant: Grant, public: Url | None) -> OriginReply:
    """``reply`` with child URIs of this edge carrying the token; other statuses unchanged.

    ``public`` is the configured public URL: which URIs are ours never depends on the request's
    Host header, which the viewer chooses.
    """
    if reply.status != 200:
        return reply
    token = grant.target.token
    assert token is not None  # a grant always carries its token
    body = rewrite_manifest(
        grant.path,
        await reply.read(MAX_MANIFEST_BYTES),
        token,
        public_url=public,
        base_path=grant.target.path,
        param=grant.target.token_param(),
    )
    assert body is not None  # needs_rewrite() chose a manifest
    return OriginReply(200, {"content-type": media_type(grant.path)}, content=body)
