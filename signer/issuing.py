"""Turning a validated playback request into a signed URL. Pure: the clock is a parameter."""

from __future__ import annotations

import functools
import ipaddress
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from edge_validator.core.cat.claims import CatPolicy, Renewal, build_claims
from edge_validator.core.cat.keys import CatKeyRing
from edge_validator.core.cat.verify import seal_cat
from edge_validator.core.errors import InvalidField
from edge_validator.core.keyring import KeyRing
from edge_validator.core.protocol import TOKEN_PARAM, TOKEN_PREFIX
from edge_validator.core.token import V4_MAPPED_NETWORK, Claims, seal
from edge_validator.formats.emit import EMIT_FORMATS as CDN_FORMATS
from edge_validator.formats.emit import emit, keys_of
from edge_validator.formats.keys import FormatKeys
from edge_validator.formats.policy import Policy

from .viewers import viewer_unit

VIDEO_ID_RE = re.compile(r"[A-Za-z0-9_-]{1,128}")
SESSION_ID_RE = re.compile(r"[A-Za-z0-9_.:-]{1,128}")
VIDEO_PREFIX = "/videos/"
# Entry files: plain names joined by '/', so the URL needs no escaping and has no query or
# fragment hidden in it.
# A CAT's catr renewal in one string: type, expadd seconds, optional deadline seconds.
CAT_RENEWAL_RE = re.compile(r"(automatic|cookie|header|redirect):([0-9]{1,5})(?::([0-9]{1,5}))?")
ENTRY_FILE_RE = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]*(/[A-Za-z0-9_-][A-Za-z0-9._-]*)*")
_FIELDS = frozenset(
    {
        "video_id",
        "ttl_seconds",
        "client_ip",
        "session_id",
        "file",
        "user_id",
        "max_uses",
        "max_streams",
        "session_seconds",
        "format",
        "cat_renewal",
    }
)
PLAYGATE_FORMAT = "playgate"
# Token formats: PlayGate's own v1 (the default, the fastest), CTA-5007 Common Access Token, and
# the CDNs' own (edge_validator/formats): one policy, any of them.
FORMATS = (PLAYGATE_FORMAT, "cat", *CDN_FORMATS)


@dataclass(frozen=True)
class PlaybackRequest:
    video_id: str
    ttl_seconds: int
    client_network: str | None = None
    session_id: str | None = None
    file: str = "master.m3u8"
    user_id: str | None = None
    max_uses: int = 0
    max_streams: int = 0
    # The playback session the URL opens (0: none; the URL plays only within ttl_seconds).
    session_seconds: int = 0
    format: str = PLAYGATE_FORMAT
    # The rate-limit unit of client_network (rate_limits.viewer_unit), from the same parse.
    client_unit: str | None = None
    # A CAT's catr: how the edge renews it near its end (docs/cat.md#renewal).
    cat_renewal: Renewal | None = None

    @property
    def scope(self) -> str:
        return f"{VIDEO_PREFIX}{self.video_id}/"

    def with_ttl(self, ttl_seconds: int) -> PlaybackRequest:
        """This request with another TTL. A copy of the fields as they are (checked when this
        request was made): ``dataclasses.replace`` runs ``__init__`` again, 5 µs per URL."""
        twin = object.__new__(PlaybackRequest)
        twin.__dict__.update(self.__dict__, ttl_seconds=ttl_seconds)
        return twin


@dataclass(frozen=True)
class IssuedUrl:
    url: str
    token: str
    token_id: str
    expires_at: int
    format: str = PLAYGATE_FORMAT
    # CloudFront: the signed cookies that cover the video's segments (set them for the viewer).
    cookies: dict[str, str] | None = None

    def as_json(self) -> dict[str, Any]:
        iso = iso_time(self.expires_at)
        doc: dict[str, Any] = {
            "url": self.url,
            "token": self.token,
            "token_id": self.token_id,
            "expires_at": iso,
        }
        if self.format != PLAYGATE_FORMAT:
            doc["format"] = self.format
        if self.cookies:
            doc["cookies"] = self.cookies
        return doc


def iso_time(ts: float) -> str:
    """Every time the signer API answers with: ISO 8601 UTC, ``2026-11-22T05:45:00Z``; with
    milliseconds when ``ts`` has a fraction (a revocation's instant), whole seconds otherwise."""
    if ts == int(ts):
        return _iso_second(int(ts))
    when = datetime.fromtimestamp(ts, UTC)
    if when.microsecond:
        return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"
    return _iso_second(int(ts))


