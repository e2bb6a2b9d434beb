"""CTA-5007 Common Access Token: the strict CBOR codec, COSE with pinned algorithms, RFC 8392
Appendix A vectors, and the attacks a token codec must refuse before doing any real work."""

from __future__ import annotations

import base64
import contextlib
import json
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_validator.cat_es256 import load_es256
from edge_validator.core.cat import cbor, cose
from edge_validator.core.cat.claims import CatPolicy, parse_claims
from edge_validator.core.cat.keys import ES256, HS256, HS256_64, CatKey, CatKeyRing
from edge_validator.core.errors import (
    BadSignature,
    ConfigurationError,
    KeyTooShortError,
    MalformedToken,
    PlaybackTokenError,
    UnknownKey,
)
from tests.support import factories
from tests.support.factories import TESTS

VECTORS = json.loads((TESTS / "vectors" / "rfc8392.json").read_text())


def b64(hex_text: str) -> str:
    return base64.urlsafe_b64encode(bytes.fromhex(hex_text)).rstrip(b"=").decode()


def rfc_mac_ring() -> CatKeyRing:
    key = VECTORS["symmetric256"]
    return CatKeyRing([CatKey(key["kid"], HS256_64, secret=bytes.fromhex(key["k"]))])


def rfc_ecdsa_ring() -> CatKeyRing:
    key = VECTORS["ecdsa256"]
    spec = {"alg": "ES256", "x": b64(key["x"]), "y": b64(key["y"])}
    return CatKeyRing([CatKey(key["kid"], ES256, public=load_es256(key["kid"], spec))])


# --- RFC 8392 Appendix A ---------------------------------------------------------------------


def test_rfc8392_a4_maced_cwt_verifies() -> None:
    opened = cose.open_cose(bytes.fromhex(VECTORS["maced_a4"]), rfc_mac_ring())
    assert opened.payload.hex() == VECTORS["claims_a1"]
    claims = cbor.decode(opened.payload)
    assert claims == {
        1: "coap://as.example.com",
        2: "erikw",
        3: "coap://light.example.com",
        4: 1444064944,
        5: 1443944944,
        6: 1443944944,
        7: b"\x0bq",
    }


def test_rfc8392_a3_signed_cwt_verifies_with_the_public_key_only() -> None:
    opened = cose.open_cose(bytes.fromhex(VECTORS["signed_a3"]), rfc_ecdsa_ring())
    assert opened.payload.hex() == VECTORS["claims_a1"]


def test_rfc8392_a7_float_date_mac_verifies_but_the_claims_are_refused() -> None:
    """PlayGate's dates are integers; a float iat is authentic but not accepted as a CAT."""
    opened = cose.open_cose(bytes.fromhex(VECTORS["maced_float_a7"]), rfc_mac_ring())
    assert cbor.decode(opened.payload) == {6: 1443944944.5}
    with pytest.raises(MalformedToken):
        parse_claims(opened.payload, "Symmetric256", CatPolicy())


def test_the_a1_claims_set_reencodes_byte_for_byte() -> None:
    raw = bytes.fromhex(VECTORS["claims_a1"])
    assert cbor.encode(cbor.decode(raw)) == raw


def test_a_tampered_vector_is_refused() -> None:
    raw = bytearray.fromhex(VECTORS["maced_a4"])
    raw[-1] ^= 1
    with pytest.raises(BadSignature):
        cose.open_cose(bytes(raw), rfc_mac_ring())


# --- the algorithm is pinned per key id --------------------------------------------------------


def test_the_header_algorithm_never_chooses_the_verification() -> None:
    """The RFC A.4 token says HMAC 256/64; pinned to HS256 the same key refuses it."""
    key = VECTORS["symmetric256"]
    ring = CatKeyRing([CatKey(key["kid"], HS256, secret=bytes.fromhex(key["k"]))])
    with pytest.raises(BadSignature, match="pinned"):
        cose.open_cose(bytes.fromhex(VECTORS["maced_a4"]), ring)


def test_an_es256_public_key_is_never_used_as_an_hmac_secret() -> None:
    """The classic confusion: MAC a token with the public key's bytes and name HS256."""
    ecdsa = VECTORS["ecdsa256"]
    public_bytes = bytes.fromhex(ecdsa["x"] + ecdsa["y"])
    forged_key = CatKey(ecdsa["kid"], HS256, secret=public_bytes)
    raw = cose.seal_cose(bytes.fromhex(VECTORS["claims_a1"]), forged_key)
    with pytest.raises(BadSignature):
        cose.open_cose(raw, rfc_ecdsa_ring())


