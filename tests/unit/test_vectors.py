"""Both packages against the committed test vectors (tests/vectors/tokens.json)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from edge_validator.core.decision import Verifier, verify
from edge_validator.core.errors import PlaybackTokenError
from edge_validator.core.keyring import SESSION_CONTEXT, KeyRing
from edge_validator.core.paths import Target
from edge_validator.core.token import Claims, claims_bytes, open_token, seal
from signer.issuing import PlaybackRequest, issue
from tests.support.factories import TESTS

DOC = json.loads((TESTS / "vectors" / "tokens.json").read_text())
KEYRING = KeyRing.from_json(json.dumps(DOC["keyring"]))
VALID = DOC["valid"]
SESSIONS = DOC["sessions"]
INVALID = DOC["invalid"]
SESSION_KEYRING = KEYRING.with_context(SESSION_CONTEXT)


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
        session_seconds=c.session_seconds,
    )
    issued = issue(
        request, ring, c.not_before, public_url="https://cdn.example", token_id=c.token_id
    )
    assert issued.token == vector["token"]
    assert issued.url == f"https://cdn.example/t/{vector['token']}{c.scope}master.m3u8"


@pytest.mark.parametrize("vector", SESSIONS, ids=_ids(SESSIONS))
def test_session_vectors_open_under_the_session_context_only(vector: dict[str, Any]) -> None:
    claims = Claims(**vector["claims"])
    assert claims_bytes(claims).hex() == vector["body_hex"]
    assert seal(claims, SESSION_KEYRING) == vector["token"]
    assert open_token(vector["token"], SESSION_KEYRING) == claims
    with pytest.raises(PlaybackTokenError, match="signature"):
        open_token(vector["token"], KEYRING)


@pytest.mark.parametrize("vector", INVALID, ids=_ids(INVALID))
def test_validator_rejects_vector_with_reason(vector: dict[str, Any]) -> None:
    kind = vector.get("kind", "start")
    verifier = Verifier(KEYRING, max_ttl=3600, max_session=12 * 3600, memo_size=0)
    target = Target(vector["token"], vector["path"], "", False, kind == "session")
    if kind == "start":  # the one-call API, as before sessions
        with pytest.raises(PlaybackTokenError) as info:
            verify(vector["token"], vector["path"], vector["client_ip"], vector["now"], KEYRING)
        assert info.value.reason == vector["reason"]
    with pytest.raises(PlaybackTokenError) as info:
        verifier.judge(target, vector["client_ip"], vector["now"])
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
