"""CAT claims mapped onto PlayGate's rules (docs/cat.md has the table): same reasons, same path
rules, and every restriction PlayGate cannot check refused instead of ignored."""

from __future__ import annotations

from typing import Any

import pytest

from edge_validator.core.cat import cbor
from edge_validator.core.cat.claims import (
    AUD,
    CATM,
    CATNIP,
    CATPOR,
    CATR,
    CATREPLAY,
    CATU,
    CATV,
    CRIT,
    IAT,
    ISS,
    NBF,
    CatPolicy,
    Renewal,
    build_claims,
)
from edge_validator.core.decision import Grant
from edge_validator.core.errors import (
    Expired,
    IpMismatch,
    LifetimeExceeded,
    MalformedToken,
    NotYetValid,
    OutOfScope,
    UnsupportedClaim,
)
from tests.support import factories
from tests.support.factories import MASTER

NOW = 1_800_000_000


def judge(token: str, path: str = MASTER, client: str | None = "192.0.2.1", **policy: Any) -> Grant:
    return factories.cat_verifier(**policy).verify_target(
        factories.target(token, path), client, NOW
    )


def test_a_cat_maps_onto_playgate_claims() -> None:
    token = factories.cat_token(now=NOW, user_id="u-1", session_id="s-1", max_streams=2)
    claims = judge(token).claims
    assert (claims.scope, claims.token_id, claims.user_id) == ("/videos/demo/", "0b71" * 4, "u-1")
    assert (claims.session_id, claims.max_streams, claims.expires_at) == ("s-1", 2, NOW + 300)


def test_playgate_tokens_still_verify_next_to_cats() -> None:
    grant = judge(factories.token(now=NOW))
    assert grant.claims.__class__.__name__ == "Claims"


def test_a_cat_is_refused_where_cat_is_not_configured() -> None:
    with pytest.raises(MalformedToken):
        factories.verifier().verify_target(
            factories.target(factories.cat_token(now=NOW)), None, NOW
        )


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"now": NOW - 1000}, Expired),
        ({"now": NOW + 1000}, NotYetValid),
        ({"now": NOW, "ttl": 7200}, LifetimeExceeded),
    ],
)
def test_time_claims_give_playgate_reasons(fields: dict[str, Any], error: type[Exception]) -> None:
    with pytest.raises(error):
        judge(factories.cat_token(**fields))


def test_without_nbf_iat_bounds_the_lifetime_and_without_both_it_is_refused() -> None:
    assert judge(factories.cat_token(now=NOW, drop=(NBF,))).claims.not_before == NOW
    with pytest.raises(MalformedToken, match="nbf or iat"):
        judge(factories.cat_token(now=NOW, drop=(NBF, IAT)))


def test_issuer_and_audience_are_configured() -> None:
    with pytest.raises(MalformedToken, match="iss"):
        judge(factories.cat_token(now=NOW, extra={ISS: "someone-else"}))
    with pytest.raises(MalformedToken, match="aud"):
        judge(factories.cat_token(now=NOW, extra={AUD: "cdn-a"}))  # no audience configured
    assert judge(
        factories.cat_token(now=NOW, extra={AUD: ["cdn-a", "cdn-b"]}), cat={"audience": "cdn-b"}
    )
    with pytest.raises(MalformedToken, match="aud is required"):
        judge(factories.cat_token(now=NOW), cat={"audience": "cdn-b"})


def test_catu_path_prefix_is_segment_safe_like_playgate_scope() -> None:
    token = factories.cat_token(now=NOW, scope="/videos/12/")
    assert judge(token, "/videos/12/a.ts")
    with pytest.raises(OutOfScope):
        judge(token, "/videos/123/a.ts")
    with pytest.raises(UnsupportedClaim, match="segment-safe"):
        judge(factories.cat_token(now=NOW, extra={CATU: {3: {1: "/videos/12"}}}), "/videos/12/a.ts")


