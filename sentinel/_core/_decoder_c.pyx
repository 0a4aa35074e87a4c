# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Compiled message decoding: raw queue payloads -> validated events + rejects.

JSON is parsed by msgspec (shared with the twin, so both read the same bytes the same way); the
per-event rules of SPEC section 2 run here as typed C: identifier scans, the RFC 3339 parser, hex and
range checks. ``_decoder_py`` is the behavioural reference; a property test holds the two equal.
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

from sentinel._core import _shared as S
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
cdef tuple _JSON_ERRORS = S.JSON_ERRORS
cdef tuple _BODY_ERRORS = S.BODY_ERRORS
cdef dict _TYPE_CODES = S.EVENT_TYPE_CODES
cdef dict _LEVEL_CODES = S.LEVEL_CODES
cdef tuple _PRIORITIES = S.PRIORITIES

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

cdef int MAX_EVENT_ID = S.MAX_EVENT_ID
cdef int MAX_PROCESS_ID = S.MAX_PROCESS_ID
cdef int MAX_TENANT_ID = S.MAX_TENANT_ID
cdef int MAX_NAME = S.MAX_NAME
cdef int MAX_STEP = S.MAX_STEP
cdef int MAX_TEXT = S.MAX_TEXT
cdef int MAX_STACK = S.MAX_STACK
cdef Py_ssize_t MAX_JSON = S.MAX_JSON
cdef int MIN_YEAR = S.MIN_YEAR
cdef int64_t MAX_US = S.MAX_US
cdef object MAX_DURATION_US = S.MAX_DURATION_US
cdef int[12] DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]


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
        return S.EVENT_TYPES[self.kind]

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


cdef bint parse_rfc3339(str value, int64_t* out) noexcept:
    # RFC 3339 is ASCII; anything else fails the grammar, so the bytes can be read directly.
    cdef Py_ssize_t n = PyUnicode_GET_LENGTH(value), pos = 19, frac_start
    cdef const unsigned char* text
    cdef int year, month, day, hour, minute, second, off_hour, off_minute, frac_digits
    cdef int64_t micros = 0, offset = 0, y, era, yoe, doy, doe, days, us
    cdef unsigned char c
    cdef bint leap
    if n < 20 or not PyUnicode_IS_ASCII(value):
        return False
    text = <const unsigned char*>PyUnicode_DATA(value)
    year = _digits(text, 0, 4)
    month = _digits(text, 5, 2)
    day = _digits(text, 8, 2)
    hour = _digits(text, 11, 2)
    minute = _digits(text, 14, 2)
    second = _digits(text, 17, 2)
    if (year < 0 or month < 0 or day < 0 or hour < 0 or minute < 0 or second < 0
            or text[4] != 45 or text[7] != 45 or text[13] != 58 or text[16] != 58):  # '-' and ':'
        return False
    c = text[10]
    if c != 84 and c != 116 and c != 32:  # 'T', 't', ' '
        return False
    if text[pos] == 46:  # '.'
        pos += 1
        frac_start = pos
        while pos < n and 48 <= text[pos] <= 57:
            if pos - frac_start < 6:
                micros = micros * 10 + <int>(text[pos] - 48)
            pos += 1
        frac_digits = <int>(pos - frac_start)
        if frac_digits == 0 or frac_digits > 9:
            return False
        while frac_digits < 6:
            micros *= 10
            frac_digits += 1
    if pos >= n:
        return False
    c = text[pos]
    if c == 90 or c == 122:  # 'Z', 'z'
        if pos + 1 != n:
            return False
    elif c == 43 or c == 45:  # '+', '-'
        if pos + 6 != n or text[pos + 3] != 58:
            return False
        off_hour = _digits(text, pos + 1, 2)
        off_minute = _digits(text, pos + 4, 2)
        if off_hour < 0 or off_minute < 0 or off_hour > 23 or off_minute > 59:
            return False
        offset = off_hour * 3600 + off_minute * 60
        if c == 45:
            offset = -offset
    else:
        return False
    if year < MIN_YEAR or month < 1 or month > 12 or hour > 23 or minute > 59 or second > 60:
        return False
    leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    if day < 1 or day > DAYS_IN_MONTH[month - 1] + (1 if month == 2 and leap else 0):
        return False
    # Days from the civil calendar (H. Hinnant); the year floor keeps every term positive.
    y = year - 1 if month <= 2 else year
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    days = era * 146097 + doe - 719468
    us = ((days * 86400 + hour * 3600 + minute * 60 + second) - offset) * 1000000 + micros
    if us > MAX_US:
        return False
    out[0] = us
    return True


def parse_timestamp(value):
    """RFC 3339 date-time with a mandatory offset -> microseconds since the epoch, UTC."""
    cdef int64_t us
    if type(value) is not str or not parse_rfc3339(<str>value, &us):
        raise S.bad_timestamp(value)
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
        raise S.missing(field)
    if type(value) is not str or not 1 <= len(<str>value) <= limit:
        raise S.need_text(field, 1, limit, value)
    if _has_control(<str>value):
        raise S.control_char(field)
    return <str>value


cdef inline object _text(object value, str field, int limit):
    if value is None:
        return None
    if type(value) is not str or len(<str>value) > limit:
        raise S.need_text(field, 0, limit, value)
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
            raise S.not_object(field)
        if size > MAX_JSON:
            raise S.too_large(field, MAX_JSON)
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
        raise S.bad_hex(field, digits)
    ascii = <const unsigned char*>PyUnicode_DATA(<str>value)
    for i in range(digits):
        code = ascii[i]
        if 65 <= code <= 70:
            upper = True
        elif not (48 <= code <= 57 or 97 <= code <= 102):
            raise S.bad_hex(field, digits)
    return (<str>value).lower() if upper else value


