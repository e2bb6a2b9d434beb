"""Interop with @eyevinn/cat (npm, installed by ./scripts/install from the committed lock file):
an implementation of CTA-5007 nobody here wrote. Each test runs the library in node.

Where the two disagree, the test pins who follows the specification (docs/cat.md says why):
the library's default output carries the claims as a hex *text* string instead of a byte
string (RFC 9052: the payload is a bstr), and it writes RFC 9164 prefixes with trailing zero
bytes and cannot read them without. Everything else round-trips both ways."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from edge_validator.core.cat.claims import CATR, CATREPLAY
from edge_validator.core.cat.renewal import RenewedCat, renew
from edge_validator.core.errors import BadSignature, IpMismatch, MalformedToken, OutOfScope
from tests.support import factories
from tests.support.factories import CAT_ES256, CAT_ISSUER, CAT_SECRET

HERE = Path(__file__).resolve().parent
DRIVER = HERE / "cat_driver.cjs"
KEY = CAT_SECRET.hex()
URL = "https://cdn.example.com/videos/demo/master.m3u8"


def unb64(text: str) -> str:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).hex()


ES256 = {name: unb64(value) for name, value in CAT_ES256.items() if name != "alg"}


def node(**request: Any) -> dict[str, Any]:
    """One request to @eyevinn/cat; a missing node or package fails loudly, never skips."""
    executable = shutil.which("node")
    assert executable, "node is missing: run ./scripts/install"
    assert (HERE / "node_modules/@eyevinn/cat/lib/index.js").exists(), "run ./scripts/install"
    done = subprocess.run(
        [executable, str(DRIVER)],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        cwd=HERE,
        timeout=60,
        check=True,
    )
    answer: dict[str, Any] = json.loads(done.stdout)
    return answer


def now() -> int:
    return int(time.time())


def their_claims(**extra: Any) -> dict[str, Any]:
    start = now()
    claims = {"iss": CAT_ISSUER, "exp": start + 120, "nbf": start, "iat": start, "cti": "0b71cafe"}
    claims.update(extra)
    return claims


def verify_here(token: str, path: str = factories.MASTER, client: str | None = None) -> Any:
    return factories.cat_verifier().verify_target(factories.target(token, path), client, now())


# --- they generate, PlayGate verifies ---------------------------------------------------------


def test_their_hmac_token_verifies_here() -> None:
    catu = {"path": {"prefix-match": "/videos/demo/"}}
    token = node(op="generate", cwtTag=True, kid="c1", key=KEY, claims=their_claims(catu=catu))
    grant = verify_here(token["token"])
    assert grant.claims.token_id == "0b71cafe"
    assert grant.claims.scope == "/videos/demo/"
    with pytest.raises(OutOfScope):
        verify_here(token["token"], "/videos/other/master.m3u8")


def test_their_ipv4_address_binding_verifies_here() -> None:
    claims = their_claims(catnip=["192.0.2.7"], catreplay=1, catm=["GET"])
    token = node(op="generate", cwtTag=True, kid="c1", key=KEY, claims=claims)["token"]
    grant = verify_here(token, client="192.0.2.7")
    assert grant.claims.max_uses == 1
    with pytest.raises(IpMismatch):
        verify_here(token, client="192.0.2.8")


def test_their_default_output_is_refused_its_payload_is_text_not_bytes() -> None:
    """Disagreement 1: without the CWT tag the library MACs a hex *text* payload."""
    token = node(op="generate", kid="c1", key=KEY, claims=their_claims())["token"]
    with pytest.raises(MalformedToken, match="wrong types"):
        verify_here(token)


def test_their_untrimmed_prefixes_are_refused() -> None:
    """Disagreement 2: RFC 9164 prefixes omit trailing zero bytes; theirs keep them."""
    token = node(
        op="generate", cwtTag=True, kid="c1", key=KEY, claims=their_claims(catnip=["10.0.0.0/8"])
    )
    with pytest.raises(MalformedToken, match="shortest form"):
        verify_here(token["token"], client="10.1.1.1")


def test_their_es256_token_is_refused_for_the_same_text_payload() -> None:
    token = node(op="sign", kid="e1", d=ES256["d"], claims=their_claims())["token"]
    with pytest.raises(MalformedToken, match="wrong types"):
        verify_here(token)


def test_their_token_under_another_key_is_refused() -> None:
    token = node(op="generate", cwtTag=True, kid="c1", key="11" * 32, claims=their_claims())
    with pytest.raises(BadSignature):
        verify_here(token["token"])


# --- PlayGate generates, they verify -----------------------------------------------------------


@pytest.mark.parametrize("cwt_tag", [False, True])
def test_our_hmac_token_verifies_there(cwt_tag: bool) -> None:
    token = factories.cat_token(now=now(), user_id="u-1", session_id="s-1", cwt_tag=cwt_tag)
    answer = node(
        op="validate",
        kid="c1",
        key=KEY,
        issuer=CAT_ISSUER,
        token=token,
        url="https://cdn.example.com/videos/demo/hls/v0/seg_000.ts",
    )
    assert "error" not in answer, answer
    claims = answer["claims"]
    assert claims["iss"] == CAT_ISSUER
    assert claims["sub"] == "u-1"
    assert claims["cti"] == "0b71" * 4
    assert claims["catv"] == 1
    assert claims["catu"] == {"path": {"prefix-match": "/videos/demo/"}}


def test_our_hmac_token_is_refused_there_outside_its_scope() -> None:
    token = factories.cat_token(now=now())
    answer = node(
        op="validate",
        kid="c1",
        key=KEY,
        issuer=CAT_ISSUER,
        token=token,
        url="https://cdn.example.com/videos/other/master.m3u8",
    )
    assert "not allowed" in answer["error"]


def test_our_one_time_and_address_claims_read_there() -> None:
    token = factories.cat_token(now=now(), client_network="192.0.2.7/32", max_uses=1)
    answer = node(
        op="validate", kid="c1", key=KEY, issuer=CAT_ISSUER, token=token, ip="192.0.2.7", url=URL
    )
    assert "error" not in answer, answer
    assert answer["claims"]["catreplay"] == 1


def test_our_trimmed_prefix_is_not_understood_there() -> None:
    """Disagreement 2, the other way round: they cannot read an RFC 9164 prefix."""
    token = factories.cat_token(now=now(), client_network="10.0.0.0/8")
    answer = node(
        op="validate", kid="c1", key=KEY, issuer=CAT_ISSUER, token=token, ip="10.1.1.1", url=URL
    )
    assert "error" in answer


def test_our_es256_token_verifies_there_with_the_public_key_only() -> None:
    token = factories.cat_token("e1", now=now())
    answer = node(op="verify", kid="e1", x=ES256["x"], y=ES256["y"], token=token)
    assert "error" not in answer, answer
    assert answer["claims"]["iss"] == CAT_ISSUER


def test_a_forged_es256_token_is_refused_there() -> None:
    token = factories.cat_token("e1", now=now())
    raw = bytearray(base64.urlsafe_b64decode(token + "=="))
    raw[-1] ^= 1
    forged = base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()
    assert "error" in node(op="verify", kid="e1", x=ES256["x"], y=ES256["y"], token=forged)


# --- renewal round trip ------------------------------------------------------------------------


def test_renewal_round_trip_ours_renewed_there_verifies_here() -> None:
    """A PlayGate CAT with catr (header renewal, expadd 120 s) renewed by their renewToken (in
    their standard, CWT-tagged form): the new token keeps the claims, gets a new cti and
    exp = iat + expadd, and PlayGate accepts it for the same video."""
    catr = {0: 2, 1: 120, 2: 30, 4: "cta-common-access-token"}
    # Their CWT-tagged mode expects the tag on input too.
    token = factories.cat_token(now=now(), ttl=60, extra={CATR: catr, CATREPLAY: 0}, cwt_tag=True)
    renewed = node(
        op="renew", cwtTag=True, kid="c1", key=KEY, issuer=CAT_ISSUER, token=token, url=URL
    )
    assert "error" not in renewed, renewed
    grant = verify_here(renewed["token"])
    claims = grant.claims
    assert claims.token_id != "0b71" * 4
    assert claims.expires_at - claims.rules.issued_at == 120
    assert claims.rules.renewal.type == "header"
    assert claims.scope == "/videos/demo/"


def test_renewal_in_their_default_form_is_refused_here() -> None:
    catr = {0: 2, 1: 120}
    token = factories.cat_token(now=now(), ttl=60, extra={CATR: catr})
    renewed = node(op="renew", kid="c1", key=KEY, issuer=CAT_ISSUER, token=token, url=URL)
    assert "error" not in renewed, renewed
    with pytest.raises(MalformedToken):
        verify_here(renewed["token"])


def renew_here(token: str, at: float | None = None) -> RenewedCat:
    """PlayGate's own renewal at the edge (core/cat/renewal.py) of a token it accepts."""
    when = now() if at is None else at
    grant = verify_here(token)
    outcome = renew(grant.claims, grant.target, factories.cat_keyring(), when, max_session=4 * 3600)
    assert isinstance(outcome, RenewedCat), outcome
    return outcome


