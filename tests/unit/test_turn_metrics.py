"""Histogram observations and counter increments written in batches, at most every
``FLUSH_SECONDS`` (``BatchedCounts``, ``observe_all``). ``observe_all`` reads
prometheus_client's internals: these tests compare it with plain ``observe`` on the same
values, in memory and in the multiprocess files the serve commands use, so that a release that
changes those internals fails here."""

from __future__ import annotations

import asyncio
import json
import math
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from edge_validator.asgi.admin import FLUSH_SECONDS, BatchedCounts, flush_counts, observe_all
from edge_validator.metrics import _REQUEST_BUCKETS, _VERIFY_BUCKETS

# Multiples of 1/64 and bounds of that kind: every sum is exact in binary, so adding a turn's
# values first and then to the total gives the very same float as adding them one by one.
_EXACT_BOUNDS = (-1.0, 0.0, 0.25, 0.5, 1.0, 2.5, 8.0)


def _exact_values(rng: random.Random, n: int) -> list[float]:
    values = [rng.randint(-256, 1024) / 64 for _ in range(n)]  # -4 .. 16: +Inf bucket too
    values += [*_EXACT_BOUNDS, -0.0, 0.0, -5.0, 100.0]  # on the bounds, zero, far out
    rng.shuffle(values)
    return values


def _turns(rng: random.Random, values: list[float]) -> list[list[float]]:
    """``values`` cut into turns of 1 to 40 observations."""
    turns, i = [], 0
    while i < len(values):
        n = rng.randint(1, 40)
        turns.append(values[i : i + n])
        i += n
    return turns


def _text(registry: CollectorRegistry) -> list[str]:
    return [
        line
        for line in generate_latest(registry).decode().splitlines()
        if "_created" not in line  # the time each registry's histogram was made
    ]


def _both_ways(
    buckets: tuple[float, ...], values: list[float], rng: random.Random
) -> tuple[list[str], list[str]]:
    """The same histogram twice in one registry, under two label values: one fed ``values`` by
    ``observe``, the other by ``observe_all`` in random turns; the exposition lines of each,
    the label taken out."""
    registry = CollectorRegistry()
    histogram = Histogram("h", "compared", ["way"], buckets=buckets, registry=registry)
    observed, batched = histogram.labels("observe"), histogram.labels("batch")
    for value in values:
        observed.observe(value)
    for turn in _turns(rng, values):
        observe_all(batched, turn)
    lines = _text(registry)
    by_observe = [line.replace('way="observe"', "") for line in lines if 'way="observe"' in line]
    by_batch = [line.replace('way="batch"', "") for line in lines if 'way="batch"' in line]
    assert len(by_observe) == len(by_batch) > 3
    return by_observe, by_batch


@pytest.mark.parametrize("seed", range(5))
def test_observe_all_writes_what_observe_writes(seed: int) -> None:
    rng = random.Random(seed)
    values = _exact_values(rng, 2000)
    by_observe, by_batch = _both_ways(_EXACT_BOUNDS, values, rng)
    assert by_batch == by_observe
    assert any('le="+Inf"' in line and line.endswith(f" {len(values)}.0") for line in by_batch)


