"""Operator endpoints, for the validator and the signer alike: ``/metrics`` (Prometheus text)
and ``/admin/health`` (state details). Both need ``Authorization: Bearer <admin key>``; with no
``PLAYGATE_ADMIN_KEY_HASH`` they do not exist (404). The public /healthz and /readyz say only
"ok" and "ready": nothing about Redis, revocations or errors reaches the internet.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from bisect import bisect_left
from collections.abc import Awaitable, Callable
from typing import Any

from prometheus_client import Counter, Histogram
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..admin_key import AdminKey
from ..core.errors import NotFound, Unauthorized
from ..core.protocol import NO_STORE
from ..metrics import CONTENT_TYPE, exposition, metrics
from .problems import problem

Details = Callable[[], Awaitable[dict[str, Any]]]
_NO_STORE = {"Cache-Control": NO_STORE}


def admin_routes(key: AdminKey | None, details: Details) -> list[Route]:
    def refused(request: Request) -> Response | None:
        if key is None:
            return problem(NotFound("no such route"))
        if not key.accepts(request.headers.get("authorization")):
            return problem(
                Unauthorized("send Authorization: Bearer <admin key>"),
                {"WWW-Authenticate": "Bearer"},
            )
        return None

    async def metrics_text(request: Request) -> Response:
        if (refusal := refused(request)) is not None:
            return refusal
        flush_counts()  # this worker's counts, up to the request just answered
        return Response(exposition(), headers={"Content-Type": CONTENT_TYPE, **_NO_STORE})

    async def health(request: Request) -> Response:
        return refused(request) or JSONResponse(await details(), headers=_NO_STORE)

    return [
        Route("/metrics", metrics_text, methods=["GET"]),
        Route("/admin/health", health, methods=["GET"]),
    ]


# How long a worker keeps its counts before writing them to the metrics (nginx's workers add
# theirs every 0.2 s, playgate_metrics.lua). A scrape this worker answers writes them first.
FLUSH_SECONDS = 0.1
_batches: weakref.WeakSet[BatchedCounts] = weakref.WeakSet()


def flush_counts() -> None:
    """Write every pending count of this process now (before a scrape, at shutdown)."""
    for counts in list(_batches):
        counts.flush()


class BatchedCounts:
    """Counter increments and histogram observations kept in the worker and written at most
    every ``FLUSH_SECONDS``: all of them in one ``inc(n)`` per counter, and per histogram one
    increment of each bucket hit and one of the sum (``observe_all``). In the multiprocess files
    the serve commands use, every value write takes a lock, a ``getpid`` system call and an
    mmap write: written per loop turn, a media request on a connection of its own paid six,
    58,000 instructions, a sixth of its whole server cost (docs/performance.md, "Metrics
    written every 0.1 s"). A ``/metrics`` answer of this worker (``flush_counts``) and the
    app's shutdown write them at once; another worker's scrape sees them within
    ``FLUSH_SECONDS``. With no running loop (a synchronous caller) a value is written at once."""

    def __init__(self) -> None:
        self._pending: dict[Counter, int] = {}
        self._observed: dict[Histogram, list[float]] = {}
        # The loop whose timer writes what is pending (None: no timer). A loop that stopped with
        # its timer still armed (a test client's) is replaced by the next running one.
        self._loop: asyncio.AbstractEventLoop | None = None
        _batches.add(self)

    def inc(self, counter: Counter) -> None:
        if not self._held():
            counter.inc()
            return
        pending = self._pending
        pending[counter] = pending.get(counter, 0) + 1

    def observe(self, histogram: Histogram, value: float) -> None:
        if not self._held():
            histogram.observe(value)
            return
        observed = self._observed.get(histogram)
        if observed is None:
            self._observed[histogram] = [value]
        else:
            observed.append(value)

    def add(self, histogram: Histogram, value: float, counter: Counter) -> None:
        """``observe`` and ``inc`` in one call (a request's latency and its count)."""
        if not self._held():
            histogram.observe(value)
            counter.inc()
            return
        observed = self._observed.get(histogram)
        if observed is None:
            self._observed[histogram] = [value]
        else:
            observed.append(value)
        pending = self._pending
        pending[counter] = pending.get(counter, 0) + 1

    def _held(self) -> bool:
        """Whether a value may wait: a running loop's timer will write it. The armed loop is
        asked first: Python 3.11 finds the running loop with a ``getpid`` system call."""
        loop = self._loop
        if loop is not None and loop.is_running():
            return True
        loop = asyncio._get_running_loop()
        if loop is None:
            return False
        self._loop = loop
        loop.call_later(FLUSH_SECONDS, self.flush)
        return True

    def flush(self) -> None:
        """Write what is pending now."""
        self._loop = None
        pending, self._pending = self._pending, {}
        observed, self._observed = self._observed, {}
        for counter, n in pending.items():
            counter.inc(n)
        for histogram, values in observed.items():
            if len(values) == 1:  # one value (one request): two writes, as observe makes
                histogram.observe(values[0])
            else:
                observe_all(histogram, values)


def observe_all(histogram: Histogram, values: list[float]) -> None:
    """``histogram.observe(v)`` for each of ``values``, in one write per bucket hit and one of
    the sum. prometheus_client has no public way to observe several values at once: this reads
    its internals (``_upper_bounds``, ``_buckets``, ``_sum``, as ``observe`` uses them), and
    tests/unit/test_turn_metrics.py compares it with ``observe`` so that a release that changes
    them fails there. ``histogram`` must be observable (unlabelled or a bound child). The sum
    is the turn's values added first, then to the total: equal to ``observe`` one by one up to
    float rounding in the last place."""
    bounds: list[float] = histogram._upper_bounds
    last = len(bounds) - 1
    hits: dict[int, int] = {}
    total = 0.0
    for value in values:
        i = bisect_left(bounds, value)
        if i <= last and value <= bounds[i]:  # NaN counts in no bucket, as with observe
            hits[i] = hits.get(i, 0) + 1
        total += value
    histogram._sum.inc(total)
    buckets = histogram._buckets
    for i, n in hits.items():
        buckets[i].inc(n)


class ResponseMetrics:
    """One service's latency histogram and response counters, by a fixed route name (never the
    path, which holds tokens). Each label set is bound on first use and kept: ``labels()``
    takes a lock and builds its key on every call, a cost per request for a handful of series.
    ``counts`` writes the latencies and the response counters (and any other counter or
    histogram of the service, such as the validator's decisions) in batches."""

    def __init__(self, service: str) -> None:
        self.service = service
        self.counts = BatchedCounts()
        self._seconds: dict[str, Histogram] = {}
        self._responses: dict[tuple[str, int], Counter] = {}

    def record(self, route: str, started: float, status: int) -> None:
        """One response of ``route``, begun at ``started`` (``time.perf_counter()``)."""
        elapsed = time.perf_counter() - started
        seconds = self._seconds.get(route)
        if seconds is None:
            seconds = self._seconds[route] = metrics().request_seconds.labels(self.service, route)
        key = (route, status // 100)
        responses = self._responses.get(key)
        if responses is None:
            responses = metrics().http_responses.labels(self.service, route, f"{key[1]}xx")
            self._responses[key] = responses
        self.counts.add(seconds, elapsed, responses)


class RequestMetrics:
    """Latency and status class of every HTTP response (``ResponseMetrics``); ``route_of``
    maps a path to one of a few route names."""

    def __init__(
        self, app: ASGIApp, recorded: ResponseMetrics, route_of: Callable[[str], str]
    ) -> None:
        self.app = app
        self.recorded = recorded
        self.route_of = route_of

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def timed_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, timed_send)
        finally:
            self.recorded.record(self.route_of(scope["path"]), started, status)
