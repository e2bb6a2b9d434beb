"""CAT end to end over real HTTP: the signer issues ``"format": "cat"`` URLs (HS256 and ES256),
the validator's shield serves them (path and query forms, relative URIs inherit the token), with
PlayGate's reasons, and the CLI signs and explains a CAT URL."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from edge_validator.asgi.app import create_app as create_validator
from edge_validator.cat_es256 import load_es256
from edge_validator.core.cat.keys import CatKeyRing
from edge_validator.core.cat.verify import CatVerifier
from edge_validator.core.keyring import KeyRing
from edge_validator.settings import ValidatorSettings
from playgate.cli import main
from playgate.explain import NO_CAT_KEYS
from signer.api_keys import ApiKeys, hash_api_key
from signer.app import create_app as create_signer
from signer.issuing import CatIssuer
from signer.settings import SignerSettings
from tests.support import factories
from tests.support.factories import API_KEY, AUTH, CAT_ES256, CAT_ISSUER, CAT_SECRET, SAMPLES
from tests.support.servers import serve_app


def cat_ring_json(active: str) -> str:
    k = base64.urlsafe_b64encode(CAT_SECRET).rstrip(b"=").decode()
    public = {k2: v for k2, v in CAT_ES256.items() if k2 != "d"}
    keys = {"c1": {"alg": "HS256", "k": k}, "e1": CAT_ES256, "e-pub": public}
    return json.dumps({"active": active, "keys": keys})


@pytest.fixture(scope="module")
def edge_url(keyring: KeyRing) -> Iterator[str]:
    """A validator that holds the HS256 secret and only the public half of the ES256 key."""
    k = base64.urlsafe_b64encode(CAT_SECRET).rstrip(b"=").decode()
    public = {name: v for name, v in CAT_ES256.items() if name != "d"}
    ring = CatKeyRing.from_json(
        json.dumps({"keys": {"c1": {"alg": "HS256", "k": k}, "e1": public}}),
        es256=load_es256,
    )
    cat = CatVerifier(ring, factories.cat_policy())
    settings = ValidatorSettings(keyring=keyring, media_root=SAMPLES, cat=cat)
    with serve_app(create_validator(settings)) as url:
        yield url


def signer_for(keyring: KeyRing, edge_url: str, active: str, mode: str = "path") -> SignerSettings:
    ring = CatKeyRing.from_json(cat_ring_json(active), load_es256)
    return SignerSettings(
        keyring=keyring,
        api_keys=ApiKeys({"test": hash_api_key(API_KEY)}),
        public_url=edge_url,
        token_mode=mode,
        cat=CatIssuer(ring, factories.cat_policy()),
    )


@pytest.fixture(scope="module", params=["c1", "e1"])
def cat_signer_url(
    request: pytest.FixtureRequest, keyring: KeyRing, edge_url: str
) -> Iterator[str]:
    with serve_app(
        create_signer(signer_for(keyring, edge_url, request.param), contract_check=True)
    ) as url:
        yield url


def issue(signer_url: str, **body: object) -> httpx.Response:
    body.setdefault("video_id", "demo")
    body.setdefault("format", "cat")
    return httpx.post(f"{signer_url}/v1/playback-urls", json=body, headers=AUTH, timeout=10)


def test_a_cat_url_plays_master_variant_and_segment(cat_signer_url: str) -> None:
    resp = issue(cat_signer_url, ttl_seconds=120)
    assert resp.status_code == 201
    body = resp.json()
    assert re.fullmatch(r"[0-9a-f]{32}", body["token_id"])
    master = httpx.get(body["url"], timeout=10)
    assert master.status_code == 200, master.headers
    variant = next(line for line in master.text.splitlines() if line and not line.startswith("#"))
    playlist = httpx.get(str(httpx.URL(body["url"]).join(variant)), timeout=10)
    assert playlist.status_code == 200
    segment = next(line for line in playlist.text.splitlines() if line and not line.startswith("#"))
    media = httpx.get(str(httpx.URL(str(httpx.URL(body["url"]).join(variant))).join(segment)))
    assert media.status_code == 200
    assert len(media.content) > 1000


def test_a_cat_is_refused_with_playgate_reasons(cat_signer_url: str, edge_url: str) -> None:
    body = issue(cat_signer_url, video_id="other").json()
    wrong_video = body["url"].replace("/videos/other/", "/videos/demo/")
    resp = httpx.get(wrong_video, timeout=10)
    assert (resp.status_code, resp.headers["x-playgate-reason"]) == (403, "out_of_scope")
    assert resp.headers["cache-control"] == "no-store"
    tampered = body["url"].replace(
        body["token"], body["token"][:-2] + ("AA" if body["token"][-2:] != "AA" else "BA")
    )
    resp = httpx.get(tampered, timeout=10)
    assert resp.status_code == 403
    assert resp.headers["x-playgate-reason"] in ("bad_signature", "malformed")


def test_a_cat_bound_to_another_network_is_refused(cat_signer_url: str) -> None:
    body = issue(cat_signer_url, client_ip="203.0.113.0/24").json()
    resp = httpx.get(body["url"], timeout=10)
    assert (resp.status_code, resp.headers["x-playgate-reason"]) == (403, "ip_mismatch")


def test_the_signer_refuses_what_a_cat_cannot_carry(cat_signer_url: str) -> None:
    resp = issue(cat_signer_url, max_uses=3)
    assert (resp.status_code, resp.json()["field"]) == (422, "max_uses")
    resp = issue(cat_signer_url, format="jwt")
    assert (resp.status_code, resp.json()["field"]) == (422, "format")


def test_a_signer_without_cat_keys_refuses_the_cat_format(signer_url: str) -> None:
    resp = issue(signer_url)
    assert (resp.status_code, resp.json()["field"]) == (422, "format")


def test_query_form_cat_urls_play(keyring: KeyRing, edge_url: str) -> None:
    settings = signer_for(keyring, edge_url, "c1", mode="query")
    with serve_app(create_signer(settings, contract_check=True)) as url:
        body = issue(url).json()
    assert "?token=" in body["url"]
    assert httpx.get(body["url"], timeout=10).status_code == 200


def test_cli_signs_and_explains_a_cat_url(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    cat_keys = tmp_path / "cat.json"
    cat_keys.write_text(cat_ring_json("c1"))
    ring_file = tmp_path / "ring.json"
    ring_file.write_text(
        json.dumps({"active": "k1", "keys": {"k1": "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE"}})
    )
    monkeypatch.setenv("PLAYGATE_CAT_ISSUER", CAT_ISSUER)
    assert (
        main(
            [
                "sign",
                "demo",
                "--format",
                "cat",
                "--cat-keys",
                str(cat_keys),
                "--client-ip",
                "10.0.0.0/8",
            ]
        )
        == 0
    )
    url = capsys.readouterr().out.strip()
    code = main(
        [
            "explain",
            url,
            "--keyring",
            str(ring_file),
            "--cat-keys",
            str(cat_keys),
            "--client-ip",
            "10.1.1.1",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    assert "ACCEPTED: serves /videos/demo/master.m3u8" in out
    assert "CAT (CTA-5007)" in out
    assert "10.0.0.0/8" in out
    code = main(
        [
            "explain",
            url,
            "--keyring",
            str(ring_file),
            "--cat-keys",
            str(cat_keys),
            "--client-ip",
            "192.0.2.1",
        ]
    )
    out = capsys.readouterr().out
    assert code == 1
    assert "REJECTED: ip_mismatch" in out
    assert "catnip" in out
    assert main(["sign", "demo", "--format", "cat", "--keyring", str(ring_file)]) == 2
    assert "--cat-keys" in capsys.readouterr().err


def test_cli_keygen_cat_then_sign_and_explain(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The commands docs/cat.md shows, as it shows them."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PLAYGATE_CAT_ISSUER", raising=False)
    assert main(["keygen", "-o", "keyring.json"]) == 0
    assert main(["keygen", "--cat", "--key-id", "cat1", "-o", "cat-keys.json"]) == 0
    assert CatKeyRing.from_file("cat-keys.json").signing_key().key_id == "cat1"
    capsys.readouterr()
    assert main(["sign", "demo", "--format", "cat", "--cat-keys", "cat-keys.json"]) == 0
    url = capsys.readouterr().out.strip()
    explain = ["explain", url, "--keyring", "keyring.json", "--cat-keys", "cat-keys.json"]
    assert main(explain) == 0
    assert "format:         CAT (CTA-5007)" in capsys.readouterr().out
    # Forgetting --cat-keys is the likely mistake, not a token "cut or altered in transit".
    monkeypatch.delenv("PLAYGATE_CAT_KEYS", raising=False)
    monkeypatch.delenv("PLAYGATE_CAT_KEYS_FILE", raising=False)
    assert main(explain[:-2]) == 1
    assert capsys.readouterr().out.splitlines()[1] == f"  hint: {NO_CAT_KEYS}"


def test_the_cat_header_carries_a_token_to_the_shield(cat_signer_url: str, edge_url: str) -> None:
    body = issue(cat_signer_url).json()
    url = f"{edge_url}/videos/demo/master.m3u8"
    resp = httpx.get(url, headers={"CTA-Common-Access-Token": body["token"]}, timeout=10)
    assert resp.status_code == 200
    assert httpx.get(url, timeout=10).status_code == 401
