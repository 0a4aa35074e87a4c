"""``GET /logs/{process_id}``: pages of a process's logs, or a live Server-Sent Events stream."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, get
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, FromQuery, QueryParameter
from litestar.response import ServerSentEvent, ServerSentEventMessage

from sentinel._core import LEVELS
from sentinel.api.auth import provide_principal
from sentinel.api.openapi import problems
from sentinel.api.params import NOT_FOUND, exact_process_id, parse_last_event_id, parse_time
from sentinel.api.problems import ApiProblem
from sentinel.api.runtime import Runtime
from sentinel.api.schemas import LogPage
from sentinel.api.scope import request_target
from sentinel.models import TERMINAL, LogEntry, now_us, to_us
from sentinel.security import Principal
from sentinel.store.base import LogQuery

POLL_SEC = 0.25
STREAM_PAGE = 500
MAX_TAIL_WAIT_US = 30_000_000  # past this a backlogged queue no longer holds the stream open
# A comment line only (": keep-alive"): with a "data:" line, a browser's EventSource would dispatch an
# empty message at every keep-alive.
KEEPALIVE = ServerSentEventMessage(comment="keep-alive", data=None)


def parse_level(value: str | None) -> int:
    if value is None:
        return 0
    try:
        return LEVELS.index(value.strip().upper())
    except ValueError:
        raise ApiProblem(400, f"level: expected one of {', '.join(LEVELS)}", code="bad_request") from None


def wants_stream(request: Request[Any, Any, Any], follow: bool) -> bool:
    return follow or "text/event-stream" in request.headers.get("accept", "")


class LogController(Controller):
    tags = ["logs"]
    dependencies = {"principal": Provide(provide_principal)}

    @get(
        "/logs/{process_id:path}",
        responses=problems(400, 401, 403, 404, 429, 503),
        summary="Logs of one process, oldest first; with follow=true or Accept: text/event-stream, a live SSE stream",
        description=(
            "Pages are ordered by `(timestamp, seq)`, keys a stored line never changes, so a walk that "
            "follows `next_cursor` returns every line that existed when it began, each exactly once "
            "(unless retention deletes it meanwhile); a line stored during the walk with a timestamp "
            "before the cursor is not in this walk (a live stream, ordered by storage, delivers it). "
            "A stream resumes after the `Last-Event-ID` request header, the `id` of the last event "
            "received; a value that is not such an id (ASCII digits, at most 9223372036854775807) is "
            "refused with 400 `bad_last_event_id` rather than read as 0, which would replay the whole log "
            "to a client that believes it is resuming."
        ),
    )
    async def logs(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[Principal],
        process_id: FromPath[str],
        level: Annotated[str | None, QueryParameter(description="minimum severity")] = None,
        since: Annotated[str | None, QueryParameter(description="RFC 3339 date-time")] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 100,
        cursor: Annotated[str | None, QueryParameter(description="next_cursor of the previous page")] = None,
        follow: FromQuery[bool] = False,
    ) -> Response[LogPage]:
        runtime: Runtime = request.app.state.runtime
        process_id = exact_process_id(request_target(request.scope), b"/logs/")
        min_level = parse_level(level)
        since_us = parse_time("since", since)
        if await runtime.read(runtime.store.get_status, principal.tenant, process_id) is None:
            raise ApiProblem(404, NOT_FOUND, code="not_found")
        if wants_stream(request, follow):
            after = parse_last_event_id(request.headers.get("last-event-id"))
            slot = runtime.streams.acquire(principal.tenant, "logs")  # or 429/503 with Retry-After
            # An SSE response stands in for the page here; the annotation documents the page.
            return ServerSentEvent(  # type: ignore[return-value]
                slot.hold(self._stream(runtime, principal.tenant, process_id, min_level, since_us, after))
            )
        binding = ["logs", process_id, min_level, since_us]
        after_key = None
        if cursor is not None:
            ts, seq = runtime.cursors.decode(cursor, principal.tenant, binding, (int, int))
            after_key = (ts, seq)
        query = LogQuery(min_level=min_level, since=since_us, after=after_key, limit=limit + 1)
        items = await runtime.read(runtime.store.list_logs, principal.tenant, process_id, query)
        next_cursor = None
        if len(items) > limit:
            items = items[:limit]
            last = items[-1]
            next_cursor = runtime.cursors.encode([to_us(last.timestamp), last.seq], principal.tenant, binding)
        return Response(LogPage(items=items, next_cursor=next_cursor))

    async def _stream(
        self, runtime: Runtime, tenant: str, process_id: str, min_level: int, since: int | None, after: int
    ) -> AsyncIterator[ServerSentEventMessage]:
        """Everything stored so far in storage order, then new lines as they arrive; ends once the
        process is terminal and its logs are out, or when the server drains."""
        encode = msgspec.json.encode
        keepalive = runtime.settings.sse_keepalive_sec
        idle = 0.0
        terminal_seen_at: int | None = None
        while not runtime.draining:
            batch: list[LogEntry] = await runtime.read(runtime.store.logs_after, tenant, process_id, after, STREAM_PAGE)
            for entry in batch:
                after = entry.seq
                if LEVELS.index(entry.level) < min_level:
                    continue
                idle = 0.0
                if since is not None and to_us(entry.timestamp) < since:
                    continue
                yield ServerSentEventMessage(data=encode(entry).decode(), event="log", id=entry.seq)
            if len(batch) == STREAM_PAGE:
                continue
            status = await runtime.read(runtime.store.get_status, tenant, process_id)
            if status is not None and status.status in TERMINAL:
                # The queue hands out errors and completions before logs, so lines sent before the
                # terminal event may still be queued. Everything enqueued before the terminal status
                # was seen is either stored or dead-lettered once the queue holds nothing older.
                now = now_us()
                if terminal_seen_at is None:
                    terminal_seen_at = now
                if now - terminal_seen_at < MAX_TAIL_WAIT_US:
                    stats = await runtime.read(runtime.store.queue_stats)
                    if stats.oldest_enqueued_at is not None and stats.oldest_enqueued_at < terminal_seen_at:
                        await asyncio.sleep(POLL_SEC)
                        continue
                tail = await runtime.read(runtime.store.logs_after, tenant, process_id, after, STREAM_PAGE)
                if not tail:
                    yield ServerSentEventMessage(data=encode(status).decode(), event="end")
                    return
                continue
            await asyncio.sleep(POLL_SEC)
            idle += POLL_SEC
            if idle >= keepalive:
                idle = 0.0
                yield KEEPALIVE
        yield ServerSentEventMessage(data='{"reason":"server is shutting down"}', event="close")
