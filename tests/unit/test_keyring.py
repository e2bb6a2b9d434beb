from __future__ import annotations

import json
import logging

import pytest

from edge_validator.core.errors import ConfigurationError, KeyTooShortError
from edge_validator.core.keyring import KeyRing, encode_secret, new_keyring_json
from edge_validator.core.token import open_token
from tests.support import factories

SECRET = b"s3cr3t-value-that-must-not-leak!!"


def test_key_under_32_bytes_refuses_to_load() -> None:
    with pytest.raises(KeyTooShortError):
        KeyRing({"k1": b"x" * 31}, "k1")


def test_secrets_never_appear_in_repr_or_errors(caplog: pytest.LogCaptureFixture) -> None:
    ring = KeyRing({"k1": SECRET}, "k1")
    caplog.set_level(logging.DEBUG)
    logging.getLogger("test").info("ring %r key %r", ring, ring.get("k1"))
    text = repr(ring) + repr(ring.get("k1")) + caplog.text
    assert SECRET.decode() not in text
    assert encode_secret(SECRET) not in text
    assert "k1" in text


def test_error_for_short_key_does_not_echo_it() -> None:
    doc = json.dumps({"active": "k1", "keys": {"k1": encode_secret(b"short-secret")}})
    with pytest.raises(KeyTooShortError) as info:
        KeyRing.from_json(doc)
    assert "short-secret" not in str(info.value)
    assert encode_secret(b"short-secret") not in str(info.value)


def test_signs_with_active_and_verifies_with_any_listed_key() -> None:
    old = KeyRing({"old": b"o" * 32}, "old")
    token = factories.token(old, now=0, ttl=10, key_id="old")
    rotated = KeyRing({"old": b"o" * 32, "new": b"n" * 32}, "new")
    assert rotated.active.key_id == "new"
    assert open_token(token, rotated).key_id == "old"


@pytest.mark.parametrize(
    "doc",
    [
        "not json",
        "[]",
        '{"keys": []}',
        '{"keys": {}}',
        '{"active": "k2", "keys": {"k1": "' + encode_secret(b"a" * 32) + '"}}',
        '{"active": 5, "keys": {"k1": "' + encode_secret(b"a" * 32) + '"}}',
        '{"keys": {"k1": 7}}',
        '{"keys": {"k1": "a+b/"}}',
        '{"keys": {"bad id!": "' + encode_secret(b"a" * 32) + '"}}',
    ],
)
def test_bad_key_ring_documents_are_configuration_errors(doc: str) -> None:
    with pytest.raises(ConfigurationError):
        KeyRing.from_json(doc)


def test_generated_key_ring_loads_with_32_byte_key() -> None:
    ring = KeyRing.from_json(new_keyring_json("main"))
    assert ring.key_ids == ["main"]
    assert ring.active.key_id == "main"


def test_verify_only_ring_cannot_sign() -> None:
    ring = KeyRing({"k1": b"a" * 32})
    with pytest.raises(ConfigurationError):
        _ = ring.active
