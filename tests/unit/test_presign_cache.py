"""Presigned URL reuse: the window, the bound, and the credentials' lifetime. Explicit clock."""

from __future__ import annotations

import pytest

from edge_validator.core.errors import ConfigurationError
from edge_validator.origins.presign_cache import CredentialsExpiring, PresignCache


class FakeSigner:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, int]] = []

    def __call__(self, method: str, key: str, expires_in: int) -> str:
        self.calls.append((method, key, expires_in))
        return f"https://s3.example/{key}?m={method}&n={len(self.calls)}&e={expires_in}"


class Clock:
    def __init__(self, now: float = 1_900_000_000.5) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_reused_within_the_window_then_renewed() -> None:
    sign, clock = FakeSigner(), Clock()
    cache = PresignCache(sign, ttl=60, reuse=15, clock=clock)
    first = cache.url("GET", "a.ts")
    clock.now += 14
    assert cache.url("GET", "a.ts") == first
    clock.now += 2  # 45 s or less would remain: a fresh URL
    assert cache.url("GET", "a.ts") != first
    assert [c[2] for c in sign.calls] == [60, 60]


def test_keyed_by_method_and_object() -> None:
    sign = FakeSigner()
    cache = PresignCache(sign, clock=Clock())
    urls = {cache.url("GET", "a.ts"), cache.url("GET", "b.ts"), cache.url("HEAD", "a.ts")}
    assert len(urls) == 3
    assert cache.url("GET", "b.ts") in urls
    assert cache.signed == 3


def test_entries_are_bounded() -> None:
    sign = FakeSigner()
    cache = PresignCache(sign, max_entries=3, clock=Clock())
    for i in range(10):
        cache.url("GET", f"{i}.ts")
    assert len(cache) == 3
    cache.url("GET", "9.ts")
    assert cache.signed == 10  # the newest survived
    cache.url("GET", "0.ts")
    assert cache.signed == 11  # the oldest was evicted


def test_lifetime_never_exceeds_the_credentials() -> None:
    sign, clock = FakeSigner(), Clock()
    expiry = clock.now + 30.9
    cache = PresignCache(sign, ttl=60, credentials_expiry=lambda: expiry, clock=clock)
    cache.url("GET", "a.ts")
    assert sign.calls[-1][2] == 30 - 5
    assert clock.now + sign.calls[-1][2] <= expiry
    # Too short to leave a viewer the minimum reuse life: every request signs afresh.
    cache.url("GET", "a.ts")
    assert cache.signed == 2


def test_credentials_about_to_expire_refuse_to_sign() -> None:
    clock = Clock()
    cache = PresignCache(FakeSigner(), credentials_expiry=lambda: clock.now + 8, clock=clock)
    with pytest.raises(CredentialsExpiring):
        cache.url("GET", "a.ts")


def test_long_lived_credentials_use_the_full_ttl() -> None:
    sign = FakeSigner()
    PresignCache(sign, ttl=40, reuse=10, credentials_expiry=lambda: None, clock=Clock()).url(
        "GET", "a.ts"
    )
    assert sign.calls[-1][2] == 40


@pytest.mark.parametrize(
    "kwargs",
    [{"ttl": 61}, {"ttl": 4}, {"ttl": 60, "reuse": 56}, {"reuse": -1}, {"max_entries": 0}],
)
def test_bad_configuration_is_refused(kwargs: dict[str, int]) -> None:
    with pytest.raises(ConfigurationError):
        PresignCache(FakeSigner(), **kwargs)
