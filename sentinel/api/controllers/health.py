"""Liveness, readiness and metrics: unauthenticated, never tenant data."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get
from litestar.status_codes import HTTP_200_OK, HTTP_503_SERVICE_UNAVAILABLE

from sentinel import __version__, _core
from sentinel.api.runtime import Runtime
from sentinel.api.schemas import Health, Readiness
from sentinel.ingest.service import consumer_is_running
from sentinel.store.base import StoreError
from sentinel.telemetry import metrics


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
        checks["ingest"] = "ok" if consumer_is_running(runtime.settings.ingest_lock_path) else "not running"
        checks["keys"] = "ok" if runtime.principals.verifier.ready() else "no signing keys loaded"
        ok = all(value == "ok" for value in checks.values())
        return Response(
            Readiness(status="ready" if ok else "unavailable", checks=checks),
            status_code=HTTP_200_OK if ok else HTTP_503_SERVICE_UNAVAILABLE,
        )

    @get(
        "/metrics", summary="Prometheus metrics", sync_to_thread=False, include_in_schema=True, media_type="text/plain"
    )
    def metrics(self, request: Request[Any, Any, Any]) -> Response[bytes]:
        # On the event loop, never in a thread: the HTTP request counts it flushes are kept unlocked.
        runtime: Runtime = request.app.state.runtime
        pool = getattr(runtime.store, "pool_stats", None)
        if pool is not None:
            busy, opened = pool()
            metrics.DB_POOL.labels("busy").set(busy)
            metrics.DB_POOL.labels("open").set(opened)
        body, content_type = metrics.render()
        # Litestar appends the charset to text types itself; pass the type without it, once.
        return Response(body, media_type=content_type.replace("; charset=utf-8", ""))
