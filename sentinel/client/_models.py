"""What the API answers, as typed msgspec Structs (SPEC sections 3 and 4).

The field names and order are those of the server's documents (``sentinel.models``); JSON objects
(``result``, ``metadata``, ``details``) arrive as plain Python data. A test checks the two stay in step.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import msgspec

Status = Literal["RUNNING", "STALLED", "COMPLETED", "FAILED", "CANCELLED"]
Level = Literal["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"]
TERMINAL: frozenset[str] = frozenset({"COMPLETED", "FAILED", "CANCELLED"})


class EtaBand(msgspec.Struct, kw_only=True, frozen=True):
    """When a running process is expected to end, from its baseline (and its progress, when reported)."""

    earliest: datetime
    latest: datetime


class Process(msgspec.Struct, kw_only=True, frozen=True):
    """The status document of one process (``GET /status/{id}``, items of ``GET /processes``)."""

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
    result: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None
    event_count: int = 0
    log_count: int = 0
    expected_duration_ms: int | None = None  # median of the last completed runs of this kind of process
    eta_band: EtaBand | None = None
    slow: bool = False  # slower than its baseline's 90th percentile times SENTINEL_SLOW_FACTOR

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL


class LogLine(msgspec.Struct, kw_only=True, frozen=True):
    """One log line of a process (``GET /logs/{id}``)."""

    seq: int
    timestamp: datetime
    level: Level
    message: str
    details: dict[str, Any] | None = None
    component: str | None = None
    correlation_id: str | None = None
    trace_id: str | None = None
    span_id: str | None = None
    duration_us: int | None = None


class ProcessPage(msgspec.Struct, kw_only=True, frozen=True):
    items: list[Process]
    next_cursor: str | None = None


class LogPage(msgspec.Struct, kw_only=True, frozen=True):
    items: list[LogLine]
    next_cursor: str | None = None


class Accepted(msgspec.Struct, kw_only=True, frozen=True):
    accepted: int


class Health(msgspec.Struct, kw_only=True, frozen=True):
    status: str
    version: str
    core: str


class ItemError(msgspec.Struct, kw_only=True, frozen=True):
    """Why one event of a posted batch was refused (its index in that batch, a code, the reason)."""

    index: int
    code: str
    reason: str


class Problem(msgspec.Struct, kw_only=True, frozen=True):
    """An RFC 9457 problem document, as the API sends every error."""

    title: str = ""
    status: int = 0
    type: str = "about:blank"
    detail: str | None = None
    instance: str | None = None
    code: str | None = None
    errors: list[ItemError] | None = None


class Rejected(msgspec.Struct, kw_only=True, frozen=True):
    """An event the server refused (4xx): never retried, reported once."""

    event: dict[str, Any]
    status: int
    code: str
    reason: str
