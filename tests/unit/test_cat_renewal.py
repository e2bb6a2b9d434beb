"""catr renewal at the edge (edge_validator/core/cat/renewal.py), pure: the clock is explicit."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from edge_validator.cat_es256 import load_es256
from edge_validator.core.cat import cbor
from edge_validator.core.cat.claims import CATR, CATREPLAY, EXP, IAT, NBF, CatClaims
from edge_validator.core.cat.keys import ES256, HS256, CatKey, CatKeyRing
from edge_validator.core.cat.renewal import (
    RenewalRefused,
    RenewedCat,
    renew,
    renewal_headers,
    seconds_until_due,
)
from edge_validator.core.decision import Grant
from edge_validator.core.errors import LifetimeExceeded
from edge_validator.core.paths import split_target, with_header_token
from edge_validator.core.protocol import CAT_HEADER
from tests.support import factories
from tests.support.factories import CAT_ES256, CAT_SECRET, MASTER

T0 = 1_800_000_000
MAX_SESSION = 4 * 3600
HEADER_RENEWAL = {0: 2, 1: 120, 2: 30}  # header, expadd 120 s, deadline 30 s


def cat(catr: dict[int, Any] | None = None, **fields: Any) -> str:
    fields.setdefault("now", T0)
    fields.setdefault("ttl", 60)
    extra = fields.pop("extra", {})
    if catr is not None:
        extra[CATR] = catr
    return factories.cat_token(extra=extra, **fields)


def allowed(token: str, now: float, target: str | None = None, **kw: Any) -> Grant:
    verifier = factories.cat_verifier(max_session=MAX_SESSION, **kw)
    return verifier.verify_target(target or factories.target(token), "192.0.2.1", now)


def renewed(
    token: str, now: float, target: str | None = None, ring: CatKeyRing | None = None, **kw: Any
) -> RenewedCat | RenewalRefused | None:
    grant = allowed(token, now, target)
    assert isinstance(grant.claims, CatClaims)
    return renew(
        grant.claims,
        grant.target,
        ring or factories.cat_keyring(),
        now,
        max_session=MAX_SESSION,
        **kw,
    )


def payload(token: str) -> dict[Any, Any]:
    raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    message = cbor.decode(raw, tags=frozenset({17, 18, 61}))
    while isinstance(message, cbor.Tag):
        message = message.value
    assert isinstance(message, list)
    doc = cbor.decode(message[2], tags=frozenset({52, 54}))
    assert isinstance(doc, dict)
    return doc


def test_nothing_is_renewed_before_the_deadline_or_without_catr() -> None:
    assert renewed(cat(HEADER_RENEWAL), T0 + 29) is None  # exp T0+60, deadline 30 s
    assert renewed(cat(), T0 + 59) is None
    # No deadline: the 60 s window both @eyevinn/cat and Akamai's module use.
    assert renewed(cat({0: 2, 1: 120}, ttl=300), T0 + 239) is None
    assert isinstance(renewed(cat({0: 2, 1: 120}, ttl=300), T0 + 240), RenewedCat)


def test_the_renewed_token_keeps_the_claims_cti_and_nbf_with_a_new_iat_and_exp() -> None:
    old = cat(HEADER_RENEWAL, user_id="u-1", client_network="192.0.2.0/24")
    new = renewed(old, T0 + 40)
    assert isinstance(new, RenewedCat)
    assert (new.kind, new.name, new.expires_at) == ("header", "CTA-Common-Access-Token", T0 + 160)
    before, after = payload(old), payload(new.token)
    assert after.pop(EXP) == T0 + 160
    assert after.pop(IAT) == T0 + 40
    assert before.pop(EXP) == T0 + 60
    before.pop(IAT)
    assert after == before  # cti, nbf, catu, catnip, sub, iss, catr: all kept
    grant = allowed(new.token, T0 + 150)
    assert grant.claims.token_id == "0b71" * 4
    assert grant.claims.not_before == T0
    assert grant.claims.user_id == "u-1"


def test_a_token_without_nbf_keeps_its_start_as_nbf() -> None:
    new = renewed(cat(HEADER_RENEWAL, drop=(NBF,)), T0 + 40)
    assert isinstance(new, RenewedCat)
    assert payload(new.token)[NBF] == T0


def test_renewal_never_goes_past_the_session_cap_and_then_stops() -> None:
    token = cat({0: 2, 1: 3600, 2: 600}, ttl=3000)
    now = T0 + 2500
    chain = 0
    while True:
        new = renewed(token, now)
        if not isinstance(new, RenewedCat):
            break
        assert new.expires_at <= T0 + MAX_SESSION
        token, now, chain = new.token, new.expires_at - 100, chain + 1
    assert new == RenewalRefused("max_session", "the token is PLAYGATE_MAX_SESSION past its start")
    assert chain == 4
    assert allowed(token, now).claims.expires_at == T0 + MAX_SESSION


def test_a_renewable_cat_lives_up_to_the_session_cap_and_no_other_cat_past_max_ttl() -> None:
    long = {"ttl": 2 * 3600}
    assert allowed(cat(HEADER_RENEWAL, **long), T0 + 10).claims.expires_at == T0 + 7200
    with pytest.raises(LifetimeExceeded):
        allowed(cat(**long), T0 + 10)
    with pytest.raises(LifetimeExceeded):
        allowed(cat(HEADER_RENEWAL, ttl=MAX_SESSION + 1), T0 + 10)


def test_each_type_hands_the_token_over_its_own_way() -> None:
    cookie = renewed(cat({0: 1, 1: 120, 2: 30, 3: "cta-cookie"}), T0 + 40)
    assert isinstance(cookie, RenewedCat)
    assert (cookie.kind, cookie.name) == ("cookie", "cta-cookie")
    assert renewal_headers(cookie, T0 + 40) == {
        "X-PlayGate-Renewal": "cookie",
        "Set-Cookie": f"cta-cookie={cookie.token}; Path=/; Max-Age=120; Secure; HttpOnly;"
        " SameSite=None",
    }
    header = renewed(cat({0: 2, 1: 120, 2: 30, 4: "X-Token"}), T0 + 40)
    assert isinstance(header, RenewedCat)
    assert renewal_headers(header, T0 + 40) == {
        "X-PlayGate-Renewal": "header",
        "X-Token": header.token,
    }
    token = cat({0: 3, 1: 120, 2: 30})
    redirect = renewed(token, T0 + 40, f"/t/{token}/videos/demo/master.m3u8?x=1")
    assert isinstance(redirect, RenewedCat)
    assert redirect.location == f"/t/{redirect.token}/videos/demo/master.m3u8?x=1"
    assert renewal_headers(redirect, T0 + 40) == {"X-PlayGate-Renewal": "redirect"}


@pytest.mark.parametrize("param", ["CAT", "token"])
def test_a_redirect_keeps_a_query_token_in_its_parameter(param: str) -> None:
    token = cat({0: 3, 1: 120, 2: 30})
    target = f"{MASTER}?a=1&{param}={token}&b=2"
    new = renewed(token, T0 + 40, target, query_param=param)
    assert isinstance(new, RenewedCat)
    assert new.location == f"{MASTER}?a=1&b=2&{param}={new.token}"


def test_automatic_follows_the_carriage_and_a_header_token_is_never_redirected() -> None:
    token = cat({0: 0, 1: 120, 2: 30})
    in_path = renewed(token, T0 + 40)
    assert isinstance(in_path, RenewedCat)
    assert in_path.kind == "redirect"
    grant = factories.cat_verifier(max_session=MAX_SESSION).judge(
        with_header_token(split_target(MASTER), token), None, T0 + 40
    )
    assert isinstance(grant.claims, CatClaims)
    in_header = renew(
        grant.claims,
        grant.target,
        factories.cat_keyring(),
        T0 + 40,
        max_session=MAX_SESSION,
        in_header=True,
    )
    assert isinstance(in_header, RenewedCat)
    assert in_header.kind == "header"
    redirect = cat({0: 3, 1: 120, 2: 30})
    grant = factories.cat_verifier(max_session=MAX_SESSION).judge(
        with_header_token(split_target(MASTER), redirect), None, T0 + 40
    )
    assert isinstance(grant.claims, CatClaims)
    refused = renew(
        grant.claims,
        grant.target,
        factories.cat_keyring(),
        T0 + 40,
        max_session=MAX_SESSION,
        in_header=True,
    )
    assert isinstance(refused, RenewalRefused)
    assert refused.code == "header_redirect"


def test_a_one_time_token_is_not_renewed() -> None:
    new = renewed(cat(HEADER_RENEWAL, extra={CATREPLAY: 1}), T0 + 40)
    assert isinstance(new, RenewalRefused)
    assert new.code == "one_time"


@pytest.mark.parametrize(
    "name",
    [
        "Location",
        "set-cookie",
        "Cache-Control",
        "X-PlayGate-Reason",
        "Access-Control-Allow-Origin",
        "Bad Name",
        "a:b",
    ],
)
def test_header_names_the_edge_decides_are_refused(name: str) -> None:
    new = renewed(cat({0: 2, 1: 120, 2: 30, 4: name}), T0 + 40)
    assert isinstance(new, RenewalRefused)
    assert new.code == "bad_name"


def test_es256_renews_only_where_the_edge_holds_the_private_key() -> None:
    token = cat(HEADER_RENEWAL, key_id="e1")
    with_d = renewed(token, T0 + 40)
    assert isinstance(with_d, RenewedCat)
    assert allowed(with_d.token, T0 + 100).claims.key_id == "e1"
    public = {k: v for k, v in CAT_ES256.items() if k != "d"}
    edge = CatKeyRing(
        [
            CatKey("c1", HS256, secret=CAT_SECRET),
            CatKey("e1", ES256, public=load_es256("e1", public)),
        ]
    )
    refused = renewed(token, T0 + 40, ring=edge)
    assert isinstance(refused, RenewalRefused)
    assert refused.code == "no_signing_key"
    assert renewal_headers(refused, T0 + 40) == {"X-PlayGate-Renewal": "refused; no_signing_key"}


def test_the_cwt_tag_is_kept_as_the_issuer_wrote_it() -> None:
    for tagged in (False, True):
        new = renewed(cat(HEADER_RENEWAL, cwt_tag=tagged), T0 + 40)
        assert isinstance(new, RenewedCat)
        raw = base64.urlsafe_b64decode(new.token + "=" * (-len(new.token) % 4))
        assert (raw[:2] == b"\xd8\x3d") is tagged


def test_the_renewal_window_opens_at_the_deadline() -> None:
    token = cat(HEADER_RENEWAL, ttl=300)  # due from T0 + 270
    grant = allowed(token, T0 + 200)
    assert isinstance(grant.claims, CatClaims)
    assert seconds_until_due(grant.claims, T0 + 200) == 70


# --- Lambda@Edge: a viewer-request function can answer a redirect, nothing else ---------------


def viewer(token: str, uri: str, query: str = "", header: bool = False) -> dict[str, Any]:
    from edge_validator.lambda_edge import make_handler

    text = (factories.TESTS / "events/viewer-request-path-token.json").read_text()
    event: dict[str, Any] = json.loads(text.replace("__TOKEN__", token))
    request = event["Records"][0]["cf"]["request"]
    request.update(uri=uri, querystring=query)
    if header:
        request["headers"]["cta-common-access-token"] = [{"key": CAT_HEADER, "value": token}]
    verifier = factories.cat_verifier(max_session=MAX_SESSION)
    result: dict[str, Any] = make_handler(lambda: verifier, lambda: T0 + 40)(event, None)
    return result


def test_lambda_renews_by_redirect_in_the_path_and_the_query() -> None:
    token = cat({0: 0, 1: 120, 2: 30})
    result = viewer(token, f"/t/{token}{MASTER}")
    assert result["status"] == "302"
    location = result["headers"]["location"][0]["value"]
    assert location.startswith("/t/")
    assert location.endswith(MASTER)
    assert result["headers"]["cache-control"][0]["value"] == "no-store"
    assert result["headers"]["x-playgate-renewal"][0]["value"] == "redirect"
    result = viewer(token, MASTER, f"CAT={token}")
    assert result["headers"]["location"][0]["value"].startswith(f"{MASTER}?CAT=")


def test_lambda_forwards_but_cannot_hand_over_header_or_cookie_renewals() -> None:
    for catr in ({0: 2, 1: 120, 2: 30}, {0: 1, 1: 120, 2: 30}):
        token = cat(catr)
        forwarded = viewer(token, f"/t/{token}{MASTER}")
        assert forwarded["uri"] == MASTER  # served with the token it carried
    token = cat({0: 0, 1: 120, 2: 30})
    assert viewer(token, MASTER, header=True)["uri"] == MASTER


def test_explain_tells_a_renewed_cat_and_its_catr() -> None:
    from playgate.explain import explain

    new = renewed(cat({0: 3, 1: 120}), T0 + 10)  # no deadline: the 60 s default, due now
    assert isinstance(new, RenewedCat)
    verifier = factories.cat_verifier(max_session=MAX_SESSION)
    accepted, lines = explain(f"https://cdn.example{new.location}", verifier, T0 + 20)
    assert accepted
    text = "\n".join(lines)
    assert "renewed (iat after nbf)" in text
    assert "catr:           redirect, expadd 120 s, deadline 60 s" in text
    assert "renewal:        due in 50 s: 302 to the same URL with the new token" in text
    assert "kind:           renewable CAT (110 s left; the edge renews it near its end)" in text
    assert "renewals end:   2027-01-15T12:00:00Z" in text
    accepted, lines = explain(f"https://cdn.example{factories.target(cat())}", verifier, T0)
    assert not any(line.lstrip().startswith(("catr", "renewal", "iat")) for line in lines)

    expired = cat({0: 2, 1: 120})
    accepted, lines = explain(f"https://cdn.example{factories.target(expired)}", verifier, T0 + 99)
    assert not accepted
    assert "once expired it is not renewed" in "\n".join(lines)
