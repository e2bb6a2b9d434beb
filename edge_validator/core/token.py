"""The playback token: claims, and the byte format that carries them (see TOKEN_FORMAT.md).

``seal`` turns claims into a token string; ``open_token`` turns a token string back into claims
after checking its size, its encoding and its MAC, in that order, decoding it exactly once.
Remembering tokens already opened is the ``Verifier``'s job (decision.py).
"""

from __future__ import annotations

import base64
import binascii
import functools
import hmac
import ipaddress
import socket
import struct
from typing import NamedTuple, NoReturn

from .addresses import V4_MAPPED_PREFIX
from .errors import BadSignature, MalformedToken, MissingToken, UnknownKey
from .keyring import KeyRing
from .protocol import MAX_TOKEN_CHARS

VERSION = 1
# Version 2 is version 1 plus one trailing field, the session allowance of a start token (see
# TOKEN_FORMAT.md): a token that starts no session is always written as version 1.
VERSION_SESSION = 2
MAC_BYTES = 32
_SHORTEST = 2 + MAC_BYTES  # a version byte, a key id length, the MAC
_BEFORE_MAC = -MAC_BYTES
_compare_digest = hmac.compare_digest  # constant time
# base64url to standard base64 for binascii's strict decoder; '+', '/' and '=' are not part of
# the token alphabet, so they become '!', which the strict decoder refuses. The text is encoded
# as UTF-8 (no argument to parse, unlike "ascii"): ASCII gives the same bytes, and anything
# else bytes from 0x80 up, which the strict decoder refuses as well.
_TO_STD_B64 = bytes.maketrans(b"-_+/=", b"+/!!!")
# By length mod 4: the characters a canonical base64url token may end with (the unused low
# bits of the last character are zero), and the padding the strict decoder needs. Length 1 mod
# 4 is never base64: no character may end it. Tuples indexed by ``len & 3``: cheaper than a
# dict lookup and a test for "any".
_B64URL_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
_LAST_CHARS: tuple[frozenset[str], ...] = (
    _B64URL_CHARS,
    frozenset(),
    frozenset("AQgw"),
    frozenset("AEIMQUYcgkosw048"),
)
_PADDING = (b"", b"", b"==", b"=")
_a2b_base64 = binascii.a2b_base64
# The claims' text fields are printable ASCII: this table maps every other byte to 0 (a
# table-only translate is a plain loop; one with bytes to delete builds a table per call).
_ZERO_UNLESS_PRINTABLE = bytes(b if 0x20 <= b < 0x7F else 0 for b in range(256))
_SLASH = ord("/")
_FIXED = struct.Struct(">QQH")  # expires_at, not_before, scope length
_FIXED_SIZE = _FIXED.size
# The fixed fields and the byte after them, the scope's first when it has one: one index less.
_unpack_fixed_and_first = struct.Struct(">QQHB").unpack_from
_LIMITS = struct.Struct(">IH")  # max_uses, max_streams
_unpack_limits = _LIMITS.unpack_from
_LIMITS_SIZE = _LIMITS.size
_SESSION = struct.Struct(">I")  # session seconds (version 2 only)
# The three optional fields' lengths then the limits: the rest of a body whose optional fields
# are all empty (up to a version 2 token's session allowance).
_PLAIN_TAIL = struct.Struct(">BBBIH")
_unpack_plain_tail = _PLAIN_TAIL.unpack_from
_PLAIN_TAIL_SIZE = _PLAIN_TAIL.size
assert _PLAIN_TAIL_SIZE == 3 + _LIMITS_SIZE
_U8_MAX = 255
_new_tuple = tuple.__new__
# IPv4-mapped IPv6 (::ffff:a.b.c.d): one spelling per network, so these are IPv4 or refused.
V4_MAPPED_NETWORK = ipaddress.IPv6Network("::ffff:0:0/96")


class Claims(NamedTuple):
    """What a token grants. Optional text claims are ``None`` when absent; limits are 0."""

    key_id: str
    expires_at: int
    not_before: int
    scope: str
    token_id: str
    session_id: str | None = None
    client_network: str | None = None
    user_id: str | None = None
    max_uses: int = 0
    max_streams: int = 0
    # A start token's session allowance: a manifest fetched with it in its start window opens a
    # playback session of up to this many seconds (0: no session, the URL plays only within
    # its own lifetime).
    session_seconds: int = 0


def _u8_field(value: bytes, name: str) -> bytes:
    if len(value) > _U8_MAX:
        raise ValueError(f"{name} is longer than {_U8_MAX} bytes")
    return bytes((len(value),)) + value


