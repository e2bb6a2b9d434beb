"""Real players for tests: stock hls.js and dash.js in Debian Chromium, ffmpeg in real time."""

from __future__ import annotations

import contextlib
import re
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

from playwright.sync_api import Browser, Page, sync_playwright
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Route

from playgate.demo import PLAYER_DIR
from playgate.processes import stop_process
from tests.support.servers import require_tool, serve_app

PAGE_DIR = Path(__file__).resolve().parent / "player"
_FILES = {
    "play.html": PAGE_DIR / "play.html",
    "play.js": PAGE_DIR / "play.js",
    "hls.min.js": PLAYER_DIR / "node_modules" / "hls.js" / "dist" / "hls.min.js",
    "dash.all.min.js": PLAYER_DIR / "node_modules" / "dashjs" / "dist" / "dash.all.min.js",
}
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
    # Several players share one loaded machine: never throttle a page's timers.
    "--disable-background-timer-throttling",
    "--disable-renderer-backgrounding",
]


def _page_app() -> Starlette:
    for path in _FILES.values():
        if not path.exists():
            raise FileNotFoundError(f"{path} is missing; ./scripts/install installs it")

    async def serve(request: Request) -> Response:
        path = _FILES.get(request.path_params["name"])
        return FileResponse(path) if path else Response(status_code=404)

    return Starlette(routes=[Route("/{name}", serve)])


@contextlib.contextmanager
def player_pages() -> Iterator[str]:
    """The test player page on loopback (another origin than the edge, as in production)."""
    with serve_app(_page_app()) as url:
        yield url


@contextlib.contextmanager
def chromium() -> Iterator[Browser]:
    executable = require_tool("chromium")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


class BrowserPlay:
    """One stock player playing ``src`` in its own page; every response is recorded."""

    def __init__(
        self, browser: Browser, pages: str, src: Callable[[], str], kind: str = "hls"
    ) -> None:
        """``src`` is called once the page has loaded: sign the URL as late as an app would."""
        self.responses: list[tuple[int, str]] = []
        self.page: Page = browser.new_page()
        self.page.on("response", lambda r: self.responses.append((r.status, r.url)))
        self.page.goto(f"{pages}/play.html")
        self.page.evaluate("([kind, src]) => window.startPlayer(kind, src)", [kind, src()])

    def state(self) -> dict[str, object]:
        value: dict[str, object] = self.page.evaluate(
            "() => ({...window.pg, time: document.querySelector('video').currentTime,"
            " duration: document.querySelector('video').duration, now: Date.now()})"
        )
        return value

    def denied(self) -> list[tuple[int, str]]:
        return [(s, u) for s, u in self.responses if s in (401, 403)]


class FfmpegPlay:
    """``ffmpeg -re -i URL -c copy out.ts``: reads at the media's own rate, as a viewer does."""

    def __init__(self, url: str, out: Path, *, seconds: float | None = None) -> None:
        self.out = out
        self.log = out.with_suffix(".log")
        limit = ["-t", str(seconds)] if seconds else []
        argv = [
            require_tool("ffmpeg"), "-nostdin", "-hide_banner", "-loglevel", "info", "-re",
            "-i", url, *limit, "-c", "copy", "-y", str(out),
        ]  # fmt: skip
        self._log_file = self.log.open("wb")
        self.proc = subprocess.Popen(argv, stdout=self._log_file, stderr=subprocess.STDOUT)

    def wait(self, timeout: float) -> int:
        try:
            return self.proc.wait(timeout)
        finally:
            self.stop()

    def stop(self) -> None:
        stop_process(self.proc)
        self._log_file.close()

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def denied(self) -> list[str]:
        """ffmpeg's lines about refused requests (``HTTP error 403 Forbidden``)."""
        return [ln for ln in self.log_text().splitlines() if re.search(r"HTTP error 40[13]", ln)]
