"""Query-token mode: child URIs of HLS playlists and DASH MPDs that are ours get the token.

"Ours" is decided the way a player resolves URIs (WHATWG URL rules, the DASH BaseURL chain)
against the configured public URL; whatever a player could read differently is refused.
"""

from __future__ import annotations

import pytest

from edge_validator.core.errors import ConfigurationError
from edge_validator.manifests import (
    BadManifest,
    add_token,
    parse_public_url,
    rewrite_dash,
    rewrite_hls,
    rewrite_manifest,
)
from edge_validator.settings import ValidatorSettings
from tests.support.factories import SAMPLES

T = "abc_DEF-123"
OWN = parse_public_url("https://edge.example")
PAGE = "/videos/demo/master.m3u8"
KEYRING_JSON = '{"keys": {"k1": "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE"}}'


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
        ("https://edge.example:443/a.ts", f"https://edge.example:443/a.ts?token={T}"),
        ("//edge.example/a.ts", f"//edge.example/a.ts?token={T}"),
        ("https://cdn.other.example/a.ts", "https://cdn.other.example/a.ts"),
        ("http://edge.example/a.ts", "http://edge.example/a.ts"),  # another origin: scheme differs
        ("https://edge.example:8443/a.ts", "https://edge.example:8443/a.ts"),
        ("https://edge.example@evil.example/a.ts", "https://edge.example@evil.example/a.ts"),
        ("https://evil.example#@edge.example/", "https://evil.example#@edge.example/"),
        ("https:edge.example/a.ts", "https:edge.example/a.ts"),
        ("https:///evil.example/a.ts", "https:///evil.example/a.ts"),
        ("//other.example/a.ts", "//other.example/a.ts"),
        ("skd://key-id", "skd://key-id"),
        ("data:text/plain;base64,AAAA", "data:text/plain;base64,AAAA"),
    ],
)
def test_add_token(uri: str, expected: str) -> None:
    assert add_token(uri, T, public_url=OWN, base_path=PAGE) == expected


@pytest.mark.parametrize(
    "uri", ["https://edge.example/a.ts", "//edge.example/a.ts", "http://127.0.0.1:8081/a.ts"]
)
def test_without_a_public_url_every_absolute_uri_is_left_alone(uri: str) -> None:
    assert add_token(uri, T, base_path=PAGE) == uri
    assert add_token("../hls/a.ts", T, base_path=PAGE) == f"../hls/a.ts?token={T}"


def test_a_public_url_with_a_path_owns_only_what_is_under_it() -> None:
    public = parse_public_url("https://www.example/pg/")
    path = "/videos/demo/master.m3u8"  # the player fetched /pg/videos/demo/master.m3u8
    assert add_token("../../x.ts", T, public_url=public, base_path=path).endswith(T)
    assert add_token("../../../blog/x.ts", T, public_url=public, base_path=path) == (
        "../../../blog/x.ts"
    )
    assert add_token("/blog/x.ts", T, public_url=public, base_path=path) == "/blog/x.ts"
    assert add_token("/pg/%2e%2e/blog/x", T, public_url=public, base_path=path) == (
        "/pg/%2e%2e/blog/x"
    )
    assert add_token("https://www.example/pg/v/a.ts", T, public_url=public).endswith(T)
    assert add_token("https://www.example/pgx/a.ts", T, public_url=public).endswith(".ts")


# WHATWG URL parsing reads "\" as "/" and drops tab, CR and LF: these name evil.example.
LEAKY = [
    "/\\evil.example/a.ts",
    "\\\\evil.example/b.ts",
    "/\t/evil.example/c.ts",
    "ht\ttps://evil.example/d.ts",
    "seg .ts",
    "s\x01eg.ts",
    "s\u00e9g.ts",
    "{$h}/seg.ts",
    # A port players read as 443 (WHATWG drops leading zeros) but no 5-digit reader does.
    "https://edge.example:" + "0" * 5000 + "443/a.ts",
    "https://edge.example:000443/a.ts",
]


@pytest.mark.parametrize("uri", LEAKY)
def test_uris_a_player_could_read_as_another_host_refuse_the_manifest(uri: str) -> None:
    with pytest.raises(BadManifest):
        add_token(uri, T, public_url=OWN)
    with pytest.raises(BadManifest):
        rewrite_hls(f"#EXTM3U\n#EXTINF:2,\n{uri}\n", T)
    with pytest.raises(BadManifest):
        rewrite_hls(f'#EXTM3U\n#EXT-X-MAP:URI="{uri}"\n', T)