def test_renewal_round_trip_ours_renewed_here_verifies_there() -> None:
    """PlayGate renews at the edge; the library accepts the renewed token, reads the same catr
    and cti, exp = iat + expadd, and (like PlayGate) sees no renewal due any more."""
    start = now() - 100
    catr = {0: 2, 1: 300, 2: 60, 4: "cta-common-access-token"}
    token = factories.cat_token(now=start, ttl=130, extra={CATR: catr}, cwt_tag=True)
    before = node(
        op="validate", cwtTag=True, kid="c1", key=KEY, issuer=CAT_ISSUER, token=token, url=URL
    )
    assert before["shouldRenew"] is True  # 30 s left, deadline 60 s: both agree it is due
    renewed = renew_here(token)
    answer = node(
        op="validate",
        cwtTag=True,
        kid="c1",
        key=KEY,
        issuer=CAT_ISSUER,
        token=renewed.token,
        url=URL,
    )
    assert "error" not in answer, answer
    claims = answer["claims"]
    assert claims["exp"] - claims["iat"] == 300
    assert claims["nbf"] == start
    assert claims["cti"] == "0b71" * 4  # PlayGate keeps the token id (docs/cat.md says why)
    assert claims["catr"] == {
        "type": "header",
        "expadd": 300,
        "deadline": 60,
        "header-name": "cta-common-access-token",
    }
    assert answer["shouldRenew"] is False


def test_their_token_renewed_here_verifies_there_and_here() -> None:
    """A token the library generated, with its catr, renewed by PlayGate for another round."""
    start = now()
    claims = their_claims(
        exp=start + 30,
        catu={"path": {"prefix-match": "/videos/demo/"}},
        catr={"type": "automatic", "expadd": 240, "deadline": 45},
    )
    token = node(op="generate", cwtTag=True, kid="c1", key=KEY, claims=claims)["token"]
    renewed = renew_here(token, start)
    assert renewed.kind == "redirect"  # automatic, and the token came in the path
    assert verify_here(renewed.token).claims.expires_at == start + 240
    answer = node(
        op="validate",
        cwtTag=True,
        kid="c1",
        key=KEY,
        issuer=CAT_ISSUER,
        token=renewed.token,
        url=URL,
    )
    assert "error" not in answer, answer
    assert answer["claims"]["exp"] == start + 240
    assert answer["claims"]["cti"] == "0b71cafe"
