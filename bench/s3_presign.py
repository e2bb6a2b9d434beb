"""Presigned S3 URLs: raw boto3 per request vs the reuse cache, side by side in one run.

Run: .venv/bin/python bench/s3_presign.py
No network: presigning is local CPU work. The cache runs on a simulated clock so that a
workload of R requests/s over N objects plays out in seconds; the time measured is real.
Amortized cost = total real time of all ``url()`` calls / requests (misses sign with boto3).
"""

from __future__ import annotations

import random
import statistics
import sys
import time
from pathlib import Path

import boto3

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from edge_validator.origins.s3 import S3Origin
from edge_validator.origins.s3_location import S3Location, S3Settings

SESSION = boto3.session.Session(
    aws_access_key_id="AKIAEXAMPLEEXAMPLE00",
    aws_secret_access_key="bench-secret-bench-secret-bench-secret-00",
    region_name="us-east-1",
)


def origin(clock: list[float] | None = None) -> S3Origin:
    o = S3Origin(S3Settings(S3Location("playgate-videos", "media")), session=SESSION)
    if clock is not None:
        o.urls._clock = lambda: clock[0]
    return o


def raw_boto3(n: int) -> float:
    client = origin().client
    keys = [f"media/videos/v{i % 50}/hls/v0/seg_{i:05d}.ts" for i in range(n)]
    runs = []
    for _ in range(5):
        t0 = time.perf_counter()
        for key in keys:
            client.generate_presigned_url(
                "get_object", Params={"Bucket": "playgate-videos", "Key": key}, ExpiresIn=60
            )
        runs.append((time.perf_counter() - t0) / n)
    return statistics.median(runs)


def cached(rate: float, objects: int, seconds: float, seed: int = 7) -> tuple[float, float]:
    """Mean real seconds per request and the miss ratio, for ``rate`` req/s over ``objects``."""
    clock = [1_900_000_000.0]
    o = origin(clock)
    rng = random.Random(seed)
    n = int(rate * seconds)
    keys = [f"media/videos/v{i % 50}/hls/v0/seg_{i:05d}.ts" for i in range(objects)]
    plan = [keys[rng.randrange(objects)] for _ in range(n)]
    step = 1.0 / rate
    url = o.urls.url
    t0 = time.perf_counter()
    for key in plan:
        clock[0] += step
        url("GET", key)
    elapsed = time.perf_counter() - t0
    return elapsed / n, o.urls.signed / n


def main() -> None:
    # Interleaved and repeated: a busy machine moves both sides alike.
    scenarios = (
        (1000, 200, "popular: 1000 req/s over 200 objects (5 req/s per object)"),
        (1000, 1000, "busy: 1000 req/s over 1000 objects (1 req/s per object)"),
        (1000, 5000, "long tail: 1000 req/s over 5000 objects (0.2 req/s per object)"),
        (1000, 20, "hot: 1000 req/s over 20 objects (50 req/s per object)"),
    )
    raws: list[float] = []
    results: dict[str, list[tuple[float, float]]] = {label: [] for _, _, label in scenarios}
    for seed in range(3):
        raws.append(raw_boto3(1000))
        for rate, objects, label in scenarios:
            results[label].append(cached(rate, objects, 120, seed))
    raw = statistics.median(raws)
    print(f"raw boto3 generate_presigned_url: {raw * 1e6:.1f} us per request (median of 3)")
    for label, runs in results.items():
        per_request = statistics.median(r[0] for r in runs)
        misses = statistics.median(r[1] for r in runs)
        print(
            f"cached, {label}: {per_request * 1e6:.2f} us per request amortized "
            f"(miss ratio {misses:.1%}, {raw / per_request:.0f}x less than raw)"
        )


if __name__ == "__main__":
    main()