def test_catu_exact_path_covers_that_path_only() -> None:
    token = factories.cat_token(now=NOW, extra={CATU: {3: {0: MASTER}}})
    assert judge(token).claims.scope == "/videos/demo/"
    with pytest.raises(OutOfScope):
        judge(token, "/videos/demo/other.m3u8")


def test_catu_scheme_and_host_are_judged_against_the_configured_origin() -> None:
    catu = {0: {0: "https"}, 1: {0: "cdn.example.com"}, 3: {1: "/videos/demo/"}}
    token = factories.cat_token(now=NOW, extra={CATU: catu})
    assert judge(token, cat={"origin": ("https", "cdn.example.com")})
    with pytest.raises(OutOfScope):
        judge(token, cat={"origin": ("https", "other.example.com")})
    with pytest.raises(UnsupportedClaim, match="PLAYGATE_CAT_ORIGIN"):
        judge(token)


@pytest.mark.parametrize(
    "catu",
    [
        {3: {2: ".m3u8"}},  # suffix
        {3: {4: "^/videos/.*"}},  # regex
        {3: {-1: b"\x00" * 32}},  # sha-256
        {4: {0: "a=b"}},  # query
        {2: {0: "443"}},  # port
        {3: {0: MASTER, 1: "/videos/"}},  # two match types
    ],
)
def test_catu_match_types_not_implemented_are_refused(catu: dict[Any, Any]) -> None:
    with pytest.raises(UnsupportedClaim):
        judge(factories.cat_token(now=NOW, extra={CATU: catu}))


def test_catnip_binds_ipv4_and_ipv6_prefixes() -> None:
    nets = [cbor.Tag(52, [8, b"\x0a"]), cbor.Tag(54, [32, b"\x20\x01\x0d\xb8"])]
    token = factories.cat_token(now=NOW, extra={CATNIP: nets})
    assert judge(token, client="10.9.8.7")
    assert judge(token, client="2001:db8::1")
    for client in ("192.0.2.1", "2001:db9::1", None):
        with pytest.raises(IpMismatch):
            judge(token, client=client)


@pytest.mark.parametrize(
    "item",
    [
        cbor.Tag(52, [8, b"\x0a\x00\x00\x00"]),  # trailing zero bytes (RFC 9164 omits them)
        cbor.Tag(52, [8, b"\x0a\x01"]),  # host bits set past the prefix
        cbor.Tag(52, [33, b"\x0a"]),  # prefix longer than the address
        cbor.Tag(52, b"\x0a\x00\x00"),  # an address of the wrong length
    ],
)
def test_catnip_malformed_prefixes_are_refused(item: cbor.Tag) -> None:
    with pytest.raises(MalformedToken):
        judge(factories.cat_token(now=NOW, extra={CATNIP: [item]}))


def test_catnip_asn_is_refused_not_ignored() -> None:
    with pytest.raises(UnsupportedClaim, match="autonomous"):
        judge(factories.cat_token(now=NOW, extra={CATNIP: [64496]}))


def test_catnip_rejects_a_wrong_tag_before_any_mac() -> None:
    """Tag 260 (the old address tag) is not allowed in a payload: refused at decode."""
    with pytest.raises(MalformedToken, match="tag 260"):
        judge(factories.cat_token(now=NOW, extra={CATNIP: [cbor.Tag(260, b"\x0a\x00\x00\x01")]}))


def test_catm_must_allow_get() -> None:
    assert judge(factories.cat_token(now=NOW, extra={CATM: ["get", "HEAD"]}))
    with pytest.raises(OutOfScope, match="GET"):
        judge(factories.cat_token(now=NOW, extra={CATM: ["POST"]}))


def test_catreplay_maps_onto_use_and_stream_limits() -> None:
    assert judge(factories.cat_token(now=NOW, extra={CATREPLAY: 1})).claims.max_uses == 1
    assert judge(factories.cat_token(now=NOW, extra={CATREPLAY: 2})).claims.max_streams == 1
    assert judge(factories.cat_token(now=NOW, extra={CATREPLAY: 0})).claims.max_uses == 0
    with pytest.raises(MalformedToken):
        judge(factories.cat_token(now=NOW, extra={CATREPLAY: 3}))


