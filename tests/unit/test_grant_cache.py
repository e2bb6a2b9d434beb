"""When nginx's grant cache may keep an allow: never past expiry, never for counted tokens."""

from __future__ import annotations

import pytest

from edge_validator.core.decision import Grant
from edge_validator.core.grant_cache import grant_cache_seconds, grant_scope
from tests.support import factories

NOW = 1_000_000.0


def grant(path: str = "/videos/demo/hls/v0/seg_000.ts", **claims: object) -> Grant:
    return factories.grant(path, now=NOW, ttl=600, **claims)


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
def test_grant_scope_is_the_first_two_segments(path: str, scope: str | None) -> None:
    assert grant_scope(path) == scope


def test_bounded_by_the_setting_and_the_tokens_life() -> None:
    assert grant_cache_seconds(grant(), 30) == 30
    assert grant_cache_seconds(grant(expires_at=int(NOW) + 7), 30) == 7
    assert grant_cache_seconds(grant(expires_at=int(NOW) - 2), 30) == 0
    assert grant_cache_seconds(grant(), 0) == 0


@pytest.mark.parametrize("limits", [{"max_uses": 3}, {"max_streams": 1}])
def test_never_for_tokens_whose_uses_are_counted(limits: dict[str, int]) -> None:
    assert grant_cache_seconds(grant(**limits), 30) == 0


def test_never_when_the_token_covers_less_than_the_cache_scope() -> None:
    # nginx keys by /videos/demo/: a token for one rendition must not open the others.
    narrow = grant(scope="/videos/demo/hls/v0/")
    assert grant_cache_seconds(narrow, 30) == 0
    assert grant_cache_seconds(grant(scope="/videos/"), 30) == 30


def test_ip_bound_tokens_may_be_reused_because_nginx_keys_by_address() -> None:
    assert grant_cache_seconds(grant(client_network="10.0.0.0/8"), 30) == 30


def test_grant_cache_may_not_outlast_the_revocation_staleness_bound() -> None:
    from edge_validator.core.errors import ConfigurationError
    from edge_validator.settings import ValidatorSettings

    env = {
        "PLAYGATE_KEYRING": '{"keys": {"k1": "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE"}}',
        "PLAYGATE_GRANT_CACHE_SECONDS": "30",
        "PLAYGATE_STATE_MAX_STALENESS": "10",
    }
    with pytest.raises(ConfigurationError, match="PLAYGATE_GRANT_CACHE_SECONDS"):
        ValidatorSettings.from_env(env)
    assert ValidatorSettings.from_env({**env, "PLAYGATE_GRANT_CACHE_SECONDS": "10"})
