"""Media CDN's dual-token flow through a real shield (uvicorn over loopback) with real players:
ffmpeg reads HLS and DASH from a URL whose Media CDN short token lives 3 s, in real time, to the
end of a 12 s film, on the path-component long token the shield redirected it to. The shield is
configured from the environment, as an operator would."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import httpx
import pytest

from edge_validator.asgi.app import create_app as create_validator
from edge_validator.core.keyring import encode_secret
from edge_validator.formats import mediacdn
from edge_validator.formats.mediacdn import MediaCdnKey
from edge_validator.settings import ValidatorSettings
from tests.support.media import make_film, media_seconds
from tests.support.players import FfmpegPlay
from tests.support.servers import serve_app

CDN = "https://cdn.example.com"  # the viewers' hostname, signed into every URL prefix
FILM_SECONDS = 12
SHORT_SECONDS = 3  # Google advises about a minute; shorter than the film is what matters
MAX_SESSION = 3600
# The app server's short-token key (Google's dual-token sample seed) and the edge's long key.
SHORT = MediaCdnKey.from_seed("short", "DJUcnLguVFKmVCFnWGubG1MZg7fWAnxacMjKDhVZMGI=")
LONG_SEED = base64.urlsafe_b64encode(bytes(range(7, 39))).decode()


class Shield(NamedTuple):
    url: str
    media: Path


@pytest.fixture(scope="module")
def shield(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shield]:
    media = tmp_path_factory.mktemp("media")
    make_film(media / "videos" / "film", FILM_SECONDS)
    short_public = SHORT.public().key.public_bytes_raw()  # type: ignore[union-attr]
    format_keys = {
        "public_url": CDN,
        # The edge holds the short-token key's public half only, and its own long-token key.
        "mediacdn": [
            {"id": "short", "ed25519_public": base64.urlsafe_b64encode(short_public).decode()}
        ],
        "mediacdn_long": [{"id": "long-1", "ed25519_seed": LONG_SEED}],
    }
    environ = {
        "PLAYGATE_KEYRING": json.dumps({"keys": {"k1": encode_secret(b"D" * 32)}, "active": "k1"}),
        "PLAYGATE_MEDIA_ROOT": str(media),
        "PLAYGATE_ACCEPT_FORMATS": "mediacdn",
        "PLAYGATE_FORMAT_KEYS": json.dumps(format_keys),
        "PLAYGATE_MAX_SESSION": str(MAX_SESSION),
        "PLAYGATE_LEEWAY": "0",
    }
    with serve_app(create_validator(ValidatorSettings.from_env(environ))) as url:
        yield Shield(url, media)


def short_url(base: str, file: str, *, lives: int = SHORT_SECONDS) -> str:
    """What the app server hands out: a short token over the film's URL prefix."""
    token = mediacdn.sign_token(
        SHORT, int(time.time()) + lives, url_prefix=f"{CDN}/videos/film/", data="tid-dual"
    )
    return f"{base}/videos/film/{file}?edge-cache-token={token}"


def test_hls_and_dash_play_to_the_end_on_the_long_token(shield: Shield, tmp_path: Path) -> None:
    plays = {
        "hls": FfmpegPlay(short_url(shield.url, "master.m3u8"), tmp_path / "hls.ts"),
        "dash": FfmpegPlay(short_url(shield.url, "manifest.mpd"), tmp_path / "dash.ts"),
    }
    try:
        codes = {name: play.wait(FILM_SECONDS + 60) for name, play in plays.items()}
    finally:
        for play in plays.values():
            play.stop()
    for name, play in plays.items():
        assert codes[name] == 0, play.log_text()
        assert play.denied() == [], play.log_text()
        # The whole film, read in real time: its last segments long after the short token
        # ended, so they were granted by the long token (HLS: the path component the redirect
        # ended at; ffmpeg's DASH demuxer resolves against the first URL: the cookie).
        assert media_seconds(play.out) >= FILM_SECONDS - 1, play.log_text()


def test_the_exchange_answers_as_media_cdn_does(shield: Shield) -> None:
    with httpx.Client(base_url=shield.url, timeout=10) as client:
        first = client.get(short_url("", "master.m3u8").removeprefix(""))
        assert first.status_code == 302
        assert first.headers["cache-control"] == "no-store"
        location = first.headers["location"]
        assert location.startswith(f"/videos/film/{mediacdn.TOKEN_SEGMENT}Expires=")
        assert "&KeyName=long-1&Signature=" in location
        assert location.endswith("/master.m3u8")
        played = client.get(location)
        assert played.status_code == 200
        assert "#EXT-X-STREAM-INF" in played.text
        # A segment fetched with a short token is served with the long token as a cookie.
        segment = client.get(short_url("", "seg_000.ts"))
        assert segment.status_code == 200
        assert segment.headers["cache-control"] == "no-store"
        cookie = segment.headers["set-cookie"]
        assert cookie.startswith("Edge-Cache-Cookie=URLPrefix=")
        assert "Path=/videos/film/" in cookie
        value = cookie.partition("=")[2].partition(";")[0]
        # Sent back by hand: the cookie is Secure, for https://cdn.example.com.
        later = client.get(
            "/videos/film/seg_001.ts", headers={"Cookie": f"Edge-Cache-Cookie={value}"}
        )
        assert later.status_code == 200
        assert later.headers["x-playgate-token-id"].startswith("mediacdn-")
        elsewhere = client.get(
            "/videos/other/seg_001.ts", headers={"Cookie": f"Edge-Cache-Cookie={value}"}
        )
        assert elsewhere.status_code == 403
        assert elsewhere.headers["x-playgate-reason"] == "out_of_scope"


def test_a_short_token_after_its_life_starts_nothing(shield: Shield) -> None:
    expired = short_url(shield.url, "master.m3u8", lives=-5)
    denied = httpx.get(expired, timeout=10)
    assert denied.status_code == 403
    assert denied.headers["x-playgate-reason"] == "expired"
    assert denied.headers["cache-control"] == "no-store"
    assert "location" not in denied.headers