@functools.lru_cache(maxsize=1024)
def _iso_second(ts: int) -> str:
    # Every URL issued in one second with one TTL expires at the same second: formatting it
    # once saves a few µs per URL.
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _int(doc: dict[str, Any], name: str, default: int, low: int, high: int) -> int:
    value = doc.get(name, default)
    # bool is an int in Python; true as a TTL is a client bug, not 1 second.
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidField(name, f"must be an integer from {low} to {high}")
    return value


def _text(doc: dict[str, Any], name: str, pattern: re.Pattern[str]) -> str | None:
    value = doc.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise InvalidField(name, f"must match {pattern.pattern}")
    return value


def _client_network(value: object) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    if value is None:
        return None
    problem = "must be an IPv4 or IPv6 address or CIDR network"
    # '%': an IPv6 zone id names an interface on the viewer's host; it cannot be bound to.
    if not isinstance(value, str) or "%" in value:
        raise InvalidField("client_ip", problem)
    try:
        net = ipaddress.ip_network(value, strict=True)
    except ValueError:
        raise InvalidField("client_ip", problem) from None
    if isinstance(net, ipaddress.IPv6Network) and net.subnet_of(V4_MAPPED_NETWORK):
        # The validator judges IPv4 viewers as IPv4, so a mapped network is stated as IPv4.
        if net.prefixlen < 96:
            raise InvalidField("client_ip", "an IPv4-mapped network needs a prefix of 96 or more")
        mapped = int(net.network_address) & 0xFFFFFFFF
        return ipaddress.IPv4Network((mapped, net.prefixlen - 96))
    return net


def _cat_renewal(value: object, token_format: str) -> Renewal | None:
    """``TYPE:EXPADD[:DEADLINE]`` (``redirect:600:60``) as a catr claim, for a CAT only."""
    if value is None:
        return None
    match = CAT_RENEWAL_RE.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise InvalidField("cat_renewal", f"must match {CAT_RENEWAL_RE.pattern}")
    if token_format != "cat":
        raise InvalidField("cat_renewal", "only a CAT carries catr renewal")
    kind, expadd, deadline = match.groups()
    if not 1 <= int(expadd) <= 86400 or int(deadline or 0) > 86400:
        raise InvalidField("cat_renewal", "expadd 1-86400 s, deadline 0-86400 s")
    return Renewal(kind, int(expadd), None if deadline is None else int(deadline), None)


def _entry_file(value: object, default: str) -> str:
    if value is None:
        return default
    if not isinstance(value, str) or len(value) > 512 or not ENTRY_FILE_RE.fullmatch(value):
        raise InvalidField("file", "must be a relative path of A-Z a-z 0-9 . _ - names")
    return value


def parse_playback_request(
    doc: object,
    *,
    default_ttl: int,
    max_ttl: int,
    entry_file: str,
    default_session: int = 0,
    max_session: int = 0,
) -> PlaybackRequest:
    if not isinstance(doc, dict):
        raise InvalidField("body", "must be a JSON object")
    if not _FIELDS.issuperset(doc):
        raise InvalidField(sorted(set(doc) - _FIELDS)[0], "unknown field")
    video_id = doc.get("video_id")
    if not isinstance(video_id, str) or not VIDEO_ID_RE.fullmatch(video_id):
        raise InvalidField("video_id", "required; 1-128 characters of A-Z a-z 0-9 _ -")
    user_id = _text(doc, "user_id", SESSION_ID_RE)
    max_streams = _int(doc, "max_streams", 0, 0, 1000)
    if max_streams and user_id is None:
        raise InvalidField("max_streams", "requires user_id (streams are counted per user)")
    token_format = doc.get("format", PLAYGATE_FORMAT)
    if token_format not in FORMATS:
        raise InvalidField("format", f"must be one of {', '.join(FORMATS)}")
    max_uses = _int(doc, "max_uses", 0, 0, 1_000_000)
    if token_format == "cat" and max_uses > 1:
        raise InvalidField("max_uses", "a CAT carries one-time use only (catreplay): 0 or 1")
    if token_format in CDN_FORMATS:
        # The CDNs' formats carry no user id or limits: refused, never issued without them.
        for name in ("user_id", "max_uses", "max_streams"):
            if doc.get(name):
                raise InvalidField(name, f"cannot be carried by the {token_format} format")
    # Only PlayGate's own start tokens carry a session allowance: CAT and CDN-format URLs open
    # no playback session.
    own = token_format == PLAYGATE_FORMAT
    session_seconds = _int(doc, "session_seconds", default_session if own else 0, 0, max_session)
    if not own and session_seconds:
        what = "a CAT" if token_format == "cat" else f"a {token_format} URL"
        raise InvalidField("session_seconds", f"{what} opens no playback session: 0")
    network = _client_network(doc.get("client_ip"))
    # Every field given, each checked above: set as with_ttl does, without the frozen
    # dataclass's __init__ (one object.__setattr__ per field, 1 µs per URL).
    request = object.__new__(PlaybackRequest)
    request.__dict__.update(
        video_id=video_id,
        ttl_seconds=_int(doc, "ttl_seconds", default_ttl, 1, max_ttl),
        client_network=None if network is None else str(network),
        session_id=_text(doc, "session_id", SESSION_ID_RE),
        file=_entry_file(doc.get("file"), entry_file),
        user_id=user_id,
        max_uses=max_uses,
        max_streams=max_streams,
        session_seconds=session_seconds,
        format=token_format,
        client_unit=None if network is None else viewer_unit(network),
        cat_renewal=_cat_renewal(doc.get("cat_renewal"), token_format),
    )
    return request


