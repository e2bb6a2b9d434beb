"""The native verifier's C fast path (playgate/nginx/module) allows a player's plain requests in
nginx without entering Lua, and leaves everything else to the Lua verifier.

Real nginx with the module built against nginx-dev, real requests, its /metrics: each allow it
decided is counted under ``playgate_native_fast_allowed_total`` (and as an allow). The same
plays through an edge without the module are allowed by Lua alone. That the C path never
allows what Python denies is checked on every batch tests/e2e/test_nginx_native.py judges.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from edge_validator.core.token import Claims, seal
from edge_validator.settings import ValidatorSettings
from edge_validator.state.guard import StateGuard
from edge_validator.state.memory import MemoryStore
from tests.e2e.test_nginx_metrics import ALLOW, Series, forged, scrape, token_id, url_for
from tests.e2e.test_nginx_native import (
    KEYRING,
    KEYRING_DOC,
    _revoke,
    checks,
    raw_get,
    wait_until_native,
)
from tests.support.factories import SAMPLES
from tests.support.nginx_edge import Edge, nginx_edge

FAST: Series = ("playgate_native_fast_allowed_total", ())


@contextlib.contextmanager
def metered_edge(prefix: Path, store: MemoryStore, fast: bool) -> Iterator[Edge]:
    keyring_file = prefix / "keyring.json"
    keyring_file.write_text(json.dumps(KEYRING_DOC))
    guard = StateGuard(store, ValidatorSettings(keyring=KEYRING).state, shared=True)
    with nginx_edge(
        KEYRING, SAMPLES, prefix, keyring_file=keyring_file, guard=guard, metrics=True, fast=fast
    ) as running:
        wait_until_native(running)
        yield running


@pytest.fixture(scope="module")
def store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture(scope="module")
def edge(store: MemoryStore, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Edge]:
    with metered_edge(tmp_path_factory.mktemp("nginx-fast"), store, fast=True) as running:
        yield running


def session_url(edge: Edge) -> str:
    """A segment URL with a session token, as a player gets it: the master playlist's 302
    (opened in nginx, or by the shield), bound to the viewer's /24."""
    start = url_for(edge, time.time(), file="master.m3u8", session_seconds=3600)
    location = httpx.get(start, timeout=10, follow_redirects=False).headers["location"]
    assert location.startswith("/s/")
    return edge.url + location.replace("master.m3u8", "hls/v0/seg_001.ts")


def plays(edge: Edge, urls: list[str], rounds: int = 5) -> int:
    """Fetch every URL ``rounds`` times (each 200); how many the validator was not asked for."""
    in_nginx = 0
    for _ in range(rounds):
        for url in urls:
            asked = checks(edge)
            assert httpx.get(url, timeout=10).status_code == 200, url
            in_nginx += checks(edge) == asked
    return in_nginx


def player_plays(edge: Edge) -> tuple[int, float]:
    """A start-token and a session-token segment (the session bound to the viewer's network),
    played five times each: how many nginx decided itself, all of them allows (counted), and
    how many of those allows the C path counted."""
    urls = [url_for(edge, time.time()), session_url(edge)]
    before = scrape(edge)
    in_nginx = plays(edge, urls)
    after = scrape(edge)
    assert in_nginx >= 8
    assert after[ALLOW] - before[ALLOW] == in_nginx
    return in_nginx, after.get(FAST, 0) - before.get(FAST, 0)


def test_a_players_requests_are_allowed_in_c(edge: Edge) -> None:
    """Every allow nginx decided was the C path's."""
    in_nginx, in_c = player_plays(edge)
    assert in_c == in_nginx


def test_the_lua_verifier_alone_allows_the_same_plays(
    store: MemoryStore, tmp_path_factory: pytest.TempPathFactory
) -> None:
    with metered_edge(tmp_path_factory.mktemp("nginx-lua"), store, fast=False) as lua:
        assert player_plays(lua)[1] == 0
        assert scrape(lua).get(FAST, 0) == 0


def test_head_is_allowed_in_c_and_other_methods_are_still_refused(edge: Edge) -> None:
    url = url_for(edge, time.time())
    before = scrape(edge)
    head = httpx.head(url, timeout=10)
    assert head.status_code == 200
    assert int(head.headers["content-length"]) > 0
    assert httpx.post(url, timeout=10).status_code == 403  # limit_except GET, as before
    assert httpx.request("DELETE", url, timeout=10).status_code == 403
    assert scrape(edge)[FAST] - before[FAST] == 1


