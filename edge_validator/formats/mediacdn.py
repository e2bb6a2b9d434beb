"""Google Media CDN signed requests: signed URLs, URL prefixes, cookies, path-component tokens and
the dual-token flow's short tokens, Ed25519 (and HMAC-SHA256 for short tokens).

- Signed URL: ``<url>?Expires=<t>&KeyName=<k>&Signature=<b64>``, over all that precedes
  ``&Signature``.
- URL prefix: ``?URLPrefix=<b64(prefix)>&Expires=..&KeyName=..&Signature=..`` over the fields.
- Cookie: ``Edge-Cache-Cookie=URLPrefix=..:Expires=..:KeyName=..:Signature=..``.
- Path component: ``<prefix>edge-cache-token=Expires=..&KeyName=..&Signature=../<file>`` over
  ``<prefix>edge-cache-token=Expires=..&KeyName=..``: the token is a path segment, so relative
  URIs in a playlist carry it. This is what PlayGate emits, with ``<prefix>`` the video scope.
- Short token (dual-token): ``URLPrefix=..|PathGlobs=..|FullPath~[Starts=..~]Expires=..~
  [SessionID=..~][Data=..~][IPRanges=..~](Signature=<b64>|hmac=<hex>)``, sent as the
  ``edge-cache-token`` query parameter. Media CDN exchanges it for a long token (a cookie or a
  path component) when playback starts: PlayGate's playback sessions are the same idea (a short
  start window, then a session the edge renews); see docs/formats.md.

Scope mapping: a URL prefix (or path-component prefix) is a plain string prefix to Media CDN, so
``/videos/12`` would cover ``/videos/123``. PlayGate only emits and only accepts prefixes that
end in '/', on the configured public URL; a path glob only as one ``<prefix>/*``. Signatures are
base64url, with or without padding (Google's own samples write both).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ed25519

from ..core.errors import (
    BadPath,
    BadSignature,
    ConfigurationError,
    MalformedToken,
    MissingToken,
    OutOfScope,
    UnknownKey,
)
from ..core.paths import normalize_path
from ..core.protocol import MAX_TOKEN_CHARS
from .policy import Access, Policy

FORMAT = "mediacdn"
TOKEN_SEGMENT = "edge-cache-token="
COOKIE = "Edge-Cache-Cookie"
SHORT_TOKEN_PARAM = "edge-cache-token"
MIN_HMAC_KEY_BYTES = 32
_TIME_RE = re.compile(r"[1-9][0-9]{0,10}")
_KEY_NAME_RE = re.compile(r"[A-Za-z0-9_-]{1,63}")
_FIELD_RE = re.compile(r"[A-Za-z0-9_.:-]{1,128}")


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64(text: str) -> bytes:
    """base64url, padded or not, canonical either way."""
    if len(text) > MAX_TOKEN_CHARS:
        raise MalformedToken("field is longer than 2048 characters")
    bare = text.rstrip("=")
    try:
        raw = base64.urlsafe_b64decode(bare + "=" * (-len(bare) % 4))
    except (binascii.Error, ValueError):
        raise MalformedToken("not base64url") from None
    if b64(raw) != bare or text not in (bare, base64.urlsafe_b64encode(raw).decode("ascii")):
        raise MalformedToken("not canonical base64url")
    return raw


@dataclass(frozen=True, repr=False)
class MediaCdnKey:
    """An Ed25519 key of a Media CDN keyset: private on the signer, public at the edge."""

    key_name: str
    key: ed25519.Ed25519PrivateKey | ed25519.Ed25519PublicKey

    def __post_init__(self) -> None:
        if not _KEY_NAME_RE.fullmatch(self.key_name):
            raise ConfigurationError("Media CDN key names are 1-63 characters of A-Z a-z 0-9 _ -")
        if not isinstance(self.key, ed25519.Ed25519PrivateKey | ed25519.Ed25519PublicKey):
            raise ConfigurationError(f"Media CDN key {self.key_name!r}: Ed25519 only")

    @classmethod
    def from_seed(cls, key_name: str, base64_seed: str) -> MediaCdnKey:
        """A private key as Google's samples store it: the 32-byte seed, base64url."""
        seed = base64.urlsafe_b64decode(base64_seed)
        return cls(key_name, ed25519.Ed25519PrivateKey.from_private_bytes(seed))

    def __repr__(self) -> str:
        return f"MediaCdnKey({self.key_name!r})"

    def public(self) -> MediaCdnKey:
        if isinstance(self.key, ed25519.Ed25519PrivateKey):
            return MediaCdnKey(self.key_name, self.key.public_key())
        return self

    def sign(self, message: str) -> bytes:
        if not isinstance(self.key, ed25519.Ed25519PrivateKey):
            raise ValueError("a public key cannot sign")
        return self.key.sign(message.encode("ascii"))

    def verify(self, signature: bytes, message: str) -> bool:
        public = self.public().key
        assert isinstance(public, ed25519.Ed25519PublicKey)
        try:
            public.verify(signature, message.encode("ascii"))
        except InvalidSignature:
            return False
        return True