def test_a_mac0_tag_on_a_signature_key_is_refused() -> None:
    raw = bytes.fromhex(VECTORS["signed_a3"])
    retagged = b"\xd1" + raw[1:]  # tag 18 (Sign1) -> 17 (Mac0)
    with pytest.raises(BadSignature):
        cose.open_cose(retagged, rfc_ecdsa_ring())


def test_an_unknown_kid_is_refused_before_any_mac() -> None:
    key = CatKey("other", HS256, secret=b"k" * 32)
    raw = cose.seal_cose(b"\xa0", key)
    with pytest.raises(UnknownKey):
        cose.open_cose(raw, rfc_mac_ring())


def test_crit_in_a_header_is_refused() -> None:
    key = factories.cat_keyring().signing_key()
    protected = cbor.encode({1: HS256, 2: [99]})
    payload = b"\xa0"
    mac = key.sign(cbor.encode(["MAC0", protected, b"", payload]))
    raw = cbor.encode(cbor.Tag(17, [protected, {4: b"c1"}, payload, mac]))
    with pytest.raises(MalformedToken, match="header parameter"):
        cose.open_cose(raw, factories.cat_keyring())


def test_key_ring_loading_pins_algorithms_and_refuses_short_or_unknown_keys() -> None:
    secret = base64.urlsafe_b64encode(b"s" * 32).rstrip(b"=").decode()
    ring = CatKeyRing.from_json(
        json.dumps({"active": "a", "keys": {"a": {"alg": "HS256", "k": secret}}})
    )
    assert ring.signing_key().alg == HS256
    assert "sss" not in repr(ring.signing_key())
    with pytest.raises(KeyTooShortError):
        CatKeyRing.from_json(json.dumps({"keys": {"a": {"alg": "HS256", "k": "c2hvcnQ"}}}))
    with pytest.raises(ConfigurationError, match="alg"):
        CatKeyRing.from_json(json.dumps({"keys": {"a": {"alg": "none", "k": secret}}}))


def test_without_cryptography_an_es256_key_refuses_to_load_with_a_clear_message() -> None:
    """What the Lambda@Edge bundle sees: no ES256 factory."""
    with pytest.raises(ConfigurationError, match="HS256 only"):
        CatKeyRing.from_json(json.dumps({"keys": {"e1": factories.CAT_ES256}}), es256=None)


# --- strict CBOR -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("hex_text", "why"),
    [
        ("1817", "integer not in its shortest form"),
        ("190017", "integer not in its shortest form"),
        ("9f01ff", "indefinite length"),
        ("5f4101ff", "indefinite length"),
        ("bf0101ff", "indefinite length"),
        ("a201010102", "duplicate"),
        ("c11a5612aeb0", "tag 1 is not allowed"),
        ("62c328", "not UTF-8"),
        ("f7", "simple value"),
        ("f97e00", "float"),
        ("fa3fc00000", "float"),  # 1.5 fits a half float
        ("0101", "trailing"),
        ("5a7fffffff", "truncated"),
        ("9b7fffffffffffffff", "container longer"),
        ("bb7fffffffffffffff", "container longer"),
        ("a1f601", "map key"),
    ],
)
def test_malformed_cbor_is_refused(hex_text: str, why: str) -> None:
    with pytest.raises(MalformedToken, match=why):
        cbor.decode(bytes.fromhex(hex_text))


def test_deep_nesting_is_refused() -> None:
    with pytest.raises(MalformedToken, match="deeply"):
        cbor.decode(b"\x81" * 9 + b"\x00")
    assert cbor.decode(b"\x81" * 8 + b"\x00") == [[[[[[[[0]]]]]]]]


def test_a_huge_map_is_refused_by_the_item_count() -> None:
    huge = {i: i for i in range(200)}
    with pytest.raises(MalformedToken, match="too many"):
        cbor.decode(cbor.encode(huge))


def test_encoding_is_deterministic() -> None:
    # RFC 8949 section 4.2.1: keys sorted by their encoded bytes (01, 0a, 20, 6161).
    assert cbor.encode({10: 1, 1: 2, -1: 3, "a": 4}) == bytes.fromhex("a401020a012003616104")
    assert cbor.encode(1.5) == bytes.fromhex("f93e00")


@given(
    st.recursive(
        st.none()
        | st.booleans()
        | st.integers(-(2**64), 2**64 - 1)
        | st.binary(max_size=20)
        | st.text(max_size=20),
        lambda inner: (
            st.lists(inner, max_size=4)
            | st.dictionaries(st.integers(-50, 50) | st.text(max_size=4), inner, max_size=4)
        ),
        max_leaves=20,
    )
)
@settings(max_examples=200, deadline=None)
def test_decode_inverts_encode(value: cbor.Value) -> None:
    assert cbor.decode(cbor.encode(value), max_depth=64) == value


