"""What the compiled core and its pure-Python twin share: codes, limits and reason texts.

Both implementations parse JSON with the same msgspec decoder and word every rejection with the
functions below, so a message is rejected for the same reason, in the same words, by either one.
The event type codes reach the compiled core as C enums in ``_constants.pxi``, which ``make gen``
(``tools/gen_core.py``) writes from ``EVENT_TYPES``; ``tests/test_schema.py`` fails when it drifts.
"""

from __future__ import annotations

from typing import Any, Final

import msgspec

EVENT_TYPES: Final = ("STARTED", "HEARTBEAT", "PROGRESS", "LOG", "COMPLETED", "ERROR", "CANCELLED")
STARTED, HEARTBEAT, PROGRESS, LOG, COMPLETED, ERROR, CANCELLED = range(7)
EVENT_TYPE_CODES: Final = {name: code for code, name in enumerate(EVENT_TYPES)}

LEVELS: Final = ("TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL")
LEVEL_CODES: Final = {name: code for code, name in enumerate(LEVELS)}

# Queue priority by event type, lower first: errors jump the queue as in the original sentinel_pkg.
PRIORITIES: Final = (3, 6, 4, 5, 2, 1, 2)
DEFAULT_PRIORITY: Final = 5

# Terminal statuses and their rank, which breaks a tie between two terminal events with the same timestamp.
TERMINAL_STATUS: Final = {COMPLETED: "COMPLETED", ERROR: "FAILED", CANCELLED: "CANCELLED"}
TERMINAL_RANK: Final = {COMPLETED: 1, CANCELLED: 2, ERROR: 3}

# Field limits: the SPEC's where it gives one, otherwise the width of the database column.
MAX_EVENT_ID: Final = 64
MAX_PROCESS_ID: Final = 100
MAX_TENANT_ID: Final = 50
MAX_NAME: Final = 200
MAX_STEP: Final = 200
MAX_TEXT: Final = 4000
MAX_STACK: Final = 32_000
MAX_JSON: Final = 65_536
MIN_YEAR: Final = 1900
MAX_US: Final = 253_402_300_799_999_999  # 9999-12-31T23:59:59.999999Z
MAX_DURATION_US: Final = 2**63 - 1
# One serialized event (the canonical queue payload, UTF-8 JSON), on every path: an Oracle AQ RAW
# message holds at most 32,767 bytes. POST /events refuses a larger event (naming its index), and
# sentinel_pkg (sql/004, c_max_event_bytes) trims its fields to fit and marks the event as trimmed.
MAX_EVENT_BYTES: Final = 32_767
# Events in one POST /events body (the core's prepare_http refuses more, and the API answers 413).
MAX_EVENTS: Final = 10_000

# Column order of the rows the core hands to ``executemany``; the store's SQL binds in this order.
LOG_COLUMNS: Final = (
    "tenant_id",
    "process_id",
    "event_id",
    "ts",
    "level",
    "message",
    "details",
    "component",
    "correlation_id",
    "trace_id",
    "span_id",
    "duration_us",
    "ingested_at",
)
STATUS_COLUMNS: Final = (
    "tenant_id",
    "process_id",
    "started_at",
    "process_name",
    "process_type",
    "package_name",
    "procedure_name",
    "correlation_id",
    "step_at",
    "current_step",
    "percent_at",
    "progress_percent",
    "metadata_at",
    "metadata",
    "last_seen_at",
    "terminal_status",
    "terminal_rank",
    "ended_at",
    "error_code",
    "error_message",
    "stack_trace",
    "result",
    "event_count",
    "log_count",
    "updated_at",
)
DEDUPE_COLUMNS: Final = ("tenant_id", "event_id", "seen_at")

# Reject codes: a short, stable label (a metrics label value) beside the precise reason text.
INVALID_JSON: Final = "invalid_json"
NOT_OBJECT: Final = "not_object"
MISSING_FIELD: Final = "missing_field"
BAD_FIELD: Final = "bad_field"
BAD_EVENT_TYPE: Final = "bad_event_type"
BAD_TIMESTAMP: Final = "bad_timestamp"
FOREIGN_TENANT: Final = "foreign_tenant"
REJECT_CODES: Final = (
    INVALID_JSON,
    NOT_OBJECT,
    MISSING_FIELD,
    BAD_FIELD,
    BAD_EVENT_TYPE,
    BAD_TIMESTAMP,
    FOREIGN_TENANT,
)


