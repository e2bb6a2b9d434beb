"""The pure decision: clock, leeway, lifetime, scope and client network."""

from __future__ import annotations

import pytest

from edge_validator import verify
from edge_validator.core.addresses import ClientAddress, in_network
from edge_validator.core.errors import PlaybackTokenError
from tests.support import factories

RING = factories.keyring()
T0 = 1_800_000_000
PATH = "/videos/v1/seg.ts"


def token(**fields: object) -> str:
    return factories.token(RING, now=T0, ttl=60, scope="/videos/v1/", token_id="tid", **fields)


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


def test_grant_carries_claims_stripped_path_and_its_clock() -> None:
    grant = verify(token(session_id="s1"), PATH, None, T0 + 10, RING)
    assert grant.path == PATH
    assert grant.token_id == "tid"
    assert grant.claims.session_id == "s1"
    assert grant.now == T0 + 10
    assert grant.seconds_left() == 50
    assert verify(token(), PATH, None, T0 + 64, RING).seconds_left() == 0


def test_grant_carries_where_the_token_travelled() -> None:
    verifier = factories.verifier(RING)
    tok = token()
    in_path = verifier.verify_target(factories.target(tok, PATH + "?a=1"), None, T0)
    assert (in_path.target.path, in_path.target.query) == (PATH, "a=1")
    assert not in_path.target.token_in_query
    in_query = verifier.verify_target(f"{PATH}?a=1&token={tok}", None, T0)
    assert (in_query.target.path, in_query.target.query) == (PATH, "a=1")
    assert in_query.target.token_in_query
    assert tok not in repr(in_query)  # a grant may be logged; its token never is


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


def test_unknown_addresses_never_match() -> None:
    assert not in_network(None, "0.0.0.0/0")
    assert ClientAddress.parse("") is None
    assert ClientAddress.parse("1.2.3") is None


def test_impossible_network_never_matches_and_never_crashes() -> None:
    client = ClientAddress.parse("203.0.113.7")
    assert not in_network(client, "203.0.113.7/128")
    assert not in_network(client, "nonsense/8")
    assert not in_network(client, "203.0.113.7")


def test_token_living_longer_than_allowed_is_refused() -> None:
    # Revocations are kept for the signer's maximum TTL; a longer-lived token would outlive one.
    week = token(expires_at=T0 + 7 * 86400)
    with pytest.raises(PlaybackTokenError) as info:
        verify(week, PATH, None, T0, RING, max_ttl=3600)
    assert info.value.reason == "lifetime_exceeded"
    assert verify(token(expires_at=T0 + 3600), PATH, None, T0, RING, max_ttl=3600)
    # The default applies the signer's default maximum: no caller can forget the check.
    with pytest.raises(PlaybackTokenError):
        verify(week, PATH, None, T0, RING)
    assert verify(week, PATH, None, T0, RING, max_ttl=7 * 86400).token_id == "tid"


def test_verifier_remembers_authentic_tokens_only() -> None:
    verifier = factories.verifier(RING, memo_size=2)
    tok = token()
    first = verifier.open(tok)
    assert verifier.open(tok) is first  # no second decode or MAC
    with pytest.raises(PlaybackTokenError):
        verifier.open(tok[:-2] + ("AA" if tok[-2:] != "AA" else "BB"))
    for i in range(3):
        verifier.open(factories.token(RING, now=T0, token_id=f"other{i}"))
    assert verifier.open(tok) is not first  # pushed out: bounded, oldest first
