# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Compiled message decoding: raw queue payloads -> validated events + rejects.

JSON is parsed by msgspec (shared with the twin, so both read the same bytes the same way), after one
C pass (``_scan``) over the payload that rules out, or hands to the shared exact checks, the rules of
our own: UTF-8, the nesting limit and numbers that overflow a double. The per-event rules of SPEC
section 2 run here as typed C: identifier scans, the RFC 3339 parser, hex and range checks.
``_decoder_py`` is the behavioural reference; property tests hold the two equal.
"""

cimport cython
from cpython.object cimport PyObject
from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.unicode cimport PyUnicode_DecodeUTF8

cdef extern from "Python.h":
    bint PyUnicode_IS_ASCII(object)
    void* PyUnicode_DATA(object)
    Py_ssize_t PyUnicode_GET_LENGTH(object)
from libc.stdint cimport int64_t
from libc.string cimport memcmp

import types

import msgspec

from sentinel._core import _shared
from sentinel._core._schema import EventWire
from sentinel._core._shared import EventRejected

cdef object _decoder = msgspec.json.Decoder(EventWire)
cdef object _list_decoder = msgspec.json.Decoder(list[EventWire])
cdef object _raw_list_decoder = msgspec.json.Decoder(list[msgspec.Raw])
cdef object _raw_decoder = msgspec.json.Decoder(msgspec.Raw)
cdef object _encoder = msgspec.json.Encoder()
cdef object _EventWire = EventWire
cdef object _DecodeError = msgspec.DecodeError
cdef object _ValidationError = msgspec.ValidationError
cdef tuple _PARSE_ERRORS = _shared.PARSE_ERRORS
cdef dict _TYPE_CODES = _shared.EVENT_TYPE_CODES
cdef dict _LEVEL_CODES = _shared.LEVEL_CODES
cdef tuple _PRIORITIES = _shared.PRIORITIES

include "_constants.pxi"

# F_* (the wire fields' positions), WIRE_FIELDS, _event_tuple and _init_event, from _schema.EVENT_FIELDS.
include "_event_fields.pxi"

if EventWire.__struct_fields__ != WIRE_FIELDS:
    raise ImportError("EventWire differs from _event_fields.pxi: run make gen and rebuild the core")


# Wire fields are read straight from the struct's slots: msgspec stores each field at a fixed offset
# described by the class's member descriptor, so a field read is one load, where attribute lookup or
# astuple() would cost a dictionary probe or a 25-item tuple per event. The offsets are taken from the
# descriptors themselves and proven on a sample at import; any surprise makes the import fail, and the
# package falls back to the pure-Python twin.
cdef extern from "Python.h":
    ctypedef struct PyMemberDef:
        Py_ssize_t offset
    ctypedef struct PyMemberDescrObject:
        PyMemberDef* d_member

cdef Py_ssize_t[WIRE_FIELD_COUNT] OFFSETS


cdef inline object _field(object wire, int index):
    cdef PyObject* value = (<PyObject**>((<char*><PyObject*>wire) + OFFSETS[index]))[0]
    if value == NULL:
        return None
    return <object>value


def _prove_offsets():
    cdef int i
    for i, name in enumerate(WIRE_FIELDS):
        descr = EventWire.__dict__[name]
        if type(descr) is not types.MemberDescriptorType:
            raise ImportError(f"EventWire.{name} is not a slot")
        OFFSETS[i] = (<PyMemberDescrObject*><PyObject*>descr).d_member.offset
    sample = EventWire(**{name: object() for name in WIRE_FIELDS})
    for i, name in enumerate(WIRE_FIELDS):
        if _field(sample, i) is not getattr(sample, name):
            raise ImportError(f"EventWire.{name}: slot offset does not match")


_prove_offsets()

cdef int MAX_EVENT_ID = _shared.MAX_EVENT_ID
cdef int MAX_PROCESS_ID = _shared.MAX_PROCESS_ID
cdef int MAX_TENANT_ID = _shared.MAX_TENANT_ID
cdef int MAX_NAME = _shared.MAX_NAME
cdef int MAX_STEP = _shared.MAX_STEP
cdef int MAX_TEXT = _shared.MAX_TEXT
cdef int MAX_STACK = _shared.MAX_STACK
cdef Py_ssize_t MAX_JSON = _shared.MAX_JSON
cdef int MIN_YEAR = _shared.MIN_YEAR
cdef int64_t MIN_US = _shared.MIN_US
cdef int64_t MAX_US = _shared.MAX_US
cdef Py_ssize_t MAX_EVENT_BYTES = _shared.MAX_EVENT_BYTES
cdef object MAX_DURATION_US = _shared.MAX_DURATION_US
cdef int[12] DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
cdef int64_t[7] POW10 = [1, 10, 100, 1000, 10000, 100000, 1000000]
cdef Py_ssize_t MAX_DEPTH = _shared.MAX_DEPTH
cdef Py_ssize_t SUSPECT_DIGITS = _shared.SUSPECT_DIGITS
cdef Py_ssize_t SUSPECT_EXPONENT_DIGITS = _shared.SUSPECT_EXPONENT_DIGITS
cdef int TS_SHAPE = _shared.TS_SHAPE
cdef int TS_NO_OFFSET = _shared.TS_NO_OFFSET
cdef int TS_YEAR = _shared.TS_YEAR
cdef int TS_MONTH = _shared.TS_MONTH
cdef int TS_DAY = _shared.TS_DAY
cdef int TS_HOUR = _shared.TS_HOUR
cdef int TS_MINUTE = _shared.TS_MINUTE
cdef int TS_SECOND = _shared.TS_SECOND
cdef int TS_LEAP = _shared.TS_LEAP
cdef int TS_OFFSET = _shared.TS_OFFSET
cdef int TS_RANGE = _shared.TS_RANGE

# What one pass over a payload (``_scan``) finds: bytes past ASCII (the exact UTF-8 check runs), a
# nesting deeper than allowed, and a number that could overflow a double (the exact check runs).
cdef enum:
    SCAN_NON_ASCII = 1
    SCAN_DEEP = 2
    SCAN_SUSPECT_NUMBER = 4


cdef int _scan(const unsigned char* p, Py_ssize_t n, Py_ssize_t levels) noexcept nogil:
    """One pass: the depth as ``_shared.depth_fault`` counts it (brackets outside strings), whether
    any byte is past ASCII, and whether a digit run or an exponent outside strings is long enough to
    overflow. Digits inside strings (hex ids such as "...5e428...") are text, not numbers: counting them
    sent most realistic events to the exact number check for nothing."""
    cdef Py_ssize_t i = 0, depth = 0, run = 0
    cdef int flags = 0
    cdef bint in_string = False, after_e = False, exponent = False
    cdef unsigned char c
    while i < n:
        c = p[i]
        if c >= 0x80:
            flags |= SCAN_NON_ASCII
        if in_string:
            if c == 92:  # backslash: the next byte is escaped
                if i + 1 < n and p[i + 1] >= 0x80:
                    flags |= SCAN_NON_ASCII
                i += 2
                continue
            if c == 34:
                in_string = False
            i += 1
            continue
        if 48 <= c <= 57:
            if run == 0:
                exponent = after_e
            run += 1
            if run >= SUSPECT_DIGITS or (exponent and run >= SUSPECT_EXPONENT_DIGITS):
                flags |= SCAN_SUSPECT_NUMBER
            after_e = False
        else:
            run = 0
            if c == 101 or c == 69:  # e E
                after_e = True
            elif not ((c == 43 or c == 45) and after_e):  # a sign right after e/E keeps it
                after_e = False
        if c == 34:
            in_string = True
        elif c == 91 or c == 123:  # [ {
            depth += 1
            if depth > levels:
                flags |= SCAN_DEEP
        elif (c == 93 or c == 125) and depth > 0:
            depth -= 1
        i += 1
    return flags


cdef bint _valid_utf8(const unsigned char* p, Py_ssize_t n) noexcept nogil:
    """Strict UTF-8 (RFC 3629) as Python's decoder takes it: no overlong forms, no surrogates, nothing
    past U+10FFFF. Only the verdict: ``_shared.utf8_fault`` words a fault."""
    cdef Py_ssize_t i = 0, need, k
    cdef unsigned char c, low, high
    while i < n:
        c = p[i]
        if c < 0x80:
            i += 1
            continue
        low = 0x80
        high = 0xBF
        if 0xC2 <= c <= 0xDF:
            need = 1
        elif 0xE0 <= c <= 0xEF:
            need = 2
            if c == 0xE0:
                low = 0xA0
            elif c == 0xED:
                high = 0x9F
        elif 0xF0 <= c <= 0xF4:
            need = 3
            if c == 0xF0:
                low = 0x90
            elif c == 0xF4:
                high = 0x8F
        else:
            return False
        if i + need >= n:  # the sequence runs past the end
            return False
        if p[i + 1] < low or p[i + 1] > high:
            return False
        for k in range(2, need + 1):
            if p[i + k] < 0x80 or p[i + k] > 0xBF:
                return False
        i += need + 1
    return True


cdef int _quick_checks(bytes data, Py_ssize_t levels) except -1:
    """Raise the UTF-8 or depth fault of ``data``; returns the scan's flags."""
    cdef int flags = _scan(<const unsigned char*>data, len(data), levels)
    if flags & SCAN_NON_ASCII and _valid_utf8(<const unsigned char*>data, len(data)):
        flags &= ~SCAN_NON_ASCII
    if flags & (SCAN_NON_ASCII | SCAN_DEEP):
        fault = _shared.checked_json(data, flags & SCAN_NON_ASCII, flags & SCAN_DEEP, levels)
        if fault is not None:
            raise fault
    return flags


