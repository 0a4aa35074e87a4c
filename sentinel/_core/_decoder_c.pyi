from collections.abc import Sequence

from ._shared import EventWire

WIRE_FIELDS: tuple[str, ...]

class Event:
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
    @property
    def event_type(self) -> str: ...
    @property
    def priority(self) -> int: ...
    def as_tuple(self) -> tuple[object, ...]: ...

def parse_timestamp(value: object, field: str = "timestamp") -> int: ...
def validate(wire: EventWire, tenant: str | None = None) -> Event: ...
def decode_one(payload: bytes, tenant: str | None = None) -> Event: ...
def decode_batch(payloads: Sequence[bytes]) -> tuple[list[Event], list[tuple[int, bytes, str, str]]]: ...
def prepare_http(
    body: bytes, tenant: str, max_events: int
) -> tuple[list[bytes], list[int], list[tuple[int, str, str]]]: ...
