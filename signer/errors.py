"""Errors of the signer API, in PlayGate's one exception tree."""

from __future__ import annotations

from edge_validator.errors import PlayGateError


class RequestError(PlayGateError):
    """The request cannot be served."""

    reason = "bad_request"
    status = 400


class MalformedJson(RequestError):
    """The body is not a JSON object."""

    reason = "malformed_json"


class BodyTooLarge(RequestError):
    """The body is too large."""

    reason = "body_too_large"
    status = 413


class UnsupportedMediaType(RequestError):
    """The body must be application/json."""

    reason = "unsupported_media_type"
    status = 415


class InvalidField(RequestError):
    """A field is missing or invalid."""

    reason = "invalid_field"
    status = 422

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


class StateNotShared(RequestError):
    """This signer's state reaches no validator (no REDIS_URL)."""

    reason = "state_not_shared"
    status = 501


class Unauthorized(RequestError):
    """Missing or unknown API key."""

    reason = "unauthorized"
    status = 401


class RateLimited(RequestError):
    """Too many requests."""

    reason = "rate_limited"
    status = 429

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after