MASTER = """#EXTM3U
#EXT-X-VERSION:6
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aud",NAME="en",URI="audio/en.m3u8"
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aud",NAME="fr",URI="https://cdn.other.example/fr.m3u8"
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aud",NAME="x,URI=",URI="de.m3u8"
#EXT-X-STREAM-INF:BANDWIDTH=365200,CODECS="avc1.4d401e,mp4a.40.2",AUDIO="aud"
hls/v0/index.m3u8
#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=86000,URI="hls/v0/iframes.m3u8"
#EXT-X-STREAM-INF:BANDWIDTH=167200
https://cdn.other.example/v1.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=167200
https://edge.example/videos/demo/v2.m3u8
"""

MEDIA = """#EXTM3U\r
#EXT-X-KEY:METHOD=AES-128,URI="key.bin?kid=7",IV=0x1
#EXT-X-MAP:URI="init.mp4",BYTERANGE="800@0"
#EXTINF:2.000000,
seg_000.ts
#EXTINF:2.000000,URI title
/videos/demo/hls/v0/seg_001.ts  \r
#EXT-X-ENDLIST
"""


def test_hls_master_rewrites_variants_and_uri_attributes() -> None:
    out = rewrite_hls(MASTER, T, public_url=OWN, base_path=PAGE)
    assert f'URI="audio/en.m3u8?token={T}"' in out
    assert 'URI="https://cdn.other.example/fr.m3u8"' in out
    assert f'NAME="x,URI=",URI="de.m3u8?token={T}"' in out  # quoted values are not attributes
    assert f"\nhls/v0/index.m3u8?token={T}\n" in out
    assert f'URI="hls/v0/iframes.m3u8?token={T}"' in out
    assert "\nhttps://cdn.other.example/v1.m3u8\n" in out
    assert f"\nhttps://edge.example/videos/demo/v2.m3u8?token={T}\n" in out
    assert 'GROUP-ID="aud"' in out  # other quoted attributes untouched
    assert out.count("token=") == 5


def test_hls_media_playlist_keeps_line_endings_and_queries() -> None:
    out = rewrite_hls(MEDIA, T)
    assert out.startswith("#EXTM3U\r\n")
    assert f'URI="key.bin?kid=7&token={T}"' in out
    assert f'#EXT-X-MAP:URI="init.mp4?token={T}",BYTERANGE="800@0"' in out
    assert f"\nseg_000.ts?token={T}\n" in out
    assert f"\n/videos/demo/hls/v0/seg_001.ts?token={T}\r\n" in out
    assert "#EXTINF:2.000000,\n" in out


@pytest.mark.parametrize(
    "playlist",
    [
        # hls.js substitutes variables, even into URIs: {$h}/seg.ts is https://evil.example/...
        '#EXTM3U\n#EXT-X-DEFINE:NAME="h",VALUE="https://evil.example"\n#EXTINF:2,\n{$h}/seg.ts\n',
        '#EXTM3U\n#EXT-X-DEFINE:IMPORT="h"\n#EXTINF:2,\nseg.ts\n',
        '#EXTM3U\n#EXT-X-MAP:URI="{$h}/init.mp4"\n',
        # pathway cloning moves URIs (with their token) to another host
        '#EXTM3U\n#EXT-X-CONTENT-STEERING:SERVER-URI="s.json"\n#EXTINF:2,\nseg.ts\n',
        # hls.js ends a line at a lone CR (or U+2028): the rest is a URI line to evil.example
        '#EXTM3U\n#EXT-X-KEY:METHOD=NONE\r//evil.example/a,URI="k.bin"\n',
        '#EXTM3U\n#EXT-X-KEY:METHOD=NONE\u2028//evil.example/a,URI="k.bin"\n',
        "#EXTM3U\n#EXTINF:2,\n  seg.ts\n",  # leading spaces: players disagree on the line
        "#EXTM3U\n#EXT-X-KEY:METHOD=AES-128,URI=k.bin\n",  # unquoted URI
        '#EXTM3U\n#EXT-X-KEY:METHOD=AES-128,URI="a.bin",URI="//evil.example/k"\n',
        '#EXTM3U\n#EXT-X-KEY:METHOD=AES-128, URI = "k.bin"\n',  # hls.js reads it anyway
    ],
)
def test_hls_refuses_what_players_could_read_otherwise(playlist: str) -> None:
    with pytest.raises(BadManifest):
        rewrite_hls(playlist, T, public_url=OWN, base_path=PAGE)


def mpd(body: str, *, base: str = "") -> str:
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        '<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" xmlns:xlink="http://www.w3.org/1999/xlink">'
        f"{base}<Period><AdaptationSet>{body}</AdaptationSet></Period></MPD>\n"
    )


