"""Both packages against the committed test vectors (tests/vectors/tokens.json)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from edge_validator.core.decision import verify
from edge_validator.core.errors import PlaybackTokenError
from edge_validator.core.keyring import KeyRing
from edge_validator.core.token import Claims, claims_bytes, open_token, seal
from signer.issuing import PlaybackRequest, issue
from tests.support.factories import TESTS

DOC = json.loads((TESTS / "vectors" / "tokens.json").read_text())
KEYRING = KeyRing.from_json(json.dumps(DOC["keyring"]))
VALID = DOC["valid"]
INVALID = DOC["invalid"]


def _ids(vectors: list[dict[str, Any]]) -> list[str]:
    return [v["name"] for v in vectors]


@pytest.mark.parametrize("vector", VALID, ids=_ids(VALID))
def test_validator_opens_vector(vector: dict[str, Any]) -> None:
    assert open_token(vector["token"], KEYRING) == Claims(**vector["claims"])


@pytest.mark.parametrize("vector", VALID, ids=_ids(VALID))
def test_encoder_reproduces_vector_bytes(vector: dict[str, Any]) -> None:
    claims = Claims(**vector["claims"])
    assert claims_bytes(claims).hex() == vector["body_hex"]
    assert seal(claims, KEYRING) == vector["token"]


@pytest.mark.parametrize("vector", VALID, ids=_ids(VALID))
def test_signer_issues_vector_token(vector: dict[str, Any]) -> None:
    c = Claims(**vector["claims"])
    if c.not_before != c.expires_at - (c.expires_at - c.not_before):  # pragma: no cover
        pytest.fail("vector is inconsistent")
    ring = KeyRing.from_json(json.dumps({**DOC["keyring"], "active": c.key_id}))
    request = PlaybackRequest(
        video_id=c.scope.removeprefix("/videos/").rstrip("/"),
        ttl_seconds=c.expires_at - c.not_before,
        client_network=c.client_network,
        session_id=c.session_id,
        user_id=c.user_id,
        max_uses=c.max_uses,
        max_streams=c.max_streams,
    )
    issued = issue(
        request, ring, c.not_before, public_url="https://cdn.example", token_id=c.token_id
    )
    assert issued.token == vector["token"]
    assert issued.url == f"https://cdn.example/t/{vector['token']}{c.scope}master.m3u8"


@pytest.mark.parametrize("vector", INVALID, ids=_ids(INVALID))
def test_validator_rejects_vector_with_reason(vector: dict[str, Any]) -> None:
    with pytest.raises(PlaybackTokenError) as info:
        verify(vector["token"], vector["path"], vector["client_ip"], vector["now"], KEYRING)
    assert info.value.reason == vector["reason"]


def test_vectors_cover_every_reason_of_the_pure_check() -> None:
    reasons = {v["reason"] for v in INVALID}
    assert reasons >= {
        "missing",
        "malformed",
        "bad_signature",
        "unknown_key",
        "expired",
        "not_yet_valid",
        "out_of_scope",
        "ip_mismatch",
    }
