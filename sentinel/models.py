"""The documents of the product contract (SPEC sections 3 and 4), shared by the store and the API.

Times are aware UTC datetimes, which msgspec writes as RFC 3339 with ``Z``; JSON objects that were
stored as text (``metadata``, ``result``, ``details``) travel as ``msgspec.Raw`` and are never re-parsed.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal, overload

import msgspec

from sentinel._core._shared import MAX_US

Status = Literal["RUNNING", "STALLED", "COMPLETED", "FAILED", "CANCELLED"]
Level = Literal["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"]
STATUSES: tuple[Status, ...] = ("RUNNING", "STALLED", "COMPLETED", "FAILED", "CANCELLED")
TERMINAL: frozenset[str] = frozenset({"COMPLETED", "FAILED", "CANCELLED"})

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@overload
def from_us(us: int) -> datetime: ...
@overload
def from_us(us: int | None) -> datetime | None: ...
def from_us(us: int | None) -> datetime | None:
    # Positional timedelta arguments: the keyword form is parsed on every call, and status reads make three.
    return None if us is None else _EPOCH + timedelta(0, 0, us)


def now_us() -> int:
    """The time now in microseconds since the epoch, as every table keeps times."""
    return time.time_ns() // 1000


def to_us(moment: datetime) -> int:
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def raw_json(text: str | bytes | None) -> msgspec.Raw | None:
    if text is None:
        return None
    return msgspec.Raw(text.encode() if isinstance(text, str) else text)


class EtaBand(msgspec.Struct, kw_only=True):
    """When a running process is expected to end (see ``sentinel.baselines.eta_band``)."""

    earliest: datetime
    latest: datetime


class ProcessStatus(msgspec.Struct, kw_only=True):
    """The status document of one process (SPEC section 3)."""

    process_id: str
    tenant_id: str
    status: Status
    process_name: str | None = None
    process_type: str | None = None
    package_name: str | None = None
    procedure_name: str | None = None
    correlation_id: str | None = None
    current_step: str | None = None
    progress_percent: float | None = None
    started_at: datetime | None = None
    last_seen_at: datetime | None = None
    ended_at: datetime | None = None
    duration_ms: int | None = None
    estimated_completion: datetime | None = None
    error_code: str | None = None
    error_message: str | None = None
    result: msgspec.Raw | None = None
    metadata: msgspec.Raw | None = None
    event_count: int = 0
    log_count: int = 0
    # Baselines (sentinel.baselines): additive, null or false while the process has none.
    expected_duration_ms: Annotated[
        int | None,
        msgspec.Meta(
            description="median duration of the last completed runs of this process (type, name, package, "
            "procedure); for an ended run, the median it was judged against"
        ),
    ] = None
    eta_band: Annotated[
        EtaBand | None,
        msgspec.Meta(
            description="running only: expected end, from started_at + the median and + the 90th percentile, "
            "moved toward estimated_completion in proportion to the progress reported"
        ),
    ] = None
    slow: Annotated[
        bool,
        msgspec.Meta(
            description="elapsed (or, once ended, the duration) above the 90th percentile times "
            "SENTINEL_SLOW_FACTOR, with at least SENTINEL_SLOW_MIN_RUNS past runs"
        ),
    ] = False


class LogEntry(msgspec.Struct, kw_only=True):
    """One log line of a process (SPEC section 4)."""

    seq: int
    timestamp: datetime
    level: Level
    message: str
    details: msgspec.Raw | None = None
    component: str | None = None
    correlation_id: str | None = None
    trace_id: str | None = None
    span_id: str | None = None
    duration_us: int | None = None


class DeadLetter(msgspec.Struct, kw_only=True):
    id: int
    code: str
    reason: str
    payload: str
    dead_at: datetime
    enqueued_at: datetime | None = None


def estimate_completion(started_us: int | None, progress_us: int | None, percent: float | None) -> int | None:
    """``started_at + elapsed x 100 / progress``, elapsed measured at the last progress report so the
    estimate does not drift while the process is quiet. None when it cannot be told or written down
    (a tiny percentage can put it past the year 9999)."""
    if started_us is None or progress_us is None or percent is None or not 0 < percent < 100:
        return None
    elapsed = progress_us - started_us
    if elapsed <= 0:
        return None
    estimate = started_us + elapsed * 100 / percent
    return int(estimate) if estimate <= MAX_US else None
