"""Query-token mode through the origin shield: rewritten manifests, played by ffprobe."""

from __future__ import annotations

import subprocess
import time

import httpx
import pytest

from edge_validator.keyring import KeyRing
from signer.issuing import PlaybackRequest, issue
from tests.servers import require_tool


def query_url(keyring: KeyRing, base: str, file: str = "master.m3u8") -> str:
    request = PlaybackRequest("demo", 600, file=file)
    return issue(request, keyring, time.time(), public_url=base, mode="query").url


def test_manifests_are_rewritten_with_a_correct_length(
    keyring: KeyRing, validator_url: str
) -> None:
    url = query_url(keyring, validator_url)
    token = url.split("token=")[1]
    resp = httpx.get(url, timeout=10)
    assert resp.status_code == 200
    assert resp.headers["content-type"] == "application/vnd.apple.mpegurl"
    assert int(resp.headers["content-length"]) == len(resp.content)
    assert f"hls/v0/index.m3u8?token={token}" in resp.text
    media = httpx.get(httpx.URL(url).join(f"hls/v0/index.m3u8?token={token}"), timeout=10)
    assert f"seg_000.ts?token={token}" in media.text
    # A Range request for a manifest still gets the whole rewritten body.
    ranged = httpx.get(url, headers={"Range": "bytes=0-9"}, timeout=10)
    assert ranged.status_code == 200
    assert ranged.content == resp.content


def test_path_token_manifests_are_served_as_stored(keyring: KeyRing, validator_url: str) -> None:
    request = PlaybackRequest("demo", 600)
    url = issue(request, keyring, time.time(), public_url=validator_url).url
    assert "token=" not in httpx.get(url, timeout=10).text


@pytest.mark.parametrize("file", ["master.m3u8", "dash/manifest.mpd"])
def test_ffprobe_plays_query_token_urls(keyring: KeyRing, validator_url: str, file: str) -> None:
    url = query_url(keyring, validator_url, file)
    out = subprocess.run(
        [require_tool("ffprobe"), "-v", "error", "-count_frames", "-select_streams", "v:0",
         "-show_entries", "stream=nb_read_frames", "-of", "csv=p=0", url],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert int(out.stdout.split()[0]) >= 50
