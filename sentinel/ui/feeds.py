"""The dashboard's data calls beyond the public API, under ``/ui/api``: the same bearer token, the same
principal, the same tenant filter as every API read.

- ``GET /ui/api/processes/live``: Server-Sent Events with the caller's processes as they change, and the
  counts by status (the processes view's one stream);
- ``GET /ui/api/counts``: the counts by status under the view's filters;
- ``GET /ui/api/stack-trace/{id}``: the stack trace a failed process reported (not in the status document);
- ``GET /ui/api/health``: the health strip;
- ``GET /ui/api/dead-letters``: newest first, for ``SENTINEL_ADMIN_ROLE`` only.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, get
from litestar.di import NamedDependency, Provide
from litestar.params import QueryParameter
from litestar.response import ServerSentEvent, ServerSentEventMessage

from sentinel import __version__, _core
from sentinel.api.auth import provide_principal
from sentinel.api.openapi import problems
from sentinel.api.params import MAX_SEQ, NOT_FOUND, exact_process_id, search_term
from sentinel.api.problems import ApiProblem
from sentinel.api.runtime import Runtime
from sentinel.api.scope import request_target
from sentinel.ingest.lock import consumer_is_running
from sentinel.models import STATUSES, DeadLetter, now_us
from sentinel.security import AuthError, Principal
from sentinel.store.base import ProcessQuery, StoreError

FEED_SEC = 0.5  # how often a live feed asks the store what changed
FEED_OVERLAP_US = 2_000_000  # re-read this much of the past each time: commits land after their clock
FEED_ROWS = 500  # more changes than this in one look: the page reloads its rows instead
COUNTS_SEC = 1.0  # counts are recounted at most this often, and only after a change
KEEPALIVE_SEC = 15.0
DEAD_LETTER_PAGE = 50

_encode = msgspec.json.Encoder().encode


class Counts(msgspec.Struct):
    counts: dict[str, int]
    total: int


class StackTrace(msgspec.Struct):
    process_id: str
    stack_trace: str | None


class HealthStrip(msgspec.Struct):
    version: str
    core: str
    store: str
    store_ok: bool
    ingest_running: bool
    queue_depth: int | None
    ingest_lag_seconds: float | None
    draining: bool


class DeadLetterPage(msgspec.Struct):
    items: list[DeadLetter]
    next_before: int | None


def counts_of(found: dict[str, int]) -> Counts:
    counts: dict[str, int] = {status: found.get(status, 0) for status in STATUSES}
    return Counts(counts=counts, total=sum(counts.values()))


async def process_feed(runtime: Runtime, tenant: str, query: ProcessQuery) -> AsyncIterator[ServerSentEventMessage]:
    """The live processes feed of one page: the stream the per-worker stream limiter wraps.

    Events: ``counts`` (a ``Counts`` document, first at once and then whenever it changes),
    ``processes`` (a JSON array of status documents that changed since the last look, whatever their
    status, so the page can move or drop a row that left its status filter), ``resync`` (more changed
    than one look sends: reload the rows), ``close`` (the server is draining). The store is asked what
    changed every ``FEED_SEC``; the answer is one indexed query per look, not one per process.
    """
    sent: dict[str, bytes] = {}  # what this page has been sent of each row still inside the look-back
    last_counts: Counts | None = None
    counted_at = 0.0
    since = now_us() - FEED_OVERLAP_US
    idle = 0.0
    changed_since_count = True
    while not runtime.draining:
        look = now_us()
        rows = await runtime.read(
            runtime.store.list_processes, tenant, dataclasses.replace(query, updated_since=since, limit=FEED_ROWS + 1)
        )
        if len(rows) > FEED_ROWS:
            sent = {}
            changed_since_count = True
            yield ServerSentEventMessage(data="{}", event="resync")
        else:
            fresh: dict[str, bytes] = {}
            changed: list[bytes] = []
            for row in rows:
                document = _encode(row)
                fresh[row.process_id] = document
                if sent.get(row.process_id) != document:
                    changed.append(document)
            sent = fresh
            if changed:
                idle = 0.0
                changed_since_count = True
                yield ServerSentEventMessage(data=(b"[" + b",".join(changed) + b"]").decode(), event="processes")
        now = time.monotonic()
        if changed_since_count and now - counted_at >= COUNTS_SEC:
            counted_at = now
            changed_since_count = False
            counts = counts_of(await runtime.read(runtime.store.count_processes, tenant, query))
            if counts != last_counts:
                last_counts = counts
                idle = 0.0
                yield ServerSentEventMessage(data=_encode(counts).decode(), event="counts")
        since = look - FEED_OVERLAP_US
        await asyncio.sleep(FEED_SEC)
        idle += FEED_SEC
        if idle >= KEEPALIVE_SEC:
            idle = 0.0
            yield ServerSentEventMessage(comment="keep-alive")
    yield ServerSentEventMessage(data='{"reason":"server is shutting down"}', event="close")


ProcessType = Annotated[str | None, QueryParameter(max_length=200)]
PackageName = Annotated[str | None, QueryParameter(max_length=200)]
Search = Annotated[str | None, QueryParameter(max_length=200, description="substring of the process id or name")]


def provide_view(process_type: ProcessType = None, package_name: PackageName = None, q: Search = None) -> ProcessQuery:
    """The processes view's filters other than status: the feed sends every status (the page drops a row
    that leaves its status filter) and the counts are by status."""
    return ProcessQuery(process_type=process_type, package_name=package_name, search=search_term(q))


class DashboardController(Controller):
    path = "/ui/api"
    tags = ["dashboard"]
    dependencies = {
        "principal": Provide(provide_principal),
        "view": Provide(provide_view, sync_to_thread=False),
    }

    @get(
        "/processes/live",
        summary="Live feed of the caller's processes and counts (Server-Sent Events)",
        responses=problems(401, 403, 429, 503),
    )
    async def live(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[Principal],
        view: NamedDependency[ProcessQuery],
    ) -> ServerSentEvent:
        runtime: Runtime = request.app.state.runtime
        # One stream per open page, counted against the same per-worker and per-tenant limits as the log
        # followers (429/503 with Retry-After beyond them).
        slot = runtime.streams.acquire(principal.tenant, "processes")
        return ServerSentEvent(slot.hold(process_feed(runtime, principal.tenant, view)))

    @get("/counts", summary="The caller's processes by status, under the view's filters", responses=problems(401, 403))
    async def counts(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[Principal],
        view: NamedDependency[ProcessQuery],
    ) -> Counts:
        runtime: Runtime = request.app.state.runtime
        return counts_of(await runtime.read(runtime.store.count_processes, principal.tenant, view))

    @get(
        "/stack-trace/{process_id:path}",
        summary="The stack trace a failed process reported",
        responses=problems(401, 403, 404),
    )
    async def stack_trace(self, request: Request[Any, Any, Any], principal: NamedDependency[Principal]) -> StackTrace:
        runtime: Runtime = request.app.state.runtime
        process_id = exact_process_id(request_target(request.scope), b"/ui/api/stack-trace/")
        if await runtime.read(runtime.store.get_status, principal.tenant, process_id) is None:
            raise ApiProblem(404, NOT_FOUND, code="not_found")
        trace = await runtime.read(runtime.store.stack_trace, principal.tenant, process_id)
        return StackTrace(process_id=process_id, stack_trace=trace)

    @get("/health", summary="The dashboard's health strip", responses=problems(401, 403))
    async def health(self, request: Request[Any, Any, Any], principal: NamedDependency[Principal]) -> HealthStrip:
        runtime: Runtime = request.app.state.runtime
        depth: int | None = None
        lag: float | None = None
        store_ok = True
        try:
            stats = await runtime.read(runtime.store.queue_stats)
            depth = stats.depth
            if stats.oldest_enqueued_at is not None:
                lag = max(0.0, (now_us() - stats.oldest_enqueued_at) / 1e6)
            else:
                lag = 0.0
        except StoreError:
            store_ok = False
        return HealthStrip(
            version=__version__,
            core=_core.IMPLEMENTATION,
            store=runtime.store.backend,
            store_ok=store_ok,
            ingest_running=consumer_is_running(runtime.settings.ingest_lock_path),
            queue_depth=depth,
            ingest_lag_seconds=lag,
            draining=runtime.draining,
        )

    @get(
        "/dead-letters",
        summary="What the ingest refused, newest first (admin role)",
        responses=problems(400, 401, 403),
    )
    async def dead_letters(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[Principal],
        before: Annotated[
            int | None, QueryParameter(ge=1, le=MAX_SEQ, description="next_before of the previous page")
        ] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=500)] = DEAD_LETTER_PAGE,
    ) -> DeadLetterPage:
        runtime: Runtime = request.app.state.runtime
        role = runtime.settings.admin_role
        if not principal.has_role(role):
            raise AuthError(403, "missing_role", f"dead letters need the '{role}' role")
        _, items = await runtime.read(runtime.store.recent_dead_letters, limit + 1, None, before)
        next_before = None
        if len(items) > limit:
            items = items[:limit]
            next_before = items[-1].id
        return DeadLetterPage(items=items, next_before=next_before)
