"""`playgate demo` (behind nginx and plain): its URLs work, its player page plays in Chromium."""

from __future__ import annotations

import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from playgate.cli import build_parser
from playgate.demo import PLAYER_DIR
from playgate.demo import run as demo
from playgate.demo.backend import PLAYER_INSTALL_HINT, create_backend_app
from tests.support.players import CHROMIUM_ARGS
from tests.support.servers import require_tool, run_process, serve_app


@pytest.fixture(scope="module", params=["nginx", "shield"])
def demo_lines(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, str]]:
    require_tool("nginx")
    log = tmp_path_factory.mktemp("demo") / "demo.out"
    argv = [sys.executable, "-m", "playgate.cli", "demo", "--edge", request.param]
    with run_process(argv, log=log) as proc:
        deadline = time.monotonic() + 30
        while "Press Ctrl-C" not in log.read_text():
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        lines = dict(ln.split(": ", 1) for ln in log.read_text().splitlines() if ": " in ln)
        lines["mode"] = request.param
        yield lines
    ring = Path(lines["Key ring"].removesuffix(" (removed when the demo stops)"))
    assert not ring.parent.exists()  # the key ring folder goes with the demo
    if request.param == "nginx":
        nginx_conf = Path(lines["Edge"].rsplit("config ", 1)[1])
        assert not nginx_conf.exists()  # the demo removes nginx's temp prefix when it stops


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    chromium = require_tool("chromium")
    with sync_playwright() as pw:
        launched = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


def test_demo_prints_urls_that_work_through_nginx(demo_lines: dict[str, str]) -> None:
    for name in ("Signer", "API key", "Playback URL", "DASH URL", "Player"):
        assert name in demo_lines
    behind_nginx = demo_lines["mode"] == "nginx"
    assert demo_lines.get("Edge", "").startswith("nginx at ") == behind_nginx
    for name in ("Playback URL", "DASH URL"):
        resp = httpx.get(demo_lines[name], timeout=10)
        assert resp.status_code == 200
        assert (resp.headers.get("server") == "nginx") == behind_nginx


def _open(
    browser: Browser, url: str, console: list[str] | None = None
) -> tuple[Page, list[tuple[int, str]]]:
    # The page's own CSP stays on (a violation is what a user would hit); the tests wait on
    # body[data-state], which needs no eval.
    page = browser.new_page()
    seen: list[tuple[int, str]] = []
    page.on("response", lambda r: seen.append((r.status, r.url)))
    if console is not None:
        page.on("console", lambda m: console.append(m.text))
    page.goto(url)
    return page, seen


def test_player_page_plays_through_nginx(browser: Browser, demo_lines: dict[str, str]) -> None:
    console: list[str] = []
    page, seen = _open(browser, demo_lines["Player"], console)
    try:
        page.wait_for_selector("body[data-state=playing]", timeout=45_000)
        assert page.locator("#status").text_content() == "Playing"
        # The 6 s sample plays to the end, and the status says so (not "Playing" forever).
        page.wait_for_selector("body[data-state=ended]", timeout=45_000)
        assert page.locator("#status").text_content() == "Finished: the whole video played"
        assert page.locator("video").evaluate("v => v.currentTime") > 5.0
    finally:
        page.close()
    # hls.js runs its demuxer in a blob: worker: the page's CSP must allow it.
    assert not [m for m in console if "Content Security Policy" in m], console
    # The start URL opens a playback session: the player follows the redirect to /s/<session>/.
    media = [(s, u) for s, u in seen if "/s/" in u]
    assert any(u.endswith(".ts") for _, u in media)
    assert not [(s, u) for s, u in seen if s in (401, 403)]
    # No third-party URLs: everything the page loads comes from loopback (or is a local blob:).
    assert not [u for _, u in seen if not u.startswith(("http://127.0.0.1:", "blob:", "data:"))]


def test_player_page_explains_a_tampered_link(browser: Browser, demo_lines: dict[str, str]) -> None:
    good = demo_lines["Playback URL"]
    token = good.split("/t/", 1)[1].split("/", 1)[0]
    tampered = good.replace(token, token[:20] + ("B" if token[20] != "B" else "C") + token[21:])
    page, _ = _open(browser, demo_lines["Player"] + "?src=" + quote(tampered, safe=""))
    try:
        page.wait_for_selector("body[data-state=error]", timeout=30_000)
        text = page.locator("#status").text_content() or ""
    finally:
        page.close()
    assert text == "Playback denied: the link was refused (HTTP 403, bad_signature)."


def test_player_page_says_hls_js_is_missing(browser: Browser, tmp_path: Path) -> None:
    # A fresh clone before npm ci: the page names the missing player, not the browser.
    for name in ("index.html", "player.js"):
        shutil.copy(PLAYER_DIR / name, tmp_path / name)
    app = create_backend_app("http://127.0.0.1:9", "pgk_unused", player_dir=tmp_path)
    with serve_app(app) as url:
        page, _ = _open(browser, f"{url}/player/?src=" + quote("http://127.0.0.1:9/x.m3u8"))
        try:
            page.wait_for_selector("body[data-state=error]", timeout=30_000)
            text = page.locator("#status").text_content() or ""
        finally:
            page.close()
    assert text == f"The demo cannot play: {PLAYER_INSTALL_HINT}."
    assert "Media Source" not in text


def test_demo_explains_how_to_install_nginx(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(demo, "nginx_binary", lambda: None)
    args = build_parser().parse_args(["demo", "--edge", "nginx"])
    assert demo.run_demo(args) == 2
    assert "apt-get install nginx-light" in capsys.readouterr().err