def _ascii(value: str, name: str) -> bytes:
    if not value.isascii() or not value.isprintable():
        raise ValueError(f"{name} must be printable ASCII")
    return value.encode("ascii")


@functools.lru_cache(maxsize=4096)  # a session's network, sealed again for every viewer there
def encode_network(cidr: str | None) -> bytes:
    """Prefix length then the network address: 5 bytes for IPv4, 17 for IPv6."""
    if cidr is None:
        return b""
    try:
        net = ipaddress.ip_network(cidr, strict=True)
    except ValueError as exc:
        raise ValueError(f"client network: {exc}") from None
    if isinstance(net, ipaddress.IPv6Network) and net.subnet_of(V4_MAPPED_NETWORK):
        raise ValueError("client network: write IPv4-mapped networks as IPv4")
    return bytes((net.prefixlen,)) + net.network_address.packed


# A session's network, opened again for every viewer there: a new token costs a dictionary
# lookup for it instead of inet_ntop and formatting. Refusals raise and are not kept.
@functools.lru_cache(maxsize=4096)
def decode_network(raw: bytes) -> str:
    """Inverse of ``encode_network``; refuses a prefix too long or host bits set."""
    family = {5: socket.AF_INET, 17: socket.AF_INET6}.get(len(raw))
    prefix, address = raw[0], raw[1:]
    bits = 8 * len(address)
    if family is None or prefix > bits:
        raise MalformedToken("bad client network")
    if int.from_bytes(address, "big") & ((1 << (bits - prefix)) - 1):
        raise MalformedToken("bad client network")
    if bits == 128 and prefix >= 96 and address.startswith(V4_MAPPED_PREFIX):
        raise MalformedToken("bad client network")
    return f"{socket.inet_ntop(family, address)}/{prefix}"


def claims_bytes(claims: Claims) -> bytes:
    """The unsigned body: every field in a fixed order, each variable field length-prefixed."""
    scope = _ascii(claims.scope, "scope")
    if not (scope.startswith(b"/") and scope.endswith(b"/")) or len(scope) > 0xFFFF:
        raise ValueError("scope must start and end with '/'")
    if not claims.token_id:
        raise ValueError("token id is required")
    if claims.session_id == "" or claims.user_id == "":
        raise ValueError("an absent session or user id is None, not an empty string")
    parts = [
        bytes((VERSION_SESSION if claims.session_seconds else VERSION,)),
        _u8_field(_ascii(claims.key_id, "key id"), "key id"),
        _FIXED.pack(claims.expires_at, claims.not_before, len(scope)),
        scope,
        _u8_field(_ascii(claims.token_id, "token id"), "token id"),
        _u8_field(_ascii(claims.session_id or "", "session id"), "session id"),
        _u8_field(encode_network(claims.client_network), "client network"),
        _u8_field(_ascii(claims.user_id or "", "user id"), "user id"),
        _LIMITS.pack(claims.max_uses, claims.max_streams),
    ]
    if claims.session_seconds:
        parts.append(_SESSION.pack(claims.session_seconds))
    return b"".join(parts)


def seal(claims: Claims, keyring: KeyRing) -> str:
    """Sign claims with the key they name and return the token string."""
    key = keyring.get(claims.key_id)
    if key is None:
        raise UnknownKey(f"key {claims.key_id!r} is not in the key ring")
    body = claims_bytes(claims)
    mac = key.mac(body)
    return base64.urlsafe_b64encode(body + mac).rstrip(b"=").decode("ascii")


def _decode_b64(token: str) -> bytes:
    # open_token inlines these lines (tests/unit/test_token.py holds the two to one behaviour).
    n = len(token)
    if n > MAX_TOKEN_CHARS:
        raise MalformedToken("token is longer than 2048 characters")
    tail = n & 3
    if token[-1:] not in _LAST_CHARS[tail]:  # a slice: "" (a CAT caller's) is refused too
        raise MalformedToken("token is not canonical base64url")
    try:
        return _a2b_base64(token.encode().translate(_TO_STD_B64) + _PADDING[tail], strict_mode=True)
    except (UnicodeEncodeError, binascii.Error):
        raise MalformedToken("token is not base64url") from None


