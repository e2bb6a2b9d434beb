"""The one exception tree of PlayGate: validator, signer, origins, shared state, configuration.

Every class names one ``reason`` (a machine-readable code) and one HTTP ``status``; adapters turn
the reason into a response header, a JSON body and a log field, and ``hint`` into the advice
``playgate explain`` prints. Messages never contain a token or a key. Standard library only: this
module ships in the Lambda@Edge bundle.
"""

from __future__ import annotations

from typing import ClassVar


class PlayGateError(Exception):
    """Root of every error PlayGate raises on purpose."""

    reason: ClassVar[str] = "error"
    status: ClassVar[int] = 400
    # What a user seeing this error should do (``playgate explain``); None: nothing to add.
    hint: ClassVar[str | None] = None
    # The request field at fault (signer API), and seconds after which a retry may succeed.
    field: str | None = None
    retry_after: int | None = None
    # Set when the token was authentic, so logs can name it (never the token itself).
    token_id: str | None = None

    def __init__(self, message: str = "", *, token_id: str | None = None) -> None:
        super().__init__(message or self.__class__.__doc__ or self.reason)
        self.token_id = token_id

    @property
    def message(self) -> str:
        return str(self.args[0])


# --- configuration ----------------------------------------------------------------------------


class ConfigurationError(PlayGateError):
    """The configuration is invalid."""

    reason = "bad_configuration"
    status = 500


class KeyTooShortError(ConfigurationError):
    """A signing key is shorter than 32 bytes."""

    reason = "key_too_short"


# --- HTTP requests the routes cannot serve ----------------------------------------------------


class NotFound(PlayGateError):
    """No such object or route."""

    reason = "not_found"
    status = 404


class MethodNotAllowed(PlayGateError):
    """This method is not served here."""

    reason = "method_not_allowed"
    status = 405


class CorsRefused(PlayGateError):
    """A cross-origin preflight this edge does not allow (origin, method or header)."""

    reason = "cors_refused"
    status = 403


# --- the signer API ---------------------------------------------------------------------------


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


class BadRange(RequestError):
    """The Range header does not parse (or asks an end before its start)."""

    reason = "bad_range"


class RangeNotSatisfiable(RequestError):
    """No byte the Range header asks for is in the object."""

    reason = "range_not_satisfiable"
    status = 416


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


class MissingScope(RequestError):
    """The caller's API key does not allow this operation."""

    reason = "missing_scope"
    status = 403
    hint = "give the caller a key with that scope: playgate api-key --scopes ..."


class VideoNotAllowed(RequestError):
    """The caller's API key is limited to other videos (its video-id prefix)."""

    reason = "video_not_allowed"
    status = 403
    hint = "the key's video prefix does not cover this video id; use the key meant for it"


class StateNotShared(RequestError):
    """This signer's state reaches no validator (no REDIS_URL)."""

    reason = "state_not_shared"
    status = 501


class StoreUnavailable(PlayGateError):
    """The state backend could not answer in time. Callers apply the failure policy; where none
    applies (the signer's revocation endpoints), it is a 503 to retry."""

    reason = "store_unavailable"
    status = 503
    retry_after = 1


class NotReplicated(StoreUnavailable):
    """The primary took a write but too few replicas confirmed it: a failover could lose it,
    so it is not acknowledged as done (PLAYGATE_REDIS_WAIT_REPLICAS)."""

    reason = "not_replicated"


class StoreBusy(PlayGateError):
    """The state backend is up but every connection is busy (a flood). Not an outage: it never
    selects the failure policy; the request is refused, to retry shortly (503 on the signer)."""

    reason = "store_busy"
    status = 503
    retry_after = 1


# --- origins ----------------------------------------------------------------------------------


class OriginError(PlayGateError):
    """The origin could not serve an allowed request."""

    reason = "origin_error"
    status = 502


class OriginUnavailable(OriginError):
    """The origin could not be reached or answered with an error."""

    reason = "origin_unavailable"
    status = 502


