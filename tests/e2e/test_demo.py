"""``playgate demo`` as a user runs it: printed lines work with curl and ffprobe."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import httpx
import pytest

from tests.support.demo import running_demo
from tests.support.factories import SAMPLES
from tests.support.servers import require_tool


@pytest.fixture(scope="module")
def demo() -> Iterator[dict[str, str]]:
    with running_demo([sys.executable, "-m", "playgate.cli"]) as lines:
        yield lines


def test_demo_playback_url_plays_in_ffprobe(demo: dict[str, str]) -> None:
    ffprobe = require_tool("ffprobe")
    out = subprocess.run(
        [
            ffprobe,
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-count_frames",
            "-show_entries",
            "stream=codec_name,nb_read_frames",
            "-of",
            "csv=p=0",
            demo["Playback URL"],
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    codec, frames = out.strip().splitlines()[0].split(",")
    assert codec == "h264"
    assert int(frames) >= 100  # 6 s at 25 fps


def test_demo_curl_line_issues_a_new_url(demo: dict[str, str]) -> None:
    curl = require_tool("curl")
    command = demo["New URL"].replace("curl ", f"{curl} ", 1)
    out = subprocess.run(
        ["bash", "-c", command], capture_output=True, text=True, timeout=30, check=True
    ).stdout
    url = httpx.Response(200, content=out).json()["url"]
    assert httpx.get(url, timeout=10).status_code == 200


def test_demo_rejects_tampered_and_out_of_scope(demo: dict[str, str]) -> None:
    url = demo["Playback URL"]
    token = url.split("/t/")[1].split("/")[0]
    tampered = url.replace(token, token[:-3] + ("AAA" if token[-3:] != "AAA" else "BAA"))
    assert httpx.get(tampered, timeout=10).status_code == 403
    assert httpx.get(url.replace("/videos/demo/", "/videos/other/"), timeout=10).status_code == 403


def test_demo_dash_url_serves_the_mpd(demo: dict[str, str]) -> None:
    resp = httpx.get(demo["DASH URL"], timeout=10)
    assert resp.status_code == 200
    assert resp.headers["content-type"] == "application/dash+xml"
    assert (SAMPLES / "videos/demo/dash/manifest.mpd").read_text() == resp.text


def test_demo_cat_url_from_the_signer_plays_through_the_edge(demo: dict[str, str]) -> None:
    """The demo enables CTA-5007: a "format": "cat" URL from its signer plays in ffprobe."""
    curl = require_tool("curl")
    command = demo["New CAT URL"].replace("curl ", f"{curl} ", 1)
    out = subprocess.run(
        ["bash", "-c", command], capture_output=True, text=True, timeout=30, check=True
    ).stdout
    url = httpx.Response(200, content=out).json()["url"]
    ffprobe = require_tool("ffprobe")
    probed = subprocess.run(
        [ffprobe, "-v", "error", "-show_entries", "stream=codec_name", "-of", "csv=p=0", url],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    assert "h264" in probed.split()
    assert httpx.get(demo["CAT URL"], timeout=10).status_code == 200
    tampered = url.replace("/videos/demo/", "/videos/other/")
    assert httpx.get(tampered, timeout=10).headers["x-playgate-reason"] == "out_of_scope"
