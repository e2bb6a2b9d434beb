"""When nginx may reuse an allow decision: never past expiry, never for counted tokens."""

from __future__ import annotations

import pytest
from edge_validator.decision import Grant
from edge_validator.decision_cache import cache_scope, decision_cache_seconds
from edge_validator.token import Claims

NOW = 1_000_000.0


def grant(path: str = "/videos/demo/hls/v0/seg_000.ts", **claims: object) -> Grant:
    base: dict[str, object] = {
        "key_id": "k1",
        "expires_at": int(NOW) + 600,
        "not_before": int(NOW),
        "scope": "/videos/demo/",
        "token_id": "tid",
    }
    return Grant(Claims(**{**base, **claims}), path)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("path", "scope"),
    [
        ("/videos/demo/master.m3u8", "/videos/demo/"),
        ("/videos/demo/hls/v0/seg.ts", "/videos/demo/"),
        ("/videos/demo/", None),
        ("/videos/demo", None),
        ("/master.m3u8", None),
    ],
)
def test_cache_scope_is_the_first_two_segments(path: str, scope: str | None) -> None:
    assert cache_scope(path) == scope


def test_bounded_by_the_setting_and_the_tokens_life() -> None:
    assert decision_cache_seconds(grant(), NOW, 30) == 30
    assert decision_cache_seconds(grant(expires_at=int(NOW) + 7), NOW, 30) == 7
    assert decision_cache_seconds(grant(expires_at=int(NOW) - 2), NOW, 30) == 0
    assert decision_cache_seconds(grant(), NOW, 0) == 0


@pytest.mark.parametrize("limits", [{"max_uses": 3}, {"max_streams": 1}])
def test_never_for_tokens_whose_uses_are_counted(limits: dict[str, int]) -> None:
    assert decision_cache_seconds(grant(**limits), NOW, 30) == 0


def test_never_when_the_token_covers_less_than_the_cache_scope() -> None:
    # nginx keys by /videos/demo/: a token for one rendition must not open the others.
    narrow = grant(scope="/videos/demo/hls/v0/")
    assert decision_cache_seconds(narrow, NOW, 30) == 0
    assert decision_cache_seconds(grant(scope="/videos/"), NOW, 30) == 30


def test_ip_bound_tokens_may_be_reused_because_nginx_keys_by_address() -> None:
    assert decision_cache_seconds(grant(client_network="10.0.0.0/8"), NOW, 30) == 30


def test_grant_cache_may_not_outlast_the_revocation_staleness_bound() -> None:
    from edge_validator.errors import ConfigurationError

    from edge_validator.settings import ValidatorSettings

    env = {
        "PLAYGATE_KEYRING": '{"keys": {"k1": "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE"}}',
        "PLAYGATE_GRANT_CACHE_SECONDS": "30",
        "PLAYGATE_STATE_MAX_STALENESS": "10",
    }
    with pytest.raises(ConfigurationError, match="PLAYGATE_GRANT_CACHE_SECONDS"):
        ValidatorSettings.from_env(env)
    assert ValidatorSettings.from_env({**env, "PLAYGATE_GRANT_CACHE_SECONDS": "10"})
