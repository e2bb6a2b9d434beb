"""The foundation, end to end: a backend asks the real signer, a player walks the HLS set."""

from __future__ import annotations

import re

import httpx

from tests.support.factories import API_KEY


def _issue(signer_url: str, **body: object) -> httpx.Response:
    return httpx.post(
        f"{signer_url}/v1/playback-urls",
        json=body,
        headers={"Authorization": f"Bearer {API_KEY}"},
        timeout=10,
    )


def test_signed_url_walks_the_whole_hls_set(signer_url: str) -> None:
    issued = _issue(signer_url, video_id="demo")
    assert issued.status_code == 201
    master_url = issued.json()["url"]
    # Redirected to the playback session's URL, against which relative URIs resolve.
    with httpx.Client(timeout=10, follow_redirects=True) as client:
        master = client.get(master_url)
        assert master.status_code == 200
        assert master.history[0].status_code == 302
        assert master.headers["content-type"] == "application/vnd.apple.mpegurl"
        variants = [ln for ln in master.text.splitlines() if ln and not ln.startswith("#")]
        assert len(variants) == 2
        segments = 0
        for variant in variants:
            media_url = master.url.join(variant)
            media = client.get(media_url)
            assert media.status_code == 200
            for seg in re.findall(r"^(seg_\d+\.ts)$", media.text, re.M):
                resp = client.get(media_url.join(seg))
                assert resp.status_code == 200
                assert resp.headers["content-type"] == "video/mp2t"
                assert resp.content[:1] == b"\x47"  # MPEG-TS sync byte
                segments += 1
        assert segments == 6
