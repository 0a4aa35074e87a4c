"""Bounds on live streams (Server-Sent Events), per worker and per tenant.

A live stream holds a connection, and with it one of the Granian worker's
``SENTINEL_HTTP_MAX_CONNECTIONS`` slots, for as long as the client keeps it open. Without a bound, a few
hundred followers would take every slot and leave none for ``/health``. Each worker therefore keeps at most
``SENTINEL_SSE_MAX_STREAMS`` streams open (fewer than its connection slots, which the settings check), and at
most ``SENTINEL_SSE_MAX_STREAMS_PER_TENANT`` of them for one tenant, across every kind of stream: a tenant's
log followers and its other live views share one budget.

API (one :class:`StreamLimiter` per worker, ``Runtime.streams``)::

    slot = runtime.streams.acquire(principal.tenant, "logs")   # or raises StreamLimitReached
    return ServerSentEvent(slot.hold(my_stream()))             # released when the stream ends

- ``acquire(tenant, kind)`` takes a slot at once or raises :class:`StreamLimitReached`, an ``ApiProblem``
  the API turns into a problem document: **429** ``too_many_streams`` when the tenant's share is used up,
  **503** ``stream_capacity`` when the worker's is; both carry ``Retry-After``. Call it in the handler,
  after authentication and the 404 checks, before the response starts, so a refusal is a clean status.
- ``kind`` names the endpoint (a label of the metrics, e.g. ``"logs"``, ``"processes"``); every kind counts
  against the same limits.
- ``slot.hold(stream)`` wraps an async iterator: the slot is released when it ends, fails, or is closed
  because the client went away. ``slot`` is also a (sync or async) context manager, and
  ``slot.release()`` may be called any number of times. A slot that is dropped without being released
  (e.g. the response was never started) is released when it is garbage-collected.

Metrics: ``sentinel_sse_streams{kind}`` (open streams, summed over live workers) and
``sentinel_sse_streams_refused_total{kind,limit}`` (``limit`` is ``tenant`` or ``worker``).
"""

from __future__ import annotations

import weakref
from collections.abc import AsyncIterator
from types import TracebackType
from typing import TypeVar

from sentinel.api.problems import ApiProblem
from sentinel.telemetry import metrics

T = TypeVar("T")

RETRY_AFTER_SEC = 5


class StreamLimitReached(ApiProblem):
    """No stream slot: ``limit`` is ``"tenant"`` (429) or ``"worker"`` (503)."""

    def __init__(self, limit: str, detail: str) -> None:
        status, code = (429, "too_many_streams") if limit == "tenant" else (503, "stream_capacity")
        super().__init__(status, detail, code=code, headers={"Retry-After": str(RETRY_AFTER_SEC)})
        self.limit = limit


class StreamLimiter:
    """Counts this worker's open streams; see the module docstring for the API."""

    def __init__(self, max_streams: int, max_per_tenant: int) -> None:
        if not 1 <= max_per_tenant <= max_streams:
            raise ValueError("expected 1 <= max_per_tenant <= max_streams")
        self.max_streams = max_streams
        self.max_per_tenant = max_per_tenant
        self._open = 0
        self._by_tenant: dict[str, int] = {}

    @property
    def open(self) -> int:
        """Streams open in this worker."""
        return self._open

    def open_for(self, tenant: str) -> int:
        """Streams open in this worker for ``tenant``."""
        return self._by_tenant.get(tenant, 0)

    def acquire(self, tenant: str, kind: str) -> StreamSlot:
        """A slot for one stream of ``tenant``, or :class:`StreamLimitReached`."""
        if self._by_tenant.get(tenant, 0) >= self.max_per_tenant:
            metrics.SSE_STREAMS_REFUSED.labels(kind, "tenant").inc()
            raise StreamLimitReached(
                "tenant", f"this tenant already has {self.max_per_tenant} live streams open on this server worker"
            )
        if self._open >= self.max_streams:
            metrics.SSE_STREAMS_REFUSED.labels(kind, "worker").inc()
            raise StreamLimitReached("worker", f"the server has no room for another live stream ({self.max_streams})")
        self._open += 1
        self._by_tenant[tenant] = self._by_tenant.get(tenant, 0) + 1
        metrics.SSE_STREAMS.labels(kind).inc()
        return StreamSlot(self, tenant, kind)

    def _release(self, tenant: str, kind: str) -> None:
        self._open -= 1
        left = self._by_tenant[tenant] - 1
        if left:
            self._by_tenant[tenant] = left
        else:
            del self._by_tenant[tenant]
        metrics.SSE_STREAMS.labels(kind).dec()


class StreamSlot:
    """One open stream's place in a :class:`StreamLimiter`."""

    __slots__ = ("__weakref__", "_finalizer", "kind", "tenant")

    def __init__(self, limiter: StreamLimiter, tenant: str, kind: str) -> None:
        self.tenant = tenant
        self.kind = kind
        # Holds the limiter and the labels, not the slot: runs once, on release() or when the slot is collected.
        self._finalizer = weakref.finalize(self, limiter._release, tenant, kind)

    @property
    def held(self) -> bool:
        return self._finalizer.alive

    def release(self) -> None:
        self._finalizer()

    async def hold(self, stream: AsyncIterator[T]) -> AsyncIterator[T]:
        """Yield from ``stream``; release the slot however it ends."""
        try:
            async for item in stream:
                yield item
        finally:
            self.release()
            aclose = getattr(stream, "aclose", None)
            if aclose is not None:
                await aclose()

    def __enter__(self) -> StreamSlot:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()

    async def __aenter__(self) -> StreamSlot:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()