class EventRejected(ValueError):
    """Raised inside the core for an event that breaks a rule; it never escapes the public functions,
    which turn it into a reject entry ``(index, raw, code, reason)``."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class BodyRejected(ValueError):
    """A ``POST /events`` body that is not a JSON object or array of objects at all (HTTP 400)."""


def clip(value: object) -> str:
    """A decoded JSON value as JSON text, shortened: safe to quote back in a reason."""
    text = msgspec.json.encode(value).decode()
    return text if len(text) <= 40 else text[:37] + "..."


def json_detail(exc: Exception) -> str:
    if isinstance(exc, UnicodeDecodeError):
        return f"not UTF-8 (byte 0x{exc.object[exc.start]:02x})"
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    return str(exc)


def json_error(exc: Exception) -> EventRejected:
    if isinstance(exc, msgspec.ValidationError):
        return EventRejected(NOT_OBJECT, f"event must be a JSON object: {exc}")
    return EventRejected(INVALID_JSON, f"invalid JSON: {json_detail(exc)}")


# What a payload's parsing can raise: msgspec's errors, UnicodeDecodeError for bytes that are not UTF-8
# inside a string (msgspec) or inside a JSON object kept raw (the core decodes it), and RecursionError
# for nesting deeper than msgspec will follow.
JSON_ERRORS: Final = (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError, RecursionError)
BODY_ERRORS: Final = (msgspec.DecodeError, UnicodeDecodeError, RecursionError)


def missing(field: str) -> EventRejected:
    return EventRejected(MISSING_FIELD, f"{field}: required")


def need_text(field: str, low: int, high: int, value: object) -> EventRejected:
    if isinstance(value, str):
        return EventRejected(BAD_FIELD, f"{field}: expected {low} to {high} characters, got {len(value)}")
    return EventRejected(BAD_FIELD, f"{field}: expected a string, got {type_name(value)}")


def control_char(field: str) -> EventRejected:
    return EventRejected(BAD_FIELD, f"{field}: contains a control character")


def bad_event_type(value: object) -> EventRejected:
    return EventRejected(BAD_EVENT_TYPE, f"event_type: expected one of {', '.join(EVENT_TYPES)}, got {clip(value)}")


def bad_level(value: object) -> EventRejected:
    return EventRejected(BAD_FIELD, f"level: expected one of {', '.join(LEVELS)}, got {clip(value)}")


def bad_timestamp(value: object) -> EventRejected:
    if not isinstance(value, str):
        return EventRejected(BAD_TIMESTAMP, f"timestamp: expected an RFC 3339 string, got {type_name(value)}")
    return EventRejected(BAD_TIMESTAMP, f"timestamp: expected RFC 3339 with an offset, got {clip(value)}")


def foreign_tenant(value: str) -> EventRejected:
    return EventRejected(FOREIGN_TENANT, f"tenant_id: {clip(value)} differs from the caller's tenant")


def not_object(field: str) -> EventRejected:
    return EventRejected(BAD_FIELD, f"{field}: expected a JSON object")


def too_large(field: str, limit: int) -> EventRejected:
    return EventRejected(BAD_FIELD, f"{field}: larger than {limit} bytes")


def bad_number(field: str, rule: str, value: object) -> EventRejected:
    return EventRejected(BAD_FIELD, f"{field}: expected {rule}, got {clip(value)}")


def bad_hex(field: str, digits: int) -> EventRejected:
    return EventRejected(BAD_FIELD, f"{field}: expected {digits} hexadecimal digits")


def type_name(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


class Batch:
    """What one ingest batch writes, as ``executemany`` parameters in the ``*_COLUMNS`` orders.

    The row lists belong to the builder's arenas and are overwritten by its next ``build``: write
    them (or copy them) before building again."""

    __slots__ = ("counts", "dedupe_rows", "duplicates", "log_rows", "status_rows")

    def __init__(
        self,
        log_rows: list[list[Any]],
        status_rows: list[list[Any]],
        dedupe_rows: list[list[Any]],
        counts: list[int],
        duplicates: int,
    ) -> None:
        self.log_rows = log_rows
        self.status_rows = status_rows
        self.dedupe_rows = dedupe_rows
        self.counts = counts
        self.duplicates = duplicates

    @property
    def accepted(self) -> int:
        return sum(self.counts)
