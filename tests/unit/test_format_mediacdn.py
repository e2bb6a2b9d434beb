"""Google Media CDN: Google's published samples both ways, and the segment-safe path token."""

from __future__ import annotations

import base64
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
    UnknownKey,
)
from edge_validator.formats import mediacdn
from edge_validator.formats.mediacdn import MediaCdnHmacKey, MediaCdnKey
from edge_validator.formats.policy import judge
from tests.support.formats import NOW, policy, vectors

VECTORS = vectors("mediacdn")
SIGNED = VECTORS["signed_requests"]
DUAL = VECTORS["dual_token"]
SAMPLE_KEY = MediaCdnKey.from_seed(SIGNED["key_name"], SIGNED["seed"])
ED_KEY = MediaCdnKey.from_seed("ed", DUAL["ed25519_seed"])
HMAC_KEY = MediaCdnHmacKey("mac", base64.urlsafe_b64decode(DUAL["hmac_secret"]))
KEY = MediaCdnKey.from_seed("k1", base64.urlsafe_b64encode(bytes(range(32))).decode())
HOST = "https://media.example.com"
ENTRY = "/videos/demo/master.m3u8"


@pytest.mark.parametrize("case", SIGNED["sign_url"], ids=lambda c: c["url"])
def test_signs_googles_signed_url_samples(case: dict[str, str]) -> None:
    assert mediacdn.sign_url(case["url"], SAMPLE_KEY, SIGNED["expires"]) == case["signed"]


@pytest.mark.parametrize("case", SIGNED["sign_url_prefix"], ids=lambda c: c["url"])
def test_signs_googles_url_prefix_samples(case: dict[str, str]) -> None:
    signed = mediacdn.sign_url_prefix(case["url"], case["prefix"], SAMPLE_KEY, SIGNED["expires"])
    assert signed == case["signed"]


@pytest.mark.parametrize("case", SIGNED["sign_cookie"], ids=lambda c: c["prefix"])
def test_signs_and_verifies_googles_cookie_samples(case: dict[str, str]) -> None:
    cookie = mediacdn.sign_cookie(case["prefix"], SAMPLE_KEY, SIGNED["expires"])
    assert f"Edge-Cache-Cookie={cookie}" == case["cookie"]
    value = case["cookie"].removeprefix("Edge-Cache-Cookie=")
    keys = {"my-key": SAMPLE_KEY.public()}
    host = "http://www.example.com"
    if case["prefix"].endswith("/"):
        access, path = mediacdn.verify("/foo/bar.ts", "", {"Edge-Cache-Cookie": value}, keys, host)
        assert (access.scope, access.expires_at, path) == (
            "/foo/",
            SIGNED["expires"],
            "/foo/bar.ts",
        )
    else:  # a prefix not ending in '/' would cover /index.html2: refused
        with pytest.raises((MalformedToken, OutOfScope)):
            mediacdn.verify(
                "/index.html", "", {"Edge-Cache-Cookie": value}, keys, "http://35.186.234.33"
            )


@pytest.mark.parametrize("case", DUAL["tokens"], ids=lambda c: c["id"])
def test_signs_and_verifies_googles_dual_token_samples(case: dict[str, Any]) -> None:
    key = ED_KEY if case["alg"] == "ed25519" else HMAC_KEY
    scope = {n: case[n] for n in ("url_prefix", "path_globs", "full_path") if n in case}
    assert mediacdn.sign_token(key, DUAL["expires"], **scope) == case["token"]
    path = case.get("full_path", "/example.m3u8")
    keys: dict[str, MediaCdnKey | MediaCdnHmacKey] = {"ed": ED_KEY.public(), "mac": HMAC_KEY}
    query = f"edge-cache-token={case['token']}"
    access, _ = mediacdn.verify(path, query, {}, keys, "http://10.20.30.40")
    assert access.expires_at == DUAL["expires"]
    assert access.key_id == ("ed" if case["alg"] == "ed25519" else "mac")
    assert (access.scope, access.exact) == ((path, True) if "full_path" in case else ("/", False))
    with pytest.raises(BadSignature):
        mediacdn.verify(
            path, query.replace("1663070400", "1663070401"), {}, keys, "http://10.20.30.40"
        )