# Events hold only strings, numbers and None, so they can never be part of a reference cycle: not
# tracking them spares the cyclic GC a visit per event.
@cython.no_gc
@cython.freelist(512)
cdef class Event:
    """One validated event. Timestamps are integer microseconds since the Unix epoch, UTC."""

    def __cinit__(self):
        _init_event(self)

    @property
    def event_type(self):
        return _shared.EVENT_TYPES[self.kind]

    @property
    def priority(self):
        return _PRIORITIES[self.kind]

    def as_tuple(self):
        return _event_tuple(self)


cdef inline bint _is_control(Py_UCS4 ch) noexcept:
    cdef unsigned int c = <unsigned int>ch
    return c < 0x20 or 0x7F <= c <= 0x9F


cdef inline int _digits(const unsigned char* text, Py_ssize_t at, Py_ssize_t count) noexcept:
    """The decimal value of ``count`` ASCII digits at ``at``, or -1."""
    cdef int value = 0
    cdef Py_ssize_t i
    cdef unsigned char c
    for i in range(at, at + count):
        c = text[i]
        if c < 48 or c > 57:
            return -1
        value = value * 10 + <int>(c - 48)
    return value


cdef int parse_rfc3339(str value, int64_t* out) noexcept:
    """0 and the microseconds in ``out``, or the ``TS_*`` code saying why not (see ``_decoder_py``)."""
    # RFC 3339 is ASCII; anything else fails the grammar, so the bytes can be read directly.
    cdef Py_ssize_t n = PyUnicode_GET_LENGTH(value), pos = 19, frac_start
    cdef const unsigned char* text
    cdef int year, month, day, hour, minute, second, off_hour, off_minute, offset = 0
    cdef int64_t micros = 0, y, era, yoe, doy, doe, days, us
    cdef unsigned char c
    cdef bint leap, has_offset = False
    if n < 19 or not PyUnicode_IS_ASCII(value):
        return TS_SHAPE
    text = <const unsigned char*>PyUnicode_DATA(value)
    year = _digits(text, 0, 4)
    month = _digits(text, 5, 2)
    day = _digits(text, 8, 2)
    hour = _digits(text, 11, 2)
    minute = _digits(text, 14, 2)
    second = _digits(text, 17, 2)
    if (year < 0 or month < 0 or day < 0 or hour < 0 or minute < 0 or second < 0
            or text[4] != 45 or text[7] != 45 or text[13] != 58 or text[16] != 58):  # '-' and ':'
        return TS_SHAPE
    c = text[10]
    if c != 84 and c != 116 and c != 32:  # 'T', 't', ' '
        return TS_SHAPE
    if pos < n and text[pos] == 46:  # '.': any number of digits, the first six kept
        pos += 1
        frac_start = pos
        while pos < n and 48 <= text[pos] <= 57:
            if pos - frac_start < 6:
                micros = micros * 10 + <int>(text[pos] - 48)
            pos += 1
        if pos == frac_start:
            return TS_SHAPE
        if pos - frac_start < 6:
            micros *= POW10[6 - (pos - frac_start)]
    if pos == n:
        return TS_NO_OFFSET
    c = text[pos]
    if c == 90 or c == 122:  # 'Z', 'z'
        if pos + 1 != n:
            return TS_SHAPE
    elif c == 43 or c == 45:  # '+', '-'
        if pos + 6 != n or text[pos + 3] != 58:
            return TS_SHAPE
        off_hour = _digits(text, pos + 1, 2)
        off_minute = _digits(text, pos + 4, 2)
        if off_hour < 0 or off_minute < 0:
            return TS_SHAPE
        has_offset = True
    else:
        return TS_SHAPE
    if year < MIN_YEAR - 1:  # 1899-12-31 with a negative offset can still be 1900 in UTC: checked below
        return TS_YEAR
    if month < 1 or month > 12:
        return TS_MONTH
    leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    if day < 1 or day > DAYS_IN_MONTH[month - 1] + (1 if month == 2 and leap else 0):
        return TS_DAY
    if hour > 23:
        return TS_HOUR
    if minute > 59:
        return TS_MINUTE
    if second > 60:
        return TS_SECOND
    if has_offset:
        if off_hour > 23 or off_minute > 59:
            return TS_OFFSET
        offset = off_hour * 60 + off_minute
        if c == 45:
            offset = -offset
    if second == 60:
        # A leap second exists only at 23:59:60 UTC; it counts as the last microsecond before midnight.
        if ((hour * 60 + minute - offset) % 1440 + 1440) % 1440 != 1439:
            return TS_LEAP
        second = 59
        micros = 999999
    # Days from the civil calendar (H. Hinnant); the year floor keeps every term positive.
    y = year - 1 if month <= 2 else year
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    days = era * 146097 + doe - 719468
    us = ((days * 86400 + hour * 3600 + minute * 60 + second) - <int64_t>offset * 60) * 1000000 + micros
    if us < MIN_US:
        return TS_YEAR
    if us > MAX_US:
        return TS_RANGE
    out[0] = us
    return 0


