"""CATs meet the same state checks as PlayGate tokens, against a real redis-server: revocation
by token id (the cti), session, user and video through the signer's API, and one-time use
(catreplay prohibited) counted by the state guard."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from edge_validator.asgi.app import create_app as create_validator
from edge_validator.core.cat.claims import IAT, NBF
from edge_validator.core.cat.verify import CatVerifier
from edge_validator.core.decision import DEFAULT_LEEWAY
from edge_validator.core.keyring import KeyRing
from edge_validator.settings import ValidatorSettings
from edge_validator.state import StateSettings
from signer.api_keys import ApiKeys, hash_api_key
from signer.app import create_app as create_signer
from signer.issuing import CatIssuer
from signer.settings import SignerSettings
from tests.support import factories
from tests.support.factories import API_KEY, SAMPLES
from tests.support.servers import serve_app
from tests.support.state_helpers import Stack, wait_for_status

REASON = "x-playgate-reason"


@pytest.fixture
def live(keyring: KeyRing, redis_url: str, key_prefix: str) -> Iterator[Stack]:
    state = StateSettings(redis_url=redis_url, key_prefix=key_prefix)
    ring, policy = factories.cat_keyring(), factories.cat_policy()
    settings = ValidatorSettings(
        keyring=keyring, media_root=SAMPLES, state=state, cat=CatVerifier(ring, policy)
    )
    with serve_app(create_validator(settings)) as validator_url:
        signer = SignerSettings(
            keyring=keyring,
            api_keys=ApiKeys({"test": hash_api_key(API_KEY)}),
            public_url=validator_url,
            state=state,
            cat=CatIssuer(ring, policy),
        )
        with serve_app(create_signer(signer, contract_check=True)) as signer_url:
            yield Stack(signer_url, validator_url, keyring, state)


def issue_cat(live: Stack, **body: object) -> dict[str, str]:
    return live.issue(format="cat", **body)


@pytest.mark.parametrize(
    ("fields", "target"),
    [
        ({}, "token_id"),
        ({"session_id": "cat-s-1"}, "session_id"),
        ({"user_id": "cat-u-1"}, "user_id"),
        ({"video_id": "demo"}, "video_id"),
    ],
)
def test_a_cat_is_revoked_like_a_playgate_token(
    live: Stack, fields: dict[str, str], target: str
) -> None:
    doomed = issue_cat(live, **fields)
    assert httpx.get(doomed["url"], timeout=10).status_code == 200
    value = doomed["token_id"] if target == "token_id" else fields[target]
    assert live.revoke(**{target: value}).status_code == 201
    resp = wait_for_status(doomed["url"], 403)
    assert (resp.status_code, resp.headers[REASON]) == (403, "revoked")
    if target != "video_id":
        assert httpx.get(issue_cat(live)["url"], timeout=10).status_code == 200


def test_catreplay_prohibited_is_one_time_use(live: Stack) -> None:
    issued = issue_cat(live, file="hls/v0/seg_000.ts", max_uses=1)
    assert httpx.get(issued["url"], timeout=10).status_code == 200
    again = httpx.get(issued["url"], timeout=10)
    assert (again.status_code, again.headers[REASON]) == (403, "use_limit_reached")


def test_a_user_revoked_before_a_scheduled_cat_starts_is_refused_at_its_start(
    live: Stack,
) -> None:
    """A CAT minted ahead of its start (iat before, nbf a few seconds past the leeway: a
    scheduled event) was issued before a user revocation made in between: it never plays."""
    now = int(time.time())
    starts = now + DEFAULT_LEEWAY + 3
    token = factories.cat_token(now=now, user_id="cat-u-early", extra={IAT: now - 10, NBF: starts})
    url = f"{live.validator}/t/{token}/videos/demo/master.m3u8"
    early = httpx.get(url, timeout=10)
    assert (early.status_code, early.headers[REASON]) == (403, "not_yet_valid")
    # Stamped with the signer's margin (5 s back): still after the token's iat.
    assert live.revoke(user_id="cat-u-early").status_code == 201
    while time.time() < starts - DEFAULT_LEEWAY + 0.5:
        time.sleep(0.1)
    resp = httpx.get(url, timeout=10)
    assert (resp.status_code, resp.headers[REASON]) == (403, "revoked")
