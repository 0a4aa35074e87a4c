"""Row -> document conversion shared by the adapters, so both serve byte-identical documents.

Adapters select the columns in the orders below, with times as integer microseconds (UTC).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from sentinel._core import LEVELS, LOG_COLUMNS
from sentinel.models import (
    DeadLetter,
    LogEntry,
    ProcessStatus,
    estimate_completion,
    from_us,
    raw_json,
)

PROCESS_COLUMNS: Final = (
    "tenant_id",
    "process_id",
    "status",
    "process_name",
    "process_type",
    "package_name",
    "procedure_name",
    "correlation_id",
    "current_step",
    "progress_percent",
    "started_at",
    "percent_at",
    "last_seen_at",
    "ended_at",
    "error_code",
    "error_message",
    "result",
    "metadata",
    "event_count",
    "log_count",
)
# A stored log line as served: its sequence number, then the event's own columns as the core writes them
# (LOG_COLUMNS from ts on, without who it belongs to and when it was ingested).
LOG_ENTRY_COLUMNS: Final = ("seq", *LOG_COLUMNS[LOG_COLUMNS.index("ts") : LOG_COLUMNS.index("ingested_at")])
DEAD_LETTER_COLUMNS: Final = ("id", "code", "reason", "payload", "enqueued_at", "dead_at")


def status_from_row(row: Sequence[Any]) -> ProcessStatus:
    (
        tenant_id,
        process_id,
        status,
        name,
        ptype,
        package,
        procedure,
        correlation,
        step,
        percent,
        started,
        percent_at,
        last_seen,
        ended,
        error_code,
        error_message,
        result,
        metadata,
        events,
        logs,
    ) = row
    running = ended is None and status in ("RUNNING", "STALLED")
    started = effective_start(started, ended)
    return ProcessStatus(
        process_id=process_id,
        tenant_id=tenant_id,
        status=status,
        process_name=name,
        process_type=ptype,
        package_name=package,
        procedure_name=procedure,
        correlation_id=correlation,
        current_step=step,
        progress_percent=percent,
        started_at=from_us(started),
        last_seen_at=from_us(last_seen),
        ended_at=from_us(ended),
        duration_ms=(ended - started) // 1000 if ended is not None and started is not None else None,
        estimated_completion=from_us(estimate_completion(started, percent_at, percent)) if running else None,
        error_code=error_code,
        error_message=error_message,
        result=raw_json(result),
        metadata=raw_json(metadata),
        event_count=events,
        log_count=logs,
    )


def effective_start(started_us: int | None, ended_us: int | None) -> int | None:
    """``started_at`` as served: the newest STARTED timestamp, but never after ``ended_at``.

    The store keeps both as merged (the newest start, the winning terminal event), each
    independent of arrival order and batch split; a start stamped after the end (a producer's clock
    behind, a STARTED arriving after the process ended) counts as starting at the end. So
    ``started_at <= ended_at`` and ``duration_ms >= 0`` hold for every order, and nothing merged is lost
    should a later terminal event move the end."""
    if started_us is not None and ended_us is not None and started_us > ended_us:
        return ended_us
    return started_us


def log_from_row(row: Sequence[Any]) -> LogEntry:
    seq, ts, level, message, details, component, correlation, trace_id, span_id, duration = row
    return LogEntry(
        seq=seq,
        timestamp=from_us(ts),
        level=LEVELS[level],
        message=message,
        details=raw_json(details),
        component=component,
        correlation_id=correlation,
        trace_id=trace_id,
        span_id=span_id,
        duration_us=duration,
    )


def dead_letter_from_row(row: Sequence[Any]) -> DeadLetter:
    ident, code, reason, payload, enqueued, dead = row
    return DeadLetter(
        id=ident,
        code=code,
        reason=reason,
        payload=bytes(payload).decode("utf-8", "backslashreplace"),
        enqueued_at=from_us(enqueued),
        dead_at=from_us(dead),
    )
