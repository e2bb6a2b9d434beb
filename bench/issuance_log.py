"""What logging an issued URL costs the signer: one log line per URL (as before) against the
batched issuance log (signer/issuance_log.py), both at INFO through PlayGate's own logging
configuration into a file, in alternating rounds. CPU time of this process, per URL.

    .venv/bin/python bench/issuance_log.py
"""

from __future__ import annotations

import asyncio
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path

from playgate.logs import configure_logging
from signer.issuance_log import IssuanceLog

URLS = 100_000
log = logging.getLogger("playgate.signer")


def one_line_per_url() -> None:
    for _ in range(URLS):
        log.info("issued token_id=%s video=%s caller=%s", "Nk3v9QjX0aZfL2pd", "video-1", "app")


def batched() -> None:
    issued = IssuanceLog()
    for _ in range(URLS):
        issued.add("Nk3v9QjX0aZfL2pd", "video-1", "app")
    issued.flush()


async def main() -> None:
    results: dict[str, list[float]] = {"one line per URL": [], "batched issuance log": []}
    for _ in range(5):
        for name, run in zip(results, (one_line_per_url, batched), strict=True):
            start = time.process_time()
            run()
            results[name].append((time.process_time() - start) / URLS * 1e6)
    print("| issuance log at INFO, to a file | µs of CPU per URL (median of 5 rounds) |")
    print("|---|---:|")
    for name, values in results.items():
        print(f"| {name} | {statistics.median(values):.2f} |")


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp, open(Path(tmp) / "log", "w") as out:
        configure_logging({"PLAYGATE_LOG_LEVEL": "info"})
        for handler in logging.getLogger().handlers:
            assert isinstance(handler, logging.StreamHandler)
            handler.setStream(out)
        asyncio.run(main())
        sys.stdout.flush()
