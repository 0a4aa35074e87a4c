"""Pure-Python twin of ``_decoder_c``: raw queue payloads -> validated events + rejects."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import cast

import msgspec

from . import _shared as S
from ._shared import EventRejected, EventWire

_decoder = msgspec.json.Decoder(EventWire)
_list_decoder = msgspec.json.Decoder(list[EventWire])
_raw_list_decoder = msgspec.json.Decoder(list[msgspec.Raw])
_raw_decoder = msgspec.json.Decoder(msgspec.Raw)
_encoder = msgspec.json.Encoder()

_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
_HEX = re.compile("[0-9a-fA-F]*")
# RFC 3339 section 5.6 date-time: any number of fraction digits, "T"/"t" (or, as its note allows, one
# space), "Z"/"z" or a numeric offset. The offset group is optional here only to say it is missing.
_RFC3339 = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt ]([0-9]{2}):([0-9]{2}):([0-9]{2})"
    r"(?:\.([0-9]+))?(?:([Zz])|([+-])([0-9]{2}):([0-9]{2}))?"
)
_DAYS_IN_MONTH = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


class Event:
    """One validated event. Timestamps are integer microseconds since the Unix epoch, UTC."""

    # Not sorted: ``as_tuple`` follows this order, which must stay the compiled ``Event.as_tuple`` order.
    __slots__ = (  # noqa: RUF023
        "component",
        "correlation_id",
        "details",
        "duration_us",
        "error_code",
        "error_message",
        "event_id",
        "kind",
        "level",
        "message",
        "metadata",
        "package_name",
        "percent",
        "procedure_name",
        "process_id",
        "process_name",
        "process_type",
        "reason",
        "result",
        "stack_trace",
        "span_id",
        "step",
        "tenant_id",
        "trace_id",
        "ts",
    )

    # Declared for the type checker only (no values, so ``__slots__`` stays the storage); the same
    # attributes and types as ``_decoder_c.Event`` in ``_decoder_c.pyi``.
    event_id: str
    process_id: str
    tenant_id: str
    kind: int
    ts: int
    level: int
    process_name: str | None
    process_type: str | None
    package_name: str | None
    procedure_name: str | None
    correlation_id: str | None
    metadata: str | None
    step: str | None
    percent: float | None
    message: str | None
    details: str | None
    component: str | None
    trace_id: str | None
    span_id: str | None
    duration_us: int | None
    result: str | None
    error_code: str | None
    error_message: str | None
    stack_trace: str | None
    reason: str | None

    def __init__(self) -> None:
        self.process_name = self.process_type = self.package_name = self.procedure_name = None
        self.correlation_id = self.metadata = self.step = self.percent = self.message = None
        self.details = self.component = self.trace_id = self.span_id = self.duration_us = None
        self.result = self.error_code = self.error_message = self.stack_trace = self.reason = None
        self.level = -1

    @property
    def event_type(self) -> str:
        return S.EVENT_TYPES[self.kind]

    @property
    def priority(self) -> int:
        return S.PRIORITIES[self.kind]

    def as_tuple(self) -> tuple[object, ...]:
        return tuple(getattr(self, name) for name in Event.__slots__)


def parse_timestamp(value: object, field: str = "timestamp") -> int:
    """RFC 3339 date-time with a mandatory offset -> microseconds since the epoch, UTC. Fraction
    digits past the sixth are dropped; a leap second (23:59:60 UTC) counts as 23:59:59.999999."""
    if not isinstance(value, str):
        raise S.bad_timestamp(value, S.TS_SHAPE, field)
    us, code = _rfc3339(value)
    if code:
        raise S.bad_timestamp(value, code, field)
    return us


def _rfc3339(value: str) -> tuple[int, int]:
    """``(microseconds, 0)``, or ``(0, TS_* code)`` saying why not."""
    match = _RFC3339.fullmatch(value)
    if match is None:
        return 0, S.TS_SHAPE
    if match[8] is None and match[9] is None:
        return 0, S.TS_NO_OFFSET
    year, month, day = int(match[1]), int(match[2]), int(match[3])
    hour, minute, second = int(match[4]), int(match[5]), int(match[6])
    if year < S.MIN_YEAR:
        return 0, S.TS_YEAR
    if not 1 <= month <= 12:
        return 0, S.TS_MONTH
    leap_year = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    if not 1 <= day <= _DAYS_IN_MONTH[month - 1] + (1 if month == 2 and leap_year else 0):
        return 0, S.TS_DAY
    if hour > 23:
        return 0, S.TS_HOUR
    if minute > 59:
        return 0, S.TS_MINUTE
    if second > 60:
        return 0, S.TS_SECOND
    offset = 0
    if match[9] is not None:
        off_hour, off_minute = int(match[10]), int(match[11])
        if off_hour > 23 or off_minute > 59:
            return 0, S.TS_OFFSET
        offset = off_hour * 60 + off_minute
        if match[9] == "-":
            offset = -offset
    micros = int((match[7] or "")[:6].ljust(6, "0"))
    if second == 60:
        if (hour * 60 + minute - offset) % 1440 != 1439:
            return 0, S.TS_LEAP
        second, micros = 59, 999_999
    # Days from the civil calendar (H. Hinnant's algorithm), exact for the proleptic Gregorian calendar.
    y = year - 1 if month <= 2 else year
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    days = era * 146097 + doe - 719468
    us = ((days * 86400 + hour * 3600 + minute * 60 + second) - offset * 60) * 1_000_000 + micros
    if us > S.MAX_US:
        return 0, S.TS_RANGE
    return us, 0


def _ident(value: object, field: str, limit: int) -> str:
    if value is None:
        raise S.missing(field)
    if type(value) is not str or not 1 <= len(value) <= limit:
        raise S.need_text(field, 1, limit, value)
    if _CONTROL.search(value) is not None:
        raise S.control_char(field)
    return value


def _text(value: object, field: str, limit: int) -> str | None:
    if value is None:
        return None
    if type(value) is not str or len(value) > limit:
        raise S.need_text(field, 0, limit, value)
    return value


def _object(raw: msgspec.Raw, field: str) -> str | None:
    size = len(raw)
    if size == 0:
        return None
    data = bytes(raw)
    if data == b"null":
        return None
    if data[0] != 0x7B:  # "{"
        raise S.not_object(field)
    if size > S.MAX_JSON:
        raise S.too_large(field, S.MAX_JSON)
    return data.decode()


def _hex(value: object, field: str, digits: int) -> str | None:
    if value is None:
        return None
    if type(value) is not str or len(value) != digits or _HEX.fullmatch(value) is None:
        raise S.bad_hex(field, digits)
    return value.lower()


def validate(wire: EventWire, tenant: str | None = None) -> Event:
    """Check one decoded wire event against SPEC section 2. ``tenant``, when given, is the caller's
    tenant (HTTP): an event may omit ``tenant_id`` and takes it, or must carry the same value."""
    event = Event()
    event.event_id = _ident(wire.event_id, "event_id", S.MAX_EVENT_ID)
    kind_name = wire.event_type
    if kind_name is None:
        raise S.missing("event_type")
    kind = S.EVENT_TYPE_CODES.get(kind_name) if type(kind_name) is str else None
    if kind is None:
        raise S.bad_event_type(kind_name)
    event.kind = kind
    event.process_id = _ident(wire.process_id, "process_id", S.MAX_PROCESS_ID)
    if tenant is not None and wire.tenant_id is None:
        event.tenant_id = tenant
    else:
        event.tenant_id = _ident(wire.tenant_id, "tenant_id", S.MAX_TENANT_ID)
        if tenant is not None and event.tenant_id != tenant:
            raise S.foreign_tenant(event.tenant_id)
    if wire.timestamp is None:
        raise S.missing("timestamp")
    event.ts = parse_timestamp(wire.timestamp)

    if kind == S.STARTED:
        event.process_name = _text(wire.process_name, "process_name", S.MAX_NAME)
        event.process_type = _text(wire.process_type, "process_type", S.MAX_NAME)
        event.package_name = _text(wire.package_name, "package_name", S.MAX_NAME)
        event.procedure_name = _text(wire.procedure_name, "procedure_name", S.MAX_NAME)
        event.correlation_id = _text(wire.correlation_id, "correlation_id", S.MAX_NAME)
        event.metadata = _object(wire.metadata, "metadata")
    elif kind == S.PROGRESS:
        event.step = _text(wire.step, "step", S.MAX_STEP)
        percent = wire.percent
        if percent is not None:
            if (type(percent) is not int and type(percent) is not float) or not 0 <= percent <= 100:
                raise S.bad_number("percent", "a number from 0 to 100", percent)
            event.percent = float(percent)
        event.metadata = _object(wire.metadata, "metadata")
    elif kind == S.HEARTBEAT:
        event.message = _text(wire.message, "message", S.MAX_TEXT)
    elif kind == S.LOG:
        level = wire.level
        if level is None:
            raise S.missing("level")
        code = S.LEVEL_CODES.get(level) if type(level) is str else None
        if code is None:
            raise S.bad_level(level)
        event.level = code
        if wire.message is None:
            raise S.missing("message")
        event.message = _text(wire.message, "message", S.MAX_TEXT)
        event.details = _object(wire.details, "details")
        event.component = _text(wire.component, "component", S.MAX_NAME)
        event.correlation_id = _text(wire.correlation_id, "correlation_id", S.MAX_NAME)
        event.trace_id = _hex(wire.trace_id, "trace_id", 32)
        event.span_id = _hex(wire.span_id, "span_id", 16)
        duration = wire.duration_us
        if duration is not None:
            if type(duration) is not int or not 0 <= duration <= S.MAX_DURATION_US:
                raise S.bad_number("duration_us", "a whole number >= 0", duration)
            event.duration_us = duration
    elif kind == S.COMPLETED:
        event.result = _object(wire.result, "result")
    elif kind == S.ERROR:
        event.error_code = _text(wire.error_code, "error_code", S.MAX_NAME)
        event.error_message = _text(wire.error_message, "error_message", S.MAX_TEXT)
        event.stack_trace = _text(wire.stack_trace, "stack_trace", S.MAX_STACK)
    else:
        event.reason = _text(wire.reason, "reason", S.MAX_TEXT)
    return event


def _quick_checks(data: bytes, levels: int) -> None:
    """UTF-8 and depth, run only when cheap bytes methods cannot rule a fault out."""
    fault = S.checked_json(data, not data.isascii(), data.count(b"[") + data.count(b"{") > levels, levels)
    if fault is not None:
        raise fault


def decode_one(payload: bytes, tenant: str | None = None) -> Event:
    if type(payload) is not bytes:
        payload = bytes(payload)  # a memoryview or bytearray, as the compiled core takes them
    _quick_checks(payload, S.MAX_DEPTH)
    try:
        wire = _decoder.decode(payload)
    except S.PARSE_ERRORS as exc:
        raise S.parse_error(exc, payload) from None
    if S.SUSPECT_NUMBER(payload) is not None and (fault := S.number_fault(payload)) is not None:
        raise fault
    return validate(wire, tenant)


def decode_batch(
    payloads: Sequence[bytes],
) -> tuple[list[Event], list[tuple[int, bytes, str, str]]]:
    """Decode queue payloads. Returns the valid events in input order and, for every other message,
    ``(index, raw, code, reason)``."""
    events: list[Event] = []
    rejects: list[tuple[int, bytes, str, str]] = []
    for index, payload in enumerate(payloads):
        try:
            events.append(decode_one(payload))
        except EventRejected as exc:
            rejects.append((index, payload, exc.code, exc.reason))
    return events, rejects


def prepare_http(
    body: bytes, tenant: str, max_events: int
) -> tuple[list[bytes], list[int], list[tuple[int, str, str]]]:
    """Validate a ``POST /events`` body for ``tenant``. Returns the canonical queue payloads (with the
    tenant filled in), their queue priorities, and ``(index, code, reason)`` for every bad item.
    Raises ``BodyRejected`` when the body is not JSON or not an object or array, and
    ``OverflowError`` when it holds more than ``max_events`` items."""
    start = body.lstrip()[:1]
    if start not in (b"{", b"["):
        raise S.BodyRejected("body must be a JSON object or an array of objects")
    try:
        # An array's events sit one level deeper than the body: the limit is the event's.
        _quick_checks(body, S.MAX_DEPTH + (start == b"["))
    except EventRejected as refused:
        raise S.body_rejected(refused) from None
    suspect = S.SUSPECT_NUMBER(body) is not None
    items: list[EventWire] | list[msgspec.Raw]
    typed = False
    try:
        if start == b"{":
            # Exactly one object: parsed as one value, so "{...},{...}" is refused, not read as a list.
            items = [_raw_decoder.decode(body)]
        elif suspect:
            items = _raw_list_decoder.decode(body)
        else:
            try:
                items = _list_decoder.decode(body)
                typed = True
            except msgspec.ValidationError:
                # Some item is not an object: take the body apart item by item so every bad index is named.
                items = _raw_list_decoder.decode(body)
    except msgspec.DecodeError:
        raise S.BodyRejected(f"body is not valid JSON: {S.explain_json(body)}") from None
    if len(items) > max_events:
        raise OverflowError(len(items))
    payloads: list[bytes] = []
    priorities: list[int] = []
    errors: list[tuple[int, str, str]] = []
    for index, item in enumerate(items):
        try:
            # ``typed`` says which of the two lists ``items`` is, which the type checker cannot follow.
            if typed:
                wire = cast(EventWire, item)
            else:
                raw = bytes(cast(msgspec.Raw, item))
                try:
                    wire = _decoder.decode(raw)
                except S.PARSE_ERRORS as exc:
                    raise S.parse_error(exc, raw) from None
                if suspect and (fault := S.number_fault(raw)) is not None:
                    raise fault
            event = validate(wire, tenant)
        except EventRejected as exc:
            errors.append((index, exc.code, exc.reason))
            continue
        wire.tenant_id = tenant
        payloads.append(_encoder.encode(wire))
        priorities.append(S.PRIORITIES[event.kind])
    return payloads, priorities, errors