@dataclass(frozen=True, repr=False)
class MediaCdnHmacKey:
    """A shared secret for HMAC-SHA256 short tokens (dual-token flow)."""

    key_name: str
    secret: bytes

    def __post_init__(self) -> None:
        if len(self.secret) < MIN_HMAC_KEY_BYTES:
            raise ConfigurationError(
                f"Media CDN secret {self.key_name!r}: at least {MIN_HMAC_KEY_BYTES} bytes"
            )

    def __repr__(self) -> str:
        return f"MediaCdnHmacKey({self.key_name!r})"

    def mac(self, message: str) -> str:
        return hmac.new(self.secret, message.encode("ascii"), hashlib.sha256).hexdigest()


# --- signing, as Google's samples do ------------------------------------------------------------


def sign_url(url: str, key: MediaCdnKey, expires: int) -> str:
    signed = f"{url}{'&' if '?' in url else '?'}Expires={expires}&KeyName={key.key_name}"
    return f"{signed}&Signature={base64.urlsafe_b64encode(key.sign(signed)).decode()}"


def sign_url_prefix(url: str, prefix: str, key: MediaCdnKey, expires: int) -> str:
    policy = _prefix_policy(prefix, expires, key.key_name, "&")
    signature = base64.urlsafe_b64encode(key.sign(policy)).decode()
    return f"{url}{'&' if '?' in url else '?'}{policy}&Signature={signature}"


def sign_cookie(prefix: str, key: MediaCdnKey, expires: int) -> str:
    """The ``Edge-Cache-Cookie`` value."""
    policy = _prefix_policy(prefix, expires, key.key_name, ":")
    return f"{policy}:Signature={b64(key.sign(policy))}"


def sign_path_component(prefix: str, filename: str, key: MediaCdnKey, expires: int) -> str:
    policy = f"{prefix}{TOKEN_SEGMENT}Expires={expires}&KeyName={key.key_name}"
    signature = base64.urlsafe_b64encode(key.sign(policy)).decode()
    return f"{policy}&Signature={signature}/{filename}"


def sign_token(
    key: MediaCdnKey | MediaCdnHmacKey,
    expires: int,
    *,
    url_prefix: str | None = None,
    path_globs: str | None = None,
    full_path: str | None = None,
    starts: int | None = None,
    session_id: str | None = None,
    data: str | None = None,
    ip_ranges: str | None = None,
) -> str:
    """A dual-token short token (``edge-cache-token``)."""
    if url_prefix is not None:
        fields = [f"URLPrefix={b64(url_prefix.encode('ascii'))}"]
        signed = list(fields)
    elif path_globs is not None:
        fields = [f"PathGlobs={path_globs}"]
        signed = list(fields)
    elif full_path is not None:
        fields, signed = ["FullPath"], [f"FullPath={full_path}"]
    else:
        raise ValueError("a short token needs url_prefix, path_globs or full_path")
    optional = [("Starts", starts), ("Expires", expires), ("SessionID", session_id)]
    optional += [("Data", data)]
    if ip_ranges is not None:
        optional.append(("IPRanges", b64(ip_ranges.encode("ascii"))))
    extra = [f"{name}={value}" for name, value in optional if value is not None]
    message = "~".join(signed + extra)
    if isinstance(key, MediaCdnKey):
        return "~".join([*fields, *extra, f"Signature={b64(key.sign(message))}"])
    return "~".join([*fields, *extra, f"hmac={key.mac(message)}"])


def _prefix_policy(prefix: str, expires: int, key_name: str, sep: str) -> str:
    encoded = base64.urlsafe_b64encode(prefix.encode("ascii")).decode()
    return f"URLPrefix={encoded}{sep}Expires={expires}{sep}KeyName={key_name}"