# --- the whole token ---------------------------------------------------------------------------


def test_every_single_byte_change_to_a_cat_is_refused() -> None:
    """Exhaustive over positions, one flipped bit and two replacement bytes each."""
    now = time.time()
    verifier = factories.cat_verifier()
    token = factories.cat_token(now=now)
    raw = base64.urlsafe_b64decode(token + "==")
    assert verifier.verify_target(factories.target(token), None, now)
    for position in range(len(raw)):
        for change in (lambda b: b ^ 1, lambda b: (b + 0x80) & 0xFF, lambda _b: 0):
            mutated = bytearray(raw)
            mutated[position] = change(raw[position])
            if bytes(mutated) == raw:
                continue
            forged = base64.urlsafe_b64encode(bytes(mutated)).rstrip(b"=").decode()
            with pytest.raises(PlaybackTokenError):
                factories.cat_verifier().verify_target(factories.target(forged), None, now)


@given(position=st.integers(min_value=0), replacement=st.integers(0, 255))
@settings(max_examples=300, deadline=None)
def test_property_any_byte_changed_is_refused(position: int, replacement: int) -> None:
    now = 1_800_000_000
    token = factories.cat_token("e1", now=now, client_network="10.0.0.0/8", max_uses=1)
    raw = bytearray(base64.urlsafe_b64decode(token + "=="))
    position %= len(raw)
    if raw[position] == replacement:
        return
    raw[position] = replacement
    forged = base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()
    with pytest.raises(PlaybackTokenError):
        factories.cat_verifier().verify_target(factories.target(forged), "10.0.0.1", now)


def test_an_oversized_token_is_refused_before_decoding() -> None:
    with pytest.raises(MalformedToken, match="longer than"):
        factories.cat_verifier().open("0" * 4000)


_LABELS = st.sampled_from([1, 2, 3, 4, 5, 6, 7, 45, 308, 310, 311, 312, 313, 323, -70001, -70002])
_LEAF = (
    st.none()
    | st.booleans()
    | st.integers(-(2**64), 2**64 - 1)
    | st.binary(max_size=20)
    | st.text(max_size=12)
    | st.builds(cbor.Tag, st.sampled_from([52, 54]), st.binary(max_size=17))
)
_VALUE = st.recursive(
    _LEAF,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.integers(-3, 9) | st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=8,
)


@given(st.dictionaries(_LABELS, _VALUE, max_size=8))
@settings(max_examples=300, deadline=None)
def test_property_authentic_odd_claims_are_judged_never_crash(extra: dict[int, cbor.Value]) -> None:
    """Claims only a key holder could write still give a reason, never another exception."""
    token = factories.cat_token(now=1_800_000_000, extra=extra)
    with contextlib.suppress(PlaybackTokenError):
        factories.cat_verifier().verify_target(factories.target(token), "10.0.0.1", 1_800_000_000)


class CountingKey(CatKey):
    """A key that counts how often a MAC is checked (the expensive step)."""

    checks = 0

    def verify(self, message: bytes, tag: bytes) -> bool:
        CountingKey.checks += 1
        return super().verify(message, tag)


@pytest.mark.parametrize(
    "raw",
    [
        b"\xd1" + b"\x81" * 40 + b"\x00",  # deep nesting
        b"\xd1\x84\x43\xa1\x01\x05\xbb" + b"\xff" * 8,  # a map claiming 2^64 entries
        b"\xd1\x84\x43\xa1\x01\x05" + cbor.encode({i: i for i in range(40)}) + b"\x40\x40",
        b"\xd9\x01\x04\x84\x43\xa1\x01\x05\xa0\x40\x40",  # tag 260 outside
        b"\xd1\x9f\x43\xa1\x01\x05\xa0\x40\x40\xff",  # indefinite-length array
        b"\xd1\x84\x43\xa1\x01\x05\xa1\x04\x42c1\x5a\xff\xff\xff\xff",  # payload longer than all
    ],
)
def test_malformed_structures_are_refused_before_any_mac(raw: bytes) -> None:
    ring = CatKeyRing([CountingKey("c1", HS256, secret=factories.CAT_SECRET)])
    CountingKey.checks = 0
    with pytest.raises(MalformedToken):
        cose.open_cose(raw, ring)
    assert CountingKey.checks == 0
