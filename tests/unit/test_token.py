"""The token codec: round trips, injectivity, canonical encoding, tamper resistance."""

from __future__ import annotations

import base64
import hmac
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_validator.core.decision import verify
from edge_validator.core.errors import MalformedToken, PlaybackTokenError, UnknownKey
from edge_validator.core.keyring import TOKEN_CONTEXT, KeyRing, derive_mac_key
from edge_validator.core.paths import Target
from edge_validator.core.token import (
    MAX_TOKEN_CHARS,
    Claims,
    _decode_b64,
    claims_bytes,
    open_token,
    seal,
)
from tests.support import factories

RING = KeyRing({"k1": b"A" * 32, "k2": b"B" * 32}, "k1")
T0 = 1_800_000_000
BASE = Claims("k1", T0 + 300, T0, "/videos/demo/", "tid-1", "sess", "10.0.0.0/8", "u1", 0, 0)
TOKEN = seal(BASE, RING)
PATH = "/videos/demo/hls/v0/seg_000.ts"

text = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=40)
optional_text = st.none() | text
networks = st.sampled_from([None, "10.0.0.0/8", "192.0.2.1/32", "2001:db8::/32", "::/0"])
claims_strategy = st.builds(
    Claims,
    key_id=st.sampled_from(["k1", "k2"]),
    expires_at=st.integers(0, 2**64 - 1),
    not_before=st.integers(0, 2**64 - 1),
    scope=st.from_regex(r"/[a-z0-9/]{0,30}/", fullmatch=True),
    token_id=text,
    session_id=optional_text,
    client_network=networks,
    user_id=optional_text,
    max_uses=st.integers(0, 2**32 - 1),
    max_streams=st.integers(0, 2**16 - 1),
    session_seconds=st.integers(0, 2**32 - 1),
)


@given(claims_strategy)
def test_round_trip(claims: Claims) -> None:
    assert open_token(seal(claims, RING), RING) == claims


@given(claims_strategy, claims_strategy)
def test_different_claims_never_share_signed_bytes(a: Claims, b: Claims) -> None:
    if a != b:
        assert claims_bytes(a) != claims_bytes(b)


@settings(max_examples=500)
@given(st.data())
def test_every_single_character_change_is_rejected(data: st.DataObject) -> None:
    index = data.draw(st.integers(0, len(TOKEN) - 1))
    replacement = data.draw(st.characters(codec="utf-8").filter(lambda c: c != TOKEN[index]))
    tampered = TOKEN[:index] + replacement + TOKEN[index + 1 :]
    with pytest.raises(PlaybackTokenError):
        verify(tampered, PATH, "10.1.2.3", T0 + 1, RING)


@given(st.integers(0, len(TOKEN) - 1), st.sampled_from(["insert", "delete"]))
def test_inserting_or_deleting_a_character_is_rejected(index: int, op: str) -> None:
    tampered = (
        TOKEN[:index] + "A" + TOKEN[index:]
        if op == "insert"
        else TOKEN[:index] + TOKEN[index + 1 :]
    )
    with pytest.raises(PlaybackTokenError):
        verify(tampered, PATH, "10.1.2.3", T0 + 1, RING)


def test_mac_is_standard_hmac_sha256_over_context_and_body() -> None:
    key = RING.get("k1")
    assert key is not None
    body = claims_bytes(BASE)
    expected = hmac.digest(derive_mac_key(b"A" * 32), TOKEN_CONTEXT + body, "sha256")
    assert key.mac(body) == expected


def test_size_cap_is_checked_before_decoding() -> None:
    with pytest.raises(MalformedToken, match="2048"):
        open_token("!" * (MAX_TOKEN_CHARS + 1), RING)


def test_key_from_another_ring_is_unknown() -> None:
    other = KeyRing({"k9": b"C" * 32}, "k9")
    with pytest.raises(UnknownKey):
        open_token(seal(BASE._replace(key_id="k9"), other), RING)