class OriginTimeout(OriginError):
    """The origin did not answer in time."""

    reason = "origin_timeout"
    status = 504


class PresignFailed(OriginError):
    """No presigned S3 URL could be made."""

    reason = "presign_failed"
    status = 503


class CredentialsExpiring(OriginError):
    """The signing credentials are about to expire; no URL can outlive them."""

    reason = "credentials_expiring"
    status = 503


# --- the decision: every denial ---------------------------------------------------------------


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
    hint = "the URL carries no token: expected /t/<token>/... or ?token=..."


class MalformedToken(PlaybackTokenError):
    """The token is not a well-formed PlayGate token."""

    reason = "malformed"
    hint = "the token was cut or altered in transit (check URL encoding and length)"


class UnsupportedClaim(MalformedToken):
    """The CAT carries a claim (or a claim form) this validator does not implement."""

    reason = "unsupported_claim"
    hint = "the CAT asks for a check PlayGate does not implement (refused, never ignored)"


class BadPath(PlaybackTokenError):
    """The request path is ambiguous or unsafe."""

    reason = "bad_path"
    hint = "the path is ambiguous (dot segments, encoded slashes, //, non-ASCII...)"


class BadSignature(PlaybackTokenError):
    """The token signature does not match."""

    reason = "bad_signature"
    hint = "the token was altered, or signed with another secret under this key id"


class UnknownKey(PlaybackTokenError):
    """The token names a key this validator does not have."""

    reason = "unknown_key"
    hint = "this key ring lacks the token's key id: deploy the key to the validator"


class Expired(PlaybackTokenError):
    """The token has expired."""

    reason = "expired"
    hint = "issue a new URL; players must refresh URLs before expiry"


class NotYetValid(PlaybackTokenError):
    """The token is not valid yet."""

    reason = "not_yet_valid"
    hint = "the signer's clock is ahead of the validator's; check NTP"


class LifetimeExceeded(PlaybackTokenError):
    """The token was issued to live longer than this validator allows."""

    reason = "lifetime_exceeded"
    hint = "the token lives longer than PLAYGATE_MAX_TTL allows; issue a shorter one"


class OutOfScope(PlaybackTokenError):
    """The token does not cover this path."""

    reason = "out_of_scope"
    hint = "the token covers another video; relative URIs must stay inside its scope"


class IpMismatch(PlaybackTokenError):
    """The token is bound to another client network."""

    reason = "ip_mismatch"
    hint = "the viewer's address differs from the bound one (proxies, mobile networks)"


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
    """Shared state cannot vouch for this token under the failure policy; deny."""

    reason = "state_unavailable"


class StateBusy(PlaybackTokenError):
    """Shared state is too busy to run this token's check (use or stream limits); deny, and let
    the player retry. Load never chooses the failure policy."""

    reason = "state_busy"
    retry_after = 1


class SessionRedirectRequired(PlaybackTokenError):
    """A start token opens a playback session only where the edge can answer a redirect."""

    reason = "session_redirect_required"
    hint = (
        "start-token manifests must reach the origin shield or Lambda@Edge, which answer with "
        "a redirect to a session URL (render the nginx edge with `playgate nginx-config`)"
    )


class UnsupportedFormat(PlaybackTokenError):
    """A foreign token format this validator cannot verify here (Lambda@Edge: public-key
    formats); refused by name, never judged as a PlayGate token."""

    reason = "unsupported_format"
    hint = "verify this format at the origin shield (docs/formats.md, the format table)"


class BadManifest(PlaybackTokenError):
    """The origin's manifest cannot be rewritten safely; the request is denied."""

    reason = "bad_manifest"


def error_classes() -> list[type[PlayGateError]]:
    """Every class of the tree, root first (for the reason table and its tests)."""
    found: list[type[PlayGateError]] = []
    pending: list[type[PlayGateError]] = [PlayGateError]
    while pending:
        cls = pending.pop(0)
        found.append(cls)
        pending.extend(cls.__subclasses__())
    return found
