"""Akamai EdgeAuth 2.0 (Auth Token 2.0, ``hdnts``): HMAC-SHA256 tokens, emitted and verified.

A token is ``[ip=<a>~][st=<t>~]exp=<t>~acl=<acl>[~id=<id>][~data=<d>]~hmac=<hex>``; the HMAC
(keyed with the hex-decoded secret) covers every field before ``hmac`` joined by ``~``. A ``url``
token carries no ``acl``: the HMAC then also covers ``url=<request path>``.

Scope mapping: PlayGate's scope ``/videos/<id>/`` is the ACL ``/videos/<id>/*``. Akamai's ``*``
matches anything, '/' included, but after a '/' it stays inside that folder, so the mapping is
segment-safe both ways. On verification an ACL is accepted only in the two shapes PlayGate can
judge segment by segment: one ``<prefix>/*`` or one exact path; several ACLs (``!``), a ``*`` or
``?`` elsewhere, are refused rather than guessed at. ``id`` carries PlayGate's token id (so
revocations and logs name it) and ``data`` the session id; ``ip`` binds to one address.
Akamai tokens name no key: verification tries each configured key (Akamai's own "transition
key" rotation).
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
import ipaddress
import re
from dataclasses import dataclass

from ..core.errors import BadSignature, ConfigurationError, MalformedToken, MissingToken
from ..core.protocol import MAX_TOKEN_CHARS
from .policy import Access, Policy

FORMAT = "akamai"
TOKEN_NAME = "hdnts"
MIN_KEY_BYTES = 32
# The fields in the order Akamai's generators write them; one order, so one spelling.
_ORDER = ("ip", "st", "exp", "acl", "id", "data", "hmac")
_TIME_RE = re.compile(r"[1-9][0-9]{0,10}")
_HMAC_RE = re.compile(r"[0-9a-f]{64}")
# Values as written (escape_early off): printable ASCII without the field delimiter.
_VALUE_RE = re.compile(r"[!-}]+")


@dataclass(frozen=True, repr=False)
class AkamaiKey:
    """One EdgeAuth encryption key (Akamai's Property Manager shows it as hex)."""

    key_id: str
    secret: bytes

    def __post_init__(self) -> None:
        if len(self.secret) < MIN_KEY_BYTES:
            raise ConfigurationError(
                f"akamai key {self.key_id!r} is {len(self.secret)} bytes; "
                f"at least {MIN_KEY_BYTES} are required"
            )

    @classmethod
    def from_hex(cls, key_id: str, text: str) -> AkamaiKey:
        try:
            return cls(key_id, binascii.a2b_hex(text))
        except (binascii.Error, ValueError):
            raise ConfigurationError(
                f"akamai key {key_id!r} must be an even-length hexadecimal string"
            ) from None

    def __repr__(self) -> str:
        return f"AkamaiKey({self.key_id!r})"

    def mac(self, fields: list[tuple[str, str]], url: str | None) -> str:
        signed = [f"{name}={value}" for name, value in fields]
        if url is not None:
            signed.append(f"url={url}")
        message = "~".join(signed).encode("ascii")
        return hmac.new(self.secret, message, hashlib.sha256).hexdigest()


def acl_of(scope: str) -> str:
    return scope + "*"


def sign(fields: list[tuple[str, str]], key: AkamaiKey, url: str | None = None) -> str:
    """The token for ``fields`` (in Akamai's order), or a ``url`` token when ``url`` is given."""
    names = [name for name, _ in fields]
    if names != sorted(names, key=_ORDER.index) or len(set(names)) != len(names):
        raise ValueError("fields must follow ip, st, exp, acl, id, data, once each")
    if ("acl" in names) == (url is not None):
        raise ValueError("a token has an acl or is signed for one url, not both")
    for _, value in fields:
        if not _VALUE_RE.fullmatch(value):
            raise ValueError("field values are printable ASCII without '~'")
    body = "~".join(f"{name}={value}" for name, value in fields)
    return f"{body}~hmac={key.mac(fields, url)}"


def emit(policy: Policy, key: AkamaiKey) -> str:
    """The ``hdnts`` token value for ``policy``: an ACL token over the video scope."""
    fields: list[tuple[str, str]] = []
    address = policy.client_address()
    if address is not None:
        fields.append(("ip", address))
    fields += [
        ("st", str(policy.not_before)),
        ("exp", str(policy.expires_at)),
        ("acl", acl_of(policy.scope)),
        ("id", policy.token_id),
    ]
    if policy.session_id is not None:
        fields.append(("data", policy.session_id))
    return sign(fields, key)


def emit_url(policy: Policy, key: AkamaiKey, public_url: str) -> str:
    return f"{public_url}{policy.entry_path}?{TOKEN_NAME}={emit(policy, key)}"


def parse(token: str) -> tuple[list[tuple[str, str]], str]:
    """``(fields before hmac, hmac)``, each field once and in Akamai's order, else Malformed."""
    if not token:
        raise MissingToken("no EdgeAuth token")
    if len(token) > MAX_TOKEN_CHARS:
        raise MalformedToken("token is longer than 2048 characters")
    fields: list[tuple[str, str]] = []
    last = -1
    for part in token.split("~"):
        name, eq, value = part.partition("=")
        if not eq or name not in _ORDER or not _VALUE_RE.fullmatch(value):
            raise MalformedToken("not an EdgeAuth token")
        position = _ORDER.index(name)
        if position <= last:
            raise MalformedToken("EdgeAuth fields repeated or out of order")
        last = position
        fields.append((name, value))
    name, mac = fields.pop()
    if name != "hmac" or not _HMAC_RE.fullmatch(mac):
        raise MalformedToken("EdgeAuth token without an HMAC-SHA256")
    return fields, mac


def verify(token: str | None, raw_path: str, keys: tuple[AkamaiKey, ...]) -> Access:
    """Authenticate an ``hdnts`` token for a request path (raw, without the query).

    The caller judges the access (``policy.judge``).
    """
    fields, mac = parse(token or "")
    values = dict(fields)
    url = None if "acl" in values else raw_path
    for key in keys:
        if hmac.compare_digest(key.mac(fields, url), mac):
            return _access(values, key.key_id, raw_path)
    raise BadSignature("EdgeAuth hmac mismatch")


def _access(values: dict[str, str], key_id: str, raw_path: str) -> Access:
    # Only authenticated fields are interpreted past this point.
    for name in ("st", "exp"):
        if name in values and not _TIME_RE.fullmatch(values[name]):
            raise MalformedToken(f"EdgeAuth {name} is not a time")
    if "exp" not in values:
        raise MalformedToken("EdgeAuth token without exp")
    acl = values.get("acl")
    if acl is None:
        scope, exact = raw_path, True
    elif acl.endswith("/*") and not _has_wildcard(acl[:-1]) and "!" not in acl:
        scope, exact = acl[:-1], False
    elif acl.startswith("/") and not _has_wildcard(acl) and "!" not in acl:
        scope, exact = acl, True
    else:
        raise MalformedToken("an ACL PlayGate cannot judge segment by segment")
    network = None
    if "ip" in values:
        try:
            ip = ipaddress.ip_address(values["ip"])
        except ValueError:
            raise MalformedToken("EdgeAuth ip is not an address") from None
        network = f"{ip}/{ip.max_prefixlen}"
    return Access(
        FORMAT,
        key_id,
        int(values["exp"]),
        int(values.get("st", "0")),
        scope,
        exact,
        values.get("id"),
        values.get("data"),
        network,
    )


def _has_wildcard(text: str) -> bool:
    return "*" in text or "?" in text
