"""API keys with scopes and a video-id prefix: each caller does only what its key allows."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from edge_validator.core.errors import ConfigurationError
from edge_validator.core.keyring import KeyRing
from edge_validator.state.memory import MemoryStore
from signer.api_keys import ApiKeys, generate_api_key, hash_api_key
from signer.app import create_app as create_signer
from signer.settings import SignerSettings
from tests.support.servers import serve_app

KEYS = {name: generate_api_key() for name in ("full", "cms", "player", "support", "auditor")}
ENTRIES = {
    "full": "",
    "cms": ":sign+revoke:tenant-a-",
    "player": ":sign:tenant-a-",
    "support": ":read",
    "auditor": ":read:tenant-a-",
}


@pytest.fixture(scope="module")
def signer(keyring: KeyRing) -> Iterator[str]:
    text = ",".join(f"{n}:{hash_api_key(KEYS[n])}{suffix}" for n, suffix in ENTRIES.items())
    settings = SignerSettings(keyring=keyring, api_keys=ApiKeys.parse(text))
    # One store handed in (shared, as the demo's): revocations are accepted in memory.
    with serve_app(create_signer(settings, store=MemoryStore(), contract_check=True)) as url:
        yield url


def call(signer: str, who: str, method: str, path: str, body: object = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {KEYS[who]}"}
    return httpx.request(method, signer + path, json=body, headers=headers, timeout=10)


def sign(signer: str, who: str, video: str) -> httpx.Response:
    return call(signer, who, "POST", "/v1/playback-urls", {"video_id": video})


def revoke(signer: str, who: str, **target: str) -> httpx.Response:
    return call(signer, who, "POST", "/v1/revocations", target)


def listed(signer: str, who: str) -> httpx.Response:
    return call(signer, who, "GET", "/v1/revocations")


def refused(resp: httpx.Response, reason: str) -> bool:
    return (
        resp.status_code == 403
        and resp.json()["error"] == reason
        and resp.headers["x-playgate-reason"] == reason
        and resp.headers["cache-control"] == "no-store"
    )


def test_a_key_signs_only_under_its_video_prefix(signer: str) -> None:
    assert sign(signer, "player", "tenant-a-12").status_code == 201
    assert refused(sign(signer, "player", "tenant-b-12"), "video_not_allowed")
    assert refused(sign(signer, "player", "tenant-a"), "video_not_allowed")
    assert refused(sign(signer, "support", "tenant-a-12"), "missing_scope")
    assert sign(signer, "full", "anything").status_code == 201


def test_a_key_revokes_only_with_the_scope_and_only_its_videos(signer: str) -> None:
    assert refused(revoke(signer, "player", video_id="tenant-a-1"), "missing_scope")
    assert revoke(signer, "cms", video_id="tenant-a-1").status_code == 201
    assert refused(revoke(signer, "cms", video_id="tenant-b-1"), "video_not_allowed")
    # Users and sessions span every video: a prefixed key cannot cut them off.
    assert refused(revoke(signer, "cms", user_id="u-1"), "video_not_allowed")
    assert refused(revoke(signer, "cms", session_id="s-1"), "video_not_allowed")
    assert revoke(signer, "full", user_id="u-1").status_code == 201


def test_a_key_reads_only_with_the_scope_and_only_its_videos(signer: str) -> None:
    assert revoke(signer, "full", video_id="tenant-b-9").status_code == 201
    assert revoke(signer, "cms", video_id="tenant-a-9").status_code == 201
    assert refused(listed(signer, "cms"), "missing_scope")
    everything = {(r["kind"], r["value"]) for r in listed(signer, "support").json()["revocations"]}
    assert {("video_id", "tenant-b-9"), ("video_id", "tenant-a-9")} <= everything
    own = {(r["kind"], r["value"]) for r in listed(signer, "auditor").json()["revocations"]}
    assert ("video_id", "tenant-a-9") in own
    assert all(kind == "video_id" and value.startswith("tenant-a-") for kind, value in own)


@pytest.mark.parametrize(
    "entry",
    [
        f"x:{'0' * 64}:admin",
        f"x:{'0' * 64}:",
        f"x:{'0' * 64}:sign:tenant/a",
        f"x:{'0' * 64}:sign:a:b",
        f"x:{'0' * 64},x:{'1' * 64}",
    ],
)
def test_a_bad_key_entry_stops_the_signer(entry: str) -> None:
    with pytest.raises(ConfigurationError):
        ApiKeys.parse(entry)