def parse_timestamp(value, str field="timestamp"):
    """RFC 3339 date-time with a mandatory offset -> microseconds since the epoch, UTC."""
    cdef int64_t us
    cdef int code
    if type(value) is not str:
        raise _shared.bad_timestamp(value, TS_SHAPE, field)
    code = parse_rfc3339(<str>value, &us)
    if code:
        raise _shared.bad_timestamp(value, code, field)
    return us


cdef bint _has_control(str text) noexcept:
    cdef Py_ssize_t i, n
    cdef const unsigned char* ascii
    cdef Py_UCS4 c
    if PyUnicode_IS_ASCII(text):
        # Identifiers are ASCII nearly always: scan the bytes, no per-character decoding.
        ascii = <const unsigned char*>PyUnicode_DATA(text)
        n = PyUnicode_GET_LENGTH(text)
        for i in range(n):
            if ascii[i] < 0x20 or ascii[i] == 0x7F:
                return True
        return False
    for c in text:
        if _is_control(c):
            return True
    return False


cdef str _ident(object value, str field, int limit):
    if value is None:
        raise _shared.missing(field)
    if type(value) is not str or not 1 <= len(<str>value) <= limit:
        raise _shared.need_text(field, 1, limit, value)
    if _has_control(<str>value):
        raise _shared.control_char(field)
    return <str>value


