"""Every format from the signer's API plays through the shield, with PlayGate's state checks."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from edge_validator.asgi.app import create_app as create_validator
from edge_validator.core.keyring import KeyRing
from edge_validator.formats.keys import FORMATS, FormatKeys
from edge_validator.settings import ValidatorSettings
from edge_validator.state.settings import StateSettings
from signer.api_keys import ApiKeys, hash_api_key
from signer.app import create_app as create_signer
from signer.settings import SignerSettings
from tests.support.factories import API_KEY, AUTH, SAMPLES
from tests.support.formats import format_keys_json
from tests.support.servers import serve_app
from tests.support.state_helpers import wait_for_status

# The CDN in front of the shield: CloudFront and Media CDN sign its URLs; it forwards the path
# and query (and cookies) to the shield, as the tests do.
CDN = "https://cdn.example.com"
SEGMENT = "hls/v0/seg_001.ts"


@dataclass(frozen=True)
class Deployment:
    signer: str
    shield: str

    def issue(self, **fields: object) -> dict[str, object]:
        resp = httpx.post(f"{self.signer}/v1/playback-urls", json=fields, headers=AUTH, timeout=10)
        assert resp.status_code == 201, resp.text
        return dict(resp.json())

    def at_shield(self, url: str) -> str:
        return url.replace(CDN, self.shield)


@pytest.fixture(scope="module")
def deployment(redis_url: str) -> Iterator[Deployment]:
    keyring = KeyRing({"k1": b"F" * 32}, "k1")
    signer_keys = FormatKeys.from_json(format_keys_json(CDN))
    # The validator is given the same document and keeps only the public halves.
    state = StateSettings(redis_url=redis_url, key_prefix=f"formats{time.monotonic_ns()}")
    validator = ValidatorSettings(
        keyring=keyring,
        media_root=SAMPLES,
        state=state,
        accept_formats=FORMATS,
        format_keys=signer_keys,
    )
    with serve_app(create_validator(validator)) as shield:
        settings = SignerSettings(
            keyring=keyring,
            api_keys=ApiKeys({"test": hash_api_key(API_KEY)}),
            public_url=shield,
            state=state,
            format_keys=signer_keys,
        )
        with serve_app(create_signer(settings, contract_check=True)) as signer:
            yield Deployment(signer, shield)


def _segment_request(
    issued: dict[str, object], deployment: Deployment
) -> tuple[str, dict[str, str]]:
    """The segment a player fetches next: a relative URI, plus the cookies it was given."""
    url = deployment.at_shield(str(issued["url"]))
    cookies = dict(issued.get("cookies") or {})  # type: ignore[call-overload]
    if issued["format"] == "akamai":
        cookies["hdnts"] = str(issued["token"])  # Akamai's cookie token covers the segments
    base = url.split("?", 1)[0]
    return str(httpx.URL(base).join(SEGMENT)), cookies


@pytest.mark.parametrize("name", FORMATS)
def test_a_url_in_every_format_plays_through_the_shield(name: str, deployment: Deployment) -> None:
    issued = deployment.issue(video_id="demo", format=name, ttl_seconds=120)
    assert issued["format"] == name
    master = httpx.get(deployment.at_shield(str(issued["url"])), timeout=10)
    assert master.status_code == 200, master.headers.get("x-playgate-reason")
    assert master.text.startswith("#EXTM3U")
    assert master.headers["x-playgate-token-id"] == issued["token_id"]
    segment, cookies = _segment_request(issued, deployment)
    resp = httpx.get(segment, cookies=cookies, timeout=10)
    assert resp.status_code == 200, resp.headers.get("x-playgate-reason")
    assert resp.content[:1] == b"G"  # an MPEG-TS sync byte


@pytest.mark.parametrize("name", FORMATS)
def test_every_format_is_revoked_by_its_token_id(name: str, deployment: Deployment) -> None:
    issued = deployment.issue(video_id="demo", format=name, ttl_seconds=120)
    url = deployment.at_shield(str(issued["url"]))
    assert httpx.get(url, timeout=10).status_code == 200
    revoked = httpx.post(
        f"{deployment.signer}/v1/revocations",
        json={"token_id": issued["token_id"]},
        headers=AUTH,
        timeout=10,
    )
    assert revoked.status_code == 201
    resp = wait_for_status(url, 403)
    assert resp.status_code == 403
    assert resp.headers["x-playgate-reason"] == "revoked"
    assert resp.headers["cache-control"] == "no-store"


def test_a_media_cdn_signature_padded_or_not_is_one_token_to_revoke(
    deployment: Deployment,
) -> None:
    """Media CDN signatures are accepted padded or not (Google's samples pad them, PlayGate's
    signer does not): re-padding a revoked URL's signature must not make it another token."""
    # Not 120 s: Media CDN signatures are deterministic, so a URL for the same video and expiry
    # is the very token the test above revoked when both run within one second.
    issued = deployment.issue(video_id="demo", format="mediacdn", ttl_seconds=117)
    url = deployment.at_shield(str(issued["url"]))
    signature = url.partition("&Signature=")[2].partition("/")[0]
    bare = signature.rstrip("=")
    other = bare if bare != signature else bare + "=" * (-len(bare) % 4)
    padded = url.replace(signature, other)  # the same signature in its other form
    assert padded != url
    first = httpx.get(padded, timeout=10)
    assert first.status_code == 200, (first.headers.get("x-playgate-reason"), signature, other)
    assert first.headers["x-playgate-token-id"] == issued["token_id"]
    revoked = httpx.post(
        f"{deployment.signer}/v1/revocations",
        json={"token_id": issued["token_id"]},
        headers=AUTH,
        timeout=10,
    )
    assert revoked.status_code == 201
    assert wait_for_status(url, 403).headers["x-playgate-reason"] == "revoked"
    resp = httpx.get(padded, timeout=10)
    assert (resp.status_code, resp.headers["x-playgate-reason"]) == (403, "revoked")