def new_token_id() -> str:
    return secrets.token_urlsafe(12)


def playback_url(public_url: str, token: str, path: str, mode: str) -> str:
    if mode == "query":
        return f"{public_url}{path}?{TOKEN_PARAM}={token}"
    return f"{public_url}{TOKEN_PREFIX}{token}{path}"


def issue(
    request: PlaybackRequest,
    keyring: KeyRing,
    now: float,
    *,
    public_url: str,
    mode: str = "path",
    token_id: str | None = None,
    cat: CatIssuer | None = None,
    format_keys: FormatKeys | None = None,
) -> IssuedUrl:
    """Sign a token for the request's video and build the viewer's URL."""
    if request.format == "cat":
        if cat is None:
            raise InvalidField("format", "this signer has no CAT key ring (PLAYGATE_CAT_KEYS)")
        return cat.issue(request, now, public_url=public_url, mode=mode, token_id=token_id)
    if request.format != PLAYGATE_FORMAT:
        return issue_foreign(request, format_keys, now, public_url, token_id)
    claims = Claims(
        key_id=keyring.active.key_id,
        expires_at=int(now) + request.ttl_seconds,
        not_before=int(now),
        scope=request.scope,
        token_id=token_id or new_token_id(),
        session_id=request.session_id,
        client_network=request.client_network,
        user_id=request.user_id,
        max_uses=request.max_uses,
        max_streams=request.max_streams,
        session_seconds=request.session_seconds,
    )
    token = seal(claims, keyring)
    url = playback_url(public_url, token, request.scope + request.file, mode)
    return IssuedUrl(url, token, claims.token_id, claims.expires_at)


def issue_foreign(
    request: PlaybackRequest,
    keys: FormatKeys | None,
    now: float,
    public_url: str,
    token_id: str | None = None,
) -> IssuedUrl:
    """The same policy in a CDN's format (edge_validator/formats)."""
    if keys is None or keys_of(request.format) not in keys.configured():
        raise InvalidField("format", f"this signer has no {request.format} key")
    try:
        policy = Policy(
            scope=request.scope,
            expires_at=int(now) + request.ttl_seconds,
            not_before=int(now),
            token_id=token_id or new_token_id(),
            entry=request.file,
            client_network=request.client_network,
            session_id=request.session_id,
        )
    except ValueError as exc:  # parse_playback_request checked the same rules; never a 500
        raise InvalidField("body", str(exc)) from None
    try:
        emitted = emit(request.format, policy, keys, public_url)
    except ValueError as exc:  # the only field a format may not express: the client binding
        raise InvalidField("client_ip", str(exc)) from None
    cookies = emitted.cookies or None
    return IssuedUrl(
        emitted.url, emitted.token, emitted.token_id, policy.expires_at, request.format, cookies
    )


@dataclass(frozen=True)
class CatIssuer:
    """Issues CTA-5007 Common Access Tokens from the same request, scope and expiry."""

    keyring: CatKeyRing
    policy: CatPolicy

    def issue(
        self,
        request: PlaybackRequest,
        now: float,
        *,
        public_url: str,
        mode: str = "path",
        token_id: str | None = None,
    ) -> IssuedUrl:
        key = self.keyring.signing_key()
        claims = Claims(
            key_id=key.key_id,
            expires_at=int(now) + request.ttl_seconds,
            not_before=int(now),
            scope=request.scope,
            # The CWT id (cti) is bytes; its hex spelling is the token id revocations name.
            token_id=token_id or secrets.token_hex(16),
            session_id=request.session_id,
            client_network=request.client_network,
            user_id=request.user_id,
            max_uses=request.max_uses,
            max_streams=request.max_streams,
        )
        doc = build_claims(
            claims,
            issuer=self.policy.issuer,
            audience=self.policy.audience,
            renewal=request.cat_renewal,
        )
        token = seal_cat(doc, key)
        url = playback_url(public_url, token, request.scope + request.file, mode)
        return IssuedUrl(url, token, claims.token_id, claims.expires_at)
