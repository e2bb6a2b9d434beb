"""The signer's OpenAPI description, served at GET /openapi.json."""

from __future__ import annotations

from typing import Any

_ERROR = {
    "type": "object",
    "required": ["error", "message"],
    "properties": {
        "error": {"type": "string", "description": "machine-readable reason code"},
        "message": {"type": "string"},
        "field": {"type": "string"},
    },
}


def _err(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ERROR}}}


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
    },
}

PLAYBACK_URL = {
    "type": "object",
    "required": ["url", "token", "token_id", "expires_at"],
    "properties": {
        "url": {"type": "string"},
        "token": {"type": "string"},
        "token_id": {"type": "string"},
        "expires_at": {"type": "string", "format": "date-time"},
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
REVOCATION = {
    "type": "object",
    "required": ["kind", "value", "revoked_at", "expires_at"],
    "properties": {
        "kind": {"enum": ["token_id", "session_id", "video_id", "user_id"]},
        "value": {"type": "string"},
        "revoked_at": {"type": "number", "description": "unix seconds"},
        "expires_at": {"type": "number", "description": "unix seconds; kept until then"},
    },
}
REVOCATION_PATHS: dict[str, Any] = {
    "/v1/revocations": {
        "post": {
            "summary": "Revoke a token, session, video or user before expiry",
            "security": [{"bearer": []}],
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": REVOCATION_REQUEST}},
            },
            "responses": {
                "201": {
                    "description": "revoked",
                    "content": {"application/json": {"schema": REVOCATION}},
                },
                "400": _err("malformed JSON"),
                "401": _err("missing or unknown API key"),
                "415": _err("not application/json"),
                "422": _err("not exactly one valid target"),
                "503": _err("shared state unreachable; retry"),
            },
        },
        "get": {
            "summary": "List live revocations",
            "security": [{"bearer": []}],
            "responses": {
                "200": {
                    "description": "live revocations",
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "properties": {
                                    "revocations": {"type": "array", "items": REVOCATION}
                                },
                            }
                        }
                    },
                },
                "401": _err("missing or unknown API key"),
                "503": _err("shared state unreachable; retry"),
            },
        },
    },
    "/readyz": {
        "get": {
            "summary": "Readiness: shared state reachable",
            "responses": {"200": {"description": "ready"}, "503": {"description": "not ready"}},
        }
    },
}


def openapi_document() -> dict[str, Any]:
    paths: dict[str, Any] = {
        "/v1/playback-urls": {
            "post": {
                "summary": "Issue a signed playback URL for one video",
                "security": [{"bearer": []}],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": PLAYBACK_REQUEST}},
                },
                "responses": {
                    "201": {
                        "description": "issued",
                        "content": {"application/json": {"schema": PLAYBACK_URL}},
                    },
                    "400": _err("malformed JSON"),
                    "401": _err("missing or unknown API key"),
                    "413": _err("body too large"),
                    "415": _err("not application/json"),
                    "422": _err("invalid field"),
                    "429": _err("rate limited"),
                },
            }
        },
        "/healthz": {"get": {"summary": "Liveness", "responses": {"200": {"description": "ok"}}}},
        **REVOCATION_PATHS,
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "PlayGate signer", "version": "1.0.0"},
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        "paths": paths,
    }
