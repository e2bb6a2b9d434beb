"""Query-token mode through the origin shield: rewritten manifests, played by ffprobe.

The token only goes to URIs under the configured public URL, never by the Host header."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import httpx
import pytest

from edge_validator.asgi.app import create_app
from edge_validator.core.keyring import KeyRing
from edge_validator.manifests.urls import parse_public_url
from edge_validator.settings import ValidatorSettings
from signer.issuing import PlaybackRequest, issue
from tests.support.servers import require_tool, serve_app


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


HOSTILE_PLAYLIST = """#EXTM3U
#EXTINF:2,
seg_000.ts
#EXTINF:2,
http://evil3.example/x.ts
#EXTINF:2,
//evil3.example/y.ts
#EXTINF:2,
https://edge.example/videos/evil/z.ts
#EXT-X-ENDLIST
"""


@pytest.fixture
def hostile_root(tmp_path: Path) -> Path:
    video = tmp_path / "videos" / "evil"
    video.mkdir(parents=True)
    (video / "index.m3u8").write_text(HOSTILE_PLAYLIST)
    (video / "leaky.m3u8").write_text("#EXTM3U\n#EXTINF:2,\n/\\evil.example/a.ts\n")
    (video / "define.m3u8").write_text(
        '#EXTM3U\n#EXT-X-DEFINE:NAME="h",VALUE="https://evil.example"\n#EXTINF:2,\n{$h}/s.ts\n'
    )
    # Python's int() refuses more than 4,300 digits: once a bare 500 without no-store.
    (video / "longport.m3u8").write_text(
        "#EXTM3U\n#EXTINF:2,\nhttps://edge.example:" + "0" * 5000 + "443/a.ts\n"
    )
    (video / "foreign.mpd").write_text(
        '<MPD xmlns="urn:mpeg:dash:schema:mpd:2011"><BaseURL>https://other-cdn.example/v/'
        '</BaseURL><Period><AdaptationSet><Representation id="0">'
        '<SegmentTemplate media="s-$Number$.m4s"/></Representation></AdaptationSet></Period></MPD>'
    )
    return tmp_path


@pytest.mark.parametrize("public_url", [None, "https://edge.example"])
def test_a_spoofed_host_header_never_makes_a_third_party_uri_ours(
    keyring: KeyRing, hostile_root: Path, public_url: str | None
) -> None:
    public = parse_public_url(public_url) if public_url else None
    settings = ValidatorSettings(keyring=keyring, media_root=hostile_root, public_url=public)
    with serve_app(create_app(settings)) as base:
        request = PlaybackRequest("evil", 600, file="index.m3u8")
        url = issue(request, keyring, time.time(), public_url=base, mode="query").url
        token = url.split("token=")[1]
        resp = httpx.get(url, headers={"Host": "evil3.example"}, timeout=10)
    assert resp.status_code == 200
    lines = resp.text.splitlines()
    assert f"seg_000.ts?token={token}" in lines
    assert "http://evil3.example/x.ts" in lines
    assert "//evil3.example/y.ts" in lines
    # Our own absolute URIs are recognised only from configuration.
    z = "https://edge.example/videos/evil/z.ts"
    assert (f"{z}?token={token}" if public_url else z) in lines
    assert resp.text.count(token) == (2 if public_url else 1)


@pytest.mark.parametrize("file", ["leaky.m3u8", "define.m3u8", "foreign.mpd", "longport.m3u8"])
def test_a_manifest_that_could_leak_the_token_is_refused_with_a_clean_403(
    keyring: KeyRing, hostile_root: Path, file: str
) -> None:
    settings = ValidatorSettings(keyring=keyring, media_root=hostile_root)
    with serve_app(create_app(settings)) as base:
        request = PlaybackRequest("evil", 600, file=file)
        url = issue(request, keyring, time.time(), public_url=base, mode="query").url
        resp = httpx.get(url, timeout=10)
    assert resp.status_code == 403
    assert resp.headers["X-PlayGate-Reason"] == "bad_manifest"
    assert resp.headers["Cache-Control"] == "no-store"
    assert resp.json()["error"] == "bad_manifest"
    assert url.split("token=")[1] not in resp.text
