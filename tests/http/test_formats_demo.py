"""`playgate demo` enables every format: a URL in any format from its signer plays at its edge."""

from __future__ import annotations

import sys
from pathlib import Path

import httpx

from edge_validator.formats.keys import FORMATS
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
        # Media CDN's dual token: the signer's short token is exchanged at the edge for a long
        # token (a path component the player follows, and the cookie).
        issued = httpx.post(
            f"{banner['Signer']}/v1/playback-urls",
            json={"video_id": "demo", "format": "mediacdn_short", "session_id": "s-7"},
            headers=auth,
            timeout=10,
        ).json()
        assert "?edge-cache-token=URLPrefix=" in issued["url"], issued
        assert "~SessionID=s-7~Data=" in issued["token"]
        first = httpx.get(issued["url"], timeout=10)
        assert first.status_code == 302, first.headers.get("x-playgate-reason")
        assert "KeyName=demo-mcdn-long" in first.headers["location"]
        assert first.headers["set-cookie"].startswith("Edge-Cache-Cookie=URLPrefix=")
        played = httpx.get(str(first.url.join(first.headers["location"])), timeout=10)
        assert played.status_code == 200
        segment = httpx.get(str(played.url.join(SEGMENT)), timeout=10)
        assert segment.status_code == 200