def test_token_signed_for_another_purpose_does_not_verify() -> None:
    # Same secret, other context: the purpose separation must make the MAC differ.
    other_purpose = KeyRing({"k1": b"A" * 32}, "k1", context=b"some other use\x00")
    with pytest.raises(PlaybackTokenError) as info:
        open_token(seal(BASE, other_purpose), RING)
    assert info.value.reason == "bad_signature"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("scope", "/videos/demo"),
        ("scope", "videos/demo/"),
        ("token_id", ""),
        ("session_id", ""),
        ("user_id", "é"),
        ("client_network", "10.0.0.1/8"),
        ("client_network", "not-an-ip"),
        ("key_id", "k1" * 200),
    ],
)
def test_encoder_refuses_ambiguous_claims(field: str, value: str) -> None:
    with pytest.raises((ValueError, PlaybackTokenError)):
        claims_bytes(BASE._replace(**{field: value}))


def test_remembered_token_is_still_judged_on_every_request() -> None:
    ring = KeyRing({"k1": b"A" * 32}, "k1")
    verifier = factories.verifier(ring)
    tok = seal(BASE._replace(client_network=None), ring)
    first = verifier.open(tok)
    assert verifier.judge(Target(tok, PATH, "", False), None, T0 + 1).token_id == "tid-1"
    assert verifier.open(tok) is first
    for now, path, reason in [
        (T0 + 400, PATH, "expired"),
        (T0 - 100, PATH, "not_yet_valid"),
        (T0 + 1, "/videos/other/a.ts", "out_of_scope"),
        (T0 + 1, "/videos/demo/../other/a.ts", "bad_path"),
    ]:
        with pytest.raises(PlaybackTokenError) as info:
            verifier.judge(Target(tok, path, "", False), None, now)
        assert info.value.reason == reason


def test_memory_is_per_verifier_and_bounded() -> None:
    ring = KeyRing({"k1": b"A" * 32}, "k1")
    verifier = factories.verifier(ring, memo_size=3)
    tokens = [seal(BASE._replace(token_id=f"t{i}"), ring) for i in range(5)]
    for tok in tokens:
        verifier.open(tok)
    assert list(verifier._memo) == tokens[2:]  # the oldest went first
    rotated = factories.verifier(KeyRing({"k2": b"B" * 32}, "k2"))
    with pytest.raises(UnknownKey):
        rotated.open(tokens[-1])


def test_a_full_memo_drops_its_oldest_eighth() -> None:
    ring = KeyRing({"k1": b"A" * 32}, "k1")
    verifier = factories.verifier(ring, memo_size=16)
    tokens = [seal(BASE._replace(token_id=f"t{i}"), ring) for i in range(40)]
    for count, tok in enumerate(tokens, 1):
        verifier.open(tok)
        assert len(verifier._memo) <= 16
        # Whatever was dropped was older than everything kept, and the newest is always kept.
        kept = list(verifier._memo)
        assert kept == tokens[count - len(kept) : count]
        # Full at the 16th; from the 17th on, two dropped every other token: 15, 16, 15, ...
        assert len(kept) == (count if count <= 16 else 16 - count % 2)


def test_rejected_tokens_are_never_remembered() -> None:
    ring = KeyRing({"k1": b"A" * 32}, "k1")
    verifier = factories.verifier(ring)
    tampered = TOKEN[:-2] + ("AA" if TOKEN[-2:] != "AA" else "BA")
    for _ in range(2):
        with pytest.raises(PlaybackTokenError):
            verifier.open(tampered)


def _signed_body(body: bytes) -> str:
    key = RING.get("k1")
    assert key is not None
    return base64.urlsafe_b64encode(body + key.mac(body)).rstrip(b"=").decode()


def test_ipv4_mapped_networks_have_no_token_spelling() -> None:
    with pytest.raises(ValueError, match="IPv4-mapped"):
        claims_bytes(BASE._replace(client_network="::ffff:203.0.113.7/128"))
    # Signed anyway (a buggy or foreign signer): the validator refuses it, never crashes.
    good = claims_bytes(BASE._replace(client_network="2001:db8::/32"))
    mapped = bytes([96 + 32]) + bytes(10) + b"\xff\xff" + bytes([203, 0, 113, 7])
    crafted = good.replace(
        bytes([17, 32]) + bytes.fromhex("20010db8") + bytes(12), bytes([17]) + mapped
    )
    assert crafted != good
    with pytest.raises(MalformedToken):
        open_token(_signed_body(crafted), RING)


def test_control_characters_in_signed_claims_are_malformed() -> None:
    good = claims_bytes(BASE._replace(session_id="ab"))
    crafted = good.replace(b"\x02ab", b"\x02a\n")
    assert crafted != good
    with pytest.raises(MalformedToken):
        open_token(_signed_body(crafted), RING)


