"""The signer's OpenAPI description (GET /openapi.json), generated from the routes.

Each route declares the errors it may raise (``Endpoint.raises``); the error responses here are
built from those classes, and the app refuses, in contract-check mode (the tests), to send an
error its route did not declare. So the document and the code cannot drift.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from edge_validator.core.errors import PlayGateError

from .issuing import FORMATS

Handler = Callable[[Request], Awaitable[Response]]


@dataclass(frozen=True)
class Endpoint:
    """One route and its contract: what it answers, and which errors it may raise."""

    method: str
    path: str
    handler: Handler
    summary: str
    # status -> (description, JSON schema or None) of the answers that are not errors
    answers: dict[int, tuple[str, dict[str, Any] | None]]
    raises: tuple[type[PlayGateError], ...] = ()
    request_schema: dict[str, Any] | None = None
    bearer: bool = True


def _error_schema(reasons: list[str]) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["error", "message"],
        "properties": {
            "error": {"enum": reasons, "description": "machine-readable reason code"},
            "message": {"type": "string"},
            "field": {"type": "string", "description": "the request field at fault"},
        },
    }


def _json(description: str, schema: dict[str, Any] | None) -> dict[str, Any]:
    if schema is None:
        return {"description": description}
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(raises: Sequence[type[PlayGateError]]) -> dict[str, Any]:
    by_status: dict[int, list[type[PlayGateError]]] = {}
    for cls in raises:
        by_status.setdefault(cls.status, []).append(cls)
    out: dict[str, Any] = {}
    for status, classes in sorted(by_status.items()):
        description = "; ".join((c.__doc__ or c.reason).splitlines()[0] for c in classes)
        out[str(status)] = _json(description, _error_schema([c.reason for c in classes]))
    return out


def operation(endpoint: Endpoint) -> dict[str, Any]:
    op: dict[str, Any] = {"summary": endpoint.summary}
    if endpoint.bearer:
        op["security"] = [{"bearer": []}]
    if endpoint.request_schema is not None:
        op["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": endpoint.request_schema}},
        }
    answers = {str(k): _json(*v) for k, v in sorted(endpoint.answers.items())}
    op["responses"] = {**answers, **_errors(endpoint.raises)}
    return op


def openapi_document(endpoints: Sequence[Endpoint]) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for endpoint in endpoints:
        paths.setdefault(endpoint.path, {})[endpoint.method.lower()] = operation(endpoint)
    return {
        "openapi": "3.1.0",
        "info": {"title": "PlayGate signer", "version": "1.0.0"},
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        "paths": paths,
    }


PLAYBACK_REQUEST = {
    "type": "object",
    "additionalProperties": False,
    "required": ["video_id"],
    "properties": {
        "video_id": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,128}$"},
        "ttl_seconds": {"type": "integer", "minimum": 1},
        "client_ip": {"type": "string", "description": "IPv4/IPv6 address or CIDR to bind to"},
        "session_id": {"type": "string", "pattern": "^[A-Za-z0-9_.:-]{1,128}$"},
        "file": {"type": "string", "description": "entry file inside the video"},
        "user_id": {"type": "string", "pattern": "^[A-Za-z0-9_.:-]{1,128}$"},
        "max_uses": {"type": "integer", "minimum": 0},
        "max_streams": {"type": "integer", "minimum": 0},
        "session_seconds": {
            "type": "integer",
            "minimum": 0,
            "description": "playback session the URL opens (0: none); capped by "
            "PLAYGATE_MAX_SESSION, default PLAYGATE_DEFAULT_SESSION",
        },
        "format": {
            "type": "string",
            "enum": list(FORMATS),
            "default": "playgate",
            "description": "playgate (v1), cat (CTA-5007 Common Access Token; max_uses 0 or 1), "
            "or a CDN's format (the signer's format keys; docs/formats.md)",
        },
    },
}

JWKS = {
    "type": "object",
    "required": ["keys"],
    "properties": {"keys": {"type": "array", "items": {"type": "object"}}},
}

PLAYBACK_URL = {
    "type": "object",
    "required": ["url", "token", "token_id", "expires_at"],
    "properties": {
        "url": {"type": "string"},
        "token": {"type": "string"},
        "token_id": {"type": "string"},
        "expires_at": {"type": "string", "format": "date-time"},
        "format": {"type": "string", "description": "present for a CDN format"},
        "cookies": {
            "type": "object",
            "additionalProperties": {"type": "string"},
            "description": "CloudFront: signed cookies that cover the video's segments",
        },
    },
}


_TARGET = {"type": "string", "pattern": "^[A-Za-z0-9_.:-]{1,128}$"}
REVOCATION_REQUEST = {
    "type": "object",
    "description": "exactly one target",
    "additionalProperties": False,
    "minProperties": 1,
    "maxProperties": 1,
    "properties": {
        "token_id": _TARGET,
        "session_id": _TARGET,
        "video_id": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,128}$"},
        "user_id": _TARGET,
    },
}
REVOCATION: dict[str, Any] = {
    "type": "object",
    "required": ["kind", "value", "revoked_at", "expires_at"],
    "properties": {
        "kind": {"enum": ["token_id", "session_id", "video_id", "user_id"]},
        "value": {"type": "string"},
        "revoked_at": {
            "type": "string",
            "format": "date-time",
            "description": "ISO 8601 UTC, milliseconds; covers tokens issued at or before it",
        },
        "expires_at": {
            "type": "string",
            "format": "date-time",
            "description": "ISO 8601 UTC; the revocation is kept until then",
        },
    },
}
QUEUED = {
    **REVOCATION,
    "required": [*REVOCATION["required"], "queued"],
    "properties": {
        **REVOCATION["properties"],
        "queued": {
            "const": True,
            "description": "held in the signer's spool; written to Redis as soon as it answers",
        },
    },
}
REVOCATION_LIST = {
    "type": "object",
    "properties": {"revocations": {"type": "array", "items": REVOCATION}},
}