def test_catr_is_parsed_and_kept() -> None:
    token = factories.cat_token(
        now=NOW, extra={CATR: {0: 2, 1: 120, 2: 60, 4: "cta-common-access-token"}}
    )
    rules = judge(token).claims.rules  # type: ignore[attr-defined]
    assert rules.renewal == Renewal("header", 120, 60, "cta-common-access-token")
    with pytest.raises(MalformedToken):
        judge(factories.cat_token(now=NOW, extra={CATR: {0: 9, 1: 120}}))


def test_unknown_claims_and_unknown_critical_claims_are_refused() -> None:
    with pytest.raises(UnsupportedClaim):
        judge(factories.cat_token(now=NOW, extra={CATPOR: [1, 2]}))
    with pytest.raises(UnsupportedClaim):
        judge(factories.cat_token(now=NOW, extra={"private": 1}))
    with pytest.raises(UnsupportedClaim, match="critical"):
        judge(factories.cat_token(now=NOW, extra={CRIT: [316]}))
    assert judge(factories.cat_token(now=NOW, extra={CRIT: [CATU]}))
    with pytest.raises(UnsupportedClaim, match="catv"):
        judge(factories.cat_token(now=NOW, extra={CATV: 2}))
    # Authentic but odd: refused with a reason, never a TypeError (a 500 at the edge).
    for odd in ({CRIT: [[CATU]]}, {CRIT: [True]}, {CATV: True}, {CRIT: "catu"}):
        with pytest.raises(MalformedToken):
            judge(factories.cat_token(now=NOW, extra=odd))


def test_build_claims_refuses_what_a_cat_cannot_carry() -> None:
    with pytest.raises(ValueError, match="one-time"):
        build_claims(factories.claims(max_uses=3, token_id="ab"))


def test_the_query_form_and_the_path_form_carry_a_cat() -> None:
    token = factories.cat_token(now=NOW)
    verifier = factories.cat_verifier()
    assert verifier.verify_target(
        factories.target(token, query=True), None, NOW
    ).target.token_in_query
    assert not verifier.verify_target(factories.target(token), None, NOW).target.token_in_query


# --- where a CAT travels (CTA-5007 header and query parameter, and PlayGate's own places) -----


def test_the_cat_query_parameter_carries_a_token() -> None:
    token = factories.cat_token(now=NOW)
    grant = factories.cat_verifier().verify_target(f"{MASTER}?lang=en&CAT={token}", None, NOW)
    assert (grant.target.query, grant.target.token_in_query) == ("lang=en", True)


@pytest.mark.parametrize("name", ["cat", "Cat", "%43AT"])
def test_other_spellings_of_the_cat_parameter_are_refused(name: str) -> None:
    token = factories.cat_token(now=NOW)
    with pytest.raises(MalformedToken, match="ambiguous"):
        factories.cat_verifier().verify_target(f"{MASTER}?{name}={token}", None, NOW)


def test_the_cat_header_carries_a_token_but_never_next_to_another() -> None:
    token = factories.cat_token(now=NOW)
    verifier = factories.cat_verifier()
    assert verifier.verify_target(MASTER, None, NOW, token).claims.token_id == "0b71" * 4
    for carried in (factories.target(token), f"{MASTER}?CAT={token}", f"{MASTER}?token={token}"):
        with pytest.raises(MalformedToken, match="more than one"):
            verifier.verify_target(carried, None, NOW, token)


def test_lambda_reads_the_cat_header() -> None:
    from edge_validator.lambda_edge import viewer_request

    token = factories.cat_token(now=NOW)
    request = {"method": "GET", "uri": MASTER, "querystring": "", "clientIp": "192.0.2.1"}
    header = {"cta-common-access-token": [{"key": "CTA-Common-Access-Token", "value": token}]}
    allowed = viewer_request({**request, "headers": header}, factories.cat_verifier(), NOW)
    assert allowed["uri"] == MASTER
    twice = {"cta-common-access-token": header["cta-common-access-token"] * 2}
    denied = viewer_request({**request, "headers": twice}, factories.cat_verifier(), NOW)
    assert denied["status"] == "403"