MPD = """<?xml version="1.0"?>
<MPD xmlns="urn:mpeg:dash:schema:mpd:2011">
 <BaseURL>https://edge.example/videos/demo/</BaseURL>
 <Period>
  <BaseURL>video/</BaseURL>
  <AdaptationSet>
   <SegmentTemplate initialization="init-$RepresentationID$.m4s"/>
   <Representation id="0" bandwidth="1000">
    <SegmentTemplate timescale="1000"
        media='chunk-$RepresentationID$-$Bandwidth$-$Number%05d$.m4s' startNumber="1"/>
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
    out = rewrite_dash(MPD, T, public_url=OWN, base_path="/videos/demo/manifest.mpd")
    assert f"<BaseURL>https://edge.example/videos/demo/?token={T}</BaseURL>" in out
    assert f"<BaseURL>video/?token={T}</BaseURL>" in out
    assert f'initialization="init-$RepresentationID$.m4s?token={T}"' in out
    assert f"media='chunk-$RepresentationID$-$Bandwidth$-$Number%05d$.m4s?token={T}'" in out
    assert f"<BaseURL>r1/?a=1&amp;token={T}</BaseURL>" in out
    assert f'sourceURL="init.mp4?token={T}"' in out
    assert f'media="s1.m4s?token={T}" mediaRange="0-99"' in out
    assert 'media="https://cdn.other.example/s2.m4s"' in out
    assert 'timescale="1000"' in out
    assert 'id="0"' in out


def test_dash_decodes_entities_before_judging_and_escapes_what_it_writes() -> None:
    body = (
        '<Representation id="0"><SegmentList>'
        '<SegmentURL media="a&#47;b.m4s"/>'
        '<SegmentURL media="s.m4s?x=1&#38;y=2"/>'
        '<SegmentURL media="&#47;&#47;evil.example/c.m4s"/>'
        "</SegmentList></Representation>"
    )
    out = rewrite_dash(mpd(body), T)
    assert f'media="a/b.m4s?token={T}"' in out
    assert f'media="s.m4s?x=1&amp;y=2&amp;token={T}"' in out
    assert 'media="&#47;&#47;evil.example/c.m4s"' in out  # //evil.example: untouched


def test_dash_identifiers_are_expanded_before_judging() -> None:
    # $RepresentationID$ is copied verbatim: this template is //evil.example/x/seg.m4s.
    body = (
        '<Representation id="//evil.example/x">'
        '<SegmentTemplate media="$RepresentationID$/seg.m4s"/></Representation>'
    )
    assert "token=" not in rewrite_dash(mpd(body), T)
    # A template above the Representations is judged for each of them.
    body = (
        '<SegmentTemplate media="$RepresentationID$/s.m4s"/>'
        '<Representation id="v1"/><Representation id="//evil.example"/>'
    )
    assert "token=" not in rewrite_dash(mpd(body), T)


def test_dash_relative_uris_under_a_foreign_base_url_refuse_the_manifest() -> None:
    base = "<BaseURL>https://other-cdn.example/v/</BaseURL>"
    body = '<Representation id="0"><SegmentTemplate media="seg-$Number$.m4s"/></Representation>'
    with pytest.raises(BadManifest):
        rewrite_dash(mpd(body, base=base), T, public_url=OWN, base_path="/videos/d/m.mpd")
    with pytest.raises(BadManifest):  # without a public URL, absolute BaseURLs are elsewhere
        rewrite_dash(mpd(body, base="<BaseURL>https://edge.example/v/</BaseURL>"), T)
    # One alternative BaseURL elsewhere is enough: a player may pick it.
    two = "<BaseURL>https://edge.example/v/</BaseURL><BaseURL>//evil.example/v/</BaseURL>"
    with pytest.raises(BadManifest):
        rewrite_dash(mpd(body, base=two), T, public_url=OWN)
    with pytest.raises(BadManifest):
        rewrite_dash(mpd(body, base="<BaseURL>&#47;&#47;evil.example/</BaseURL>"), T)
    # A relative BaseURL is fine, and an absolute one under our public URL too.
    out = rewrite_dash(mpd(body, base="<BaseURL>v/</BaseURL>"), T)
    assert f'media="seg-$Number$.m4s?token={T}"' in out
    own = "<BaseURL>https://edge.example/v/</BaseURL>"
    out = rewrite_dash(mpd(body, base=own), T, public_url=OWN)
    assert f'media="seg-$Number$.m4s?token={T}"' in out


def test_dash_location_is_a_base_and_must_be_ours() -> None:
    body = '<Representation id="0"><SegmentTemplate media="seg.m4s"/></Representation>'
    evil = "<Location>https://evil.example/m.mpd</Location>"
    with pytest.raises(BadManifest):
        rewrite_dash(mpd(body, base=evil), T, public_url=OWN)
    own = "<Location>https://edge.example/videos/d/m.mpd</Location>"
    out = rewrite_dash(mpd(body, base=own), T, public_url=OWN)
    assert f"<Location>https://edge.example/videos/d/m.mpd?token={T}</Location>" in out
    assert f'media="seg.m4s?token={T}"' in out


@pytest.mark.parametrize(
    "document",
    [
        '<?xml version="1.0"?><!DOCTYPE MPD [<!ENTITY e "//evil.example/">]>'
        "<MPD><BaseURL>&e;</BaseURL></MPD>",
        '<?xml version="1.0" encoding="iso-8859-1"?><MPD/>',
        mpd('<SegmentTemplate media="/\\evil.example/a.m4s"/>'),
        mpd('<SegmentTemplate media="/&#9;/evil.example/a.m4s"/>'),
        mpd('<SegmentTemplate media="/&#92;evil.example/a.m4s"/>'),
        mpd('<SegmentTemplate media="a$Time%08x$.m4s"/>'),  # only %0Nd formats
        mpd('<SegmentTemplate media="a$Number.m4s"/>'),  # unpaired $
        mpd('<SegmentTemplate media="$RepresentationID$.m4s"/>'),  # no Representation
        mpd(
            '<Representation id="a\\b">'
            '<SegmentTemplate media="$RepresentationID$"/></Representation>'
        ),
        mpd("<BaseURL>v/<!-- x -->w/</BaseURL>"),
        mpd('<Representation id="0" xml:base="https://evil.example/"/>'),
        mpd('<Representation id="0" xlink:href="https://evil.example/r.xml"/>'),
        mpd('<SegmentURL xlink:media="https://evil.example/a.m4s"/>'),
        mpd("", base="<PatchLocation>p.mpp</PatchLocation>"),
        mpd("", base="<ContentSteering>https://evil.example/s</ContentSteering>"),
        "<MPD><BaseURL>a</MPD>",
        "<BaseURL>https://evil.example/</BaseURL>",  # not an MPD
        "<MPD>" + "<Period>" * 2000 + "</Period>" * 2000 + "</MPD>",  # never a RecursionError
    ],
)
def test_dash_refuses_what_it_cannot_judge(document: str) -> None:
    with pytest.raises(BadManifest):
        rewrite_dash(document, T, public_url=OWN)


def test_the_sample_manifests() -> None:
    demo = SAMPLES / "videos" / "demo"
    master = rewrite_manifest("/videos/demo/master.m3u8", (demo / "master.m3u8").read_bytes(), T)
    assert master is not None
    assert master.decode().count(f"index.m3u8?token={T}") == 2
    stored = (demo / "dash/manifest.mpd").read_bytes()
    mpd_out = rewrite_manifest("/videos/demo/x.MPD", stored, T)
    assert mpd_out is not None
    assert mpd_out.decode().count(f".m4s?token={T}") == 6
    # Nothing but the URIs changed.
    assert mpd_out.replace(f"?token={T}".encode(), b"") == stored
    assert rewrite_manifest("/videos/demo/seg.ts", b"\x47", T) is None


@pytest.mark.parametrize("token", ["", "a b", 'a"b', "a<b", "a&b"])
def test_refuses_tokens_that_would_need_escaping(token: str) -> None:
    with pytest.raises(BadManifest):
        rewrite_hls(MEDIA, token)


def test_refuses_a_manifest_that_is_not_utf8() -> None:
    with pytest.raises(BadManifest):
        rewrite_manifest("/v/x/a.m3u8", b"\xff\xfe", T)


@pytest.mark.parametrize(
    ("url", "normalized"),
    [
        ("https://Edge.Example:443/", ("https", "edge.example", "")),
        ("http://127.0.0.1:8081/pg/", ("http", "127.0.0.1:8081", "/pg")),
        ("http://[::1]:80", ("http", "[::1]", "")),
    ],
)
def test_public_url(url: str, normalized: tuple[str, str, str]) -> None:
    assert tuple(parse_public_url(url)) == normalized


@pytest.mark.parametrize(
    "url",
    [
        "edge.example",
        "ftp://edge.example",
        "https://u@edge.example",
        "https://e.example/?a",
        "https:///x",
    ],
)
def test_a_bad_public_url_stops_the_validator(url: str) -> None:
    with pytest.raises(ValueError, match="public URL"):
        parse_public_url(url)
    env = {"PLAYGATE_KEYRING": KEYRING_JSON, "PLAYGATE_PUBLIC_URL": url}
    with pytest.raises(ConfigurationError, match="PLAYGATE_PUBLIC_URL"):
        ValidatorSettings.from_env(env)


def test_the_public_url_setting() -> None:
    assert ValidatorSettings.from_env({"PLAYGATE_KEYRING": KEYRING_JSON}).public_url is None
    env = {"PLAYGATE_KEYRING": KEYRING_JSON, "PLAYGATE_PUBLIC_URL": "https://edge.example/"}
    # Parsed once at start-up, kept parsed.
    assert ValidatorSettings.from_env(env).public_url == ("https", "edge.example", "")