cdef inline object _text(object value, str field, int limit):
    if value is None:
        return None
    if type(value) is not str or len(<str>value) > limit:
        raise _shared.need_text(field, 0, limit, value)
    return value


cdef object _object(object raw, str field):
    # Read the Raw slice through the buffer protocol: no intermediate bytes copy.
    cdef Py_buffer view
    cdef const char* data
    cdef Py_ssize_t size
    PyObject_GetBuffer(raw, &view, PyBUF_SIMPLE)
    try:
        size = view.len
        data = <const char*>view.buf
        if size == 0 or (size == 4 and memcmp(data, b"null", 4) == 0):
            return None
        if data[0] != 123:  # "{"
            raise _shared.not_object(field)
        if size > MAX_JSON:
            raise _shared.too_large(field, MAX_JSON)
        return PyUnicode_DecodeUTF8(data, size, NULL)
    finally:
        PyBuffer_Release(&view)


cdef object _hex(object value, str field, Py_ssize_t digits):
    cdef Py_ssize_t i
    cdef const unsigned char* ascii
    cdef unsigned char code
    cdef bint upper = False
    if value is None:
        return None
    if type(value) is not str or len(<str>value) != digits or not PyUnicode_IS_ASCII(<str>value):
        raise _shared.bad_hex(field, digits)
    ascii = <const unsigned char*>PyUnicode_DATA(<str>value)
    for i in range(digits):
        code = ascii[i]
        if 65 <= code <= 70:
            upper = True
        elif not (48 <= code <= 57 or 97 <= code <= 102):
            raise _shared.bad_hex(field, digits)
    return (<str>value).lower() if upper else value