@pytest.mark.parametrize(
    "body",
    [
        bytes((1, 5)) + b"k1",  # a key id longer than the body, which ends in "k1"
        bytes((1, 2)) + b"k",  # one byte short of "k1"
        bytes((1, 3)) + b"k1",
    ],
)
def test_key_id_cut_short_by_the_end_of_a_signed_body_is_malformed(body: bytes) -> None:
    # Signed with k1, so only the parse can refuse it: no prefix of a key id names that key.
    with pytest.raises(MalformedToken):
        open_token(_signed_body(body), RING)


@pytest.mark.parametrize(
    "claims",
    [
        BASE,
        BASE._replace(session_id=None, client_network=None, user_id=None),  # one unpack
        BASE._replace(session_id=None, client_network=None, user_id=None, session_seconds=60),
        BASE._replace(client_network=None, user_id=None),
        BASE._replace(session_id=None, client_network=None),
    ],
)
def test_every_cut_or_extension_of_a_signed_body_is_malformed(claims: Claims) -> None:
    # Signed, so only the parse can refuse them, with or without the optional claims (read with
    # one unpack when all three are empty, field by field otherwise).
    body = claims_bytes(claims)
    assert open_token(_signed_body(body), RING) == claims
    for end in range(2 + len("k1"), len(body)):
        with pytest.raises(MalformedToken, match="malformed claims"):
            open_token(_signed_body(body[:end]), RING)
    for extra in (b"\x00", b"\x00" * 4, b"/"):
        with pytest.raises(MalformedToken, match="malformed claims"):
            open_token(_signed_body(body + extra), RING)


@pytest.mark.parametrize("field", ["session_id", "user_id", "client_network"])
def test_optional_claims_round_trip_one_at_a_time(field: str) -> None:
    value = "203.0.113.0/24" if field == "client_network" else "x" * 255
    absent: dict[str, str | None] = {"session_id": None, "client_network": None, "user_id": None}
    claims = BASE._replace(**{**absent, field: value})
    assert open_token(seal(claims, RING), RING) == claims


def test_memo_size_is_a_validator_setting() -> None:
    from edge_validator.core.errors import ConfigurationError
    from edge_validator.settings import ValidatorSettings

    env = {"PLAYGATE_KEYRING": '{"keys": {"k1": "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE"}}'}
    assert ValidatorSettings.from_env(env).verifier().memo_size == 100_000
    sized = ValidatorSettings.from_env({**env, "PLAYGATE_MEMO_SIZE": "250000"})
    assert sized.verifier().memo_size == 250_000
    with pytest.raises(ConfigurationError, match="PLAYGATE_MEMO_SIZE"):
        ValidatorSettings.from_env({**env, "PLAYGATE_MEMO_SIZE": "-1"})


_B64_TEXT = st.text(
    st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_+/=.~ é"),
    min_size=1,
    max_size=80,
)


def _refusal(check: Callable[[], object]) -> str:
    """Why ``check`` refuses its token ("" when it does not)."""
    try:
        check()
    except PlaybackTokenError as exc:
        return str(exc)
    return ""


_DECODER_REASONS = ("token is longer than 2048 characters", "token is not canonical base64url")


@settings(max_examples=500)
@given(st.one_of(_B64_TEXT, st.builds(lambda t, s: t + s, st.just(TOKEN[:-3]), _B64_TEXT)))
def test_open_token_decodes_exactly_as_the_shared_base64url_decoder(text: str) -> None:
    # open_token carries its own copy of _decode_b64 (a call per token is measurable): the
    # copy must refuse the same texts, with the same reason, and only those.
    decoder = _refusal(lambda: _decode_b64(text))
    opened = _refusal(lambda: open_token(text, RING))
    if decoder:
        assert opened == decoder
    else:
        assert opened not in (*_DECODER_REASONS, "token is not base64url")


def test_an_empty_text_is_malformed_to_the_shared_decoder_not_an_index_error() -> None:
    # _decode_b64 is also the CAT paths' decoder (cat/verify.py CatVerifier.open, renewal):
    # the last-character check read token[-1], an IndexError (a 500) for "".
    with pytest.raises(MalformedToken):
        _decode_b64("")
