"""The event schema, declared once: every field of an event (SPEC section 2) with its type, its limit,
the attribute the validated ``Event`` keeps it in and the column the stores keep it in.

Everything else that names the fields comes from ``EVENT_FIELDS``:

- at import time: ``EventWire`` (below), the twin ``Event``'s slots (``_decoder_py``), the OpenAPI
  event schema (``sentinel.api.openapi``) and the Oracle bind sizes (``sentinel.store.oracle``);
- for the compiled core and the type checker, by ``tools/gen_core.py`` (``make gen``):
  ``_event_fields.pxi`` and the marked blocks of ``_decoder_c.pxd``, ``_decoder_c.pyi`` and
  ``_decoder_py.py``.

``tests/test_schema.py`` fails when a generated file, or a table in the SQL, disagrees with this. The
rules (which event type reads which field, and how) are code: ``validate`` in both decoders.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import msgspec

from ._shared import (
    EVENT_TYPES,
    LEVELS,
    MAX_DURATION_US,
    MAX_EVENT_ID,
    MAX_JSON,
    MAX_NAME,
    MAX_PROCESS_ID,
    MAX_STACK,
    MAX_STEP,
    MAX_TENANT_ID,
    MAX_TEXT,
)

# Field kinds: how a field is read, and what the validated Event keeps.
IDENT: Final = "ident"  # a required identifier: 1 to max_length characters, no control character
CHOICE: Final = "choice"  # one of ``choices``; the Event keeps its index (a C int)
TIMESTAMP: Final = "timestamp"  # RFC 3339 with an offset; the Event keeps microseconds UTC (int64)
TEXT: Final = "text"  # optional, at most max_length characters
JSON_OBJECT: Final = "json"  # optional JSON object kept as its text (at most max_length bytes), never parsed
HEX: Final = "hex"  # optional, exactly ``digits`` hexadecimal digits, kept in lower case
NUMBER: Final = "number"  # optional number from minimum to maximum, kept as a float
INTEGER: Final = "integer"  # optional whole number from minimum to maximum


@dataclass(frozen=True, slots=True)
class EventField:
    name: str  # on the wire
    kind: str
    required: bool = False  # of every event (over HTTP, tenant_id may come from the token instead)
    max_length: int | None = None
    choices: tuple[str, ...] | None = None
    digits: int | None = None
    minimum: int | None = None
    maximum: int | None = None
    attr: str = ""  # the validated Event's attribute; the wire name unless told
    column: str | None = None  # the logs/processes column keeping the value as it is; None: not kept so

    def __post_init__(self) -> None:
        if not self.attr:
            object.__setattr__(self, "attr", self.name)

    @property
    def c_type(self) -> str:
        """The type of the compiled Event's ``cdef readonly`` attribute."""
        return {IDENT: "str", CHOICE: "int", TIMESTAMP: "int64_t"}.get(self.kind, "object")

    @property
    def py_type(self) -> str:
        """The attribute's annotation (``_decoder_c.pyi`` and the twin)."""
        if self.kind == IDENT:
            return "str"
        if self.kind in (CHOICE, TIMESTAMP):
            return "int"
        return {NUMBER: "float", INTEGER: "int"}.get(self.kind, "str") + " | None"

    @property
    def unset(self) -> int | None:
        """What the Event holds before the field is read: a choice that is not read is -1."""
        return -1 if self.kind == CHOICE and not self.required else None


def _text(name: str, limit: int, column: str | None = None) -> EventField:
    return EventField(name, TEXT, max_length=limit, column=column)


def _json(name: str) -> EventField:
    return EventField(name, JSON_OBJECT, max_length=MAX_JSON, column=name)


# In wire order: EventWire's fields, and so the order of the canonical queue payload's keys.
EVENT_FIELDS: Final = (
    EventField("event_id", IDENT, required=True, max_length=MAX_EVENT_ID, column="event_id"),
    EventField("event_type", CHOICE, required=True, choices=EVENT_TYPES, attr="kind"),
    EventField("process_id", IDENT, required=True, max_length=MAX_PROCESS_ID, column="process_id"),
    EventField("tenant_id", IDENT, required=True, max_length=MAX_TENANT_ID, column="tenant_id"),
    EventField("timestamp", TIMESTAMP, required=True, attr="ts"),
    _text("process_name", MAX_NAME, "process_name"),
    _text("process_type", MAX_NAME, "process_type"),
    _text("package_name", MAX_NAME, "package_name"),
    _text("procedure_name", MAX_NAME, "procedure_name"),
    _text("correlation_id", MAX_NAME, "correlation_id"),
    _json("metadata"),
    _text("step", MAX_STEP, "current_step"),
    EventField("percent", NUMBER, minimum=0, maximum=100, column="progress_percent"),
    _text("message", MAX_TEXT, "message"),
    EventField("level", CHOICE, choices=LEVELS, column="level"),
    _json("details"),
    _text("component", MAX_NAME, "component"),
    EventField("trace_id", HEX, digits=32, column="trace_id"),
    EventField("span_id", HEX, digits=16, column="span_id"),
    EventField("duration_us", INTEGER, minimum=0, maximum=MAX_DURATION_US, column="duration_us"),
    _json("result"),
    _text("error_code", MAX_NAME, "error_code"),
    _text("error_message", MAX_TEXT, "error_message"),
    _text("stack_trace", MAX_STACK, "stack_trace"),
    _text("reason", MAX_TEXT),
)
WIRE_FIELDS: Final = tuple(field.name for field in EVENT_FIELDS)
FIELDS_BY_NAME: Final = {field.name: field for field in EVENT_FIELDS}
# The validated Event's attributes, sorted: the order of ``Event.as_tuple``.
EVENT_ATTRS: Final = tuple(sorted(field.attr for field in EVENT_FIELDS))


def wire_struct(fields: tuple[EventField, ...]) -> Any:
    """The msgspec struct both decoders parse an event into: ``fields`` in order, each ``Any`` (a JSON
    object stays ``msgspec.Raw``, its bytes as sent)."""
    return msgspec.defstruct(
        "EventWire",
        [
            (field.name, msgspec.Raw, msgspec.Raw()) if field.kind == JSON_OBJECT else (field.name, Any, None)
            for field in fields
        ],
        module=__name__,
        omit_defaults=True,
        gc=False,
        namespace={
            "__doc__": "One event as it crosses the wire. Fields are loosely typed on purpose: the core "
            "checks them itself so that every rule breaks with a reason naming the field, and unknown "
            "fields are skipped by the parser without being built."
        },
    )


if TYPE_CHECKING:

    class EventWire(msgspec.Struct):
        """Built by ``wire_struct(EVENT_FIELDS)``; its fields are ``Any`` (``msgspec.Raw`` for JSON objects)."""

        def __init__(self, **fields: Any) -> None: ...
        def __getattr__(self, name: str) -> Any: ...
        def __setattr__(self, name: str, value: Any) -> None: ...

else:
    EventWire = wire_struct(EVENT_FIELDS)