def open_token(token: str | None, keyring: KeyRing) -> Claims:
    """Check size, encoding and MAC, then parse the claims. Raises PlaybackTokenError."""
    if not token:
        raise MissingToken("no playback token")
    # _decode_b64(token), inline (a call costs as much as a field): the same checks.
    n = len(token)
    if n > MAX_TOKEN_CHARS:
        raise MalformedToken("token is longer than 2048 characters")
    tail = n & 3
    if token[-1] not in _LAST_CHARS[tail]:
        raise MalformedToken("token is not canonical base64url")
    try:
        raw = _a2b_base64(token.encode().translate(_TO_STD_B64) + _PADDING[tail], strict_mode=True)
    except (UnicodeEncodeError, binascii.Error):
        raise MalformedToken("token is not base64url") from None
    if len(raw) < _SHORTEST:
        raise MalformedToken("not a version 1 or 2 token")
    version = raw[0]
    if version != VERSION and version != VERSION_SESSION:
        raise MalformedToken("not a version 1 or 2 token")
    pos = 2 + raw[1]
    body = raw[:_BEFORE_MAC]
    # Looked up by its bytes, length byte included: key ids are ASCII, so no other bytes name
    # a key, and an id cut short by the end of the body names none (keyring._by_raw_id).
    key = keyring.by_raw_id.get(body[1:pos])
    if key is None:
        if pos > len(body):
            raise MalformedToken("truncated token")
        _refuse_key_id(body[2:pos])
    # key.mac(body), inline: a method call costs as much as the rest of these lines.
    inner, outer = key.hmac_states
    inner = inner.copy()
    inner.update(body)
    outer = outer.copy()
    outer.update(inner.digest())
    if not _compare_digest(outer.digest(), raw[_BEFORE_MAC:]):
        raise BadSignature("signature mismatch")
    # Only authenticated bytes are parsed past this point. Inline, not a helper: this runs
    # for every new token, and a Python call costs as much as a field. Reading a length past
    # the end raises IndexError and unpacking past it struct.error; the end check below
    # catches the rest: no field is ever cut short.
    try:
        expires_at, not_before, end, first = _unpack_fixed_and_first(body, pos)
        pos += _FIXED_SIZE
        end += pos
        scope = body[pos:end]
        # The scope starts and ends in '/', which makes a prefix test segment-wise. An empty
        # scope fails on scope[-1] (IndexError), whatever byte ``first`` then read.
        if first != _SLASH or scope[-1] != _SLASH:
            raise MalformedToken("malformed claims")
        # Four u8-prefixed fields, unrolled.
        pos = end + 1
        end = pos + body[end]
        token_id = body[pos:end]
        # The optional three are usually empty: then their lengths (three zero bytes) and the
        # limits after them are one unpack, instead of three reads and one. Any body has room
        # for it (three lengths and the limits at least): a shorter one is refused here.
        session_len, network_len, user_len, max_uses, max_streams = _unpack_plain_tail(body, end)
        if session_len or network_len or user_len:  # one of them present: field by field
            # An empty one is None without a slice (a slice costs about as much as the three
            # lines of a field).
            pos = end + 1
            end = pos + session_len
            session_id = body[pos:end] if end != pos else None
            pos = end + 1
            end = pos + body[end]
            network = body[pos:end] if end != pos else None
            pos = end + 1
            end = pos + body[end]
            user_id = body[pos:end] if end != pos else None
            max_uses, max_streams = _unpack_limits(body, end)
            end += _LIMITS_SIZE
        else:
            session_id = network = user_id = None
            end += _PLAIN_TAIL_SIZE
        session_seconds = 0
        if version == VERSION_SESSION:
            (session_seconds,) = _SESSION.unpack_from(body, end)
            end += _SESSION.size
            if not session_seconds:  # "no session" has one spelling: version 1
                raise MalformedToken("malformed claims")
    except (IndexError, struct.error):
        raise MalformedToken("malformed claims") from None
    if end != len(body) or not token_id:
        raise MalformedToken("malformed claims")
    # The encoder's character set, enforced here too: one spelling, nothing a header or a log
    # line could be split with. All printable ASCII, so the plain (UTF-8) decodes below are
    # ASCII decodes.
    text = scope + token_id
    if session_id is not None:
        text += session_id
    if user_id is not None:
        text += user_id
    if 0 in text.translate(_ZERO_UNLESS_PRINTABLE):
        raise MalformedToken("malformed claims")
    # Claims(...) without its Python-level __new__: this runs for every new token.
    return _new_tuple(
        Claims,
        (
            key.key_id,
            expires_at,
            not_before,
            scope.decode(),
            token_id.decode(),
            None if session_id is None else session_id.decode(),
            None if network is None else decode_network(network),
            None if user_id is None else user_id.decode(),
            max_uses,
            max_streams,
            session_seconds,
        ),
    )


def _refuse_key_id(raw_id: bytes) -> NoReturn:
    """A key id no key answers to: malformed if it is not ASCII, else unknown."""
    try:
        raw_id.decode("ascii")
    except UnicodeDecodeError:
        raise MalformedToken("bad key id") from None
    raise UnknownKey("the token names an unknown key")