# --- PlayGate's emission ------------------------------------------------------------------------


def emit(policy: Policy, key: MediaCdnKey, public_url: str) -> str:
    """A path-component URL over the video scope: every segment URI carries the token."""
    if policy.client_network is not None:
        raise ValueError("Media CDN long tokens bind no client address; use a short token")
    return sign_path_component(f"{public_url}{policy.scope}", policy.entry, key, policy.expires_at)


# --- verification -------------------------------------------------------------------------------


def split_path(raw_path: str) -> tuple[str, str, str] | None:
    """``(prefix path, token, rest)`` of a path-component URL path, or None without a token."""
    marker = "/" + TOKEN_SEGMENT
    at = raw_path.find(marker)
    if at < 0:
        return None
    if raw_path.find(marker, at + 1) >= 0:
        raise MalformedToken("more than one edge-cache-token")
    token, slash, rest = raw_path[at + len(marker) :].partition("/")
    if not slash:
        raise BadPath("nothing after the edge-cache-token segment")
    return raw_path[: at + 1], token, "/" + rest


def verify(
    raw_path: str,
    query: str,
    cookies: Mapping[str, str],
    keys: Mapping[str, MediaCdnKey | MediaCdnHmacKey],
    public_url: str,
) -> tuple[Access, str]:
    """Authenticate a path-component token, a short token, or the cookie, in that order.

    Returns the access and the raw path the origin serves (a path token removed). The caller
    judges the access (``policy.judge``).
    """
    parts = split_path(raw_path)
    if parts is not None:
        prefix, token, rest = parts
        return _verify_path_component(prefix, token, keys, public_url), prefix[:-1] + rest
    short = [
        p[len(SHORT_TOKEN_PARAM) + 1 :]
        for p in query.split("&")
        if p.startswith(SHORT_TOKEN_PARAM + "=")
    ]
    if len(short) > 1:
        raise MalformedToken("more than one edge-cache-token")
    if short:
        return _verify_short_token(short[0], raw_path, keys, public_url), raw_path
    cookie = cookies.get(COOKIE)
    if cookie:
        return _verify_cookie(cookie, keys, public_url), raw_path
    raise MissingToken("no Media CDN token")


def _key(keys: Mapping[str, MediaCdnKey | MediaCdnHmacKey], name: str) -> MediaCdnKey:
    key = keys.get(name)
    if not isinstance(key, MediaCdnKey):
        raise UnknownKey("the token names an unknown Media CDN key")
    return key


def _fields(text: str, sep: str, names: tuple[str, ...]) -> dict[str, str]:
    found: dict[str, str] = {}
    for part in text.split(sep):
        name, eq, value = part.partition("=")
        if not eq or name in found or name not in names:
            raise MalformedToken("not a Media CDN token")
        found[name] = value
    if list(found) != [n for n in names if n in found]:
        raise MalformedToken("Media CDN fields out of order")
    return found


def _expires(fields: dict[str, str], name: str = "Expires") -> int:
    value = fields.get(name)
    if value is None or not _TIME_RE.fullmatch(value):
        raise MalformedToken(f"{name} is not a time")
    return int(value)


def _scope_of_prefix(prefix: str, public_url: str) -> str:
    if not prefix.startswith(public_url + "/"):
        raise OutOfScope("the token covers another host")
    path = prefix[len(public_url) :]
    if not path.endswith("/") or "?" in path or "*" in path:
        raise MalformedToken("a URL prefix PlayGate cannot judge segment by segment")
    return normalize_path(path)


def _verify_path_component(
    prefix_path: str, token: str, keys: Mapping[str, MediaCdnKey | MediaCdnHmacKey], public_url: str
) -> Access:
    fields = _fields(token, "&", ("Expires", "KeyName", "Signature"))
    if set(fields) != {"Expires", "KeyName", "Signature"}:
        raise MalformedToken("a path token needs Expires, KeyName and Signature")
    key = _key(keys, fields["KeyName"])
    expires = _expires(fields)
    signed = f"{public_url}{prefix_path}{TOKEN_SEGMENT}Expires={expires}&KeyName={key.key_name}"
    if not key.verify(unb64(fields["Signature"]), signed):
        raise BadSignature("Media CDN signature mismatch")
    scope = _scope_of_prefix(public_url + prefix_path, public_url)
    return Access(FORMAT, key.key_name, expires, 0, scope, False)


