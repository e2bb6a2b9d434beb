"""Playback sessions in the pure core: two token kinds, the session a start token opens."""

from __future__ import annotations

from typing import Any

import pytest

from edge_validator.core.addresses import ClientAddress
from edge_validator.core.decision import Grant
from edge_validator.core.errors import BadSignature, LifetimeExceeded, MalformedToken
from edge_validator.core.keyring import SESSION_CONTEXT
from edge_validator.core.paths import split_target
from edge_validator.core.sessions import (
    opens_session,
    seal_session,
    session_claims,
    session_location,
    viewer_network,
)
from edge_validator.core.token import claims_bytes, open_token
from tests.support import factories

T0 = 1_790_000_000
SEG = "/videos/demo/seg_001.ts"


def _start_grant(now: float = T0 + 2, client: str | None = None, **fields: Any) -> Grant:
    fields.setdefault("session_seconds", 3600)
    tok = factories.token(now=T0, ttl=10, **fields)
    return factories.verifier().verify_target(factories.target(tok), client, now)


def test_a_start_token_never_verifies_as_a_session_token() -> None:
    tok = factories.token(now=T0, session_seconds=60)
    verifier = factories.verifier()
    verifier.verify_target(factories.target(tok), None, T0 + 1)  # remembered as a start token
    with pytest.raises(BadSignature):
        verifier.verify_target(factories.target(tok, session=True), None, T0 + 1)
    with pytest.raises(BadSignature):
        verifier.verify_target(factories.target(tok, query=True, session=True), None, T0 + 1)


def test_a_session_token_never_verifies_as_a_start_token() -> None:
    tok = factories.session_token(now=T0)
    verifier = factories.verifier()
    assert verifier.verify_target(factories.target(tok, SEG, session=True), None, T0 + 1)
    with pytest.raises(BadSignature):
        verifier.verify_target(factories.target(tok, SEG), None, T0 + 1)


def test_the_contexts_differ_only_by_the_mac() -> None:
    ring = factories.keyring()
    claims = factories.claims(now=T0)
    body = claims_bytes(claims)
    start = ring.get("k1")
    session = ring.with_context(SESSION_CONTEXT).get("k1")
    assert start is not None
    assert session is not None
    assert start.mac(body) != session.mac(body)
    assert (
        open_token(
            seal_session(claims, ring.with_context(SESSION_CONTEXT)),
            ring.with_context(SESSION_CONTEXT),
        )
        == claims
    )


def test_a_session_token_longer_than_the_cap_is_refused() -> None:
    tok = factories.session_token(now=T0, ttl=7200)
    verifier = factories.verifier(max_session=3600)
    with pytest.raises(LifetimeExceeded):
        verifier.verify_target(factories.target(tok, SEG, session=True), None, T0 + 1)
    # The start-token cap is separate: a start token may not live as long as a session.
    with pytest.raises(LifetimeExceeded):
        verifier.verify_target(
            factories.target(factories.token(now=T0, ttl=7200), SEG), None, T0 + 1
        )


def test_version_2_without_a_session_is_malformed() -> None:
    ring = factories.keyring()
    body = claims_bytes(factories.claims(now=T0, session_seconds=60))
    assert body[0] == 2
    forged = body[:-4] + b"\x00\x00\x00\x00"
    key = ring.get("k1")
    assert key is not None
    import base64

    tok = base64.urlsafe_b64encode(forged + key.mac(forged)).rstrip(b"=").decode()
    with pytest.raises(MalformedToken):
        open_token(tok, ring)


def test_only_a_start_token_fetching_a_manifest_opens_a_session() -> None:
    assert opens_session(_start_grant())
    tok = factories.token(now=T0, session_seconds=60)
    seg = factories.verifier().verify_target(factories.target(tok, SEG), None, T0 + 1)
    assert not opens_session(seg)
    plain = factories.verifier().verify_target(
        factories.target(factories.token(now=T0)), None, T0 + 1
    )
    assert not opens_session(plain)  # a version 1 token: no session, as before


def test_session_claims_keep_the_lineage_and_the_cap() -> None:
    grant = _start_grant(user_id="u1", max_streams=2, max_uses=1)
    client = ClientAddress.parse("198.51.100.77")
    session = session_claims(grant, client, max_session=1800, session_id="sid")
    assert session.token_id == "tid-test"
    assert session.session_id == "sid"
    assert session.not_before == T0
    assert session.expires_at == T0 + 1800  # min(start + 3600, issue + cap)
    assert session.client_network == "198.51.100.0/24"
    assert (session.user_id, session.max_streams, session.max_uses) == ("u1", 2, 0)
    assert session.session_seconds == 0


def test_session_claims_keep_a_binding_and_a_session_id() -> None:
    grant = _start_grant(
        client="203.0.113.5", client_network="203.0.113.5/32", session_id="app-sid"
    )
    session = session_claims(grant, None, max_session=86400)
    assert session.client_network == "203.0.113.5/32"
    assert session.session_id == "app-sid"
    assert session.expires_at == T0 + 2 + 3600


def test_unbound_sessions_narrow_to_the_viewer_network() -> None:
    assert viewer_network(ClientAddress.parse("2001:db8:1:2:3:4:5:6")) == "2001:db8:1:2::/64"
    assert viewer_network(ClientAddress.parse("10.1.2.3")) == "10.1.2.0/24"
    assert viewer_network(None) is None
    grant = _start_grant()
    client = ClientAddress.parse("10.1.2.3")
    free = session_claims(grant, client, max_session=86400, narrow=False)
    assert free.client_network is None


