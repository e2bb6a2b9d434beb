"""signer/issuance_log.py: every issued URL's token id reaches the log, in batched lines."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest

from playgate.logs import JsonFormatter
from signer import issuance_log
from signer.issuance_log import MAX_URLS, IssuanceLog


def _issued(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "playgate.signer"]


def test_every_url_is_logged_in_batches(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "playgate.signer")

    async def main() -> None:
        log = IssuanceLog()
        for i in range(2 * MAX_URLS + 5):
            log.add(f"tid-{i}", "v1", "app")
        assert len(_issued(caplog)) == 2  # full batches leave at once
        log.flush()  # the rest when the signer stops (or MAX_DELAY after its first URL)

    asyncio.run(main())
    records = _issued(caplog)
    assert [r.fields["count"] for r in records] == [MAX_URLS, MAX_URLS, 5]  # type: ignore[attr-defined]
    ids = [u["token_id"] for r in records for u in r.fields["urls"]]  # type: ignore[attr-defined]
    assert ids == [f"tid-{i}" for i in range(2 * MAX_URLS + 5)]
    assert records[2].getMessage() == "issued 5 URLs: " + "; ".join(
        f"token_id=tid-{i} video=v1 caller=app" for i in range(2 * MAX_URLS, 2 * MAX_URLS + 5)
    )
    doc = json.loads(JsonFormatter().format(records[2]))
    assert (doc["event"], doc["count"]) == ("urls_issued", 5)
    assert doc["urls"][0] == {"token_id": f"tid-{2 * MAX_URLS}", "video_id": "v1", "caller": "app"}


def test_a_lone_url_is_logged_within_the_delay(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.INFO, "playgate.signer")
    monkeypatch.setattr(issuance_log, "MAX_DELAY", 0.01)

    async def main() -> None:
        IssuanceLog().add("tid-1", "v1", "app")
        await asyncio.sleep(0.2)

    asyncio.run(main())
    assert [r.fields["count"] for r in _issued(caplog)] == [1]  # type: ignore[attr-defined]


def test_nothing_is_kept_when_info_is_off(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "playgate.signer")
    log = IssuanceLog()
    log.add("tid-1", "v1", "app")  # no loop needed: nothing is batched
    log.flush()
    assert _issued(caplog) == []