def test_a_cat_header_or_a_revoked_token_is_left_to_lua(edge: Edge, store: MemoryStore) -> None:
    """A request with a CTA-5007 token header goes to the validator (Lua defers it); a token
    revoked since is denied within a second, by Lua, with its reason."""
    url = url_for(edge, time.time())
    before = scrape(edge)
    asked = checks(edge)
    resp = httpx.get(url, headers={"CTA-Common-Access-Token": "x"}, timeout=10)
    assert checks(edge) == asked + 1
    assert resp.status_code in (401, 403)  # the validator judged the CAT header's token
    assert scrape(edge).get(FAST, 0) == before.get(FAST, 0)
    assert httpx.get(url, timeout=10).status_code == 200
    _revoke(store, "token_id", token_id(url), time.time())
    deadline = time.monotonic() + 1.5
    while (resp := httpx.get(url, timeout=10)).status_code == 200:
        assert time.monotonic() < deadline, "a revoked token still played after a second"
        time.sleep(0.05)
    assert resp.status_code == 403
    assert resp.headers["x-playgate-reason"] == "revoked"
    assert resp.headers["cache-control"] == "no-store"


def test_a_signed_video_id_longer_than_any_field_is_looked_up_safely(edge: Edge) -> None:
    """A video id is the scope's, whose length is 16 bits (the bundled signer caps ids at 128
    characters, another issuer may not): its revocation key is longer than any other field. The
    C path allows it (the origin has no such file) and no worker dies (attacker review: a key
    buffer sized for 255 bytes overflowed here)."""
    now = int(time.time())
    video = "a" * 1000
    claims = Claims(
        key_id=KEYRING.active.key_id, expires_at=now + 600, not_before=now - 10,
        scope=f"/videos/{video}/", token_id="long-video", session_id=None, client_network=None,
        user_id=None, max_uses=0, max_streams=0, session_seconds=0,
    )  # fmt: skip
    target = f"/t/{seal(claims, KEYRING)}/videos/{video}/seg.ts".encode()
    logged = edge.error_log.stat().st_size
    before = scrape(edge)
    for _ in range(3):
        assert raw_get(edge, target)[0] == 404
    assert scrape(edge)[FAST] - before[FAST] == 3
    assert "exited on signal" not in edge.error_log.read_text()[logged:]


# Headers that differ between any two answers whatever the edge (times, cache state, ids).
_VARYING = {"date", "etag", "last-modified", "location", "x-playgate-token-id", "x-playgate-cache"}


def test_answers_carry_the_headers_the_lua_verifier_alone_gives(
    edge: Edge, store: MemoryStore, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Where the module is loaded it sends the access check's headers itself and defines their
    variables empty (no add_header, no set): every answer, allowed, denied, refused or handed
    on, carries the same headers as from the Lua-only edge (second attacker review's check)."""
    now = time.time()
    revoked = url_for(edge, now, file="hls/v0/seg_003.ts")
    _revoke(store, "token_id", token_id(revoked), now)
    time.sleep(1.2)  # in both edges' dicts (one store feeds both)

    def requests(e: Edge) -> list[tuple[str, str, dict[str, str]]]:
        plain = url_for(e, now)
        path = plain.removeprefix(e.url)
        return [
            *((method, plain, {}) for method in ("GET", "HEAD", "POST", "DELETE")),
            ("GET", forged(plain), {}),
            ("GET", url_for(e, now - 700), {}),
            ("GET", f"{e.url}/videos/demo/hls/v0/seg_001.ts", {}),
            ("GET", plain + "?a=1", {}),
            ("GET", e.url + revoked.removeprefix(edge.url), {}),
            ("GET", plain, {"CTA-Common-Access-Token": "x"}),
            ("GET", url_for(e, now, file="master.m3u8", session_seconds=60), {}),
            ("GET", e.url + path.replace("/hls/", "/%68ls/"), {}),
            ("GET", f"{e.url}/s/AAAA/x.ts", {}),
        ]

    def heads(method: str, url: str, headers: dict[str, str]) -> tuple[int, list[tuple[str, str]]]:
        resp = httpx.request(method, url, headers=headers, timeout=10, follow_redirects=False)
        kept = [(k.lower(), v) for k, v in resp.headers.multi_items() if k.lower() not in _VARYING]
        return resp.status_code, sorted(kept)

    with metered_edge(tmp_path_factory.mktemp("nginx-lua-heads"), store, fast=False) as lua:
        statuses = set()
        for fast_req, lua_req in zip(requests(edge), requests(lua), strict=True):
            fast_answer, lua_answer = heads(*fast_req), heads(*lua_req)
            assert fast_answer == lua_answer, fast_req
            statuses.add(fast_answer[0])
            if fast_answer[0] in (401, 403):
                assert ("cache-control", "no-store") in fast_answer[1]
            if fast_answer[0] in (401, 403) and fast_req[0] == "GET":  # limit_except says none
                assert any(name == "x-playgate-reason" for name, _ in fast_answer[1])
    assert {200, 302, 401, 403} <= statuses