def test_the_location_carries_the_session_token_where_the_start_token_was() -> None:
    grant = _start_grant()
    assert session_location(grant, "SESS") == "/s/SESS/videos/demo/master.m3u8"
    tok = factories.token(now=T0, ttl=10, session_seconds=60)
    queried = factories.verifier().verify_target(
        f"/videos/demo/master.m3u8?a=1&token={tok}", None, T0 + 1
    )
    assert session_location(queried, "SESS") == "/videos/demo/master.m3u8?a=1&session=SESS"


@pytest.mark.parametrize(
    "target",
    [
        "/videos/a.m3u8?token=A&session=B",
        "/t/A/videos/a.m3u8?session=B",
        "/s/A/videos/a.m3u8?token=B",
        "/videos/a.m3u8?Session=B",
        "/videos/a.m3u8?%73ession=B",
        "/videos/a.m3u8?session=",
    ],
)
def test_one_token_per_request_whatever_its_kind(target: str) -> None:
    with pytest.raises(MalformedToken):
        split_target(target)


def test_the_carriage_names_the_kind() -> None:
    assert split_target("/s/AAAA/videos/x/a.ts").session
    assert not split_target("/t/AAAA/videos/x/a.ts").session
    assert split_target("/videos/x/a.ts?session=AAAA").session
    assert split_target("/videos/x/a.ts?session=AAAA").token_in_query


def test_session_settings_are_read_once_from_the_environment() -> None:
    from edge_validator.core.errors import ConfigurationError
    from edge_validator.core.keyring import new_keyring_json
    from edge_validator.settings import ValidatorSettings
    from signer.settings import SignerSettings

    ring = new_keyring_json()
    v = ValidatorSettings.from_env(
        {
            "PLAYGATE_KEYRING": ring,
            "PLAYGATE_MAX_SESSION": "600",
            "PLAYGATE_SESSION_BINDING": "none",
        }
    )
    assert (v.max_session, v.session_binding) == (600, False)
    assert v.verifier().max_session == 600
    assert ValidatorSettings.from_env({"PLAYGATE_KEYRING": ring}).session_binding
    with pytest.raises(ConfigurationError, match="PLAYGATE_SESSION_BINDING"):
        ValidatorSettings.from_env({"PLAYGATE_KEYRING": ring, "PLAYGATE_SESSION_BINDING": "ip"})
    s = SignerSettings.from_env({"PLAYGATE_KEYRING": ring, "PLAYGATE_MAX_SESSION": "600"})
    assert (s.default_session, s.max_session) == (600, 600)  # the default never exceeds the cap
    assert s.revocation_retention == 3600  # max(PLAYGATE_MAX_TTL, PLAYGATE_MAX_SESSION)
    with pytest.raises(ConfigurationError, match="PLAYGATE_DEFAULT_SESSION"):
        SignerSettings.from_env(
            {
                "PLAYGATE_KEYRING": ring,
                "PLAYGATE_MAX_SESSION": "600",
                "PLAYGATE_DEFAULT_SESSION": "700",
            }
        )
    assert SignerSettings.from_env({"PLAYGATE_KEYRING": ring}).revocation_retention == 43200


def test_a_revocation_is_kept_as_long_as_a_session_and_settles_its_second() -> None:
    from signer.revoking import parse_revocation, settle_seconds

    rev = parse_revocation({"video_id": "v"}, 1000.25, 43200)
    assert rev.revoked_at == 1000.0  # the whole second: tokens' not_before are whole seconds
    assert rev.expires_at >= 1000.25 + 43200
    assert settle_seconds(rev, 1000.25) == pytest.approx(0.75)
    assert settle_seconds(rev, 1001.5) == 0.0
    assert settle_seconds(parse_revocation({"session_id": "s"}, 1000.25, 60), 1000.25) == 0.0


def test_cat_urls_open_no_session() -> None:
    from edge_validator.core.errors import InvalidField
    from signer.issuing import parse_playback_request

    limits = {"default_ttl": 300, "max_ttl": 3600, "entry_file": "master.m3u8"}
    sessions = {"default_session": 14400, "max_session": 43200}
    cat = parse_playback_request({"video_id": "v", "format": "cat"}, **limits, **sessions)
    assert cat.session_seconds == 0
    assert parse_playback_request({"video_id": "v"}, **limits, **sessions).session_seconds == 14400
    with pytest.raises(InvalidField, match="CAT opens no playback session"):
        parse_playback_request(
            {"video_id": "v", "format": "cat", "session_seconds": 60}, **limits, **sessions
        )


def test_the_network_caches_stay_bounded_under_a_flood_of_distinct_viewers() -> None:
    # sessions.viewer_network and token.encode_network memoize per network (shield-2): a flood
    # of viewers from distinct networks must not grow them without bound.
    from edge_validator.core.sessions import viewer_network
    from edge_validator.core.token import encode_network

    for i in range(20_000):
        client = ClientAddress.parse(f"2001:db8:{i >> 8:x}:{i & 0xFF:x}::1")
        assert client is not None
        network = viewer_network(client)
        assert network is not None
        assert network.endswith("/64")
        assert encode_network(network)[0] == 64
    for cached in (viewer_network, encode_network):
        info = cached.cache_info()  # type: ignore[attr-defined]
        assert info.maxsize is not None
        assert info.currsize <= info.maxsize <= 65_536
