"""CloudFront signed URLs and cookies: aws-cli's published cases, botocore's signer, the mapping."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from botocore.signers import CloudFrontSigner
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from edge_validator.core.errors import (
    BadSignature,
    ConfigurationError,
    Expired,
    IpMismatch,
    MalformedToken,
    MissingToken,
    NotYetValid,
    OutOfScope,
    UnknownKey,
)
from edge_validator.formats import cloudfront
from edge_validator.formats.cloudfront import CloudFrontPublicKey, CloudFrontSigningKey
from edge_validator.formats.policy import judge
from tests.support.formats import NOW, policy, vectors

VECTORS = vectors("cloudfront")
HOST = VECTORS["public_url"]
PRIVATE = {
    k: CloudFrontSigningKey.from_pem(k, v["private"].encode()) for k, v in VECTORS["keys"].items()
}
PUBLIC = {
    k: CloudFrontPublicKey.from_pem(k, v["public"].encode()) for k, v in VECTORS["keys"].items()
}
HASH = {"RSA-SHA1": "SHA1", "RSA-SHA256": "SHA256", "ECDSA-SHA256": "SHA256"}
RSA_CASES = [c for c in VECTORS["cases"] if "signature" in c]


def _signed_url(case: dict[str, Any], signature: str) -> tuple[str, str]:
    """(raw path, query) of the case's signed URL, as CloudFront would receive it."""
    path, _, query = case["url"].removeprefix(HOST).partition("?")
    params = [query] if query else []
    if case["canned"]:
        params.append(f"Expires={case['policyJson'].rsplit(':', 1)[1].rstrip('}]')}")
    else:
        params.append("Policy=" + cloudfront.b64encode(case["policyJson"].encode()))
    params += [f"Signature={signature}", f"Key-Pair-Id={case['keyPairId']}"]
    if HASH[case["signatureAlgorithm"]] == "SHA256":
        params.append("Hash-Algorithm=SHA256")
    return path, "&".join(params)


@pytest.mark.parametrize("case", RSA_CASES, ids=lambda c: c["id"])
def test_signs_aws_clis_published_cases(case: dict[str, Any]) -> None:
    key = PRIVATE[case["keyPairId"]]
    signature = key.sign(case["policyJson"].encode(), HASH[case["signatureAlgorithm"]])
    assert signature == case["signature"]
    if case["canned"]:
        expires = int(case["policyJson"].rsplit(":", 1)[1].rstrip("}]"))
        assert cloudfront.canned_policy(case["url"], expires) == case["policyJson"]


@pytest.mark.parametrize("case", VECTORS["cases"], ids=lambda c: c["id"])
def test_verifies_aws_clis_published_cases(case: dict[str, Any]) -> None:
    signature = case.get("signature") or PRIVATE[case["keyPairId"]].sign(
        case["policyJson"].encode()
    )
    path, query = _signed_url(case, signature)
    access = cloudfront.verify(path, query, {}, PUBLIC, HOST)
    assert access.key_id == case["keyPairId"]
    assert access.expires_at == 1767290400
    if "/*" in case["policyJson"]:
        assert (access.scope, access.exact) == ("/images/", False)
    else:
        assert (access.scope, access.exact) == (path, True)
    if "AWS:SourceIp" in case["policyJson"]:
        assert access.client_network == "192.168.0.0/24"
    # One bit of the path or the policy changed: refused.
    with pytest.raises((BadSignature, MalformedToken)):
        cloudfront.verify(
            path.replace(".", "x", 1), query.replace("Policy=ey", "Policy=eX"), {}, PUBLIC, HOST
        )


def _botocore_signer(key_id: str = "K1TESTKEY") -> CloudFrontSigner:
    private = PRIVATE[key_id].key
    assert isinstance(private, rsa.RSAPrivateKey)

    def rsa_signer(message: bytes) -> bytes:
        return private.sign(message, padding.PKCS1v15(), hashes.SHA1())

    return CloudFrontSigner(key_id, rsa_signer)


def _at(epoch: int) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(epoch, datetime.UTC)


def test_botocore_canned_policy_url_verifies() -> None:
    url = _botocore_signer().generate_presigned_url(
        f"{HOST}/videos/demo/master.m3u8", date_less_than=_at(NOW + 300)
    )
    path, _, query = url.removeprefix(HOST).partition("?")
    access = cloudfront.verify(path, query, {}, PUBLIC, HOST)
    assert judge(access, path, None, NOW) == "/videos/demo/master.m3u8"
    # A canned policy covers its one URL: a segment is not covered.
    with pytest.raises(BadSignature):
        cloudfront.verify("/videos/demo/hls/v0/seg_001.ts", query, {}, PUBLIC, HOST)


