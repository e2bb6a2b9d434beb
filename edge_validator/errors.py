"""One exception tree for PlayGate. Every error carries a machine-readable ``reason``.

Adapters turn ``reason`` into a response header, a JSON body and a metric label, and ``status``
into the HTTP status. Messages never contain a token or a key.
"""

from __future__ import annotations


class PlayGateError(Exception):
    """Root of every error PlayGate raises on purpose."""

    reason = "error"
    status = 400

    # Set when the token was authentic, so logs can name it (never the token itself).
    token_id: str | None = None

    def __init__(
        self,
        message: str = "",
        *,
        reason: str | None = None,
        status: int | None = None,
        token_id: str | None = None,
    ) -> None:
        super().__init__(message or self.__class__.__doc__ or self.reason)
        if reason is not None:
            self.reason = reason
        if status is not None:
            self.status = status
        self.token_id = token_id

    @property
    def message(self) -> str:
        return str(self.args[0])


class ConfigurationError(PlayGateError):
    """The configuration is invalid."""

    reason = "bad_configuration"
    status = 500


class KeyTooShortError(ConfigurationError):
    """A signing key is shorter than 32 bytes."""

    reason = "key_too_short"


class OriginUnavailable(PlayGateError):
    """The origin could not be reached or answered with an error."""

    reason = "origin_unavailable"
    status = 502


class OriginTimeout(OriginUnavailable):
    """The origin did not answer in time."""

    reason = "origin_timeout"
    status = 504


class ObjectNotFound(PlayGateError):
    """No such object at the origin."""

    reason = "not_found"
    status = 404


class PlaybackTokenError(PlayGateError):
    """The request may not see this object."""

    reason = "denied"
    status = 403


class InternalError(PlaybackTokenError):
    """The validator itself failed; deny by default."""

    reason = "internal_error"


class MissingToken(PlaybackTokenError):
    """No playback token in the request."""

    reason = "missing"
    status = 401


class MalformedToken(PlaybackTokenError):
    """The token is not a well-formed PlayGate token."""

    reason = "malformed"


class BadPath(PlaybackTokenError):
    """The request path is ambiguous or unsafe."""

    reason = "bad_path"


class BadSignature(PlaybackTokenError):
    """The token signature does not match."""

    reason = "bad_signature"


class UnknownKey(PlaybackTokenError):
    """The token names a key this validator does not have."""

    reason = "unknown_key"


class Expired(PlaybackTokenError):
    """The token has expired."""

    reason = "expired"


class NotYetValid(PlaybackTokenError):
    """The token is not valid yet."""

    reason = "not_yet_valid"


class LifetimeExceeded(PlaybackTokenError):
    """The token was issued to live longer than this validator allows."""

    reason = "lifetime_exceeded"


class OutOfScope(PlaybackTokenError):
    """The token does not cover this path."""

    reason = "out_of_scope"


class IpMismatch(PlaybackTokenError):
    """The token is bound to another client network."""

    reason = "ip_mismatch"


class Revoked(PlaybackTokenError):
    """The token was revoked."""

    reason = "revoked"


class UseLimitReached(PlaybackTokenError):
    """The token's use limit is spent."""

    reason = "use_limit_reached"


class TooManyStreams(PlaybackTokenError):
    """The viewer has too many concurrent streams."""

    reason = "too_many_streams"


class StateUnavailable(PlaybackTokenError):
    """Shared state is unreachable and the failure policy is fail-closed."""

    reason = "state_unavailable"
    status = 403
