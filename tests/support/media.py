"""Media made by ffmpeg for real-time playback tests: a VOD film (HLS and DASH) and a live
stream that ffmpeg keeps writing as a rolling HLS playlist."""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

from tests.support.servers import require_tool, run_process

SEGMENT_SECONDS = 2
# Small pictures, one key frame per segment: cheap to encode and to decode on a loaded machine.
_SOURCE = [
    "-f", "lavfi", "-i", "testsrc=size=320x180:rate=25",
    "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
]  # fmt: skip
_ENCODE = [
    "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-profile:v", "baseline",
    "-g", "50", "-keyint_min", "50", "-sc_threshold", "0",
    "-c:a", "aac", "-b:a", "64k",
]  # fmt: skip


def make_film(folder: Path, seconds: int) -> None:
    """``master.m3u8`` (one variant, ``index.m3u8``, 2 s segments) and ``manifest.mpd``."""
    ffmpeg = require_tool("ffmpeg")
    folder.mkdir(parents=True, exist_ok=True)
    hls = [
        "-f", "hls", "-hls_time", str(SEGMENT_SECONDS), "-hls_playlist_type", "vod",
        "-hls_segment_filename", str(folder / "seg_%03d.ts"),
        "-master_pl_name", "master.m3u8", str(folder / "index.m3u8"),
    ]  # fmt: skip
    dash = [
        "-f", "dash", "-seg_duration", str(SEGMENT_SECONDS), "-use_template", "1",
        "-use_timeline", "0", str(folder / "manifest.mpd"),
    ]  # fmt: skip
    for muxer in (hls, dash):
        argv = [ffmpeg, "-nostdin", "-loglevel", "error", *_SOURCE, "-t", str(seconds)]
        subprocess.run([*argv, *_ENCODE, *muxer], check=True, capture_output=True, timeout=120)


@contextlib.contextmanager
def live_stream(folder: Path, log: Path) -> Iterator[Path]:
    """ffmpeg encoding in real time into a sliding ``index.m3u8`` (6 segments, old ones
    deleted), as a live packager does; yields once the playlist lists three segments."""
    ffmpeg = require_tool("ffmpeg")
    folder.mkdir(parents=True, exist_ok=True)
    playlist = folder / "index.m3u8"
    argv = [
        ffmpeg, "-nostdin", "-loglevel", "error", "-re", *_SOURCE, *_ENCODE,
        "-f", "hls", "-hls_time", str(SEGMENT_SECONDS), "-hls_list_size", "6",
        "-hls_flags", "delete_segments+temp_file+omit_endlist",
        "-hls_segment_filename", str(folder / "live_%05d.ts"), str(playlist),
    ]  # fmt: skip
    with run_process(argv, log=log) as proc:
        deadline = time.monotonic() + 30
        while not (playlist.exists() and playlist.read_text().count("#EXTINF") >= 3):
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "the live encoder wrote no playlist"
            time.sleep(0.2)
        yield playlist


def media_seconds(path: Path) -> float:
    """The duration ffprobe reads from a recorded file."""
    ffprobe = require_tool("ffprobe")
    out = subprocess.run(
        [ffprobe, "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", str(path)],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return float(out.stdout.strip())
