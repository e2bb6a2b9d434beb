"""The foreign formats at Lambda@Edge: secure_link and Akamai verified in the viewer-request
function (standard library only), the public-key formats refused by name; then the same through
the real bundle, unzipped and run with no site-packages."""

from __future__ import annotations

import json
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest

from edge_validator.core.keyring import new_keyring_json
from edge_validator.formats.emit import emit
from edge_validator.formats.keys import FormatKeys
from edge_validator.formats.lambda_formats import LambdaFormats
from edge_validator.lambda_edge import make_handler
from tests.support import factories
from tests.support.formats import NOW, format_keys_json, policy
from tests.unit.test_lambda_bundle import build, run_bundle

PUBLIC_URL = "https://cdn.example.com"
KEYS_JSON = format_keys_json(PUBLIC_URL)
KEYS = FormatKeys.from_json(KEYS_JSON)
BAKED = {name: json.loads(KEYS_JSON)[name] for name in ("secure_link", "akamai")}
FORMATS = LambdaFormats.from_config(BAKED, max_ttl=3600, leeway=5)


def event(url: str, cookie: str | None = None) -> dict[str, Any]:
    path = url.removeprefix(PUBLIC_URL)
    uri, _, query = path.partition("?")
    headers: dict[str, Any] = {"host": [{"key": "Host", "value": "cdn.example.com"}]}
    if cookie is not None:
        headers["cookie"] = [{"key": "Cookie", "value": cookie}]
    request = {
        "clientIp": "203.0.113.178",
        "method": "GET",
        "uri": uri,
        "querystring": query,
        "headers": headers,
    }
    return {"Records": [{"cf": {"request": request}}]}


def run(evt: dict[str, Any], formats: LambdaFormats = FORMATS, now: float = NOW) -> dict[str, Any]:
    verifier = factories.verifier()
    handler = make_handler(lambda: verifier, lambda: now, load_formats=lambda: formats)
    return handler(evt, None)


def reason(result: dict[str, Any]) -> tuple[str, str]:
    return result["status"], result["headers"]["x-playgate-reason"][0]["value"]


def test_a_secure_link_url_is_verified_and_forwarded_without_its_token() -> None:
    issued = emit("secure_link", policy(), KEYS, PUBLIC_URL)
    result = run(event(issued.url))
    assert result["uri"] == "/videos/demo/master.m3u8"
    segment = issued.url.rsplit("/", 1)[0] + "/hls/v0/seg_001.ts"
    assert run(event(segment))["uri"] == "/videos/demo/hls/v0/seg_001.ts"


def test_an_akamai_token_is_verified_in_the_query_or_a_cookie() -> None:
    issued = emit("akamai", policy(session_id="s-1"), KEYS, PUBLIC_URL)
    result = run(event(issued.url))
    assert result["uri"] == "/videos/demo/master.m3u8"
    assert "hdnts" not in result["querystring"]
    token = issued.url.partition("hdnts=")[2]
    by_cookie = run(event(f"{PUBLIC_URL}/videos/demo/hls/v0/seg_001.ts", f"a=1; hdnts={token}"))
    assert by_cookie["uri"] == "/videos/demo/hls/v0/seg_001.ts"


def test_the_shields_rules_apply() -> None:
    issued = emit("akamai", policy(), KEYS, PUBLIC_URL)
    other = f"{PUBLIC_URL}/videos/other/master.m3u8?hdnts={issued.url.partition('hdnts=')[2]}"
    assert reason(run(event(other))) == ("403", "out_of_scope")
    assert reason(run(event(issued.url), now=NOW + 3600)) == ("403", "expired")
    tampered = emit("secure_link", policy(), KEYS, PUBLIC_URL).url.replace("/sl/", "/sl/A", 1)
    assert run(event(tampered))["status"] in ("401", "403")


@pytest.mark.parametrize("name", ["cloudfront", "mediacdn", "jwt"])
def test_public_key_formats_are_refused_by_name(name: str) -> None:
    pol = policy(session_id="s-1") if name == "jwt" else policy()
    issued = emit(name, pol, KEYS, PUBLIC_URL)
    result = run(event(issued.url))
    assert reason(result) == ("403", "unsupported_format")
    message = json.loads(result["body"])["message"]
    assert ("CloudFront itself" if name == "cloudfront" else "origin shield") in message
    if issued.cookies:  # CloudFront's segments: the cookies alone are refused too
        cookie = "; ".join(f"{k}={v}" for k, v in issued.cookies.items())
        segment = event(f"{PUBLIC_URL}/videos/demo/hls/v0/seg_001.ts", cookie)
        assert reason(run(segment)) == ("403", "unsupported_format")


def test_without_baked_keys_the_shared_secret_formats_are_refused_too() -> None:
    issued = emit("secure_link", policy(), KEYS, PUBLIC_URL)
    assert reason(run(event(issued.url), LambdaFormats())) == ("403", "unsupported_format")


def test_playgate_tokens_are_judged_as_always() -> None:
    token = factories.token(factories.keyring(), now=NOW, token_id="tid-pg")
    result = run(event(f"{PUBLIC_URL}/t/{token}/videos/demo/hls/v0/seg_001.ts"))
    assert result["uri"] == "/videos/demo/hls/v0/seg_001.ts"


def test_the_bundle_verifies_them_with_the_standard_library_only(tmp_path: Path) -> None:
    ring = tmp_path / "keyring.json"
    ring.write_text(new_keyring_json("edge1"))
    keys_file = tmp_path / "formats.json"
    keys_file.write_text(KEYS_JSON)
    output = tmp_path / "lambda-edge.zip"
    done = build(ring, output, "--format-keys", str(keys_file))
    assert done.returncode == 0, done.stderr
    with zipfile.ZipFile(output) as zf:
        baked = json.loads(zf.read("edge_validator/baked_config.json"))
        zf.extractall(tmp_path / "unzipped")
    # Only the shared-secret formats' keys travel; nothing that verifies a public-key format.
    assert sorted(baked["formats"]) == ["akamai", "secure_link"]
    issued = {n: emit(n, policy(now=_now()), KEYS, PUBLIC_URL) for n in ("secure_link", "akamai")}
    cloudfront = emit("cloudfront", policy(now=_now()), KEYS, PUBLIC_URL)
    events = [event(issued["secure_link"].url), event(issued["akamai"].url), event(cloudfront.url)]
    doc = run_bundle(tmp_path / "unzipped", events)
    assert doc["foreign"] == []
    secure, akamai, refused = doc["results"]
    assert secure["uri"] == "/videos/demo/master.m3u8"
    assert akamai["uri"] == "/videos/demo/master.m3u8"
    assert reason(refused) == ("403", "unsupported_format")


def _now() -> int:
    return int(time.time())
