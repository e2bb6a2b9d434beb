"""The demo's "app backend": serves the player page and asks the signer for playback URLs.

A real backend authenticates its own user first; the demo has one anonymous viewer. It holds
the signer API key server-side, so the page never sees it.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from . import PLAYER_DIR

HLS_JS = Path("node_modules") / "hls.js" / "dist" / "hls.min.js"
PLAYER_INSTALL_HINT = (
    "hls.js is not installed: run ./scripts/demo (it runs npm ci in playgate/demo/player)"
)
# The only files the page needs; anything else is 404 (no directory serving).
_FILES = {
    "index.html": ("index.html", "text/html; charset=utf-8"),
    "player.js": ("player.js", "text/javascript; charset=utf-8"),
    "hls.min.js": (str(HLS_JS), "text/javascript; charset=utf-8"),
}


def create_backend_app(
    signer_url: str, api_key: str, *, video_id: str = "demo", player_dir: Path = PLAYER_DIR
) -> Starlette:
    client = httpx.AsyncClient(base_url=signer_url, timeout=10)

    async def playback_url(request: Request) -> Response:
        resp = await client.post(
            "/v1/playback-urls",
            json={"video_id": video_id},
            headers={"Authorization": f"Bearer {api_key}"},
        )
        if resp.status_code != 201:
            return JSONResponse({"error": "signer_refused"}, 502)
        return JSONResponse({"url": resp.json()["url"]}, headers={"Cache-Control": "no-store"})

    async def page(request: Request) -> Response:
        name = request.path_params.get("name") or "index.html"
        if name not in _FILES:
            return JSONResponse({"error": "not_found"}, 404)
        relative, media_type = _FILES[name]
        path = player_dir / relative
        if not path.is_file():
            # The page reads this to say what is wrong (not to blame the browser).
            return JSONResponse(
                {"error": "player_not_installed", "hint": PLAYER_INSTALL_HINT},
                503,
                headers={"Cache-Control": "no-store"},
            )
        return FileResponse(path, media_type=media_type)

    async def root(request: Request) -> Response:
        return RedirectResponse("/player/")

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await client.aclose()

    routes = [
        Route("/", root),
        Route("/player/api/playback-url", playback_url, methods=["POST"]),
        Route("/player/", page),
        Route("/player/{name}", page),
    ]
    return Starlette(routes=routes, lifespan=lifespan)