@pytest.mark.parametrize("buckets", [_VERIFY_BUCKETS, _REQUEST_BUCKETS])
def test_observe_all_on_the_services_buckets(buckets: tuple[float, ...]) -> None:
    """Latencies around the real bounds, exactly on them and past the last: every bucket and
    the count alike; the sum up to float rounding (its terms are added in another order)."""
    rng = random.Random(7)
    values = [rng.lognormvariate(math.log(buckets[len(buckets) // 2]), 2.0) for _ in range(3000)]
    values += [*buckets, *buckets, 0.0, buckets[-1] * 10]
    rng.shuffle(values)
    by_observe, by_batch = _both_ways(buckets, values, rng)
    sums = [i for i, line in enumerate(by_observe) if line.startswith("h_sum")]
    assert len(sums) == 1
    [i] = sums
    assert float(by_batch[i].split()[-1]) == pytest.approx(float(by_observe[i].split()[-1]))
    assert by_batch[:i] + by_batch[i + 1 :] == by_observe[:i] + by_observe[i + 1 :]


# One process writing the multiprocess files, as a serve command's worker does.
_WRITER = """
import json, sys
from prometheus_client import Counter, Histogram
from edge_validator.asgi.admin import observe_all
way, turns, bounds = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
histogram = Histogram("h", "compared", buckets=bounds)
counter = Counter("c", "compared")
for turn in turns:
    if way == "batch":
        observe_all(histogram, turn)
        counter.inc(len(turn))
    else:
        for value in turn:
            histogram.observe(value)
            counter.inc()
"""


def test_observe_all_in_multiprocess_files(tmp_path: Path) -> None:
    from prometheus_client import multiprocess

    rng = random.Random(3)
    turns = _turns(rng, _exact_values(rng, 500))
    texts = []
    for way in ("observe", "batch"):
        directory = tmp_path / way
        directory.mkdir()
        env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory)}
        argv = [sys.executable, "-c", _WRITER, way, json.dumps(turns), json.dumps(_EXACT_BOUNDS)]
        subprocess.run(argv, env=env, check=True)
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=str(directory))
        texts.append(sorted(_text(registry)))  # the collector's order of metrics varies
    assert texts[1] == texts[0]
    assert any(line.startswith("h_sum") for line in texts[0])


def _pair() -> tuple[CollectorRegistry, Histogram, Counter]:
    registry = CollectorRegistry()
    histogram = Histogram("t", "batched", buckets=(0.5, 1.0), registry=registry)
    counter = Counter("n", "batched", registry=registry)
    return registry, histogram, counter


def _seen(registry: CollectorRegistry) -> tuple[float | None, ...]:
    return (
        registry.get_sample_value("t_count"),
        registry.get_sample_value("t_sum"),
        registry.get_sample_value("t_bucket", {"le": "0.5"}),
        registry.get_sample_value("n_total"),
    )


def test_batched_counts_are_written_within_the_flush_interval() -> None:
    registry, histogram, counter = _pair()

    async def requests() -> None:
        counts = BatchedCounts()
        counts.observe(histogram, 0.25)
        counts.add(histogram, 0.75, counter)  # a request's latency and its count
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        assert _seen(registry) == (0.0, 0.0, 0.0, 0.0)  # later turns: still held
        counts.add(histogram, 0.25, counter)
        await asyncio.sleep(FLUSH_SECONDS * 3)
        assert _seen(registry) == (3.0, 1.25, 2.0, 2.0)  # one timer wrote all three
        counts.observe(histogram, 2.0)  # held again, by a timer of its own
        assert _seen(registry) == (3.0, 1.25, 2.0, 2.0)
        await asyncio.sleep(FLUSH_SECONDS * 3)
        assert _seen(registry) == (4.0, 3.25, 2.0, 2.0)

    asyncio.run(requests())
    counts = BatchedCounts()  # no running loop: written at once
    counts.add(histogram, 0.5, counter)
    assert _seen(registry) == (5.0, 3.75, 3.0, 3.0)


def test_a_scrape_writes_the_pending_counts_at_once() -> None:
    registry, histogram, counter = _pair()

    async def scrape() -> None:
        counts = BatchedCounts()
        counts.add(histogram, 0.75, counter)
        counts.inc(counter)
        flush_counts()  # what /metrics and the app's shutdown call
        assert _seen(registry) == (1.0, 0.75, 0.0, 2.0)
        await asyncio.sleep(FLUSH_SECONDS * 3)  # the timer finds nothing left to write
        assert _seen(registry) == (1.0, 0.75, 0.0, 2.0)

    asyncio.run(scrape())


def test_counts_left_by_an_ended_loop_are_written_by_the_next() -> None:
    registry, histogram, counter = _pair()
    counts = BatchedCounts()

    async def first() -> None:
        counts.add(histogram, 0.25, counter)

    async def second() -> None:
        counts.inc(counter)
        await asyncio.sleep(FLUSH_SECONDS * 3)

    asyncio.run(first())  # ends before its timer fires
    assert _seen(registry) == (0.0, 0.0, 0.0, 0.0)
    asyncio.run(second())
    assert _seen(registry) == (1.0, 0.25, 1.0, 2.0)
