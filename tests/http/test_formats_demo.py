"""`playgate demo` enables every format: a URL in any format from its signer plays at its edge."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import httpx

from edge_validator.formats import mediacdn
from edge_validator.formats.keys import FORMATS, FormatKeys
from edge_validator.formats.mediacdn import MediaCdnKey
from tests.http.test_demo_state import _banner
from tests.support.factories import ROOT
from tests.support.servers import free_port, run_process

SEGMENT = "hls/v0/seg_001.ts"


def test_a_url_in_every_format_plays_through_the_demo(tmp_path: Path) -> None:
    signer_port, edge_port = free_port(), free_port()
    log = tmp_path / "demo.log"
    argv = [sys.executable, "-m", "playgate.cli", "demo", "--signer-port", str(signer_port)]
    with run_process([*argv, "--edge-port", str(edge_port)], cwd=ROOT, log=log):
        banner = _banner(log)
        assert banner["Formats"] == ",".join(("playgate", "cat", *FORMATS))
        auth = {"Authorization": f"Bearer {banner['API key']}"}
        for name in ("playgate", "cat", *FORMATS):
            issued = httpx.post(
                f"{banner['Signer']}/v1/playback-urls",
                json={"video_id": "demo", "format": name},
                headers=auth,
                timeout=10,
            ).json()
            # A PlayGate URL opens a playback session: a 302 to /s/<session>/, as players follow.
            master = httpx.get(issued["url"], timeout=10, follow_redirects=True)
            assert master.status_code == 200, (name, master.headers.get("x-playgate-reason"))
            cookies = dict(issued.get("cookies", {}))
            if name == "akamai":
                cookies["hdnts"] = issued["token"]
            segment = httpx.URL(issued["url"]).copy_with(query=None).join(SEGMENT)
            resp = httpx.get(segment, cookies=cookies, timeout=10)
            assert resp.status_code == 200, (name, resp.headers.get("x-playgate-reason"))
        # Media CDN's dual token: a short token signed with the demo's key (as an app server
        # would) is exchanged at the edge for a long token the player follows.
        keys = FormatKeys.from_file(
            str(Path(banner["Key ring"].split()[0]).with_name("formats.json"))
        )
        short_key = next(k for k in keys.mediacdn.values() if isinstance(k, MediaCdnKey))
        base = f"{keys.public_url}/videos/demo/"
        token = mediacdn.sign_token(short_key, int(time.time()) + 30, url_prefix=base)
        first = httpx.get(f"{base}master.m3u8?edge-cache-token={token}", timeout=10)
        assert first.status_code == 302, first.headers.get("x-playgate-reason")
        assert "KeyName=demo-mcdn-long" in first.headers["location"]
        played = httpx.get(str(first.url.join(first.headers["location"])), timeout=10)
        assert played.status_code == 200
