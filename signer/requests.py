"""What every signer endpoint reads first: the caller's API key and a bounded JSON body."""

from __future__ import annotations

import json

from starlette.requests import Request

from edge_validator.core.errors import (
    BodyTooLarge,
    MalformedJson,
    Unauthorized,
    UnsupportedMediaType,
)

from .api_keys import Caller
from .settings import SignerSettings


def authenticate(request: Request, settings: SignerSettings, scope: str) -> Caller:
    """The caller of the presented ``Authorization: Bearer`` key, else Unauthorized; its key
    must hold ``scope``, else MissingScope (403)."""
    scheme, _, key = request.headers.get("authorization", "").partition(" ")
    caller = settings.api_keys.caller(key.strip()) if scheme.lower() == "bearer" and key else None
    if caller is None:
        raise Unauthorized("send Authorization: Bearer <api key>")
    caller.require(scope)
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
