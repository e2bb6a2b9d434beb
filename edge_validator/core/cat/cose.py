"""COSE_Mac0 and COSE_Sign1 (RFC 9052) around a CWT (RFC 8392): open and seal.

``open_cose`` checks, cheapest first: the outer structure (strict CBOR, a few items), the key id
(unknown: refused before any MAC), the algorithm (must equal the one pinned for that key id),
the MAC or signature, and only then hands back the payload bytes for the claims to be decoded.
Standard library only (ES256 through the key's own verifier, see keys.py).
"""

from __future__ import annotations

from typing import NamedTuple

from ..errors import BadSignature, MalformedToken, UnknownKey
from . import cbor
from .keys import CatKey, CatKeyRing

CWT_TAG, MAC0_TAG, SIGN1_TAG = 61, 17, 18
HEADER_ALG, HEADER_CRIT, HEADER_KID = 1, 2, 4
_OUTER_TAGS = frozenset({CWT_TAG, MAC0_TAG, SIGN1_TAG})
_HEADER_LABELS = frozenset({HEADER_ALG, HEADER_KID})


class Opened(NamedTuple):
    """An authentic COSE message: the key that vouched for it and the payload bytes."""

    key: CatKey
    payload: bytes


def _header(raw: bytes) -> dict[cbor.Key, cbor.Value]:
    # An empty protected header is a zero-length byte string, never an encoded empty map.
    if raw == b"":
        return {}
    header = cbor.decode(raw, max_depth=2, max_items=16)
    if not isinstance(header, dict) or not header:
        raise MalformedToken("COSE protected header is not a non-empty map")
    return header


def _structure(raw: bytes) -> tuple[int | None, list[cbor.Value]]:
    value = cbor.decode(raw, tags=_OUTER_TAGS, max_depth=4, max_items=32)
    tag: int | None = None
    if isinstance(value, cbor.Tag) and value.tag == CWT_TAG:
        value = value.value
    if isinstance(value, cbor.Tag) and value.tag in (MAC0_TAG, SIGN1_TAG):
        tag, value = value.tag, value.value
    if not isinstance(value, list) or len(value) != 4:
        raise MalformedToken("not a COSE_Mac0 or COSE_Sign1 message")
    return tag, value


# MAC_structure / Sig_structure (RFC 9052 sections 4.4 and 6.3) up to the protected header:
# a 4-array, the context string; after it, the protected header, empty external_aad, payload.
_MAC0_PREFIX = b"\x84" + cbor.encode("MAC0")
_SIGN1_PREFIX = b"\x84" + cbor.encode("Signature1")
_NO_AAD = cbor.encode(b"")


def to_be_signed(key: CatKey, protected: bytes, payload: bytes) -> bytes:
    """The bytes a COSE_Mac0 tag or COSE_Sign1 signature covers (built without an encoder)."""
    return b"".join(
        (
            _MAC0_PREFIX if key.is_mac else _SIGN1_PREFIX,
            cbor.bstr_head(len(protected)),
            protected,
            _NO_AAD,
            cbor.bstr_head(len(payload)),
            payload,
        )
    )


def open_cose(raw: bytes, keyring: CatKeyRing) -> Opened:
    """The key and payload of an authentic message; raises PlaybackTokenError otherwise."""
    tag, (protected_raw, unprotected, payload, mac) = _structure(raw)
    if not (
        isinstance(protected_raw, bytes)
        and isinstance(unprotected, dict)
        and isinstance(payload, bytes)
        and isinstance(mac, bytes)
    ):
        raise MalformedToken("COSE message fields have the wrong types")
    protected = _header(protected_raw)
    for header in (protected, unprotected):
        # crit (or anything else) in a header: refused, never ignored.
        if not _HEADER_LABELS.issuperset(header):
            raise MalformedToken("COSE header parameter not understood")
    if HEADER_ALG not in protected or HEADER_ALG in unprotected:
        raise MalformedToken("COSE algorithm must be in the protected header")
    kid = protected.get(HEADER_KID, unprotected.get(HEADER_KID))
    if not isinstance(kid, bytes) or (HEADER_KID in protected and HEADER_KID in unprotected):
        raise MalformedToken("COSE kid must be one byte string")
    key = keyring.get(kid)
    if key is None:
        raise UnknownKey("the token names an unknown CAT key")
    # Pinned: the header's algorithm is compared, never obeyed.
    if protected[HEADER_ALG] != key.alg or tag not in (None, MAC0_TAG if key.is_mac else SIGN1_TAG):
        raise BadSignature("the token's algorithm is not the one pinned for its key")
    if not key.verify(to_be_signed(key, protected_raw, payload), mac):
        raise BadSignature("signature mismatch")
    return Opened(key, payload)


def seal_cose(payload: bytes, key: CatKey, *, cwt_tag: bool = False) -> bytes:
    """A tagged COSE_Mac0 (HMAC keys) or COSE_Sign1 (ES256) with the kid unprotected."""
    protected = cbor.encode({HEADER_ALG: key.alg})
    mac = key.sign(to_be_signed(key, protected, payload))
    message = cbor.Tag(
        MAC0_TAG if key.is_mac else SIGN1_TAG, [protected, {HEADER_KID: key.kid}, payload, mac]
    )
    return cbor.encode(cbor.Tag(CWT_TAG, message) if cwt_tag else message)
