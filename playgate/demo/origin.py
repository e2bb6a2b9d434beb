"""A plain media origin for the demo, tests and benchmarks: files from a folder, no tokens.

It stands for the customer's origin (a bucket or a file server) that only the edge can reach.
It still refuses ambiguous paths, as a second wall behind the edge.
"""

from __future__ import annotations

from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from edge_validator.asgi.shield import build_response
from edge_validator.core.errors import BadPath, NotFound
from edge_validator.core.paths import normalize_path
from edge_validator.origins.files import FileOrigin


def create_origin_app(root: Path) -> Starlette:
    origin = FileOrigin(root)

    async def serve(request: Request) -> Response:
        raw: bytes = request.scope.get("raw_path") or request.scope["path"].encode()
        try:
            path = normalize_path(raw.decode("latin-1"))
            reply = await origin.fetch(path, request.headers, request.method)
            return build_response(reply, dict(reply.headers))
        except BadPath:
            return JSONResponse({"error": "bad_path"}, 400)
        except NotFound:
            return JSONResponse({"error": "not_found"}, 404)

    return Starlette(routes=[Route("/{path:path}", serve, methods=["GET", "HEAD"])])