def test_another_video_and_a_tampered_token_are_denied(deployment: Deployment) -> None:
    issued = deployment.issue(video_id="demo", format="jwt")
    url = deployment.at_shield(str(issued["url"]))
    other = httpx.get(url.replace("/videos/demo/", "/videos/other/"), timeout=10)
    assert (other.status_code, other.headers["x-playgate-reason"]) == (403, "out_of_scope")
    token = str(issued["token"])
    # One character inside the signature: a whole six bits, so the text stays canonical base64url
    # (a changed last character can set padding bits, which is "malformed", not a bad signature).
    i = len(token) - 10
    tampered = url.replace(token, token[:i] + ("B" if token[i] == "A" else "A") + token[i + 1 :])
    resp = httpx.get(tampered, timeout=10)
    assert (resp.status_code, resp.headers["x-playgate-reason"]) == (403, "bad_signature")


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"format": "bunny"}, "format"),
        ({"format": "akamai", "max_uses": 1}, "max_uses"),
        ({"format": "jwt", "client_ip": "192.0.2.0/24"}, "client_ip"),
    ],
)
def test_requests_a_format_cannot_carry_are_refused(
    fields: dict[str, object], field: str, deployment: Deployment
) -> None:
    resp = httpx.post(
        f"{deployment.signer}/v1/playback-urls",
        json={"video_id": "demo", **fields},
        headers=AUTH,
        timeout=10,
    )
    assert resp.status_code == 422
    assert resp.json()["field"] == field


def test_playgate_tokens_still_play_beside_the_formats(deployment: Deployment) -> None:
    issued = deployment.issue(video_id="demo")
    assert "format" not in issued
    opened = httpx.get(str(issued["url"]), timeout=10, follow_redirects=True)  # via its session
    assert opened.status_code == 200
    assert json.dumps(issued)  # the default response is unchanged