cdef Event validate_wire(object wire, str tenant):
    cdef Event event = Event.__new__(Event)
    cdef object kind_name, value, code
    cdef int kind, ts_code
    if type(wire) is not _EventWire:
        raise TypeError("expected an EventWire")
    event.event_id = _ident(_field(wire, F_EVENT_ID), "event_id", MAX_EVENT_ID)
    kind_name = _field(wire, F_EVENT_TYPE)
    if kind_name is None:
        raise _shared.missing("event_type")
    code = _TYPE_CODES.get(kind_name) if type(kind_name) is str else None
    if code is None:
        raise _shared.bad_event_type(kind_name)
    kind = <int>code
    event.kind = kind
    event.process_id = _ident(_field(wire, F_PROCESS_ID), "process_id", MAX_PROCESS_ID)
    value = _field(wire, F_TENANT_ID)
    if tenant is not None and value is None:
        event.tenant_id = tenant
    else:
        event.tenant_id = _ident(value, "tenant_id", MAX_TENANT_ID)
        if tenant is not None and event.tenant_id != tenant:
            raise _shared.foreign_tenant(event.tenant_id)
    value = _field(wire, F_TIMESTAMP)
    if value is None:
        raise _shared.missing("timestamp")
    if type(value) is not str:
        raise _shared.bad_timestamp(value)
    ts_code = parse_rfc3339(<str>value, &event.ts)
    if ts_code:
        raise _shared.bad_timestamp(value, ts_code)

    if kind == STARTED:
        event.process_name = _text(_field(wire, F_PROCESS_NAME), "process_name", MAX_NAME)
        event.process_type = _text(_field(wire, F_PROCESS_TYPE), "process_type", MAX_NAME)
        event.package_name = _text(_field(wire, F_PACKAGE_NAME), "package_name", MAX_NAME)
        event.procedure_name = _text(_field(wire, F_PROCEDURE_NAME), "procedure_name", MAX_NAME)
        event.correlation_id = _text(_field(wire, F_CORRELATION_ID), "correlation_id", MAX_NAME)
        event.metadata = _object(_field(wire, F_METADATA), "metadata")
    elif kind == PROGRESS:
        event.step = _text(_field(wire, F_STEP), "step", MAX_STEP)
        value = _field(wire, F_PERCENT)
        if value is not None:
            if type(value) is not int and type(value) is not float or not 0 <= value <= 100:
                raise _shared.bad_number("percent", "a number from 0 to 100", value)
            event.percent = float(value)
        event.metadata = _object(_field(wire, F_METADATA), "metadata")
    elif kind == HEARTBEAT:
        event.message = _text(_field(wire, F_MESSAGE), "message", MAX_TEXT)
    elif kind == LOG:
        value = _field(wire, F_LEVEL)
        if value is None:
            raise _shared.missing("level")
        code = _LEVEL_CODES.get(value) if type(value) is str else None
        if code is None:
            raise _shared.bad_level(value)
        event.level = <int>code
        value = _field(wire, F_MESSAGE)
        if value is None:
            raise _shared.missing("message")
        event.message = _text(value, "message", MAX_TEXT)
        event.details = _object(_field(wire, F_DETAILS), "details")
        event.component = _text(_field(wire, F_COMPONENT), "component", MAX_NAME)
        event.correlation_id = _text(_field(wire, F_CORRELATION_ID), "correlation_id", MAX_NAME)
        event.trace_id = _hex(_field(wire, F_TRACE_ID), "trace_id", 32)
        event.span_id = _hex(_field(wire, F_SPAN_ID), "span_id", 16)
        value = _field(wire, F_DURATION_US)
        if value is not None:
            if type(value) is not int or not 0 <= value <= MAX_DURATION_US:
                raise _shared.bad_number("duration_us", "a whole number >= 0", value)
            event.duration_us = value
    elif kind == COMPLETED:
        event.result = _object(_field(wire, F_RESULT), "result")
    elif kind == ERROR:
        event.error_code = _text(_field(wire, F_ERROR_CODE), "error_code", MAX_NAME)
        event.error_message = _text(_field(wire, F_ERROR_MESSAGE), "error_message", MAX_TEXT)
        event.stack_trace = _text(_field(wire, F_STACK_TRACE), "stack_trace", MAX_STACK)
    else:
        event.reason = _text(_field(wire, F_REASON), "reason", MAX_TEXT)
    return event