# --- settings through Env --------------------------------------------------------------------


def test_validator_and_signer_settings_read_cat_from_the_environment(tmp_path: Any) -> None:
    import json

    from edge_validator.core.cat.keys import new_cat_keyring_json
    from edge_validator.core.errors import ConfigurationError
    from edge_validator.settings import ValidatorSettings
    from signer.settings import SignerSettings

    ring = json.dumps(
        {"active": "k1", "keys": {"k1": "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE"}}
    )
    cat_keys = new_cat_keyring_json("cat1")
    env = {
        "PLAYGATE_KEYRING": ring,
        "PLAYGATE_CAT_KEYS": cat_keys,
        "PLAYGATE_CAT_ISSUER": "iss-1",
        "PLAYGATE_CAT_AUDIENCE": "cdn-1",
        "PLAYGATE_CAT_ORIGIN": "HTTPS://CDN.Example.com/",
    }
    settings = ValidatorSettings.from_env(env)
    assert settings.cat is not None
    assert settings.cat.policy == CatPolicy("iss-1", "cdn-1", ("https", "cdn.example.com"))
    assert settings.verifier().cat is settings.cat
    signer = SignerSettings.from_env(env)
    assert signer.cat is not None
    assert signer.cat.keyring.signing_key().key_id == "cat1"
    assert ValidatorSettings.from_env({"PLAYGATE_KEYRING": ring}).cat is None
    path = tmp_path / "cat.json"
    path.write_text(cat_keys)
    for bad in (
        {"PLAYGATE_CAT_ORIGIN": "cdn.example.com"},
        {"PLAYGATE_CAT_ORIGIN": "https://cdn.example.com/videos"},
        {"PLAYGATE_CAT_KEYS_FILE": str(path)},  # next to PLAYGATE_CAT_KEYS
    ):
        with pytest.raises(ConfigurationError):
            ValidatorSettings.from_env({**env, **bad})
    no_active = json.dumps({"keys": json.loads(cat_keys)["keys"]})
    with pytest.raises(ConfigurationError, match="sign"):
        SignerSettings.from_env({**env, "PLAYGATE_CAT_KEYS": no_active})


@pytest.mark.parametrize(
    ("kind", "value"),
    [("token_id", "0b71" * 4), ("session_id", "s-1"), ("user_id", "u-1"), ("video_id", "demo")],
)
def test_state_revokes_a_cat_by_cti_session_user_and_video(kind: str, value: str) -> None:
    from edge_validator.state.revocations import Revocation, RevocationView

    grant = judge(factories.cat_token(now=NOW, user_id="u-1", session_id="s-1"))
    view = RevocationView()
    assert view.revoked(grant.claims, NOW) is None
    view.add(Revocation(kind, value, NOW + 1, NOW + 3600))
    revoked = view.revoked(grant.claims, NOW)
    assert revoked is not None
    assert revoked.kind == kind


def test_a_cat_issued_before_its_nbf_is_judged_by_its_issue_time() -> None:
    """A CAT minted ahead of its start (iat < nbf, a scheduled event) was issued at iat: video
    and user revocations made between the two cover it, and its life (for which revocations
    are kept) counts from iat. It still plays only from nbf."""
    early = factories.cat_token(now=NOW, extra={IAT: NOW - 100, NBF: NOW + 60})
    with pytest.raises(NotYetValid):
        judge(early)
    grant = factories.cat_verifier().verify_target(factories.target(early), "192.0.2.1", NOW + 60)
    assert grant.claims.not_before == NOW - 100
    # Minted two hours before a start five minutes from expiry: it would outlive revocations.
    ahead = factories.cat_token(now=NOW, extra={IAT: NOW - 7200})
    with pytest.raises(LifetimeExceeded):
        judge(ahead)
