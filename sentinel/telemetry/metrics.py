"""Prometheus metrics. With several processes (Granian workers plus the ingest consumer) they are
kept in prometheus-client's multiprocess mode: ``PROMETHEUS_MULTIPROC_DIR`` must be set before this
module is imported (``sentinel serve`` sets and empties it at start)."""

from __future__ import annotations

import asyncio
import logging
import os
import platform
from bisect import bisect_left
from collections.abc import Callable
from typing import Any, cast

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

from sentinel import __version__, _core
from sentinel.telemetry.multiproc import MULTIPROC_ENV

log = logging.getLogger("sentinel.metrics")

EVENTS_INGESTED = Counter("sentinel_events_ingested", "Events stored, by event type", ["event_type"])
EVENTS_REJECTED = Counter("sentinel_events_rejected", "Events refused, by reason code", ["reason"])
EVENTS_DUPLICATE = Counter("sentinel_events_duplicate", "Events ignored as repeats of a stored event_id")
DEAD_LETTERS = Counter("sentinel_dead_letters", "Queue messages moved to the dead-letter store")
BATCH_SIZE = Histogram(
    "sentinel_ingest_batch_size",
    "Messages per ingest batch",
    buckets=(1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000),
)
BATCH_DURATION = Histogram(
    "sentinel_ingest_batch_duration_seconds",
    "Time to decode, build and commit one batch",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
BATCH_FAILURES = Counter("sentinel_ingest_batch_failures", "Batches rolled back after a store error")
INGEST_LAG = Gauge("sentinel_ingest_lag_seconds", "Age of the oldest queued message", multiprocess_mode="mostrecent")
QUEUE_DEPTH = Gauge("sentinel_queue_depth", "Messages waiting in the queue", multiprocess_mode="mostrecent")
PROCESSES = Gauge("sentinel_processes", "Processes by status", ["status"], multiprocess_mode="mostrecent")
STALLED_MARKED = Counter("sentinel_processes_stalled", "RUNNING processes marked STALLED")
LOGS_PURGED = Counter("sentinel_logs_purged", "Log rows deleted by retention")
HTTP_REQUESTS = Counter(
    "sentinel_http_requests", "HTTP requests by route template, method and status", ["route", "method", "status"]
)
# The status label of a request whose client hung up before the answer began (nginx's "client closed
# request"): nothing was sent, so it is neither the server's error nor any answer's status.
CLIENT_CLOSED_REQUEST = 499
HTTP_DURATION = Histogram(
    "sentinel_http_request_duration_seconds",
    "HTTP request duration by route template and method",
    ["route", "method"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
EVENTS_ACCEPTED = Counter("sentinel_http_events_accepted", "Events accepted and queued by POST /events")
DB_POOL = Gauge("sentinel_db_pool_connections", "Database pool connections", ["state"], multiprocess_mode="livesum")
JWKS_FETCHES = Counter("sentinel_jwks_fetches", "JWKS fetches by outcome", ["outcome"])
SSE_STREAMS = Gauge(
    "sentinel_sse_streams", "Live Server-Sent Event streams, by endpoint", ["kind"], multiprocess_mode="livesum"
)
SSE_STREAMS_REFUSED = Counter(
    "sentinel_sse_streams_refused",
    "Streams refused because a limit was reached (limit: tenant -> 429, worker -> 503), by endpoint",
    ["kind", "limit"],
)
BUILD_INFO = Gauge("sentinel_build_info", "Build information", ["version", "core", "python"], multiprocess_mode="max")


class HttpRecorder:
    """This worker's HTTP request counts and durations, folded into ``HTTP_REQUESTS`` and
    ``HTTP_DURATION`` in bulk.

    In multiprocess mode every increment takes a lock and writes a memory-mapped file: the three writes a
    request needs cost more than serving ``GET /status`` from SQLite's page cache. Requests are counted
    here in plain dicts instead and flushed every ``FLUSH_SEC``, before each scrape and at shutdown,
    so a scrape sees another worker's requests at most that late, and a worker killed outright loses at
    most that much. Recording and flushing both run on the worker's event loop (``/metrics`` is a
    synchronous handler run on the loop, ``sync_to_thread=False``), so nothing is locked.
    """

    FLUSH_SEC = 0.5

    def __init__(self, requests: Counter, durations: Histogram) -> None:
        self._requests = requests
        self._durations = durations
        # Adding a whole flush to a histogram needs its per-bucket values (``_upper_bounds`` on the metric,
        # ``_buckets`` and ``_sum`` on each child), which prometheus-client does not expose; the version is
        # pinned below 1.0 and tests/test_metrics.py compares a flush with plain ``observe`` calls.
        self._bounds: list[float] = list(durations._upper_bounds)  # the last one is +Inf
        self._counts: dict[tuple[str, str, int], int] = {}
        self._timings: dict[tuple[str, str], list[float]] = {}  # bucket counts, then the sum of seconds

    def record(self, route: str, method: str, status: int, seconds: float) -> None:
        key = (route, method, status)
        self._counts[key] = self._counts.get(key, 0) + 1
        timing = self._timings.get((route, method))
        if timing is None:
            timing = self._timings[(route, method)] = [0.0] * (len(self._bounds) + 1)
        timing[bisect_left(self._bounds, seconds)] += 1  # the first bucket whose bound is >= seconds
        timing[-1] += seconds

    def flush(self) -> None:
        counts, self._counts = self._counts, {}
        timings, self._timings = self._timings, {}
        for (route, method, status), n in counts.items():
            self._requests.labels(route, method, str(status)).inc(n)
        for (route, method), timing in timings.items():
            child: Any = self._durations.labels(route, method)
            for bucket, observed in zip(child._buckets, timing, strict=False):
                if observed:
                    bucket.inc(observed)
            child._sum.inc(timing[-1])

    async def flush_periodically(self) -> None:
        try:
            while True:
                await asyncio.sleep(self.FLUSH_SEC)
                try:
                    self.flush()
                except Exception:  # a full or vanished metrics directory must not stop later flushes
                    log.exception("could not write the HTTP request metrics")
        finally:
            self.flush()


HTTP = HttpRecorder(HTTP_REQUESTS, HTTP_DURATION)


def record_build_info() -> None:
    BUILD_INFO.labels(__version__, _core.IMPLEMENTATION, platform.python_version()).set(1)


def record_jwks_fetch(ok: bool) -> None:
    JWKS_FETCHES.labels("ok" if ok else "error").inc()


def record_queue(depth: int, oldest_enqueued_at_us: int | None, now_us: int) -> float:
    """Set the queue gauges from the store's figures; returns the lag in seconds. Called by the ingest
    consumer and, at every scrape, by the API worker, so the figures grow even while the consumer is
    frozen (the most recent writer wins)."""
    lag = 0.0 if oldest_enqueued_at_us is None else max(0.0, (now_us - oldest_enqueued_at_us) / 1e6)
    QUEUE_DEPTH.set(depth)
    INGEST_LAG.set(lag)
    return lag


def render() -> tuple[bytes, str]:
    """The exposition text for ``/metrics``: merged across processes in multiprocess mode."""
    HTTP.flush()
    if os.environ.get(MULTIPROC_ENV):
        registry = CollectorRegistry()
        # Unannotated __init__ in prometheus_client (see above); constructing it registers it with ``registry``.
        cast("Callable[[CollectorRegistry], object]", multiprocess.MultiProcessCollector)(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    from prometheus_client import REGISTRY

    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
