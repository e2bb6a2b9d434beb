"""One policy, every format: the signer's emitters and the validator's dispatcher agree."""

from __future__ import annotations

import pytest

from edge_validator.core.errors import BadSignature, ConfigurationError, OutOfScope
from edge_validator.formats.accept import ForeignVerifier
from edge_validator.formats.emit import emit
from edge_validator.formats.keys import FORMATS, FormatKeys
from tests.support.formats import NOW, format_keys_json, policy

PUBLIC_URL = "https://cdn.example.com"
SIGNER_KEYS = FormatKeys.from_json(format_keys_json(PUBLIC_URL))
SEGMENT = "hls/v0/seg_001.ts"


def validator(*accept: str) -> ForeignVerifier:
    return ForeignVerifier(SIGNER_KEYS, accept or FORMATS, max_ttl=3600)


def _target(url: str) -> str:
    return url.removeprefix(PUBLIC_URL)


@pytest.mark.parametrize("name", FORMATS)
def test_every_format_round_trips_from_one_policy(name: str) -> None:
    pol = policy(session_id="s-1") if name in ("akamai", "jwt") else policy()
    issued = emit(name, pol, SIGNER_KEYS, PUBLIC_URL)
    verifier = validator()
    grant = verifier.authorize(_target(issued.url), {}, None, NOW)
    assert grant is not None
    assert grant.path == "/videos/demo/master.m3u8"
    assert grant.token_id == issued.token_id
    assert grant.claims.scope == "/videos/demo/"
    assert grant.target.token is None
    # The signature parameters never reach the origin.
    assert "Signature" not in grant.target.query
    assert "hdnts" not in grant.target.query


@pytest.mark.parametrize("name", ["secure_link", "mediacdn", "jwt"])
def test_path_formats_cover_the_segments_a_player_resolves(name: str) -> None:
    issued = emit(name, policy(), SIGNER_KEYS, PUBLIC_URL)
    segment = _target(issued.url).rsplit("/", 1)[0] + "/" + SEGMENT
    grant = validator().authorize(segment, {}, None, NOW)
    assert grant is not None
    assert grant.path == f"/videos/demo/{SEGMENT}"


def test_cloudfront_segments_are_covered_by_the_cookies() -> None:
    issued = emit("cloudfront", policy(), SIGNER_KEYS, PUBLIC_URL)
    grant = validator().authorize(f"/videos/demo/{SEGMENT}", issued.cookies, None, NOW)
    assert grant is not None
    assert grant.token_id == issued.token_id


def test_akamai_segments_are_covered_by_the_cookie() -> None:
    issued = emit("akamai", policy(), SIGNER_KEYS, PUBLIC_URL)
    grant = validator().authorize(f"/videos/demo/{SEGMENT}", {"hdnts": issued.token}, None, NOW)
    assert grant is not None


@pytest.mark.parametrize("name", FORMATS)
def test_another_video_is_refused(name: str) -> None:
    issued = emit(name, policy(), SIGNER_KEYS, PUBLIC_URL)
    forged = _target(issued.url).replace("/videos/demo/", "/videos/demo2/")
    with pytest.raises((OutOfScope, BadSignature)):
        validator().authorize(forged, issued.cookies, None, NOW)


@pytest.mark.parametrize("name", FORMATS)
def test_a_format_not_accepted_is_not_recognised(name: str) -> None:
    others = tuple(f for f in FORMATS if f != name)
    issued = emit(name, policy(), SIGNER_KEYS, PUBLIC_URL)
    assert validator(*others).authorize(_target(issued.url), {}, None, NOW) is None


def test_playgate_targets_are_left_to_playgate() -> None:
    assert validator().authorize("/t/AAAA/videos/demo/master.m3u8", {}, None, NOW) is None
    assert validator().authorize("/videos/demo/master.m3u8?token=AAAA", {}, None, NOW) is None


def test_asymmetric_verification_is_remembered_for_the_whole_video() -> None:
    verifier = validator()
    issued = emit("jwt", policy(), SIGNER_KEYS, PUBLIC_URL)
    base = _target(issued.url).rsplit("/", 1)[0]
    for file in ("master.m3u8", SEGMENT, "hls/v0/seg_002.ts"):
        assert verifier.authorize(f"{base}/{file}", {}, None, NOW) is not None
    assert len(verifier._memo) == 1
    with pytest.raises(OutOfScope):  # remembered, still judged
        verifier.authorize(f"{base.replace('/demo', '/other')}/x.ts", {}, None, NOW)


def test_validators_keep_public_keys_only_and_refuse_half_configurations() -> None:
    verifier = validator()
    assert all(not k.is_private for k in verifier.keys.jwt.values())
    with pytest.raises(ConfigurationError, match="unknown"):
        ForeignVerifier(SIGNER_KEYS, ("bunny",))
    with pytest.raises(ConfigurationError, match="no keys"):
        ForeignVerifier(FormatKeys(), ("akamai",))
    with pytest.raises(ConfigurationError, match="public_url"):
        ForeignVerifier(FormatKeys(cloudfront=dict(SIGNER_KEYS.cloudfront)), ("cloudfront",))


@pytest.mark.parametrize(
    "doc",
    ["[]", "{}x", '{"bunny": []}', '{"akamai": [{"id": "a", "key_hex": "zz"}]}',
     '{"public_url": "https://x/"}', '{"akamai": [{"id": "a"}]}'],
)  # fmt: skip
def test_bad_key_documents_are_configuration_errors(doc: str) -> None:
    with pytest.raises(ConfigurationError):
        FormatKeys.from_json(doc)


def test_a_token_for_one_file_is_revocable_by_its_video() -> None:
    # A canned CloudFront URL (what most outstanding CloudFront links are) covers one file.
    from edge_validator.formats import cloudfront
    from tests.unit.test_format_cloudfront import HOST, PRIVATE

    keys = FormatKeys(public_url=HOST, cloudfront=dict(PRIVATE))
    key = PRIVATE["K1TESTKEY"]
    policy_text = cloudfront.canned_policy(f"{HOST}/videos/demo/master.m3u8", NOW + 60)
    signature = key.sign(policy_text.encode(), "SHA256")
    target = f"/videos/demo/master.m3u8?Expires={NOW + 60}&Signature={signature}"
    target += "&Key-Pair-Id=K1TESTKEY&Hash-Algorithm=SHA256"
    grant = ForeignVerifier(keys, ("cloudfront",)).authorize(target, {}, None, NOW)
    assert grant is not None
    assert grant.claims.scope == "/videos/demo/"
    with pytest.raises(BadSignature):
        ForeignVerifier(keys, ("cloudfront",)).authorize(
            target.replace("master.m3u8", "hls/v0/seg_001.ts"), {}, None, NOW
        )
