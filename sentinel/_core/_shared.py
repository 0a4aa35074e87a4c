"""What the compiled core and its pure-Python twin share: codes, limits and reason texts.

Both implementations parse JSON with the same msgspec decoder and word every rejection with the
functions below, so a message is rejected for the same reason, in the same words, by either one.
No reason quotes a library's message: a payload msgspec refuses is explained by ``explain_json``
here, so the words (and the byte offsets they name) do not move when msgspec does.

Before msgspec sees a payload, three rules of our own are checked, each over the whole payload (unknown
fields included), in this order: it is UTF-8 (``utf8_fault``), it nests no deeper than ``MAX_DEPTH``
(``depth_fault``), and every number in it is a finite IEEE double, so the API can always return it as
JSON (``number_fault``). Each core decides cheaply when a check can be skipped (the compiled one in one
C pass, the twin with bytes methods); the checks that word a fault are these shared functions.

The event type codes reach the compiled core as C enums in ``_constants.pxi``, which ``make gen``
(``tools/gen_core.py``) writes from ``EVENT_TYPES``; ``tests/test_schema.py`` fails when it drifts.
"""

from __future__ import annotations

import math
import re
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
# Timestamps from 1900-01-01T00:00:00Z to 9999-12-31T23:59:59.999999Z, both bounds in UTC (an offset
# can put the local year outside 1900-9999 while the instant is inside, and the other way round).
MIN_YEAR: Final = 1900
MIN_US: Final = -2_208_988_800_000_000  # 1900-01-01T00:00:00Z
MAX_US: Final = 253_402_300_799_999_999  # 9999-12-31T23:59:59.999999Z
MAX_DURATION_US: Final = 2**63 - 1
# One serialized event (the canonical queue payload, UTF-8 JSON), on every path: an Oracle AQ RAW
# message holds at most 32,767 bytes. POST /events refuses a larger event (naming its index), and
# sentinel_pkg (sql/004, c_max_event_bytes) trims its fields to fit and marks the event as trimmed.
MAX_EVENT_BYTES: Final = 32_767
# Nesting levels of arrays and objects an event may use; the event object itself is level 1. Checked
# by both cores before parsing, so the limit never depends on how deep the caller's stack already is.
MAX_DEPTH: Final = 64
# A digit run this long, or an exponent of this many digits, may overflow a double: the cores then
# run the exact number check (``number_fault``); shorter ones cannot (< 10**100 x 10**99).
SUSPECT_DIGITS: Final = 100
SUSPECT_EXPONENT_DIGITS: Final = 3
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
EVENT_TOO_LARGE: Final = "event_too_large"
REJECT_CODES: Final = (
    INVALID_JSON,
    NOT_OBJECT,
    MISSING_FIELD,
    BAD_FIELD,
    BAD_EVENT_TYPE,
    BAD_TIMESTAMP,
    FOREIGN_TENANT,
    EVENT_TOO_LARGE,
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


def first_value_type(data: bytes) -> str:
    """The JSON type a payload starts with, for "must be a JSON object, got ..."."""
    head = data.lstrip(b" \t\r\n")[:1]
    if head == b"{":
        return "object"
    if head == b"[":
        return "array"
    if head == b'"':
        return "string"
    if head in (b"t", b"f"):
        return "boolean"
    if head == b"n":
        return "null"
    return "number"


def not_an_object(data: bytes) -> EventRejected:
    return EventRejected(NOT_OBJECT, f"event must be a JSON object, got {first_value_type(data)}")


# -- the checks of our own, and the words for JSON that msgspec refuses ----------------------------------

_STRING = rb'"[^"\\]*(?:\\.[^"\\]*)*"?'
_DEPTH_TOKENS = re.compile(_STRING + rb"|[\[\]{}]", re.S)
_NUMBER_TOKENS = re.compile(_STRING + rb"|-?[0-9][0-9.eE+-]*|[\[\]{}:]", re.S)
_SUSPECT = re.compile(rb"[eE][+-]?[0-9]{%d}|[0-9]{%d}" % (SUSPECT_EXPONENT_DIGITS, SUSPECT_DIGITS)).search
_STRINGS = re.compile(_STRING, re.S).sub


def suspect_number(data: bytes) -> bool:
    """Whether a digit run or an exponent outside strings is long enough to overflow a double, so the exact
    check (``number_fault``) must run. Digits inside strings (hex ids such as "...5e428...") are text: the
    strings are blanked only when the cheap search over the whole payload finds something."""
    return _SUSPECT(data) is not None and _SUSPECT(_STRINGS(b'""', data)) is not None


def utf8_fault(data: bytes) -> EventRejected | None:
    """The first byte that does not start a valid UTF-8 sequence (RFC 3629: no overlong forms, no
    surrogates, nothing past U+10FFFF)."""
    try:
        data.decode()
    except UnicodeDecodeError as exc:
        return EventRejected(INVALID_JSON, f"invalid JSON: {utf8_detail(data[exc.start], exc.start)}")
    return None


def utf8_detail(byte: int, offset: int) -> str:
    return f"not UTF-8 (byte 0x{byte:02x} at offset {offset})"


def depth_fault(data: bytes, levels: int = MAX_DEPTH) -> EventRejected | None:
    """The first ``[`` or ``{`` outside a string that opens level ``levels + 1``. Strings run from a
    quote to the next unescaped quote (or the end); unbalanced closers never take the depth below 0.
    The compiled core computes the same depth in C; this words the fault."""
    depth = 0
    for match in _DEPTH_TOKENS.finditer(data):
        token = match[0][:1]
        if token in (b"[", b"{"):
            depth += 1
            if depth > levels:
                return depth_error(match.start())
        elif token in (b"]", b"}"):
            depth = max(depth - 1, 0)
    return None


def depth_error(offset: int) -> EventRejected:
    return EventRejected(INVALID_JSON, f"invalid JSON: nested deeper than {MAX_DEPTH} levels (at offset {offset})")


def number_fault(data: bytes) -> EventRejected | None:
    """The first number of the event object that is not a finite double (1e400, a 400-digit integer):
    JSON text the API could not return to a strict parser. Named by the event's field that holds it."""
    depth = 0
    key: bytes | None = None
    field = ""
    tokens = _NUMBER_TOKENS.finditer(data)
    first = next(tokens, None)
    if first is None or first[0] != b"{":
        return None  # not an object: the parser says so
    depth = 1
    for match in tokens:
        token = match[0]
        head = token[:1]
        if head == b'"':
            key = token if depth == 1 else None
        elif head == b":":
            if depth == 1 and key is not None:
                field = _field_name(key)
        elif head in (b"[", b"{"):
            depth += 1
        elif head in (b"]", b"}"):
            depth -= 1
            if depth <= 0:
                return None
        else:
            try:
                value = float(token)
            except ValueError:
                continue  # not a number the parser would take: its own error
            if math.isinf(value):
                return EventRejected(
                    BAD_FIELD,
                    f"{field or 'event'}: number out of range (not a finite double): "
                    f"{_clip_text(token.decode())} at offset {match.start()}",
                )
    return None


def _field_name(key: bytes) -> str:
    try:
        name = msgspec.json.decode(key)
    except msgspec.DecodeError:
        name = key.decode("utf-8", "replace").strip('"')
    return _clip_text(str(name))


def _clip_text(text: str) -> str:
    return text if len(text) <= 40 else text[:37] + "..."


_ESCAPES = frozenset(b'"\\/bfnrt')
_HEX = frozenset(b"0123456789abcdefABCDEF")
_LITERALS = (b"true", b"false", b"null")


class _Syntax(Exception):
    def __init__(self, what: str, offset: int) -> None:
        super().__init__(what)
        self.what = what
        self.offset = offset


def _describe(data: bytes, at: int) -> str:
    if at >= len(data):
        return "end of input"
    byte = data[at]
    if 0x21 <= byte <= 0x7E:
        return f"'{chr(byte)}'"
    return f"byte 0x{byte:02x}"


def explain_json(data: bytes) -> str:
    """Why ``data`` is not one RFC 8259 JSON value, in our words with the byte offset: what a reason
    says when msgspec refuses a payload (its own wording changes between versions)."""
    try:
        data.decode()
    except UnicodeDecodeError as exc:
        return utf8_detail(data[exc.start], exc.start)
    try:
        end = _value(data, _skip(data, 0))
        end = _skip(data, end)
        if end != len(data):
            raise _Syntax(f"unexpected {_describe(data, end)} after the JSON value", end)
    except _Syntax as fault:
        if fault.offset >= len(data):
            return f"{fault.what} (input ends at offset {len(data)})"
        return f"{fault.what} at offset {fault.offset}"
    return "not accepted by the JSON parser"


_WHITESPACE = re.compile(rb"[ \t\r\n]*").match
_PLAIN_CHARACTERS = re.compile(rb'[^"\\\x00-\x1f]*').match


def _skip(data: bytes, at: int) -> int:
    return _WHITESPACE(data, at).end()  # type: ignore[union-attr]  # "*" always matches


def _value(data: bytes, at: int) -> int:
    """Parse one value from ``at`` (no leading white space); returns the offset after it. Iterative,
    so any depth is read without recursion (the depth limit was checked before)."""
    closers: list[int] = []
    while True:
        at = _skip(data, at)
        if at >= len(data):
            raise _Syntax("unexpected end of input, expected a value", at)
        byte = data[at]
        if byte == 0x7B:  # {
            at = _skip(data, at + 1)
            if at < len(data) and data[at] == 0x7D:
                at += 1
            else:
                at = _key(data, at)
                closers.append(0x7D)
                continue
        elif byte == 0x5B:  # [
            at = _skip(data, at + 1)
            if at < len(data) and data[at] == 0x5D:
                at += 1
            else:
                closers.append(0x5D)
                continue
        elif byte == 0x22:
            at = _string(data, at)
        elif byte == 0x2D or 0x30 <= byte <= 0x39:
            at = _number(data, at)
        else:
            for literal in _LITERALS:
                if data.startswith(literal, at):
                    at += len(literal)
                    break
            else:
                raise _Syntax(f"unexpected {_describe(data, at)}, expected a value", at)
        # After a value: close containers or go on to the next member.
        while closers:
            at = _skip(data, at)
            closer = closers[-1]
            if at < len(data) and data[at] == closer:
                closers.pop()
                at += 1
                continue
            if at < len(data) and data[at] == 0x2C:  # ,
                at = _skip(data, at + 1)
                if closer == 0x7D:
                    at = _key(data, at)
                break
            expected = "',' or '}'" if closer == 0x7D else "',' or ']'"
            raise _Syntax(f"unexpected {_describe(data, at)}, expected {expected}", at)
        else:
            return at


def _key(data: bytes, at: int) -> int:
    if at >= len(data) or data[at] != 0x22:
        raise _Syntax(f"unexpected {_describe(data, at)}, expected a string key", at)
    at = _skip(data, _string(data, at))
    if at >= len(data) or data[at] != 0x3A:
        raise _Syntax(f"unexpected {_describe(data, at)}, expected ':'", at)
    return at + 1


def _string(data: bytes, at: int) -> int:
    at += 1
    size = len(data)
    while at < size:
        at = _PLAIN_CHARACTERS(data, at).end()  # type: ignore[union-attr]  # "*" always matches
        if at >= size:
            break
        byte = data[at]
        if byte == 0x22:
            return at + 1
        if byte < 0x20:
            raise _Syntax(f"control character 0x{byte:02x} in a string", at)
        if byte == 0x5C:
            escape = data[at + 1] if at + 1 < size else -1
            if escape == 0x75:  # \u
                unit = _hex4(data, at)
                if 0xD800 <= unit <= 0xDBFF:
                    if data[at + 6 : at + 8] != b"\\u" or not 0xDC00 <= _hex4(data, at + 6) <= 0xDFFF:
                        raise _Syntax("unpaired UTF-16 surrogate escape in a string", at)
                    at += 12
                    continue
                if 0xDC00 <= unit <= 0xDFFF:
                    raise _Syntax("unpaired UTF-16 surrogate escape in a string", at)
                at += 6
                continue
            if escape not in _ESCAPES:
                raise _Syntax("invalid escape in a string", at)
            at += 2
            continue
        at += 1
    raise _Syntax("unterminated string", at)


def _hex4(data: bytes, at: int) -> int:
    digits = data[at + 2 : at + 6]
    if len(digits) != 4 or not all(d in _HEX for d in digits):
        raise _Syntax("invalid \\u escape in a string", at)
    return int(digits, 16)


def _number(data: bytes, at: int) -> int:
    start = at
    size = len(data)
    if data[at] == 0x2D:
        at += 1
    if at < size and data[at] == 0x30:
        at += 1
        if at < size and 0x30 <= data[at] <= 0x39:
            raise _Syntax("invalid number (leading zero)", start)
    elif at < size and 0x31 <= data[at] <= 0x39:
        while at < size and 0x30 <= data[at] <= 0x39:
            at += 1
    else:
        raise _Syntax("invalid number", start)
    if at < size and data[at] == 0x2E:
        at += 1
        if not (at < size and 0x30 <= data[at] <= 0x39):
            raise _Syntax("invalid number (no digit after '.')", start)
        while at < size and 0x30 <= data[at] <= 0x39:
            at += 1
    if at < size and data[at] in (0x45, 0x65):
        at += 1
        if at < size and data[at] in (0x2B, 0x2D):
            at += 1
        if not (at < size and 0x30 <= data[at] <= 0x39):
            raise _Syntax("invalid number (no digit in the exponent)", start)
        while at < size and 0x30 <= data[at] <= 0x39:
            at += 1
    if at - start >= SUSPECT_EXPONENT_DIGITS and math.isinf(float(data[start:at])):
        raise _Syntax("number out of range (not a finite double)", start)
    return at


def syntax_error(data: bytes) -> EventRejected:
    return EventRejected(INVALID_JSON, f"invalid JSON: {explain_json(data)}")


def checked_json(data: bytes, non_ascii: bool, deep: bool, levels: int = MAX_DEPTH) -> EventRejected | None:
    """The UTF-8 and depth rules, run when a core's quick scan could not rule them out."""
    if non_ascii and (fault := utf8_fault(data)) is not None:
        return fault
    if deep:
        return depth_fault(data, levels)
    return None


# What msgspec raises for a payload: DecodeError (malformed JSON, worded by ``explain_json``) and
# ValidationError (not an object, or a number msgspec cannot hold: ``number_fault`` names it first).
PARSE_ERRORS: Final = (msgspec.DecodeError, msgspec.ValidationError)


def parse_error(exc: Exception, data: bytes) -> EventRejected:
    if isinstance(exc, msgspec.ValidationError):
        if first_value_type(data) != "object":
            return not_an_object(data)
        fault = number_fault(data)
        return fault if fault is not None else EventRejected(BAD_FIELD, "event: a value is out of range")
    return syntax_error(data)


def body_rejected(fault: EventRejected) -> BodyRejected:
    return BodyRejected("body is not valid JSON: " + fault.reason.removeprefix("invalid JSON: "))


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


# Why a timestamp is refused: the parsers (compiled and twin) return one of these codes.
TS_SHAPE, TS_NO_OFFSET, TS_YEAR, TS_MONTH, TS_DAY, TS_HOUR, TS_MINUTE, TS_SECOND, TS_LEAP, TS_OFFSET, TS_RANGE = range(
    1, 12
)
TS_DETAILS: Final = {
    TS_SHAPE: "expected RFC 3339 (YYYY-MM-DDThh:mm:ss[.fraction] then Z or +hh:mm/-hh:mm)",
    TS_NO_OFFSET: "expected RFC 3339 with an offset (Z or +hh:mm/-hh:mm)",
    TS_YEAR: f"before {MIN_YEAR}-01-01T00:00:00Z",
    TS_MONTH: "month out of range",
    TS_DAY: "day out of range for its month",
    TS_HOUR: "hour out of range",
    TS_MINUTE: "minute out of range",
    TS_SECOND: "second out of range",
    TS_LEAP: "second 60 (a leap second) is only valid at 23:59:60 UTC",
    TS_OFFSET: "offset out of range",
    TS_RANGE: "after 9999-12-31T23:59:59.999999Z",
}


def bad_timestamp(value: object, code: int = TS_SHAPE, field: str = "timestamp") -> EventRejected:
    if not isinstance(value, str):
        return EventRejected(BAD_TIMESTAMP, f"{field}: expected an RFC 3339 string, got {type_name(value)}")
    return EventRejected(BAD_TIMESTAMP, f"{field}: {TS_DETAILS[code]}, got {clip(value)}")


def event_too_large(size: int) -> EventRejected:
    """A serialized event over ``MAX_EVENT_BYTES``: refused on every path (a queued message is
    dead-lettered by the ingest, ``POST /events`` answers 413), never stored."""
    return EventRejected(EVENT_TOO_LARGE, f"event is {size} bytes serialized, more than {MAX_EVENT_BYTES}")


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
