"""Segments on one keep-alive connection never wait for the viewer's delayed ACK.

With ``tcp_nopush on`` nginx corks a sendfile response and clears TCP_NODELAY to do so; on
uncorking it does not set TCP_NODELAY again, so the last partial packet of a response waits for
the ACK of the one before it, which the viewer delays by 40 ms. On loopback a cached 100 KB
segment then took 44 ms (20 segments: 0.9 s) instead of under a millisecond
(docs/performance.md#keep-alive-stall).
"""

from __future__ import annotations

import http.client
import os
import re
import time
from pathlib import Path

from edge_validator.core.keyring import KeyRing
from playgate.nginx.config import EdgeConfig, render
from signer.issuing import PlaybackRequest, issue
from tests.support.nginx_edge import nginx_edge
from tests.support.servers import LOOPBACK

KEYRING = KeyRing({"k1": b"K" * 32}, "k1")
# 100 KB: on loopback (64 KB packets) one full packet and a partial one, the stalling shape.
SEGMENT_BYTES = 100 * 1024
FETCHES = 20


def test_the_edge_config_never_corks_responses(tmp_path: Path) -> None:
    config = EdgeConfig("127.0.0.1:8088", "http://127.0.0.1:1", "http://127.0.0.1:2", tmp_path)
    text = render(config)
    assert re.search(r"^\s*sendfile on;", text, re.M)
    assert re.findall(r"^\s*tcp_nopush\s+(\w+);", text, re.M) == ["off"]
    assert not re.search(r"^\s*tcp_nodelay\s+off;", text, re.M)


def test_segments_on_one_keepalive_connection_do_not_stall(tmp_path: Path) -> None:
    media = tmp_path / "media" / "videos" / "demo"
    media.mkdir(parents=True)
    (media / "seg.ts").write_bytes(os.urandom(SEGMENT_BYTES))
    with nginx_edge(KEYRING, tmp_path / "media", tmp_path / "nginx") as edge:
        request = PlaybackRequest("demo", 600, file="seg.ts")
        path = issue(request, KEYRING, time.time(), public_url="").url
        conn = http.client.HTTPConnection(LOOPBACK, int(edge.url.rsplit(":", 1)[1]), timeout=10)
        took = []
        try:
            for _ in range(FETCHES + 2):  # two to fill the media cache
                started = time.perf_counter()
                conn.request("GET", path)
                resp = conn.getresponse()
                body = resp.read()
                took.append(time.perf_counter() - started)
                assert resp.status == 200
                assert len(body) == SEGMENT_BYTES
                assert not resp.will_close  # one connection throughout
        finally:
            conn.close()
    # Not a speed target: the stall costs 40 ms or more per segment, every segment after the
    # first few (0.9 s for these 20); uncorked they take under 20 ms even on a loaded machine.
    assert sum(took[2:]) < FETCHES * 0.025, [f"{t * 1000:.1f} ms" for t in took]
