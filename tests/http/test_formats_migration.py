"""The worked migration of docs/formats.md: from CloudFront to an nginx edge, where the URLs
CloudFront signed before the switch keep playing through the shield until they expire."""

from __future__ import annotations

import datetime
import json
import time
from collections.abc import Iterator
from urllib.parse import parse_qsl

import httpx
import pytest
from botocore.signers import CloudFrontSigner
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from edge_validator.asgi.app import create_app as create_validator
from edge_validator.core.keyring import encode_secret
from edge_validator.settings import ValidatorSettings
from signer.api_keys import hash_api_key
from signer.app import create_app as create_signer
from signer.settings import SignerSettings
from tests.support.factories import API_KEY, AUTH, SAMPLES
from tests.support.formats import SECURE_LINK_SECRET
from tests.support.servers import serve_app

CDN = "https://cdn.example.com"  # the viewers' hostname: CloudFront before, the nginx edge after
KEY_PAIR_ID = "K2JCJMDEHXQW5F"
SEGMENTS = 6  # the sample video: two variants of three segments
CLOUDFRONT_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
PUBLIC_PEM = (
    CLOUDFRONT_KEY.public_key()
    .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    .decode()
)


def _rsa_signer(message: bytes) -> bytes:
    return CLOUDFRONT_KEY.sign(message, padding.PKCS1v15(), hashes.SHA1())


def outstanding_cloudfront_links(now: float) -> tuple[str, dict[str, str]]:
    """What the app handed out before the switch, signed as botocore signs for CloudFront:
    a URL for the master playlist and the signed cookies for the rest of the video."""
    signer = CloudFrontSigner(KEY_PAIR_ID, _rsa_signer)
    expires = datetime.datetime.fromtimestamp(now + 600, datetime.UTC)
    policy = signer.build_policy(f"{CDN}/videos/demo/*", expires)
    url = signer.generate_presigned_url(f"{CDN}/videos/demo/master.m3u8", policy=policy)
    params = dict(parse_qsl(url.partition("?")[2]))
    cookies = {f"CloudFront-{name}": value for name, value in params.items()}
    return url, cookies


@pytest.fixture(scope="module")
def edge(redis_url: str) -> Iterator[tuple[str, str]]:
    """After the switch: the shield behind the new edge, configured from the environment as an
    operator would, accepting CloudFront's key group next to the new formats."""
    format_keys = {
        "public_url": CDN,
        # From the CloudFront console: the key group's public key, nothing that can sign.
        "cloudfront": [{"id": KEY_PAIR_ID, "public_key_pem": PUBLIC_PEM}],
        "secure_link": [{"id": "sl1", "secret": SECURE_LINK_SECRET}],
    }
    keyring = json.dumps({"keys": {"k1": encode_secret(b"M" * 32)}, "active": "k1"})
    environ = {
        "PLAYGATE_KEYRING": keyring,
        "PLAYGATE_MEDIA_ROOT": str(SAMPLES),
        "PLAYGATE_ACCEPT_FORMATS": "cloudfront,secure_link",
        "PLAYGATE_FORMAT_KEYS": json.dumps(format_keys),
        "REDIS_URL": redis_url,
        "PLAYGATE_REDIS_PREFIX": f"migration{time.monotonic_ns()}",
    }
    validator = ValidatorSettings.from_env(environ)
    with serve_app(create_validator(validator)) as shield:
        signer_settings = SignerSettings.from_env(
            {
                **environ,
                "PLAYGATE_API_KEYS": f"app:{hash_api_key(API_KEY)}",
                "PLAYGATE_PUBLIC_URL": CDN,
            }
        )
        with serve_app(create_signer(signer_settings, contract_check=True)) as signer:
            yield shield, signer


def play(entry: str, shield: str, cookies: dict[str, str] | None = None) -> int:
    """A minimal HLS player: master, every variant, every segment; returns segments fetched."""
    fetched = 0
    with httpx.Client(cookies=cookies, timeout=10) as client:
        master_url = httpx.URL(entry.replace(CDN, shield))
        # A PlayGate URL opens a playback session (302 to /s/<session>/); players resolve
        # relative URIs against the URL the redirect ends at.
        master = client.get(master_url, follow_redirects=True)
        assert master.status_code == 200, master.headers.get("x-playgate-reason")
        master_url = master.url
        for variant in [line for line in master.text.splitlines() if line.endswith(".m3u8")]:
            # Relative URIs resolve against the URL fetched, without its query (RFC 3986).
            variant_url = master_url.copy_with(query=None).join(variant)
            playlist = client.get(variant_url)
            assert playlist.status_code == 200, playlist.headers.get("x-playgate-reason")
            for segment in [line for line in playlist.text.splitlines() if line.endswith(".ts")]:
                resp = client.get(variant_url.join(segment))
                assert resp.status_code == 200, resp.headers.get("x-playgate-reason")
                fetched += 1
    return fetched


def test_outstanding_cloudfront_links_keep_playing_after_the_switch(
    edge: tuple[str, str],
) -> None:
    shield, _ = edge
    url, cookies = outstanding_cloudfront_links(time.time())
    assert play(url, shield, cookies) == SEGMENTS


def test_new_links_from_the_signer_play_on_the_same_edge(edge: tuple[str, str]) -> None:
    shield, signer = edge
    for token_format in ("playgate", "secure_link"):
        issued = httpx.post(
            f"{signer}/v1/playback-urls",
            json={"video_id": "demo", "format": token_format},
            headers=AUTH,
            timeout=10,
        ).json()
        assert play(issued["url"], shield) == SEGMENTS


def test_cloudfront_links_expire_and_cannot_be_stretched(edge: tuple[str, str]) -> None:
    shield, _ = edge
    url, cookies = outstanding_cloudfront_links(time.time() - 3600)  # expired 50 minutes ago
    resp = httpx.get(url.replace(CDN, shield), timeout=10)
    assert (resp.status_code, resp.headers["x-playgate-reason"]) == (403, "expired")
    # A cookie set for the demo video is no key to another one.
    _, cookies = outstanding_cloudfront_links(time.time())
    other = httpx.get(f"{shield}/videos/other/master.m3u8", cookies=cookies, timeout=10)
    assert (other.status_code, other.headers["x-playgate-reason"]) == (403, "out_of_scope")


def test_after_the_last_cloudfront_link_expired_the_format_is_switched_off(
    edge: tuple[str, str],
) -> None:
    url, cookies = outstanding_cloudfront_links(time.time())
    environ = {
        "PLAYGATE_KEYRING": json.dumps({"keys": {"k1": encode_secret(b"M" * 32)}, "active": "k1"}),
        "PLAYGATE_MEDIA_ROOT": str(SAMPLES),
    }
    with serve_app(create_validator(ValidatorSettings.from_env(environ))) as plain:
        resp = httpx.get(url.replace(CDN, plain), cookies=cookies, timeout=10)
        assert (resp.status_code, resp.headers["x-playgate-reason"]) == (401, "missing")