def validate(wire, tenant=None):
    return validate_wire(wire, tenant)


cdef Event _decode(bytes payload, str tenant):
    if len(payload) > MAX_EVENT_BYTES:  # the one event limit of every path, before any parsing
        raise _shared.event_too_large(len(payload))
    cdef int flags = _quick_checks(payload, MAX_DEPTH)
    try:
        wire = _decoder.decode(payload)
    except _PARSE_ERRORS as exc:
        raise _shared.parse_error(exc, payload) from None
    if flags & SCAN_SUSPECT_NUMBER:
        fault = _shared.number_fault(payload)
        if fault is not None:
            raise fault
    return validate_wire(wire, tenant)


def decode_one(payload, tenant=None):
    return _decode(bytes(payload), tenant)


def decode_batch(payloads):
    """Decode queue payloads. Returns the valid events in input order and, for every other message,
    ``(index, raw, code, reason)``."""
    cdef list events = []
    cdef list rejects = []
    cdef Py_ssize_t index = 0
    for payload in payloads:
        try:
            events.append(_decode(payload if type(payload) is bytes else bytes(payload), None))
        except EventRejected as exc:
            rejects.append((index, payload, exc.code, exc.reason))
        index += 1
    return events, rejects


def prepare_http(bytes body, str tenant, Py_ssize_t max_events):
    """Validate a ``POST /events`` body for ``tenant``; see ``_decoder_py.prepare_http``."""
    cdef bint typed = False, suspect
    cdef list items, payloads = [], priorities = [], errors = []
    cdef Py_ssize_t index = 0
    cdef int flags
    cdef Event event
    cdef bytes start = body.lstrip()[:1], raw
    if start != b"{" and start != b"[":
        raise _shared.BodyRejected("body must be a JSON object or an array of objects")
    try:
        # An array's events sit one level deeper than the body: the limit is the event's.
        flags = _quick_checks(body, MAX_DEPTH + (1 if start == b"[" else 0))
    except EventRejected as fault:
        raise _shared.body_rejected(fault) from None
    suspect = (flags & SCAN_SUSPECT_NUMBER) != 0
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
            except _ValidationError:
                items = _raw_list_decoder.decode(body)
    except _DecodeError:
        raise _shared.BodyRejected(f"body is not valid JSON: {_shared.explain_json(body)}") from None
    if len(items) > max_events:
        raise OverflowError(len(items))
    encode = _encoder.encode
    for item in items:
        try:
            if typed:
                wire = item
            else:
                raw = bytes(item)
                try:
                    wire = _decoder.decode(raw)
                except _PARSE_ERRORS as exc:
                    raise _shared.parse_error(exc, raw) from None
                if suspect:
                    fault = _shared.number_fault(raw)
                    if fault is not None:
                        raise fault
            event = validate_wire(wire, tenant)
        except EventRejected as exc:
            errors.append((index, exc.code, exc.reason))
        else:
            wire.tenant_id = tenant
            payloads.append(encode(wire))
            priorities.append(_PRIORITIES[event.kind])
        index += 1
    return payloads, priorities, errors
