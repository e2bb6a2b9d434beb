"""What the revocation check adds to a request: the in-process view, no Redis call.

    .venv/bin/python bench/revocation_view.py

Prints median microseconds per call (median of 15 batches) of ``RevocationView.revoked`` and of
the validator's whole stateful check (``StateGuard``: view lookup plus failure-policy check)
for a token without limits, with 0 and with 100,000 live revocations.
"""

from __future__ import annotations

import contextlib
import statistics
import time
import timeit

from edge_validator.core.decision import Grant
from edge_validator.core.paths import Target
from edge_validator.core.token import Claims
from edge_validator.state import Revocation, RevocationView, StateGuard, StateSettings
from edge_validator.state.memory import MemoryStore

NOW = time.time()
CLAIMS = Claims("k1", int(NOW) + 300, int(NOW), "/videos/demo/", "tok-1", "sess-1", None, "u-1")


def median_us(fn: object, number: int = 50000, repeat: int = 15) -> float:
    runs = timeit.repeat(fn, number=number, repeat=repeat)  # type: ignore[arg-type]
    return statistics.median(runs) / number * 1e6


def measure(size: int) -> tuple[float, float]:
    view = RevocationView()
    kinds = ("token_id", "session_id", "video_id", "user_id")
    for i in range(size):
        view.add(Revocation(kinds[i % 4], f"x{i}", NOW, NOW + 3600))
    checks = StateGuard(MemoryStore(), StateSettings())
    checks.sync.view = view
    checks.sync.synced_once = True
    checks.sync._mark(subscribed=True, resync_ok=True)
    path = "/videos/demo/master.m3u8"
    grant = Grant(CLAIMS, path, Target("tok", path, "", False), NOW)

    def whole() -> None:
        # Drive the coroutine by hand: it never awaits for a token without limits.
        with contextlib.suppress(StopIteration):
            checks.check(grant).send(None)

    return median_us(lambda: view.revoked(CLAIMS, NOW)), median_us(whole)


def main() -> None:
    for size in (0, 100_000):
        lookup, whole = measure(size)
        print(f"{size:>7} revocations: view lookup {lookup:.2f} µs, state check {whole:.2f} µs")


if __name__ == "__main__":
    main()
