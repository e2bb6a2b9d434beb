"""Query-token mode: every child URI of HLS playlists and DASH MPDs gets the token."""

from __future__ import annotations

import pytest

from edge_validator.manifest_rewrite import (
    ManifestError,
    add_token,
    rewrite_dash,
    rewrite_hls,
    rewrite_manifest,
)
from tests.conftest import SAMPLES

T = "abc_DEF-123"
OWN = "https://edge.example"


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("seg_000.ts", f"seg_000.ts?token={T}"),
        ("v0/index.m3u8", f"v0/index.m3u8?token={T}"),
        ("/videos/demo/seg.ts", f"/videos/demo/seg.ts?token={T}"),
        ("seg.ts?a=1", f"seg.ts?a=1&token={T}"),
        ("seg.ts#t=1", f"seg.ts?token={T}#t=1"),
        (
            "https://edge.example/videos/demo/a.ts",
            f"https://edge.example/videos/demo/a.ts?token={T}",
        ),
        ("https://EDGE.example/a.ts?x=1", f"https://EDGE.example/a.ts?x=1&token={T}"),
        ("//edge.example/a.ts", f"//edge.example/a.ts?token={T}"),
        ("https://cdn.other.example/a.ts", "https://cdn.other.example/a.ts"),
        ("http://edge.example/a.ts", "http://edge.example/a.ts"),  # another origin: scheme differs
        ("//other.example/a.ts", "//other.example/a.ts"),
        ("skd://key-id", "skd://key-id"),
        ("data:text/plain;base64,AAAA", "data:text/plain;base64,AAAA"),
    ],
)
def test_add_token(uri: str, expected: str) -> None:
    assert add_token(uri, T, own_origin=OWN) == expected


def test_without_own_origin_every_absolute_uri_is_left_alone() -> None:
    assert add_token("https://edge.example/a.ts", T) == "https://edge.example/a.ts"


MASTER = """#EXTM3U
#EXT-X-VERSION:6
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aud",NAME="en",URI="audio/en.m3u8"
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aud",NAME="fr",URI="https://cdn.other.example/fr.m3u8"
#EXT-X-STREAM-INF:BANDWIDTH=365200,CODECS="avc1.4d401e,mp4a.40.2",AUDIO="aud"
hls/v0/index.m3u8
#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=86000,URI="hls/v0/iframes.m3u8"
#EXT-X-STREAM-INF:BANDWIDTH=167200
https://cdn.other.example/v1.m3u8
"""

MEDIA = """#EXTM3U\r
#EXT-X-KEY:METHOD=AES-128,URI="key.bin?kid=7",IV=0x1
#EXT-X-MAP:URI="init.mp4",BYTERANGE="800@0"
#EXTINF:2.000000,
seg_000.ts
#EXTINF:2.000000,
/videos/demo/hls/v0/seg_001.ts
#EXT-X-ENDLIST
"""


def test_hls_master_rewrites_variants_and_uri_attributes() -> None:
    out = rewrite_hls(MASTER, T, own_origin=OWN)
    assert f'URI="audio/en.m3u8?token={T}"' in out
    assert 'URI="https://cdn.other.example/fr.m3u8"' in out
    assert f"\nhls/v0/index.m3u8?token={T}\n" in out
    assert f'URI="hls/v0/iframes.m3u8?token={T}"' in out
    assert "\nhttps://cdn.other.example/v1.m3u8\n" in out
    assert 'GROUP-ID="aud"' in out  # other quoted attributes untouched
    assert out.count("token=") == 3


def test_hls_media_playlist_keeps_line_endings_and_queries() -> None:
    out = rewrite_hls(MEDIA, T, own_origin=OWN)
    assert out.startswith("#EXTM3U\r\n")
    assert f'URI="key.bin?kid=7&token={T}"' in out
    assert f'#EXT-X-MAP:URI="init.mp4?token={T}",BYTERANGE="800@0"' in out
    assert f"\nseg_000.ts?token={T}\n" in out
    assert f"\n/videos/demo/hls/v0/seg_001.ts?token={T}\n" in out
    assert "#EXTINF:2.000000,\n" in out


MPD = """<?xml version="1.0"?>
<MPD xmlns="urn:mpeg:dash:schema:mpd:2011">
 <BaseURL>https://cdn.other.example/base/</BaseURL>
 <Period>
  <BaseURL>video/</BaseURL>
  <AdaptationSet>
   <Representation id="0">
    <SegmentTemplate timescale="1000" initialization="init-$RepresentationID$.m4s"
        media='chunk-$RepresentationID$-$Number%05d$.m4s' startNumber="1"/>
   </Representation>
   <Representation id="1">
    <BaseURL>r1/?a=1</BaseURL>
    <SegmentList>
     <Initialization sourceURL="init.mp4"/>
     <SegmentURL media="s1.m4s" mediaRange="0-99"/>
     <SegmentURL media="https://cdn.other.example/s2.m4s"/>
    </SegmentList>
   </Representation>
  </AdaptationSet>
 </Period>
</MPD>
"""


def test_dash_rewrites_templates_base_urls_and_segment_urls() -> None:
    out = rewrite_dash(MPD, T, own_origin=OWN)
    assert "<BaseURL>https://cdn.other.example/base/</BaseURL>" in out
    assert f"<BaseURL>video/?token={T}</BaseURL>" in out
    assert f'initialization="init-$RepresentationID$.m4s?token={T}"' in out
    assert f"media='chunk-$RepresentationID$-$Number%05d$.m4s?token={T}'" in out
    assert f"<BaseURL>r1/?a=1&amp;token={T}</BaseURL>" in out
    assert f'sourceURL="init.mp4?token={T}"' in out
    assert f'media="s1.m4s?token={T}" mediaRange="0-99"' in out
    assert 'media="https://cdn.other.example/s2.m4s"' in out
    assert 'timescale="1000"' in out
    assert 'id="0"' in out


def test_the_sample_manifests() -> None:
    demo = SAMPLES / "videos" / "demo"
    master = rewrite_manifest("/videos/demo/master.m3u8", (demo / "master.m3u8").read_bytes(), T)
    assert master is not None
    assert master.decode().count(f"index.m3u8?token={T}") == 2
    mpd = rewrite_manifest("/videos/demo/x.MPD", (demo / "dash/manifest.mpd").read_bytes(), T)
    assert mpd is not None
    assert mpd.decode().count(f".m4s?token={T}") == 6
    assert rewrite_manifest("/videos/demo/seg.ts", b"\x47", T) is None


@pytest.mark.parametrize("token", ["", "a b", 'a"b', "a<b", "a&b"])
def test_refuses_tokens_that_would_need_escaping(token: str) -> None:
    with pytest.raises(ManifestError):
        rewrite_hls(MEDIA, token)


def test_refuses_a_manifest_that_is_not_utf8() -> None:
    with pytest.raises(ManifestError):
        rewrite_manifest("/v/x/a.m3u8", b"\xff\xfe", T)
