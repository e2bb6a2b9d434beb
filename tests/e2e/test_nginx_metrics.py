"""nginx counts what its native verifier decides, and serves the counts to Prometheus.

A real nginx with the native verifier and its admin /metrics; real requests: allowed plays, a
session opened, forged, expired and revoked tokens. Each request nginx decided itself (the
validator was not asked) is counted once at nginx, under the validator's own metric names, and
never at the validator; what nginx hands to the validator is counted there, and at nginx as
deferred.
"""

from __future__ import annotations

import collections
import json
import os
import signal
import time
from collections.abc import Iterator

import httpx
import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from edge_validator.core.token import open_token
from edge_validator.settings import ValidatorSettings
from edge_validator.state.guard import StateGuard
from edge_validator.state.memory import MemoryStore
from signer.issuing import PlaybackRequest, issue
from tests.e2e.test_nginx_native import KEYRING, KEYRING_DOC, _revoke, checks, wait_until_native
from tests.support.factories import SAMPLES
from tests.support.nginx_edge import Edge, nginx_edge

Series = tuple[str, tuple[tuple[str, str], ...]]
ALLOW: Series = ("playgate_decisions_total", (("outcome", "allow"), ("reason", "ok")))
OPENED: Series = ("playgate_sessions_renewed_total", ())


def deny(reason: str) -> Series:
    return ("playgate_decisions_total", (("outcome", "deny"), ("reason", reason)))


def deferred(why: str) -> Series:
    return ("playgate_native_deferred_total", (("reason", why),))


@pytest.fixture(scope="module")
def store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture(scope="module")
def edge(store: MemoryStore, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Edge]:
    prefix = tmp_path_factory.mktemp("nginx-metrics")
    keyring_file = prefix / "keyring.json"
    keyring_file.write_text(json.dumps(KEYRING_DOC))
    guard = StateGuard(store, ValidatorSettings(keyring=KEYRING).state, shared=True)
    media = SAMPLES
    with nginx_edge(
        KEYRING, media, prefix, keyring_file=keyring_file, guard=guard, metrics=True
    ) as running:
        wait_until_native(running)
        yield running


