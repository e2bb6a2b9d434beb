"""Playback sessions with real players in real time: a 60 s film and a live stream play to
their end on URLs whose start window is a few seconds, through the origin shield and the nginx
edge, in path and query-token mode.

Every long play runs at once (one test, many players), so the suite pays about 80 s for all
of them: ffmpeg ``-re`` (reads at the media's rate, as a viewer does) and stock hls.js and
dash.js in Debian Chromium. While they play, the test replays a start URL after its window and
revokes one session mid-play.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import httpx
import pytest

from edge_validator.asgi.app import create_app as create_validator
from edge_validator.core.cors import CorsPolicy
from edge_validator.core.keyring import KeyRing
from edge_validator.settings import ValidatorSettings
from edge_validator.state import StateSettings
from playgate.redis_server import redis_server
from signer.api_keys import ApiKeys, hash_api_key
from signer.app import create_app as create_signer
from signer.issuing import PlaybackRequest, issue
from signer.settings import SignerSettings
from tests.support import factories
from tests.support.media import SEGMENT_SECONDS, live_stream, make_film, media_seconds
from tests.support.nginx_edge import nginx_edge
from tests.support.players import BrowserPlay, FfmpegPlay, chromium, player_pages
from tests.support.servers import serve_app

FILM_SECONDS = 60
START_WINDOW = 4
SESSION_SECONDS = 600
LEEWAY = 1
LIVE_WATCH = 62
REVOKE_AT = 14.0


class Edges(NamedTuple):
    shield: str
    signer: str
    nginx: str
    ring: KeyRing


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("media")
    make_film(root / "videos" / "film", FILM_SECONDS)
    return root


@contextlib.contextmanager
def edges(media: Path, tmp: Path) -> Iterator[Edges]:
    ring = factories.keyring()
    with contextlib.ExitStack() as stack:
        redis = stack.enter_context(redis_server())
        # Generous Redis timeouts: many players share a loaded machine.
        state = StateSettings(
            redis_url=redis.url, resync_seconds=1.0, timeout=2.0, connect_timeout=2.0
        )
        # The player pages live on another origin: CORS as production configures it.
        cors = CorsPolicy.from_text("*")
        settings = ValidatorSettings(
            keyring=ring, media_root=media, state=state, leeway=LEEWAY, cors=cors
        )
        shield = stack.enter_context(serve_app(create_validator(settings)))
        signer_settings = SignerSettings(
            keyring=ring,
            api_keys=ApiKeys({"test": hash_api_key(factories.API_KEY)}),
            public_url=shield,
            state=state,
        )
        signer = stack.enter_context(serve_app(create_signer(signer_settings, contract_check=True)))
        edge = stack.enter_context(nginx_edge(ring, media, tmp / "nginx", leeway=LEEWAY, cors=cors))
        yield Edges(shield, signer, edge.url, ring)


def start_url(
    e: Edges, base: str, video: str, file: str = "master.m3u8", mode: str = "path", **extra: str
) -> str:
    request = PlaybackRequest(
        video_id=video,
        ttl_seconds=START_WINDOW,
        file=file,
        session_seconds=SESSION_SECONDS,
        **extra,  # type: ignore[arg-type]
    )
    return issue(request, e.ring, time.time(), public_url=base, mode=mode).url


# The players need FILM_SECONDS of real time plus their start-up; the loop below gives up first
# (at t0 + LOOP_SECONDS) so that a stalled player fails with its own message, not a timeout.
LOOP_SECONDS = FILM_SECONDS + 90


@pytest.mark.timeout(LOOP_SECONDS + 150)
def test_films_and_a_live_stream_play_to_the_end_on_a_short_start_window(
    media: Path, tmp_path: Path
) -> None:
    with contextlib.ExitStack() as stack:
        e = stack.enter_context(edges(media, tmp_path))
        stack.enter_context(live_stream(media / "videos" / "live", tmp_path / "live.log"))
        pages = stack.enter_context(player_pages())
        browser = stack.enter_context(chromium())
        films = {
            "ffmpeg shield": FfmpegPlay(start_url(e, e.shield, "film"), tmp_path / "shield.ts"),
            "ffmpeg shield query": FfmpegPlay(
                start_url(e, e.shield, "film", mode="query"), tmp_path / "query.ts"
            ),
            "ffmpeg nginx": FfmpegPlay(start_url(e, e.nginx, "film"), tmp_path / "nginx.ts"),
        }
        lives = {
            "ffmpeg live shield": FfmpegPlay(
                start_url(e, e.shield, "live", "index.m3u8"),
                tmp_path / "live.ts",
                seconds=LIVE_WATCH,
            ),
            "ffmpeg live nginx": FfmpegPlay(
                start_url(e, e.nginx, "live", "index.m3u8"),
                tmp_path / "live-nginx.ts",
                seconds=LIVE_WATCH,
            ),
        }
        revoked = FfmpegPlay(
            start_url(e, e.shield, "film", session_id="sess-revoked"), tmp_path / "revoked.ts"
        )
        for play in (*films.values(), *lives.values(), revoked):
            stack.callback(play.stop)
        t0 = time.monotonic()
        pages_playing = {
            "hls.js shield": BrowserPlay(browser, pages, lambda: start_url(e, e.shield, "film")),
            "hls.js nginx": BrowserPlay(browser, pages, lambda: start_url(e, e.nginx, "film")),
            "dash.js shield": BrowserPlay(
                browser, pages, lambda: start_url(e, e.shield, "film", "manifest.mpd"), "dash"
            ),
        }
        live_page = BrowserPlay(
            browser, pages, lambda: start_url(e, e.shield, "live", "index.m3u8")
        )
        replay = start_url(e, e.shield, "film")
        replay_closes = time.time() + START_WINDOW + LEEWAY + 1.5
        first = httpx.get(replay, timeout=10, follow_redirects=False)
        assert first.status_code == 302  # in its window: opens a session
        session_url = e.shield + first.headers["location"]
        late: httpx.Response | None = None

        revoked_at: float | None = None
        live_state: dict[str, object] = {}
        deadline = t0 + LOOP_SECONDS
        while time.monotonic() < deadline:
            time.sleep(1)
            if revoked_at is None and time.monotonic() - t0 >= REVOKE_AT:
                resp = httpx.post(
                    f"{e.signer}/v1/revocations",
                    json={"session_id": "sess-revoked"},
                    headers=factories.AUTH,
                    timeout=10,
                )
                assert resp.status_code == 201, resp.text
                revoked_at = time.monotonic() - t0
            if late is None and time.time() >= replay_closes:
                # The start URL, replayed after its window, while its session still plays.
                late = httpx.get(replay, timeout=10, follow_redirects=False)
                assert httpx.get(session_url, timeout=10).status_code == 200
            live_state = live_page.state()
            live_started = live_state["started"]
            watched = (
                (float(live_state["now"]) - float(live_started)) / 1000  # type: ignore[arg-type]
                if live_started is not None
                else 0.0
            )
            states = [p.state() for p in pages_playing.values()]
            done = all(s["ended"] or s["errors"] for s in states)
            if (
                done
                and watched >= LIVE_WATCH
                and all(p.proc.poll() is not None for p in films.values())
            ):
                break

        assert late is not None
        assert late.status_code == 403
        assert late.headers["x-playgate-reason"] == "expired"

        for name, play in films.items():
            code = play.wait(timeout=30)
            log = play.log_text()
            assert code == 0, f"{name}: ffmpeg exited {code}\n{log[-2000:]}"
            assert play.denied() == [], f"{name}: {log[-2000:]}"
            assert media_seconds(play.out) >= FILM_SECONDS - 0.5, name
        for name, play in lives.items():
            assert play.wait(timeout=60) == 0, f"{name}: {play.log_text()[-2000:]}"
            assert play.denied() == [], name
            assert media_seconds(play.out) >= LIVE_WATCH - 2, name

        for name, page in pages_playing.items():
            state = page.state()
            assert state["errors"] == [], f"{name}: {state}"
            assert state["ended"], f"{name}: {state}"
            assert page.denied() == [], name
            assert any("/s/" in u for _, u in page.responses), name
        assert live_state["errors"] == []
        assert live_page.denied() == []
        live_played = float(live_state["time"]) - float(live_state["startTime"])  # type: ignore[arg-type]
        assert live_played >= LIVE_WATCH - 6, live_state

        # Revoked mid-play: it stopped within a second plus a segment (plus ffmpeg's buffer).
        revoked.wait(timeout=60)
        assert revoked_at is not None
        assert revoked.denied(), revoked.log_text()[-2000:]
        played = media_seconds(revoked.out) if revoked.out.exists() else 0.0
        assert revoked_at - 4 <= played <= revoked_at + 1 + 2 * SEGMENT_SECONDS + 2, (
            played,
            revoked_at,
        )