def _verify_cookie(
    cookie: str, keys: Mapping[str, MediaCdnKey | MediaCdnHmacKey], public_url: str
) -> Access:
    fields = _fields(cookie, ":", ("URLPrefix", "Expires", "KeyName", "Signature"))
    if set(fields) != {"URLPrefix", "Expires", "KeyName", "Signature"}:
        raise MalformedToken("a Media CDN cookie needs URLPrefix, Expires, KeyName, Signature")
    key = _key(keys, fields["KeyName"])
    signed = cookie.rsplit(":Signature=", 1)[0]
    if not key.verify(unb64(fields["Signature"]), signed):
        raise BadSignature("Media CDN signature mismatch")
    prefix = _ascii(unb64(fields["URLPrefix"]))
    scope = _scope_of_prefix(prefix, public_url)
    return Access(FORMAT, key.key_name, _expires(fields), 0, scope, False)


_SHORT_FIELDS = (
    "URLPrefix", "PathGlobs", "FullPath", "Starts", "Expires", "SessionID", "Data", "IPRanges",
    "Signature", "hmac",
)  # fmt: skip


def _verify_short_token(
    token: str,
    raw_path: str,
    keys: Mapping[str, MediaCdnKey | MediaCdnHmacKey],
    public_url: str,
) -> Access:
    if len(token) > MAX_TOKEN_CHARS:
        raise MalformedToken("token is longer than 2048 characters")
    parts = token.split("~")
    if parts and parts[0] == "FullPath":
        parts[0] = "FullPath=" + raw_path
    fields = _fields("~".join(parts), "~", _SHORT_FIELDS)
    if sum(n in fields for n in ("URLPrefix", "PathGlobs", "FullPath")) != 1:
        raise MalformedToken("a short token names one URLPrefix, PathGlobs or FullPath")
    if ("Signature" in fields) == ("hmac" in fields):
        raise MalformedToken("a short token ends in one Signature or hmac")
    signed = "~".join(parts[:-1])
    # A short token names no key: the first configured key that verifies it.
    for name, key in keys.items():
        if _one_key_verifies(key, fields, signed):
            return _short_access(fields, name, raw_path, public_url)
    raise BadSignature("Media CDN short token mismatch")


def _one_key_verifies(
    key: MediaCdnKey | MediaCdnHmacKey, fields: dict[str, str], signed: str
) -> bool:
    if "Signature" in fields and isinstance(key, MediaCdnKey):
        return key.verify(unb64(fields["Signature"]), signed)
    if "hmac" in fields and isinstance(key, MediaCdnHmacKey):
        return hmac.compare_digest(key.mac(signed), fields["hmac"])
    return False


def _short_access(fields: dict[str, str], key_name: str, raw_path: str, public_url: str) -> Access:
    if "URLPrefix" in fields:
        scope, exact = _scope_of_prefix(_ascii(unb64(fields["URLPrefix"])), public_url), False
    elif "PathGlobs" in fields:
        glob = fields["PathGlobs"]
        if not glob.endswith("/*") or any(c in glob[:-1] for c in "*?,!"):
            raise MalformedToken("a path glob PlayGate cannot judge segment by segment")
        scope, exact = normalize_path(glob[:-1]), False
    else:
        scope, exact = normalize_path(raw_path), True
    network = None
    if "IPRanges" in fields:
        ranges = _ascii(unb64(fields["IPRanges"])).split(",")
        if len(ranges) != 1:
            raise MalformedToken("PlayGate binds a token to one network")
        try:
            network = str(ipaddress.ip_network(ranges[0], strict=True))
        except ValueError:
            raise MalformedToken("IPRanges is not a network") from None
    for name in ("SessionID", "Data"):
        if name in fields and not _FIELD_RE.fullmatch(fields[name]):
            raise MalformedToken(f"{name} is not an identifier")
    starts = _expires(fields, "Starts") if "Starts" in fields else 0
    return Access(
        FORMAT, key_name, _expires(fields), starts, scope, exact,
        fields.get("Data"), fields.get("SessionID"), network,
    )  # fmt: skip


def _ascii(raw: bytes) -> str:
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError:
        raise MalformedToken("not ASCII") from None
    if not text.isprintable():
        raise MalformedToken("not printable")
    return text
