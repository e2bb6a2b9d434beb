"""The validator's counts are written in batches (``BatchedCounts``), yet a scrape of the worker
that answered sees every request it answered, and a worker that stops writes what it held:
a real server over loopback, with the batch timer pushed out of reach."""

from __future__ import annotations

import httpx
import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from edge_validator.admin_key import AdminKey
from edge_validator.asgi import admin
from edge_validator.asgi.app import create_app
from edge_validator.core.keyring import KeyRing
from edge_validator.settings import ValidatorSettings
from tests.support import factories
from tests.support.factories import ADMIN_AUTH, ADMIN_KEY_HASH, SAMPLES
from tests.support.servers import serve_app

SHIELD = {"service": "validator", "route": "shield"}


def _scraped(base: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    resp = httpx.get(f"{base}/metrics", headers=ADMIN_AUTH, timeout=10)
    assert resp.status_code == 200
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(resp.text)
        for sample in family.samples
    }


def _key(name: str, **labels: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    return name, tuple(sorted(labels.items()))


def test_a_scrape_and_a_shutdown_write_the_held_counts(
    keyring: KeyRing, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(admin, "FLUSH_SECONDS", 3600.0)  # only a scrape or a shutdown writes
    settings = ValidatorSettings(
        keyring=keyring, media_root=SAMPLES, admin_key=AdminKey(ADMIN_KEY_HASH)
    )
    good = factories.token(keyring)
    allowed = f"/t/{good}/videos/demo/master.m3u8"
    denied = f"/t/{factories.tampered(good)}/videos/demo/master.m3u8"
    ok = _key("playgate_http_responses_total", status="2xx", **SHIELD)
    refused = _key("playgate_http_responses_total", status="4xx", **SHIELD)
    decided = _key("playgate_verification_seconds_count")
    with serve_app(create_app(settings)) as base:
        before = _scraped(base)
        with httpx.Client(base_url=base, timeout=10) as client:  # one kept-alive connection
            for _ in range(3):
                assert client.get(allowed).status_code == 200
            assert client.get(denied).status_code == 403
        after = _scraped(base)
        assert after[ok] - before.get(ok, 0) == 3
        assert after[refused] - before.get(refused, 0) == 1
        assert after[decided] - before[decided] == 4
        assert httpx.get(f"{base}{allowed}", timeout=10).status_code == 200
        held = REGISTRY.get_sample_value(ok[0], dict(ok[1]))
    assert REGISTRY.get_sample_value(ok[0], dict(ok[1])) == (held or 0) + 1  # at shutdown
