"""The pure decision: clock, leeway, scope and client network."""

from __future__ import annotations

import pytest
from edge_validator.decision import ip_in_network, verify
from edge_validator.errors import PlaybackTokenError
from edge_validator.keyring import KeyRing
from edge_validator.token import Claims, seal

RING = KeyRing({"k1": b"A" * 32}, "k1")
T0 = 1_800_000_000
PATH = "/videos/v1/seg.ts"


def token(**changes: object) -> str:
    return seal(Claims("k1", T0 + 60, T0, "/videos/v1/", "tid")._replace(**changes), RING)


def reason(tok: str, now: float, ip: str | None = None, leeway: int = 5) -> str | None:
    try:
        verify(tok, PATH, ip, now, RING, leeway=leeway)
    except PlaybackTokenError as exc:
        return exc.reason
    return None


@pytest.mark.parametrize(
    ("now", "leeway", "expected"),
    [
        (T0 + 60, 0, None),
        (T0 + 60.5, 0, "expired"),
        (T0 + 65, 5, None),
        (T0 + 65.01, 5, "expired"),
        (T0, 0, None),
        (T0 - 0.5, 0, "not_yet_valid"),
        (T0 - 5, 5, None),
        (T0 - 5.01, 5, "not_yet_valid"),
    ],
)
def test_expiry_and_not_before_with_leeway(now: float, leeway: int, expected: str | None) -> None:
    assert reason(token(), now, leeway=leeway) == expected


def test_grant_carries_claims_and_stripped_path() -> None:
    grant = verify(token(session_id="s1"), PATH, None, T0, RING)
    assert grant.path == PATH
    assert grant.token_id == "tid"
    assert grant.claims.session_id == "s1"
    assert grant.seconds_left(T0 + 10) == 50
    assert grant.seconds_left(T0 + 100) == 0


@pytest.mark.parametrize(
    ("network", "ip", "expected"),
    [
        ("203.0.113.0/24", "203.0.113.9", None),
        ("203.0.113.0/24", "203.0.114.9", "ip_mismatch"),
        ("203.0.113.7/32", "203.0.113.7", None),
        ("203.0.113.7/32", "::ffff:203.0.113.7", None),
        ("203.0.113.7/32", "2001:db8::1", "ip_mismatch"),
        ("2001:db8::/32", "2001:db8:1::5", None),
        ("2001:db8::/32", "2001:db9::5", "ip_mismatch"),
        ("2001:db8::/32", "203.0.113.7", "ip_mismatch"),
        ("0.0.0.0/0", "198.51.100.1", None),
        ("203.0.113.0/24", None, "ip_mismatch"),
        ("203.0.113.0/24", "not-an-ip", "ip_mismatch"),
        ("203.0.113.0/24", "203.0.113.9 ", "ip_mismatch"),
    ],
)
def test_client_network_binding(network: str, ip: str | None, expected: str | None) -> None:
    assert reason(token(client_network=network), T0, ip) == expected


def test_unbound_token_ignores_client_address() -> None:
    assert reason(token(), T0, None) is None
    assert reason(token(), T0, "garbage") is None


def test_ip_in_network_never_matches_unknown_addresses() -> None:
    assert not ip_in_network("", "0.0.0.0/0")
    assert not ip_in_network("1.2.3", "0.0.0.0/0")


def test_impossible_network_never_matches_and_never_crashes() -> None:
    assert not ip_in_network("203.0.113.7", "203.0.113.7/128")
    assert not ip_in_network("203.0.113.7", "nonsense/8")


def test_token_living_longer_than_allowed_is_refused() -> None:
    # Revocations are kept for the signer's maximum TTL; a longer-lived token would outlive one.
    week = token(expires_at=T0 + 7 * 86400)
    assert verify(week, PATH, None, T0, RING).token_id == "tid"  # no limit given
    with pytest.raises(PlaybackTokenError) as info:
        verify(week, PATH, None, T0, RING, max_lifetime=3600)
    assert info.value.reason == "lifetime_exceeded"
    assert verify(token(expires_at=T0 + 3600), PATH, None, T0, RING, max_lifetime=3600)