def scrape(edge: Edge) -> dict[Series, float]:
    # Each worker adds its allows to the counts every 0.2 s (playgate_metrics.lua FLUSH).
    time.sleep(0.5)
    resp = httpx.get(edge.metrics_url, timeout=10)
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/plain; version=0.0.4")
    values: dict[Series, float] = {}
    for family in text_string_to_metric_families(resp.text):
        for sample in family.samples:
            values[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return values


def validator_count(series: Series) -> float:
    """The validator's own count (it runs in this process: its registry is this one's)."""
    return REGISTRY.get_sample_value(series[0], dict(series[1])) or 0.0


def url_for(edge: Edge, now: float, file: str = "hls/v0/seg_001.ts", **fields: object) -> str:
    request = PlaybackRequest("demo", 600, file=file, **fields)  # type: ignore[arg-type]
    return issue(request, KEYRING, now, public_url=edge.url).url


def token_id(url: str) -> str:
    return open_token(url.split("/t/", 1)[1].split("/", 1)[0], KEYRING).token_id


def forged(url: str) -> str:
    token = url.split("/t/", 1)[1].split("/", 1)[0]
    return url.replace(token, token[:-3] + ("AAA" if token[-3:] != "AAA" else "BBB"))


def test_every_decision_nginx_takes_is_counted_once_under_the_validators_names(
    edge: Edge, store: MemoryStore
) -> None:
    now = time.time()
    revoked = url_for(edge, now)
    _revoke(store, "token_id", token_id(revoked), now)
    time.sleep(1.0)  # the revocation reaches nginx's view (the feed is polled every 0.2 s)
    requests = [
        (url_for(edge, now), 200, ALLOW),
        (url_for(edge, now, file="hls/v0/seg_002.ts"), 200, ALLOW),
        (forged(url_for(edge, now)), 403, deny("bad_signature")),
        (url_for(edge, now - 700), 403, deny("expired")),
        (revoked, 403, deny("revoked")),
        (f"{edge.url}/videos/demo/hls/v0/seg_001.ts", 401, deny("missing")),
    ]
    expected: collections.Counter[Series] = collections.Counter()
    at_validator: collections.Counter[Series] = collections.Counter()
    before, validator_before = scrape(edge), {s: validator_count(s) for _, _, s in requests}
    for _round in range(3):
        for url, status, series in requests:
            asked = checks(edge)
            assert httpx.get(url, timeout=10).status_code == status
            # Decided in nginx unless its view was not fresh (a loaded machine delays a poll).
            if checks(edge) == asked:
                expected[series] += 1
            else:
                at_validator[series] += 1
                expected[deferred("not_fresh")] += 1
    after = scrape(edge)
    for series in {*expected, *(s for _, _, s in requests)}:
        assert after.get(series, 0) - before.get(series, 0) == expected[series], series
    for _, _, series in requests:
        assert expected[series] >= 1, (series, "never decided in nginx")
        # The validator counted only what reached it: no request is counted twice.
        assert validator_count(series) - validator_before[series] == at_validator[series]


def test_a_session_opened_in_nginx_is_an_allow_and_a_session(edge: Edge) -> None:
    for _ in range(20):
        url = url_for(edge, time.time(), file="master.m3u8", session_seconds=3600)
        before, shield = scrape(edge), validator_count(OPENED)
        resp = httpx.get(url, timeout=10, follow_redirects=False)
        assert resp.status_code == 302
        after = scrape(edge)
        if validator_count(OPENED) == shield:  # opened in nginx, not by the shield
            assert after[OPENED] - before.get(OPENED, 0) == 1
            assert after[ALLOW] - before[ALLOW] == 1
            return
        time.sleep(0.2)
    pytest.fail("nginx never opened a session itself")


def test_what_nginx_hands_to_the_validator_is_counted_as_deferred(edge: Edge) -> None:
    for _ in range(20):
        limited = url_for(edge, time.time(), max_uses=5)
        before = scrape(edge)
        asked = checks(edge)
        assert httpx.get(limited, timeout=10).status_code == 200
        assert checks(edge) == asked + 1
        after = scrape(edge)
        limits = after.get(deferred("limits"), 0) > before.get(deferred("limits"), 0)
        why = "limits" if limits else "not_fresh"
        assert after[deferred(why)] - before.get(deferred(why), 0) == 1
        assert after.get(ALLOW) == before.get(ALLOW)  # the validator decided it
        if why == "limits":
            return
        time.sleep(0.2)
    pytest.fail("nginx's view was never fresh")


def test_the_feed_age_is_served_and_the_admin_port_serves_nothing_else(edge: Edge) -> None:
    age = scrape(edge)[("playgate_native_feed_age_seconds", ())]
    assert 0 <= age < 5
    base = edge.metrics_url.removesuffix("/metrics")
    assert httpx.get(f"{base}/", timeout=10).status_code == 404
    assert httpx.post(edge.metrics_url, timeout=10).status_code == 403
    # The viewers' port has no /metrics: it is a media path like any other (denied, no token).
    assert httpx.get(f"{edge.url}/metrics", timeout=10).status_code == 401


def test_a_reload_right_after_allows_loses_none(edge: Edge) -> None:
    """A worker adds its allows to the shared counts every 0.2 s and once more as it exits
    (its timer's last, premature run): a reload right after the requests loses none. Whether
    the last run or a regular one adds them depends on when the old worker exits; this test
    reloads nginx, so it runs last."""
    before = scrape(edge)
    url = url_for(edge, time.time())
    decided = 0
    for _ in range(5):
        asked = checks(edge)
        assert httpx.get(url, timeout=10).status_code == 200
        decided += checks(edge) == asked
    os.kill(int((edge.prefix / "nginx.pid").read_text()), signal.SIGHUP)
    assert decided >= 1
    deadline = time.monotonic() + 10
    while scrape(edge)[ALLOW] - before[ALLOW] != decided:
        assert time.monotonic() < deadline, "the exiting workers' allows were lost"