def test_signs_googles_path_component_sample() -> None:
    case = DUAL["path_component"]
    key = MediaCdnKey.from_seed(case["key_name"], case["seed"])
    signed = mediacdn.sign_path_component(
        case["url_prefix"], case["filename"], key, DUAL["expires"]
    )
    assert signed == case["signed"]
    path = case["signed"].removeprefix("https://example.com")
    access, origin_path = mediacdn.verify(
        path, "", {}, {"test-key": key.public()}, "https://example.com"
    )
    assert (access.scope, origin_path) == ("/", "/test-filename")


def test_emitted_path_token_covers_every_file_of_the_video() -> None:
    url = mediacdn.emit(policy(), KEY, HOST)
    assert url.startswith(f"{HOST}/videos/demo/edge-cache-token=Expires=")
    keys = {"k1": KEY.public()}
    token_path = url.removeprefix(HOST).rsplit("/", 1)[0]
    for file in ("master.m3u8", "hls/v0/seg_001.ts"):
        access, path = mediacdn.verify(f"{token_path}/{file}", "", {}, keys, HOST)
        assert path == f"/videos/demo/{file}"
        assert judge(access, path, None, NOW) == path
    with pytest.raises(Expired):
        judge(access, path, None, NOW + 1000)
    with pytest.raises(BadSignature):  # the scope is in the signed prefix
        mediacdn.verify(token_path.replace("/demo/", "/demo2/") + "/x.ts", "", {}, keys, HOST)
    with pytest.raises(BadSignature):  # so is the host
        mediacdn.verify(f"{token_path}/x.ts", "", {}, keys, "https://other.example")


def test_short_token_binds_to_one_network_and_carries_session_and_token_ids() -> None:
    token = mediacdn.sign_token(
        KEY, NOW + 60, path_globs="/videos/demo/*", starts=NOW, session_id="s-1", data="tid-1",
        ip_ranges="192.0.2.0/24",
    )  # fmt: skip
    access, _ = mediacdn.verify(ENTRY, f"edge-cache-token={token}", {}, {"k1": KEY.public()}, HOST)
    assert (access.session_id, access.token_id, access.not_before) == ("s-1", "tid-1", NOW)
    judge(access, ENTRY, "192.0.2.9", NOW)
    with pytest.raises(IpMismatch):
        judge(access, ENTRY, "198.51.100.1", NOW)


@pytest.mark.parametrize(
    ("path", "query", "error"),
    [
        (ENTRY, "", MissingToken),
        ("/videos/edge-cache-token=Expires=1&KeyName=nope&Signature=AA/x", "", UnknownKey),
        ("/videos/edge-cache-token=KeyName=k1&Expires=1&Signature=AA/x", "", MalformedToken),
        ("/a/edge-cache-token=x/b/edge-cache-token=y/c", "", MalformedToken),
        (ENTRY, "edge-cache-token=PathGlobs=/*!/b/*~Expires=9~hmac=00", BadSignature),
        (ENTRY, "edge-cache-token=a&edge-cache-token=b", MalformedToken),
    ],
)
def test_missing_unknown_and_malformed(path: str, query: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        mediacdn.verify(path, query, {}, {"k1": KEY.public(), "mac": HMAC_KEY}, HOST)


@pytest.mark.parametrize("glob", ["/videos/*/x/*", "/videos/demo*", "/a/*,/b/*"])
def test_globs_that_cannot_be_judged_segment_by_segment_are_refused(glob: str) -> None:
    token = mediacdn.sign_token(KEY, NOW + 60, path_globs=glob)
    with pytest.raises(MalformedToken):
        mediacdn.verify(ENTRY, f"edge-cache-token={token}", {}, {"k1": KEY}, HOST)


def test_keys() -> None:
    with pytest.raises(ConfigurationError):
        MediaCdnHmacKey("k", b"short")
    with pytest.raises(ConfigurationError):
        MediaCdnKey("bad name!", KEY.key)
    with pytest.raises(ValueError, match="public"):
        mediacdn.emit(policy(), KEY.public(), HOST)
    assert SIGNED["seed"] not in repr(SAMPLE_KEY)