def test_botocore_custom_wildcard_policy_url_verifies_for_the_whole_video() -> None:
    signer = _botocore_signer()
    document = signer.build_policy(
        f"{HOST}/videos/demo/*",
        _at(NOW + 300),
        date_greater_than=_at(NOW),
        ip_address="198.51.100.0/24",
    )
    url = signer.generate_presigned_url(f"{HOST}/videos/demo/master.m3u8", policy=document)
    _, _, query = url.partition("?")
    access = cloudfront.verify("/videos/demo/hls/v0/seg_001.ts", query, {}, PUBLIC, HOST)
    assert (access.scope, access.not_before) == ("/videos/demo/", NOW)
    assert judge(access, "/videos/demo/hls/v0/seg_001.ts", "198.51.100.9", NOW)
    with pytest.raises(OutOfScope):
        judge(access, "/videos/demo2/master.m3u8", "198.51.100.9", NOW)
    with pytest.raises(IpMismatch):
        judge(access, "/videos/demo/master.m3u8", "203.0.113.1", NOW)
    with pytest.raises(NotYetValid):
        judge(access, "/videos/demo/master.m3u8", "198.51.100.9", NOW - 100)
    with pytest.raises(Expired):
        judge(access, "/videos/demo/master.m3u8", "198.51.100.9", NOW + 400)


@pytest.mark.parametrize("key_id", ["K1TESTKEY", "K2ECDSATEST"])
def test_emitted_url_and_cookies_verify(key_id: str) -> None:
    pol = policy(client_network="198.51.100.0/24")
    url = cloudfront.emit_url(pol, PRIVATE[key_id], HOST)
    assert url.startswith(f"{HOST}/videos/demo/master.m3u8?Policy=")
    _, _, query = url.partition("?")
    access = cloudfront.verify("/videos/demo/master.m3u8", query, {}, PUBLIC, HOST)
    assert (access.scope, access.exact, access.client_network) == (
        "/videos/demo/",
        False,
        "198.51.100.0/24",
    )
    cookies = cloudfront.emit_cookies(pol, PRIVATE[key_id], HOST)
    assert set(cookies) == {
        f"CloudFront-{n}" for n in ("Policy", "Signature", "Key-Pair-Id", "Hash-Algorithm")
    }
    by_cookie = cloudfront.verify("/videos/demo/hls/v0/seg_001.ts", "", cookies, PUBLIC, HOST)
    assert by_cookie == access


def test_the_algorithm_is_pinned_by_the_key_not_the_request() -> None:
    case = next(c for c in VECTORS["cases"] if c["id"] == "ecdsa-canned-policy-url")
    signature = PRIVATE["K2ECDSATEST"].sign(case["policyJson"].encode())
    path, query = _signed_url(case, signature)
    with pytest.raises(BadSignature):  # an ECDSA key with SHA-1
        cloudfront.verify(path, query.replace("&Hash-Algorithm=SHA256", ""), {}, PUBLIC, HOST)
    with pytest.raises(BadSignature):  # the ECDSA signature presented under the RSA key id
        cloudfront.verify(path, query.replace("K2ECDSATEST", "K1TESTKEY"), {}, PUBLIC, HOST)
    with pytest.raises(MalformedToken):
        cloudfront.verify(path, query.replace("SHA256", "MD5"), {}, PUBLIC, HOST)


def test_another_host_unknown_key_missing_and_duplicates() -> None:
    url = cloudfront.emit_url(policy(), PRIVATE["K1TESTKEY"], HOST)
    _, _, query = url.partition("?")
    with pytest.raises(OutOfScope):
        cloudfront.verify("/videos/demo/master.m3u8", query, {}, PUBLIC, "https://other.example")
    with pytest.raises(UnknownKey):
        cloudfront.verify(
            "/videos/demo/master.m3u8", query.replace("K1TESTKEY", "K9"), {}, PUBLIC, HOST
        )
    with pytest.raises(MissingToken):
        cloudfront.verify("/videos/demo/master.m3u8", "", {}, PUBLIC, HOST)
    with pytest.raises(MalformedToken):
        cloudfront.verify(
            "/videos/demo/master.m3u8", query + "&Key-Pair-Id=K1TESTKEY", {}, PUBLIC, HOST
        )
    with pytest.raises(MalformedToken):
        cloudfront.verify("/videos/demo/master.m3u8", query + "&signature=x", {}, PUBLIC, HOST)


@pytest.mark.parametrize(
    "resource",
    [f"{HOST}/videos/*/master.m3u8", f"{HOST}/videos/demo*", f"{HOST}/videos/de?o/*", "*"],
)
def test_resources_that_cannot_be_judged_segment_by_segment_are_refused(resource: str) -> None:
    key = PRIVATE["K1TESTKEY"]
    document = cloudfront.custom_policy(resource, NOW + 60).encode()
    query = f"Policy={cloudfront.b64encode(document)}&Signature={key.sign(document)}"
    query += "&Key-Pair-Id=K1TESTKEY&Hash-Algorithm=SHA256"
    with pytest.raises((MalformedToken, OutOfScope)):
        cloudfront.verify("/videos/demo/master.m3u8", query, {}, PUBLIC, HOST)


def test_policy_text_is_never_escaped_into_json_and_keys_are_checked() -> None:
    with pytest.raises(ValueError, match="quotes"):
        cloudfront.canned_policy(f'{HOST}/x","Resource":"*', NOW)
    with pytest.raises(ConfigurationError):
        CloudFrontSigningKey("K1", ec.generate_private_key(ec.SECP384R1()))
    with pytest.raises(ConfigurationError):
        CloudFrontPublicKey.from_pem("K1", b"not a key")
    assert "PRIVATE" not in repr(PRIVATE["K1TESTKEY"])