cdef Event validate_wire(object wire, str tenant):
    cdef Event event = Event.__new__(Event)
    cdef object kind_name, value, code
    cdef int kind
    if type(wire) is not _EventWire:
        raise TypeError("expected an EventWire")
    event.event_id = _ident(_field(wire, F_EVENT_ID), "event_id", MAX_EVENT_ID)
    kind_name = _field(wire, F_EVENT_TYPE)
    if kind_name is None:
        raise S.missing("event_type")
    code = _TYPE_CODES.get(kind_name) if type(kind_name) is str else None
    if code is None:
        raise S.bad_event_type(kind_name)
    kind = <int>code
    event.kind = kind
    event.process_id = _ident(_field(wire, F_PROCESS_ID), "process_id", MAX_PROCESS_ID)
    value = _field(wire, F_TENANT_ID)
    if tenant is not None and value is None:
        event.tenant_id = tenant
    else:
        event.tenant_id = _ident(value, "tenant_id", MAX_TENANT_ID)
        if tenant is not None and event.tenant_id != tenant:
            raise S.foreign_tenant(event.tenant_id)
    value = _field(wire, F_TIMESTAMP)
    if value is None:
        raise S.missing("timestamp")
    if type(value) is not str or not parse_rfc3339(<str>value, &event.ts):
        raise S.bad_timestamp(value)

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
                raise S.bad_number("percent", "a number from 0 to 100", value)
            event.percent = float(value)
        event.metadata = _object(_field(wire, F_METADATA), "metadata")
    elif kind == HEARTBEAT:
        event.message = _text(_field(wire, F_MESSAGE), "message", MAX_TEXT)
    elif kind == LOG:
        value = _field(wire, F_LEVEL)
        if value is None:
            raise S.missing("level")
        code = _LEVEL_CODES.get(value) if type(value) is str else None
        if code is None:
            raise S.bad_level(value)
        event.level = <int>code
        value = _field(wire, F_MESSAGE)
        if value is None:
            raise S.missing("message")
        event.message = _text(value, "message", MAX_TEXT)
        event.details = _object(_field(wire, F_DETAILS), "details")
        event.component = _text(_field(wire, F_COMPONENT), "component", MAX_NAME)
        event.correlation_id = _text(_field(wire, F_CORRELATION_ID), "correlation_id", MAX_NAME)
        event.trace_id = _hex(_field(wire, F_TRACE_ID), "trace_id", 32)
        event.span_id = _hex(_field(wire, F_SPAN_ID), "span_id", 16)
        value = _field(wire, F_DURATION_US)
        if value is not None:
            if type(value) is not int or not 0 <= value <= MAX_DURATION_US:
                raise S.bad_number("duration_us", "a whole number >= 0", value)
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


def decode_one(payload, tenant=None):
    try:
        return validate_wire(_decoder.decode(payload), tenant)
    except _JSON_ERRORS as exc:
        raise S.json_error(exc) from None


def decode_batch(payloads):
    """Decode queue payloads. Returns the valid events in input order and, for every other message,
    ``(index, raw, code, reason)``."""
    cdef list events = []
    cdef list rejects = []
    cdef Py_ssize_t index = 0
    cdef object decode = _decoder.decode
    for payload in payloads:
        try:
            events.append(validate_wire(decode(payload), None))
        except EventRejected as exc:
            rejects.append((index, payload, exc.code, exc.reason))
        except _JSON_ERRORS as exc:
            rejected = S.json_error(exc)
            rejects.append((index, payload, rejected.code, rejected.reason))
        index += 1
    return events, rejects


def prepare_http(bytes body, str tenant, Py_ssize_t max_events):
    """Validate a ``POST /events`` body for ``tenant``; see ``_decoder_py.prepare_http``."""
    cdef bint typed = True
    cdef list items, payloads = [], priorities = [], errors = []
    cdef Py_ssize_t index = 0
    cdef Event event
    cdef bytes start = body.lstrip()[:1]
    if start == b"{":
        # Exactly one object: parsed as one value, so "{...},{...}" is refused, not read as a list.
        typed = False
        try:
            items = [_raw_decoder.decode(body)]
        except _BODY_ERRORS as exc:
            raise S.BodyRejected(f"body is not valid JSON: {S.json_detail(exc)}") from None
    elif start == b"[":
        try:
            items = _list_decoder.decode(body)
        except _ValidationError:
            typed = False
            try:
                items = _raw_list_decoder.decode(body)
            except _BODY_ERRORS as exc:
                raise S.BodyRejected(f"body is not valid JSON: {S.json_detail(exc)}") from None
        except _BODY_ERRORS as exc:
            raise S.BodyRejected(f"body is not valid JSON: {S.json_detail(exc)}") from None
    else:
        raise S.BodyRejected("body must be a JSON object or an array of objects")
    if len(items) > max_events:
        raise OverflowError(len(items))
    encode = _encoder.encode
    for item in items:
        try:
            wire = item if typed else _decoder.decode(item)
            event = validate_wire(wire, tenant)
        except _JSON_ERRORS as exc:
            rejected = S.json_error(exc)
            errors.append((index, rejected.code, rejected.reason))
        except EventRejected as exc:
            errors.append((index, exc.code, exc.reason))
        else:
            wire.tenant_id = tenant
            payloads.append(encode(wire))
            priorities.append(_PRIORITIES[event.kind])
        index += 1
    return payloads, priorities, errors
