"""Prometheus metrics of the validator and the signer, right with several worker processes.

Design. ``playgate serve-* --workers N`` runs N uvicorn workers; a scrape reaches one of them.
Values are therefore written to prometheus-client's multiprocess files (mmap'd, one set per
worker, in ``PROMETHEUS_MULTIPROC_DIR``, which the serve commands create) and summed at scrape
time by whichever worker answers ``/metrics``. That mode cannot run custom collectors (a
callback at scrape time sees only the answering worker), so there are none: every value is
written when it changes. Counters and histograms are written by the request that causes them;
the state gauges (revocation view size, staleness, last sync) by a one-second ticker in every
worker (``StateGauges``). Counters of a worker that exited stay in the sums, so counts never go
backwards when a worker restarts; "live" gauges of dead workers are removed at start-up and exit.

Rejected: one ``/metrics`` per worker behind a shared port (each scrape sees a random worker, and
counters jump between workers' values); workers pushing to the master (uvicorn's supervisor has
no channel for it: a new IPC protocol to get right). Without ``PROMETHEUS_MULTIPROC_DIR`` (tests
in one process, the demo) the same metrics live in the process's default registry.

Nothing here is created at import time: ``metrics()`` builds them once per process, on first use.
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass
from functools import cache

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client import multiprocess as prometheus_multiprocess

MULTIPROC_DIR = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = CONTENT_TYPE_LATEST
# Verification is microseconds in process; with a Redis round trip, milliseconds.
_VERIFY_BUCKETS = (
    0.00001,
    0.000025,
    0.00005,
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.1,
)
_REQUEST_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


@dataclass(frozen=True)
class Metrics:
    # The validator's decisions: outcome allow/deny, reason "ok" or the error's reason code.
    decisions: Counter
    verification_seconds: Histogram
    request_seconds: Histogram
    revocation_view_entries: Gauge
    revocation_view_staleness: Gauge
    revocation_last_sync: Gauge
    revocation_view_in_sync: Gauge
    redis_errors: Counter
    # Shared state too busy to answer (a full pool), which never selects the failure policy.
    state_busy: Counter
    # Times a validator found that Redis had lost its revocation data (a new epoch).
    state_data_losses: Counter
    # Stateful checks let through by the fail-open policy while the state was unreachable.
    fail_open_decisions: Counter
    # Writes the primary took but too few replicas confirmed (state/durability.py).
    writes_not_replicated: Counter
    # |local clock - Redis TIME| (state/clock_skew.py); revocations the signer still holds.
    clock_skew: Gauge
    revocations_queued: Gauge
    # Incremented where an edge renews a playback session (playback sessions work).
    sessions_renewed: Counter
    # CTA-5007 tokens renewed (catr), by how the new token was delivered: header, cookie, redirect.
    cat_renewals: Counter
    # The signer.
    urls_issued: Counter
    http_responses: Counter


@cache
def metrics() -> Metrics:
    """This process's metrics, created on first use."""
    return Metrics(
        decisions=Counter(
            "playgate_decisions",
            "Validator decisions by outcome and reason",
            ["outcome", "reason"],
        ),
        verification_seconds=Histogram(
            "playgate_verification_seconds",
            "Time to decide one request: token, path, client and shared-state checks",
            buckets=_VERIFY_BUCKETS,
        ),
        request_seconds=Histogram(
            "playgate_request_seconds",
            "HTTP request latency by service and route",
            ["service", "route"],
            buckets=_REQUEST_BUCKETS,
        ),
        revocation_view_entries=Gauge(
            "playgate_revocation_view_entries",
            "Revocations held in the in-process view (largest worker)",
            multiprocess_mode="livemax",
        ),
        revocation_view_staleness=Gauge(
            "playgate_revocation_view_staleness_seconds",
            "Seconds since the view was last known complete (worst worker; +Inf: never synced)",
            multiprocess_mode="livemax",
        ),
        revocation_last_sync=Gauge(
            "playgate_revocation_last_sync_timestamp_seconds",
            "Unix time of the last complete resync (oldest worker; 0: never)",
            multiprocess_mode="livemin",
        ),
        revocation_view_in_sync=Gauge(
            "playgate_revocation_view_in_sync",
            "1 when every worker's view follows the store live, else 0",
            multiprocess_mode="livemin",
        ),
        redis_errors=Counter(
            "playgate_redis_errors", "Redis calls that failed (timeouts, connection errors)"
        ),
        state_busy=Counter(
            "playgate_state_busy", "Stateful checks refused because shared state was busy"
        ),
        state_data_losses=Counter(
            "playgate_state_data_losses",
            "Times Redis was found to have lost its revocation data (validators wrote it back)",
        ),
        fail_open_decisions=Counter(
            "playgate_fail_open_decisions",
            "Requests allowed under the fail-open policy while shared state was unreachable",
        ),
        writes_not_replicated=Counter(
            "playgate_redis_writes_not_replicated",
            "Revocation writes refused because too few replicas confirmed them",
        ),
        clock_skew=Gauge(
            "playgate_clock_skew_seconds",
            "|this host's clock - Redis TIME| at the last check (worst worker)",
            multiprocess_mode="livemax",
        ),
        revocations_queued=Gauge(
            "playgate_revocations_queued",
            "Revocations the signer holds in its spool until Redis takes them",
            multiprocess_mode="livemax",
        ),
        sessions_renewed=Counter("playgate_sessions_renewed", "Playback sessions renewed"),
        cat_renewals=Counter(
            "playgate_cat_renewals",
            "CTA-5007 tokens renewed (catr) by delivery: header, cookie or redirect",
            ["delivery"],
        ),
        urls_issued=Counter(
            "playgate_urls_issued", "Playback URLs issued by API key name", ["api_key"]
        ),
        http_responses=Counter(
            "playgate_http_responses",
            "HTTP responses by service (validator, signer), route and status class (2xx...)",
            ["service", "route", "status"],
        ),
    )


def multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROC_DIR) or None


def exposition() -> bytes:
    """The text for ``/metrics``: every worker's values when several run, else this process's."""
    path = multiprocess_dir()
    if path is None:
        return generate_latest(REGISTRY)
    registry = CollectorRegistry()
    prometheus_multiprocess.MultiProcessCollector(registry, path)  # type: ignore[no-untyped-call]
    return generate_latest(registry)


def forget_dead_workers() -> None:
    """Drop the live gauges of workers that are gone (crashed, or this one exiting later)."""
    path = multiprocess_dir()
    if path is None:
        return
    for name in glob.glob(os.path.join(path, "gauge_live*_*.db")):
        pid = int(name.rsplit("_", 1)[1].removesuffix(".db"))
        if not _alive(pid):
            prometheus_multiprocess.mark_process_dead(pid, path)  # type: ignore[no-untyped-call]


def worker_exiting() -> None:
    path = multiprocess_dir()
    if path is not None:
        prometheus_multiprocess.mark_process_dead(os.getpid(), path)  # type: ignore[no-untyped-call]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
