"""Akamai EdgeAuth 2.0: Akamai's published vectors both ways, and the segment-safe ACL mapping."""

from __future__ import annotations

from typing import Any

import pytest

from edge_validator.core.errors import (
    BadSignature,
    ConfigurationError,
    Expired,
    IpMismatch,
    MalformedToken,
    MissingToken,
    OutOfScope,
)
from edge_validator.formats import akamai
from edge_validator.formats.akamai import AkamaiKey
from edge_validator.formats.policy import judge
from tests.support.formats import NOW, policy, vectors

VECTORS = vectors("akamai")
VECTOR_KEY = AkamaiKey.from_hex("vector", VECTORS["key"])
KEY = AkamaiKey("ak1", bytes(range(32)))
ENTRY = "/videos/demo/master.m3u8"


def _fields(case: dict[str, Any]) -> list[tuple[str, str]]:
    fields = [("ip", case.get("ipAddress")), ("st", str(case["startTime"]))]
    fields += [("exp", str(case["endTime"])), ("acl", case.get("acl"))]
    fields += [("id", case.get("sessionId")), ("data", case.get("payload"))]
    return [(name, value) for name, value in fields if value is not None]


@pytest.mark.parametrize("case", VECTORS["cases"], ids=lambda c: c["id"])
def test_signs_akamais_published_vectors(case: dict[str, Any]) -> None:
    token = akamai.sign(_fields(case), VECTOR_KEY, case.get("url"))
    assert "_token_=" + token == case["token"]


@pytest.mark.parametrize("case", VECTORS["cases"], ids=lambda c: c["id"])
def test_authenticates_akamais_published_vectors(case: dict[str, Any]) -> None:
    token = case["token"].removeprefix("_token_=")
    path = case.get("url", "/path1")
    if "!" in case.get("acl", ""):
        # Several ACLs: authentic, but not a scope PlayGate can judge segment by segment.
        with pytest.raises(MalformedToken, match="segment"):
            akamai.verify(token, path, (VECTOR_KEY,))
        return
    access = akamai.verify(token, path, (VECTOR_KEY,))
    assert access.expires_at == case["endTime"]
    assert access.token_id == case.get("sessionId")
    with pytest.raises(BadSignature):
        akamai.verify(token, path, (KEY,))


def test_a_url_token_covers_its_url_only() -> None:
    case = VECTORS["cases"][4]
    token = case["token"].removeprefix("_token_=")
    with pytest.raises(BadSignature):
        akamai.verify(token, "/target/url2", (VECTOR_KEY,))


def test_emitted_token_is_an_acl_over_the_video_scope() -> None:
    token = akamai.emit(policy(session_id="sess-1"), KEY)
    assert token.startswith(f"st={NOW}~exp={NOW + 300}~acl=/videos/demo/*~id=tid-test~data=sess-1~")
    access = akamai.verify(token, ENTRY, (KEY,))
    assert (access.scope, access.exact, access.session_id) == ("/videos/demo/", False, "sess-1")
    assert (
        judge(access, "/videos/demo/hls/v0/seg_001.ts", None, NOW)
        == "/videos/demo/hls/v0/seg_001.ts"
    )


@pytest.mark.parametrize(
    "path", ["/videos/demo2/master.m3u8", "/videos/other/master.m3u8", "/videos/demo"]
)
def test_the_acl_is_segment_safe(path: str) -> None:
    access = akamai.verify(akamai.emit(policy(), KEY), path, (KEY,))
    with pytest.raises(OutOfScope):
        judge(access, path, None, NOW)


def test_expiry_and_client_address() -> None:
    token = akamai.emit(policy(client_network="192.0.2.7/32"), KEY)
    assert token.startswith("ip=192.0.2.7~")
    access = akamai.verify(token, ENTRY, (KEY,))
    judge(access, ENTRY, "192.0.2.7", NOW)
    with pytest.raises(IpMismatch):
        judge(access, ENTRY, "192.0.2.8", NOW)
    with pytest.raises(Expired):
        judge(access, ENTRY, "192.0.2.7", NOW + 1000)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda t: t.replace("acl=/videos/demo/*", "acl=/videos/*"),
        lambda t: t.replace("exp=", "exp=1"),
        lambda t: t[:-1] + ("0" if t[-1] != "0" else "1"),
    ],
)
def test_any_change_breaks_the_hmac(mutate: Any) -> None:
    with pytest.raises(BadSignature):
        akamai.verify(mutate(akamai.emit(policy(), KEY)), ENTRY, (KEY,))


@pytest.mark.parametrize(
    "token",
    [
        "exp=1~st=1~acl=/*~hmac=" + "0" * 64,  # out of order
        "st=1~st=1~exp=2~acl=/*~hmac=" + "0" * 64,  # repeated
        "st=1~exp=2~acl=/*~hmac=" + "0" * 40,  # not SHA-256
        "st=1~exp=2~acl=/*~salt=x~hmac=" + "0" * 64,  # unknown field
        "st=1~exp=2~acl=/*",  # no hmac
        "x" * 3000,
    ],
)
def test_malformed_tokens(token: str) -> None:
    with pytest.raises(MalformedToken):
        akamai.verify(token, ENTRY, (KEY,))


def test_missing_token() -> None:
    with pytest.raises(MissingToken):
        akamai.verify(None, ENTRY, (KEY,))


@pytest.mark.parametrize("acl", ["/videos/*/x/*", "/videos/de?o/*", "/videos/demo/*!/other/*"])
def test_acls_that_cannot_be_judged_segment_by_segment_are_refused(acl: str) -> None:
    token = akamai.sign([("exp", str(NOW + 60)), ("acl", acl)], KEY)
    with pytest.raises(MalformedToken):
        akamai.verify(token, ENTRY, (KEY,))


def test_keys_are_hex_of_at_least_32_bytes_and_never_printed() -> None:
    with pytest.raises(ConfigurationError):
        AkamaiKey.from_hex("k", "eee7e9157f81b2f6d471bf2c")
    with pytest.raises(ConfigurationError):
        AkamaiKey.from_hex("k", "xyz")
    assert VECTORS["key"] not in repr(VECTOR_KEY)
