"""``playgate demo`` as a user runs it: printed lines work with curl and ffprobe."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from playgate.demo.run import REDIS_DOWN
from tests.support.demo import running_demo
from tests.support.factories import SAMPLES
from tests.support.servers import free_port, require_tool


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
    resp = httpx.get(url, timeout=10, follow_redirects=True)
    assert resp.status_code == 200
    assert resp.history[0].status_code == 302  # to the playback session's URL


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


@pytest.mark.parametrize(("name", "kinds"), [("Playback URL", "vava"), ("DASH URL", "vva")])
def test_ffmpeg_reads_the_whole_presentation(demo: dict[str, str], name: str, kinds: str) -> None:
    # Every rendition, every segment: a segment the manifest promises but the origin lacks is
    # an error here (the DASH video once had 3 segments, its audio 4, and ffmpeg asked for a 4th).
    ffmpeg, ffprobe = require_tool("ffmpeg"), require_tool("ffprobe")
    url = demo[name]
    decoded = subprocess.run(
        [ffmpeg, "-nostdin", "-v", "error", "-i", url, "-map", "0", "-f", "null", "-"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert (decoded.returncode, decoded.stderr) == (0, "")
    entries = "stream=index,codec_type:packet=stream_index,pts_time,duration_time"
    probed = subprocess.run(
        [ffprobe, "-v", "error", "-of", "json", "-show_entries", entries, url],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert probed.stderr == ""
    report = json.loads(probed.stdout)
    assert "".join(s["codec_type"][0] for s in report["streams"]) == kinds
    spans: dict[int, list[tuple[float, float]]] = defaultdict(list)
    for packet in report["packets"]:
        start = float(packet["pts_time"])
        spans[packet["stream_index"]].append((start, start + float(packet["duration_time"])))
    for stream in report["streams"]:
        packets = spans[stream["index"]]
        duration = max(end for _, end in packets) - min(start for start, _ in packets)
        # 6 s of video; the tone stops at 5.9 s, padded to whole AAC frames (5.944 s).
        assert 5.85 <= duration <= 6.05, (stream, duration)


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


def test_closing_the_demos_terminal_stops_it_and_removes_its_folder() -> None:
    """SIGHUP (the terminal closed) stops the demo as Ctrl-C does: no key ring left in /tmp."""
    with running_demo([sys.executable, "-m", "playgate.cli"], stop=signal.SIGHUP) as lines:
        assert Path(lines["Shell"].removeprefix("source ")).is_file()


def _refused_demo(*argv: str, **env: str) -> str:
    """A demo that must stop before starting anything: its one line on stderr."""
    command = [sys.executable, "-m", "playgate.cli", "demo", "--signer-port", "0"]
    done = subprocess.run(
        [*command, "--edge-port", "0", *argv],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (done.returncode, done.stdout) == (2, ""), done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    return lines[0]


def test_a_redis_url_that_does_not_answer_stops_the_demo_in_one_line() -> None:
    """Else it would start and refuse every URL it prints (state_unavailable) behind a warning."""
    line = _refused_demo(REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")
    assert line.startswith(f"playgate demo: {REDIS_DOWN} (")


def test_a_redis_url_that_is_no_url_stops_the_demo_in_one_line() -> None:
    line = _refused_demo(REDIS_URL="redis://127.0.0.1:notaport/0")
    assert line == "playgate: bad_configuration: REDIS_URL's port is not a number from 0 to 65535"


@pytest.mark.parametrize(
    ("argv", "line"),
    [
        (["--origin", "/no/such/folder"], "--origin /no/such/folder is not a folder: give the"),
        (["--edge", "nginx", "--origin", "/no/such/folder"], "/no/such/folder is not a folder"),
        (
            ["--origin", "ftp://host/x"],
            "--origin ftp://host/x: give a folder, an http(s):// origin",
        ),
    ],
)
def test_an_origin_that_serves_nothing_stops_the_demo_in_one_line(
    argv: list[str], line: str
) -> None:
    """Else every URL it prints would be a 404 (ftp://host/x was taken for a folder)."""
    refused = _refused_demo(*argv)
    assert refused.startswith("playgate demo: ")
    assert line in refused
