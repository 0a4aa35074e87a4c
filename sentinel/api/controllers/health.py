"""Liveness, readiness and metrics: unauthenticated, never tenant data."""

from __future__ import annotations

import logging
import time
from typing import Any

from litestar import Controller, Request, Response, get
from litestar.status_codes import HTTP_200_OK, HTTP_503_SERVICE_UNAVAILABLE

from sentinel import __version__, _core
from sentinel.api.runtime import Runtime
from sentinel.api.schemas import Health, Readiness
from sentinel.ingest.lock import consumer_is_running, progress_age
from sentinel.models import now_us
from sentinel.store.base import StoreError
from sentinel.telemetry import metrics

log = logging.getLogger("sentinel.api")


async def ingest_check(runtime: Runtime) -> str:
    """ "ok", or why the ingest consumer cannot be counted on: not running, or it has not progressed
    (committed a batch or caught up) for ``SENTINEL_INGEST_STALL_SEC`` while messages wait. Judged here,
    from outside the consumer, because a frozen or stuck consumer cannot report itself."""
    settings = runtime.settings
    if not consumer_is_running(settings.ingest_lock_path):
        return "not running"
    age = progress_age(settings.ingest_progress_path, time.time())
    if age is None or age < settings.ingest_stall_sec:
        return "ok"
    stats = await runtime.read(runtime.store.queue_stats)
    if stats.depth == 0:
        return "ok"
    return f"stalled: no progress for {age:.0f}s while {stats.depth} message(s) wait"


class HealthController(Controller):
    tags = ["operations"]

    @get("/health", summary="Liveness: 200 while the process lives (no database call)", sync_to_thread=False)
    def health(self) -> Health:
        return Health(status="ok", version=__version__, core=_core.IMPLEMENTATION)

    @get("/ready", summary="Readiness: the store answers, ingest runs, not draining")
    async def ready(self, request: Request[Any, Any, Any]) -> Response[Readiness]:
        runtime: Runtime = request.app.state.runtime
        checks: dict[str, str] = {}
        if runtime.draining:
            checks["server"] = "draining"
        try:
            await runtime.read(runtime.store.ping)
            checks["store"] = "ok"
        except StoreError as exc:
            checks["store"] = f"unavailable: {exc}"
        try:
            checks["ingest"] = await ingest_check(runtime)
        except StoreError as exc:
            checks["ingest"] = f"unknown: {exc}"
        checks["keys"] = "ok" if runtime.principals.verifier.ready() else "no signing keys loaded"
        ok = all(value == "ok" for value in checks.values())
        return Response(
            Readiness(status="ready" if ok else "unavailable", checks=checks),
            status_code=HTTP_200_OK if ok else HTTP_503_SERVICE_UNAVAILABLE,
        )

    @get("/metrics", summary="Prometheus metrics", include_in_schema=True, media_type="text/plain")
    async def metrics(self, request: Request[Any, Any, Any]) -> Response[bytes]:
        # On the event loop, never in a thread: the HTTP request counts it flushes are kept unlocked.
        runtime: Runtime = request.app.state.runtime
        try:
            # The queue figures are read here too, not only by the consumer: a frozen consumer would
            # otherwise leave them at their last value (0 when it froze while caught up).
            stats = await runtime.read(runtime.store.queue_stats)
            metrics.record_queue(stats.depth, stats.oldest_enqueued_at, now_us())
        except StoreError as exc:
            log.warning("metrics: queue figures not refreshed: %s", exc)
        busy, opened = runtime.store.pool_stats()
        metrics.DB_POOL.labels("busy").set(busy)
        metrics.DB_POOL.labels("open").set(opened)
        body, content_type = metrics.render()
        # Litestar appends the charset to text types itself; pass the type without it, once.
        return Response(body, media_type=content_type.replace("; charset=utf-8", ""))
