"""The hot path, run against both implementations: the compiled core and its pure-Python twin."""

from __future__ import annotations

import os
import types
from datetime import UTC, datetime, timedelta

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import sentinel._core as core
from sentinel._core import _batch_py, _decoder_py, _ring_py, _schema, _shared

try:
    from sentinel._core import _batch_c, _decoder_c, _ring_c  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - only when built with SENTINEL_NO_EXTENSIONS=1
    _batch_c = _decoder_c = _ring_c = None

IMPLEMENTATIONS = {
    "python": types.SimpleNamespace(decoder=_decoder_py, batch=_batch_py, ring=_ring_py),
}
if _decoder_c is not None:
    IMPLEMENTATIONS["compiled"] = types.SimpleNamespace(decoder=_decoder_c, batch=_batch_c, ring=_ring_c)


@pytest.fixture(params=["compiled", "python"])
def impl(request: pytest.FixtureRequest) -> types.SimpleNamespace:
    if request.param not in IMPLEMENTATIONS:
        pytest.skip("the compiled core was not built (SENTINEL_NO_EXTENSIONS=1 at build time)")
    return IMPLEMENTATIONS[request.param]


def test_compiled_core_loaded() -> None:
    """A normal install must run the compiled core; only SENTINEL_NO_EXTENSIONS may turn it off."""
    if os.environ.get("SENTINEL_NO_EXTENSIONS", "") not in ("", "0"):
        assert not core.COMPILED
        assert core.IMPLEMENTATION == "python"
        return
    assert core.COMPILED, f"compiled core did not load: {core.FALLBACK_REASON}"
    assert core.decode_batch is _decoder_c.decode_batch
    assert core.BatchBuilder is _batch_c.BatchBuilder
    assert core.Ring is _ring_c.Ring


@pytest.mark.skipif(_decoder_c is None, reason="the compiled core was not built")
def test_wire_field_positions_match_the_compiled_enum() -> None:
    """``_decoder_c`` reads EventWire's slots by position; its field order must follow EventWire."""
    assert _schema.EventWire.__struct_fields__ == _decoder_c.WIRE_FIELDS


def ev(**fields: object) -> bytes:
    base: dict[str, object] = {
        "event_id": "e1",
        "event_type": "HEARTBEAT",
        "process_id": "p1",
        "tenant_id": "acme",
        "timestamp": "2026-11-26T10:00:00Z",
    }
    base.update(fields)
    return msgspec.json.encode({k: v for k, v in base.items() if v is not ...})


def us(text: str) -> int:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return int((moment - datetime(1970, 1, 1, tzinfo=UTC)) / timedelta(microseconds=1))


# decoding ----------------------------------------------------------------------------------------


def test_valid_log_event_is_normalised(impl: types.SimpleNamespace) -> None:
    events, rejects = impl.decoder.decode_batch(
        [
            ev(
                event_type="LOG",
                level="WARN",
                message="disk 91%",
                details={"disk": "/u01"},
                component="monitor",
                trace_id="0AF7651916CD43DD8448EB211C80319C",
                span_id="b7ad6b7169203331",
                duration_us=12,
                timestamp="2026-11-26T11:30:00.5+01:30",
                unknown_field=[1, 2],
            )
        ]
    )
    assert rejects == []
    (event,) = events
    assert event.event_type == "LOG"
    assert event.level == _shared.LEVEL_CODES["WARN"]
    assert event.ts == us("2026-11-26T10:00:00.5Z")
    assert event.trace_id == "0af7651916cd43dd8448eb211c80319c"
    assert msgspec.json.decode(event.details) == {"disk": "/u01"}
    assert event.duration_us == 12
    assert event.priority == _shared.PRIORITIES[_shared.LOG]


@pytest.mark.parametrize(
    ("payload", "code", "reason"),
    [
        (b"{", "invalid_json", "invalid JSON: "),
        (b"\xff\xfe", "invalid_json", "invalid JSON: "),
        (b"[1, 2]", "not_object", "event must be a JSON object"),
        (
            b'{"metadata":' + b"[" * 5000 + b"]" * 5000 + b"}",
            "invalid_json",
            "invalid JSON: nested deeper than 64 levels (at offset 75)",
        ),
        (
            ev(event_id="e").replace(b'"e"', b'"e\xe9"'),
            "invalid_json",
            "invalid JSON: not UTF-8 (byte 0xe9 at offset 14)",
        ),
        (
            ev(event_type="LOG", level="INFO", message="m", details={"k": "v"}).replace(b'"v"', b'"\xff"'),
            "invalid_json",
            "invalid JSON: not UTF-8 (byte 0xff at offset ",
        ),
        # Invalid UTF-8 is refused wherever it is, unknown fields included.
        (ev(zz="v").replace(b'"v"', b'"\xc0\xaf"'), "invalid_json", "invalid JSON: not UTF-8 (byte 0xc0 at offset "),
        (ev(message="\ud7ff").replace(b"\xed\x9f\xbf", b"\xed\xa0\x80"), "invalid_json", "not UTF-8 (byte 0xed"),
        (b"{", "invalid_json", "invalid JSON: unexpected end of input, expected a string key (input ends at offset 1)"),
        (b'{"a":1,}', "invalid_json", "invalid JSON: unexpected '}', expected a string key at offset 7"),
        (b'{"a":01}', "invalid_json", "invalid JSON: invalid number (leading zero) at offset 5"),
        (b'{"a":NaN}', "invalid_json", "invalid JSON: unexpected 'N', expected a value at offset 5"),
        (b'{"a":"\\q"}', "invalid_json", "invalid JSON: invalid escape in a string at offset 6"),
        (b'{"a":"\\ud800"}', "invalid_json", "invalid JSON: unpaired UTF-16 surrogate escape in a string at offset 6"),
        (b'{"a":"x\x01"}', "invalid_json", "invalid JSON: control character 0x01 in a string at offset 7"),
        (b'{"a":1} x', "invalid_json", "invalid JSON: unexpected 'x' after the JSON value at offset 8"),
        (b"", "invalid_json", "invalid JSON: unexpected end of input, expected a value (input ends at offset 0)"),
        (b"[1, 2]", "not_object", "event must be a JSON object, got array"),
        (b"1e400", "not_object", "event must be a JSON object, got number"),
        # Numbers the API could not return to a strict JSON parser, named by their field.
        (
            ev(event_type="PROGRESS", percent=1).replace(b'"percent":1', b'"percent":1e400'),
            "bad_field",
            "percent: number out of range",
        ),
        (
            ev(event_type="STARTED", metadata={"m": [1, 2]}).replace(b"2]", b"-1E+400]"),
            "bad_field",
            "metadata: number out of range (not a finite double): -1E+400 at offset ",
        ),
        (
            ev(event_type="LOG", level="INFO", message="m", details={"d": 1}).replace(b'"d":1', b'"d":' + b"9" * 400),
            "bad_field",
            "details: number out of range",
        ),
        (ev(event_type="COMPLETED", result={"r": {"x": 1}}).replace(b'"x":1', b'"x":2e308'), "bad_field", "result:"),
        (ev(zz=1).replace(b'"zz":1', b'"zz":1e999'), "bad_field", "zz: number out of range"),
        (b'"text"', "not_object", "event must be a JSON object"),
        (ev(event_id=...), "missing_field", "event_id: required"),
        (ev(event_id=""), "bad_field", "event_id: expected 1 to 64 characters, got 0"),
        (ev(event_id="x" * 65), "bad_field", "event_id: expected 1 to 64 characters, got 65"),
        (ev(event_id=7), "bad_field", "event_id: expected a string, got number"),
        (ev(event_type=...), "missing_field", "event_type: required"),
        (ev(event_type="FINISHED"), "bad_event_type", 'got "FINISHED"'),
        (ev(event_type="log"), "bad_event_type", 'got "log"'),
        (ev(process_id="a\nb"), "bad_field", "process_id: contains a control character"),
        (ev(process_id="a\u0085b"), "bad_field", "process_id: contains a control character"),
        (ev(process_id="p" * 101), "bad_field", "process_id: expected 1 to 100 characters, got 101"),
        (ev(tenant_id=...), "missing_field", "tenant_id: required"),
        (ev(tenant_id="t" * 51), "bad_field", "tenant_id: expected 1 to 50 characters"),
        (ev(timestamp=...), "missing_field", "timestamp: required"),
        (ev(timestamp="2026-11-26T10:00:00"), "bad_timestamp", "expected RFC 3339 with an offset (Z or +hh:mm/-hh:mm)"),
        (ev(timestamp="2026-11-26"), "bad_timestamp", "timestamp: expected RFC 3339 (YYYY-MM-DDThh:mm:ss"),
        (ev(timestamp="2026-04-31T10:00:00Z"), "bad_timestamp", "timestamp: day out of range for its month"),
        (ev(timestamp="2026-11-26T10:59:60Z"), "bad_timestamp", "only valid at 23:59:60 UTC"),
        (ev(timestamp=1764151200), "bad_timestamp", "expected an RFC 3339 string, got number"),
        (ev(event_type="LOG", message="m"), "missing_field", "level: required"),
        (ev(event_type="LOG", level="NOTICE", message="m"), "bad_field", "level: expected one of"),
        (ev(event_type="LOG", level="INFO"), "missing_field", "message: required"),
        (ev(event_type="LOG", level="INFO", message="m" * 4001), "bad_field", "message: expected 0 to 4000"),
        (ev(event_type="LOG", level="INFO", message="m", details=[1]), "bad_field", "details: expected a JSON object"),
        (ev(event_type="LOG", level="INFO", message="m", trace_id="abc"), "bad_field", "trace_id: expected 32"),
        (ev(event_type="LOG", level="INFO", message="m", span_id="g" * 16), "bad_field", "span_id: expected 16"),
        (ev(event_type="LOG", level="INFO", message="m", duration_us=-1), "bad_field", "duration_us"),
        (ev(event_type="LOG", level="INFO", message="m", duration_us=1.5), "bad_field", "duration_us"),
        (ev(event_type="PROGRESS", percent=101), "bad_field", "percent: expected a number from 0 to 100"),
        (ev(event_type="PROGRESS", percent=True), "bad_field", "percent: expected a number from 0 to 100"),
        (ev(event_type="PROGRESS", step="s" * 201), "bad_field", "step: expected 0 to 200"),
        (ev(event_type="STARTED", metadata="x"), "bad_field", "metadata: expected a JSON object"),
        (ev(event_type="COMPLETED", result=[]), "bad_field", "result: expected a JSON object"),
        (ev(event_type="ERROR", error_message=5), "bad_field", "error_message: expected a string"),
        (ev(event_type="HEARTBEAT", message="m" * 4001), "bad_field", "message: expected 0 to 4000"),
    ],
)
def test_rule_breaks_are_rejected_with_a_precise_reason(
    impl: types.SimpleNamespace, payload: bytes, code: str, reason: str
) -> None:
    events, rejects = impl.decoder.decode_batch([payload])
    assert events == []
    ((index, raw, got_code, got_reason),) = rejects
    assert (index, raw, got_code) == (0, payload, code)
    assert reason in got_reason


def test_no_reason_quotes_the_json_library() -> None:
    """msgspec words its errors differently from version to version; every reason is ours."""
    for name in ("DecodeError", "Expected `", "malformed", "truncated", "Invalid UTF-8", "out of range - at"):
        for payload in (b"{", b"\xff", b'{"a":1,}', b"[1]", b'{"percent":1e400}', b'{"a":"\\ud800"}'):
            for impl in IMPLEMENTATIONS.values():
                _, ((_, _, _, reason),) = impl.decoder.decode_batch([payload])
                assert name not in reason


def test_a_bad_message_does_not_stop_the_batch(impl: types.SimpleNamespace) -> None:
    payloads = [ev(event_id="a"), b"nope", ev(event_id="b"), ev(event_id="c", event_type="X")]
    events, rejects = impl.decoder.decode_batch(payloads)
    assert [e.event_id for e in events] == ["a", "b"]
    assert [(r[0], r[2]) for r in rejects] == [(1, "invalid_json"), (3, "bad_event_type")]


def test_null_optional_fields_count_as_absent(impl: types.SimpleNamespace) -> None:
    (event,), _ = impl.decoder.decode_batch([ev(event_type="STARTED", process_name=None, metadata=None)])
    assert event.process_name is None
    assert event.metadata is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1970-01-01T00:00:00Z", 0),
        ("1970-01-01T00:00:00.000001z", 1),
        ("2026-11-26T10:00:00+00:00", us("2026-11-26T10:00:00Z")),
        ("2026-11-26T10:00:00-05:30", us("2026-11-26T15:30:00Z")),
        ("2026-11-26 10:00:00.123456789+01:00", us("2026-11-26T09:00:00.123456Z")),
        ("2024-02-29T23:59:59.9Z", us("2024-02-29T23:59:59.9Z")),
        ("2000-02-29T00:00:00Z", us("2000-02-29T00:00:00Z")),
        ("9999-12-31T23:59:59.999999Z", _shared.MAX_US),
        # RFC 3339 allows any number of fraction digits: the first six are kept.
        ("2026-11-30T10:00:00.1234567891Z", us("2026-11-30T10:00:00.123456Z")),
        ("2026-11-30T10:00:00." + "9" * 40 + "Z", us("2026-11-30T10:00:00.999999Z")),
        ("2026-11-30t10:00:00.5z", us("2026-11-30T10:00:00.5Z")),
        ("2026-11-30T10:00:00+05:30", us("2026-11-30T04:30:00Z")),
        ("2026-11-30T10:00:00-00:00", us("2026-11-30T10:00:00Z")),  # "unknown local offset": UTC
        ("2026-11-30T10:00:00+23:59", us("2026-11-29T10:01:00Z")),
        ("1969-12-31T23:59:59.999999Z", -1),
        # A leap second: only at 23:59:60 UTC, read as the last microsecond of the day.
        ("2016-12-31T23:59:60Z", us("2016-12-31T23:59:59.999999Z")),
        ("2016-12-31T23:59:60.5Z", us("2016-12-31T23:59:59.999999Z")),
        ("2016-12-31T18:59:60-05:00", us("2016-12-31T23:59:59.999999Z")),
        ("2017-01-01T05:29:60+05:30", us("2016-12-31T23:59:59.999999Z")),
    ],
)
def test_rfc3339_timestamps(impl: types.SimpleNamespace, text: str, expected: int) -> None:
    assert impl.decoder.parse_timestamp(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "2023-02-29T00:00:00Z",
        "1900-02-29T00:00:00Z",
        "2026-13-01T00:00:00Z",
        "2026-04-31T00:00:00Z",
        "2026-11-26T24:00:00Z",
        "2026-11-26T10:60:00Z",
        "2026-11-26T10:00:61Z",
        "2026-11-26T10:00:00+24:00",
        "2026-11-26T10:00:00.Z",
        "2026-11-26T10:59:60Z",
        "2016-12-31T23:59:60+01:00",
        "2026-11-26T10:00:00+05:60",
        "2026-11-26T10:00:00+5:30",
        "2026-11-26T10:00:00",
        "2026-11-26T10:00:00.",
        "2026-11-26T10:00Z",
        "2026-11-26 T10:00:00Z",
        "2026-11-26T10:00:00\u200bZ",
        "2026-11-26T10:00:00+0100",
        "2026-11-26T10:00:00Z ",
        " 2026-11-26T10:00:00Z",
        "2026-11-26T10:00:00ZZ",
        "1899-12-31T23:59:59Z",
        "9999-12-31T23:59:59-01:00",
        "2026-11-26X10:00:00Z",
        "",
        "\uff12\uff10\uff12\uff16-11-26T10:00:00Z",  # full-width digits are not RFC 3339 digits
    ],
)
def test_rfc3339_rejects(impl: types.SimpleNamespace, text: str) -> None:
    with pytest.raises(core.EventRejected) as caught:
        impl.decoder.parse_timestamp(text)
    assert caught.value.code == "bad_timestamp"
    assert caught.value.reason.startswith("timestamp: ")


@pytest.mark.parametrize(
    ("text", "detail"),
    [
        ("2026-11-26T10:00:00", "expected RFC 3339 with an offset"),
        ("1899-12-31T23:59:59Z", "before 1900-01-01T00:00:00Z"),
        ("1900-01-01T00:00:00+01:00", "before 1900-01-01T00:00:00Z"),
        ("0000-01-01T00:00:00Z", "before 1900-01-01T00:00:00Z"),
        ("2026-13-01T00:00:00Z", "month out of range"),
        ("2023-02-29T00:00:00Z", "day out of range for its month"),
        ("2026-11-26T24:00:00Z", "hour out of range"),
        ("2026-11-26T10:60:00Z", "minute out of range"),
        ("2026-11-26T10:00:61Z", "second out of range"),
        ("2026-11-26T10:59:60Z", "leap second"),
        ("2026-11-26T10:00:00+24:00", "offset out of range"),
        ("9999-12-31T23:59:59-01:00", "after 9999-12-31T23:59:59.999999Z"),
        ("26-11-26T10:00:00Z", "expected RFC 3339 (YYYY-MM-DDThh:mm:ss"),
    ],
)
def test_rfc3339_rejects_say_why(impl: types.SimpleNamespace, text: str, detail: str) -> None:
    with pytest.raises(core.EventRejected) as caught:
        impl.decoder.parse_timestamp(text, "since")
    assert caught.value.reason.startswith("since: ")
    assert detail in caught.value.reason
    assert text in caught.value.reason


@pytest.mark.parametrize(
    ("text", "utc"),
    [
        ("1900-01-01T00:00:00Z", "1900-01-01T00:00:00Z"),
        ("1899-12-31T23:00:00-01:00", "1900-01-01T00:00:00Z"),  # local 1899, but 1900 in UTC
        ("1899-12-31T14:00:00.000001-09:59", "1899-12-31T23:59:00.000001Z"),
        ("1900-01-01T01:00:00+01:00", "1900-01-01T00:00:00Z"),
        ("9999-12-31T23:59:59.999999Z", "9999-12-31T23:59:59.999999Z"),
        ("10000-01-01T00:00:00Z", None),
        ("9999-12-31T22:59:59+00:00", "9999-12-31T22:59:59Z"),
        ("9999-12-31T23:59:59.9999999999999Z", "9999-12-31T23:59:59.999999Z"),  # >9 fraction digits
        ("2026-11-26T10:00:00.1234567891234Z", "2026-11-26T10:00:00.123456Z"),
    ],
)
def test_timestamp_bounds_are_in_utc(impl: types.SimpleNamespace, text: str, utc: str | None) -> None:
    """Years 1900-9999 are an instant range, the same on both cores: 1900-01-01T00:00:00+01:00 is
    1899-12-31T23:00:00Z (refused) and 1899-12-31T23:00:00-01:00 is 1900-01-01T00:00:00Z (taken)."""
    if utc is None:
        with pytest.raises(core.EventRejected):
            impl.decoder.parse_timestamp(text)
        return
    if utc.startswith("1899"):
        with pytest.raises(core.EventRejected) as caught:
            impl.decoder.parse_timestamp(text)
        assert caught.value.reason == f'timestamp: before 1900-01-01T00:00:00Z, got "{text}"'
        return
    moment = datetime.fromisoformat(utc.replace("Z", "+00:00")) - datetime(1970, 1, 1, tzinfo=UTC)
    assert impl.decoder.parse_timestamp(text) == moment // timedelta(microseconds=1)  # exact, no float


def test_a_queued_event_over_the_size_limit_is_refused(impl: types.SimpleNamespace) -> None:
    """MAX_EVENT_BYTES holds on the queue path too: the decoder refuses a larger message before parsing
    it, with the code and words POST /events uses, and takes one of exactly the limit."""
    filler = "x" * 4000
    base = len(ev(event_type="LOG", level="INFO", message="m", details={"d": ""}))
    exact = ev(event_type="LOG", level="INFO", message="m", details={"d": "y" * (core_limit() - base)})
    assert len(exact) == core_limit()
    over = ev(event_type="LOG", level="INFO", message=filler, details={"d": "y" * core_limit()})
    broken = b"{" + b" " * core_limit()  # not even JSON: the size is what is said first
    events, rejects = impl.decoder.decode_batch([exact, over, broken])
    assert [event.event_id for event in events] == ["e1"]
    assert [(index, code, reason) for index, _, code, reason in rejects] == [
        (1, "event_too_large", f"event is {len(over)} bytes serialized, more than {core_limit()}"),
        (2, "event_too_large", f"event is {len(broken)} bytes serialized, more than {core_limit()}"),
    ]
    with pytest.raises(core.EventRejected) as caught:
        impl.decoder.decode_one(memoryview(over))
    assert caught.value.code == "event_too_large"
    assert "event_too_large" in core.REJECT_CODES


def core_limit() -> int:
    from sentinel._core._shared import MAX_EVENT_BYTES

    return MAX_EVENT_BYTES


@pytest.mark.parametrize("split", [1, 2, 3, 5])
def test_a_repeated_event_id_first_in_queue_order_wins_whatever_the_split(
    impl: types.SimpleNamespace, split: int
) -> None:
    """The fold keeps the first occurrence of an event id and counts the rest as duplicates, so the
    same messages in the same order give the same status row however they are cut into batches."""
    stream = [
        ev(event_id="z", event_type="COMPLETED", timestamp="2026-11-26T10:00:09Z", result={"n": 1}),
        ev(event_id="z", event_type="STARTED", process_name="first"),
        ev(event_id="a", event_type="STARTED", process_name="real", timestamp="2026-11-26T09:00:00Z"),
        ev(event_id="z", event_type="ERROR", timestamp="2026-11-26T10:00:10Z"),
        ev(event_id="b", event_type="HEARTBEAT", timestamp="2026-11-26T10:00:05Z"),
    ]
    events, rejects = impl.decoder.decode_batch(stream)
    assert rejects == []
    builder = impl.batch.BatchBuilder()
    seen: set[tuple[str, str]] = set()
    applied: list[str] = []
    duplicates = 0
    for start in range(0, len(events), split):
        batch = builder.build(events[start : start + split], seen, 1)
        duplicates += batch.duplicates
        seen.update((row[0], row[1]) for row in batch.dedupe_rows)
        applied += [name for name, count in zip(core.EVENT_TYPES, batch.counts, strict=True) for _ in range(count)]
        for row in batch.status_rows:
            terminal = row[core.STATUS_COLUMNS.index("terminal_status")]
            assert terminal in (None, "COMPLETED")  # never the repeated ERROR
            assert row[core.STATUS_COLUMNS.index("process_name")] in (None, "real")  # never the repeated STARTED
    assert duplicates == 2
    assert sorted(applied) == ["COMPLETED", "HEARTBEAT", "STARTED"]
    assert sorted(seen) == [("acme", "a"), ("acme", "b"), ("acme", "z")]


# explicit nesting limit -----------------------------------------------------------------------------


def nested(depth: int) -> bytes:
    """An event whose deepest value sits at ``depth`` levels (the event object is level 1)."""
    inner = b"[" * (depth - 1) + b"]" * (depth - 1)
    return ev(zz=0).replace(b'"zz":0', b'"zz":' + inner)


def at_stack_depth(frames: int, call: object) -> object:
    if frames == 0:
        return call()  # type: ignore[operator]
    return at_stack_depth(frames - 1, call)


@pytest.mark.parametrize("frames", [0, 50, 500])
def test_nesting_limit_is_explicit_and_independent_of_the_stack(impl: types.SimpleNamespace, frames: int) -> None:
    limit = _shared.MAX_DEPTH
    for depth in (limit - 1, limit):
        events, rejects = at_stack_depth(frames, lambda d=depth: impl.decoder.decode_batch([nested(d)]))
        assert (len(events), rejects) == (1, [])
    payload = nested(limit + 1)
    _, ((_, _, code, reason),) = at_stack_depth(frames, lambda: impl.decoder.decode_batch([payload]))
    assert code == "invalid_json"
    assert (
        reason
        == f"invalid JSON: nested deeper than {limit} levels (at offset {payload.index(b'[' * limit) + limit - 1})"
    )
    # Strings do not count, escaped quotes included; over HTTP an array body adds no level to its events.
    quoted = ev(message='\\" [[[[' + "[" * 100)
    assert impl.decoder.decode_batch([quoted])[1] == []
    body = b"[" + nested(limit) + b"]"
    assert at_stack_depth(frames, lambda: impl.decoder.prepare_http(body, "acme", 10))[2] == []
    for too_deep in (b"[" + nested(limit + 1) + b"]", nested(limit + 1)):
        with pytest.raises(core.BodyRejected, match=f"nested deeper than {limit} levels"):
            impl.decoder.prepare_http(too_deep, "acme", 10)


def test_http_bodies_that_are_not_utf8_are_refused_whole(impl: types.SimpleNamespace) -> None:
    """One rule for every place invalid UTF-8 can hide: the body is not UTF-8 JSON (400)."""
    bad = ev(message="m").replace(b'"m"', b'"\xff"')
    unknown = ev(zz="m").replace(b'"m"', b'"\xff"')
    for body in (bad, b"[" + bad + b"]", b"[" + ev(event_id="ok") + b"," + bad + b"]", unknown, b"[" + unknown + b"]"):
        with pytest.raises(core.BodyRejected, match=r"body is not valid JSON: not UTF-8 \(byte 0xff at offset \d+\)"):
            impl.decoder.prepare_http(body, "acme", 10)


def test_http_numbers_out_of_range_name_the_item_and_field(impl: types.SimpleNamespace) -> None:
    good = ev(event_id="a", event_type="STARTED", tenant_id=..., metadata={"m": 1})
    body = b"[" + good + b"," + good.replace(b'"a"', b'"b"').replace(b'"m":1', b'"m":1e400') + b"]"
    payloads, _, errors = impl.decoder.prepare_http(body, "acme", 10)
    assert len(payloads) == 1
    assert [(i, code) for i, code, _ in errors] == [(1, "bad_field")]
    assert errors[0][2].startswith("metadata: number out of range")
    single = ev(event_type="PROGRESS", tenant_id=..., percent=5).replace(b'"percent":5', b'"percent":1e400')
    _, _, errors = impl.decoder.prepare_http(single, "acme", 10)
    assert [(i, code) for i, code, _ in errors] == [(0, "bad_field")]
    assert errors[0][2].startswith("percent: number out of range")


# the HTTP body path ---------------------------------------------------------------------------------


def test_prepare_http_fills_the_tenant_and_orders_by_priority(impl: types.SimpleNamespace) -> None:
    body = b"[" + ev(tenant_id=..., event_type="ERROR", error_code="E1") + b"," + ev(event_id="e2") + b"]"
    payloads, priorities, errors = impl.decoder.prepare_http(body, "acme", 100)
    assert errors == []
    assert priorities == [_shared.PRIORITIES[_shared.ERROR], _shared.PRIORITIES[_shared.HEARTBEAT]]
    first = msgspec.json.decode(payloads[0])
    assert first["tenant_id"] == "acme"
    assert first["error_code"] == "E1"


def test_prepare_http_names_every_bad_index(impl: types.SimpleNamespace) -> None:
    body = b"[" + b",".join([ev(), b"5", ev(event_id=""), ev(tenant_id="other"), b"[]"]) + b"]"
    payloads, _, errors = impl.decoder.prepare_http(body, "acme", 100)
    assert len(payloads) == 1
    assert [(i, code) for i, code, _ in errors] == [
        (1, "not_object"),
        (2, "bad_field"),
        (3, "foreign_tenant"),
        (4, "not_object"),
    ]


def test_prepare_http_single_object_and_limits(impl: types.SimpleNamespace) -> None:
    payloads, _, errors = impl.decoder.prepare_http(b"  " + ev(tenant_id=...), "acme", 1)
    assert (len(payloads), errors) == (1, [])
    with pytest.raises(OverflowError):
        impl.decoder.prepare_http(b"[" + b",".join([ev()] * 3) + b"]", "acme", 2)
    for body, reason in (
        (b"", "body must be a JSON object or an array of objects"),
        (b"null", "body must be a JSON object or an array of objects"),
        (b"42", "body must be a JSON object or an array of objects"),
        (b"[", "body is not valid JSON: unexpected end of input, expected a value (input ends at offset 1)"),
        (b"{oops", "body is not valid JSON: unexpected 'o', expected a string key at offset 1"),
        (b'{"a":1},{"b":2}', "body is not valid JSON: unexpected ',' after the JSON value at offset 7"),
        (b"[" * 5000 + b"]" * 5000, "body is not valid JSON: nested deeper than 64 levels (at offset 65)"),
    ):
        with pytest.raises(core.BodyRejected) as caught:
            impl.decoder.prepare_http(body, "acme", 10)
        assert str(caught.value) == reason


# batching: SPEC section 3 inside one batch -------------------------------------------------------------


def build(impl: types.SimpleNamespace, payloads: list[bytes], seen: set[tuple[str, str]] | None = None) -> dict:
    events, rejects = impl.decoder.decode_batch(payloads)
    assert rejects == []
    batch = impl.batch.BatchBuilder().build(events, seen or set(), 42)
    return {
        "logs": [list(r) for r in batch.log_rows],
        "status": {r[1]: dict(zip(_shared.STATUS_COLUMNS, r, strict=True)) for r in batch.status_rows},
        "dedupe": [list(r) for r in batch.dedupe_rows],
        "counts": batch.counts,
        "duplicates": batch.duplicates,
    }


def test_terminal_status_survives_later_arrivals(impl: types.SimpleNamespace) -> None:
    out = build(
        impl,
        [
            ev(
                event_id="1", event_type="ERROR", timestamp="2026-11-26T10:00:05Z", error_code="E", error_message="boom"
            ),
            ev(event_id="2", event_type="PROGRESS", timestamp="2026-11-26T10:00:03Z", step="load", percent=40),
            ev(event_id="3", event_type="HEARTBEAT", timestamp="2026-11-26T10:00:09Z"),
        ],
    )
    status = out["status"]["p1"]
    assert status["terminal_status"] == "FAILED"
    assert status["ended_at"] == us("2026-11-26T10:00:05Z")
    assert (status["error_code"], status["error_message"]) == ("E", "boom")
    assert status["current_step"] == "load"
    assert status["last_seen_at"] == us("2026-11-26T10:00:09Z")
    assert status["event_count"] == 3


@pytest.mark.parametrize("order", [(0, 1), (1, 0)])
def test_later_terminal_event_wins_in_any_order(impl: types.SimpleNamespace, order: tuple[int, int]) -> None:
    pair = [
        ev(event_id="c", event_type="COMPLETED", timestamp="2026-11-26T10:00:01Z", result={"rows": 1}),
        ev(event_id="x", event_type="CANCELLED", timestamp="2026-11-26T10:00:02Z", reason="operator"),
    ]
    status = build(impl, [pair[i] for i in order])["status"]["p1"]
    assert status["terminal_status"] == "CANCELLED"
    assert status["error_message"] == "operator"
    assert status["result"] is None


def test_equal_terminal_timestamps_break_ties_by_rank(impl: types.SimpleNamespace) -> None:
    same = "2026-11-26T10:00:01Z"
    status = build(
        impl,
        [
            ev(event_id="e", event_type="ERROR", timestamp=same),
            ev(event_id="c", event_type="COMPLETED", timestamp=same),
        ],
    )["status"]["p1"]
    assert status["terminal_status"] == "FAILED"


def test_progress_and_start_follow_timestamps_not_arrival(impl: types.SimpleNamespace) -> None:
    status = build(
        impl,
        [
            ev(event_id="2", event_type="PROGRESS", timestamp="2026-11-26T10:00:20Z", step="load", percent=60),
            ev(event_id="1", event_type="PROGRESS", timestamp="2026-11-26T10:00:10Z", step="extract", percent=20),
            ev(event_id="3", event_type="PROGRESS", timestamp="2026-11-26T10:00:30Z", percent=80),
            ev(
                event_id="0",
                event_type="STARTED",
                timestamp="2026-11-26T10:00:00Z",
                process_name="nightly",
                metadata={"a": 1},
            ),
        ],
    )["status"]["p1"]
    assert (status["current_step"], status["progress_percent"]) == ("load", 80.0)
    assert status["percent_at"] == us("2026-11-26T10:00:30Z")
    assert status["step_at"] == us("2026-11-26T10:00:20Z")
    assert status["started_at"] == us("2026-11-26T10:00:00Z")
    assert status["process_name"] == "nightly"
    assert status["terminal_status"] is None
    assert msgspec.json.decode(status["metadata"]) == {"a": 1}


def test_duplicates_and_seen_keys_change_nothing(impl: types.SimpleNamespace) -> None:
    out = build(
        impl,
        [
            ev(event_id="a", event_type="LOG", level="INFO", message="one"),
            ev(event_id="a", event_type="LOG", level="INFO", message="one again"),
            ev(event_id="b", event_type="LOG", level="INFO", message="two"),
            ev(event_id="a", tenant_id="other", event_type="LOG", level="INFO", message="other tenant"),
        ],
        seen={("acme", "b")},
    )
    assert [row[5] for row in out["logs"]] == ["one", "other tenant"]
    assert out["duplicates"] == 2
    assert [row[:2] for row in out["dedupe"]] == [["acme", "a"], ["other", "a"]]
    assert out["status"]["p1"]["log_count"] == 1
    assert out["counts"][_shared.LOG] == 2


def test_one_status_row_per_tenant_and_process(impl: types.SimpleNamespace) -> None:
    events, _ = impl.decoder.decode_batch(
        [ev(event_id=str(i), process_id=f"p{i % 3}", tenant_id=f"t{i % 2}") for i in range(12)]
    )
    batch = impl.batch.BatchBuilder().build(events, set(), 1)
    keys = [(row[0], row[1]) for row in batch.status_rows]
    assert len(keys) == len(set(keys)) == 6
    assert sum(row[_shared.STATUS_COLUMNS.index("event_count")] for row in batch.status_rows) == 12


def test_arena_rows_are_reused_and_trimmed_to_the_high_water_mark(impl: types.SimpleNamespace) -> None:
    builder = impl.batch.BatchBuilder(retain=8)
    small, _ = impl.decoder.decode_batch(
        [ev(event_id=str(i), event_type="LOG", level="INFO", message="m") for i in range(4)]
    )
    first = builder.build(small, set(), 1).log_rows
    first_ids = [id(row) for row in first]
    again = builder.build(small, set(), 2).log_rows
    assert [id(row) for row in again] == first_ids, "rows must be reused, not reallocated"
    assert all(row[12] == 2 for row in again)
    big, _ = impl.decoder.decode_batch(
        [ev(event_id=str(i), process_id=f"p{i}", event_type="LOG", level="INFO", message="m") for i in range(50)]
    )
    assert len(builder.build(big, set(), 3).log_rows) == 50
    assert builder.arena_sizes()[0] == 50
    builder.build(small, set(), 4)
    assert builder.arena_sizes() == (8, 8, 8), "a huge batch must not pin its memory"


def test_row_arena_contract(impl: types.SimpleNamespace) -> None:
    arena = impl.batch.RowArena(3, 2)
    assert len(arena) == 0
    arena.reset()
    assert arena.rows() == []
    assert arena.allocated == 0


# the ring ---------------------------------------------------------------------------------------------


def test_ring_is_a_bounded_fifo(impl: types.SimpleNamespace) -> None:
    ring = impl.ring.Ring(3)
    assert ring.oldest_stamp() == -1.0
    assert [ring.push(x, float(x)) for x in range(4)] == [True, True, True, False]
    assert (len(ring), ring.free) == (3, 0)
    assert ring.oldest_stamp() == 0.0
    assert ring.pop_many(2) == [0, 1]
    assert ring.push(4, 4.0)
    assert ring.push(5, 5.0)
    assert ring.pop_many(10) == [2, 4, 5]
    assert ring.pop_many(1) == []
    ring.push("x", 9.0)
    ring.clear()
    assert len(ring) == 0
    with pytest.raises(ValueError, match="capacity"):
        impl.ring.Ring(0)


def test_ring_releases_references(impl: types.SimpleNamespace) -> None:
    import gc
    import weakref

    class Item:
        pass

    ring = impl.ring.Ring(2)
    item = Item()
    ref = weakref.ref(item)
    ring.push(item, 0.0)
    del item
    assert ref() is not None
    ring.pop_many(1)
    gc.collect()
    assert ref() is None


# compiled == twin ------------------------------------------------------------------------------------

json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-10, 200), st.floats(allow_nan=False), st.text(max_size=12)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=5), inner, max_size=3)),
    max_leaves=6,
)
timestamps = st.one_of(
    st.datetimes(
        min_value=datetime(1890, 1, 1), max_value=datetime(9999, 12, 30), timezones=st.sampled_from([UTC, None])
    ).map(lambda d: d.isoformat()),
    st.from_regex(
        r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{0,10})?([Zz]|[+-][0-9]{2}:[0-9]{2})?",
        fullmatch=True,
    ),
    json_values,
)
events = st.fixed_dictionaries(
    {
        "event_id": st.one_of(st.text(min_size=0, max_size=70), json_scalars),
        "event_type": st.one_of(st.sampled_from(_shared.EVENT_TYPES), st.text(max_size=8)),
        "process_id": st.one_of(st.sampled_from(["p1", "p2", "p\x07"]), st.text(max_size=110)),
        "tenant_id": st.one_of(st.sampled_from(["acme", "globex"]), json_scalars),
        "timestamp": timestamps,
    },
    optional={
        name: json_values
        for name in (
            "process_name",
            "metadata",
            "step",
            "percent",
            "message",
            "details",
            "component",
            "trace_id",
            "span_id",
            "duration_us",
            "result",
            "error_code",
            "error_message",
            "stack_trace",
            "reason",
        )
    }
    | {"level": st.one_of(st.sampled_from(_shared.LEVELS), json_scalars)},
)


def both(payloads: list[bytes]) -> tuple[tuple, tuple]:
    results = []
    for name in ("compiled", "python"):
        impl = IMPLEMENTATIONS[name]
        decoded, rejects = impl.decoder.decode_batch(payloads)
        batch = impl.batch.BatchBuilder().build(decoded, {("acme", "seen")}, 7)
        results.append(
            (
                [e.as_tuple() for e in decoded],
                rejects,
                [list(r) for r in batch.log_rows],
                [list(r) for r in batch.status_rows],
                [list(r) for r in batch.dedupe_rows],
                batch.counts,
                batch.duplicates,
            )
        )
    return results[0], results[1]


needs_compiled = pytest.mark.skipif(_decoder_c is None, reason="the compiled core was not built")


@needs_compiled
@settings(max_examples=400, deadline=None)
@given(st.lists(st.binary(max_size=64), max_size=8))
def test_compiled_equals_twin_on_arbitrary_bytes(payloads: list[bytes]) -> None:
    compiled, python = both(payloads)
    assert compiled == python


@needs_compiled
@settings(max_examples=400, deadline=None)
@given(st.lists(events, max_size=12))
def test_compiled_equals_twin_on_event_shaped_input(docs: list[dict]) -> None:
    compiled, python = both([msgspec.json.encode(doc) for doc in docs])
    assert compiled == python


@needs_compiled
@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(events, json_values), max_size=10), st.sampled_from(["acme", "globex"]))
def test_compiled_equals_twin_on_http_bodies(items: list[object], tenant: str) -> None:
    body = msgspec.json.encode(items)
    results = []
    for name in ("compiled", "python"):
        try:
            results.append(IMPLEMENTATIONS[name].decoder.prepare_http(body, tenant, 8))
        except (OverflowError, core.BodyRejected) as exc:
            results.append((type(exc), str(exc)))
    assert results[0] == results[1]


json_ish = st.lists(
    st.sampled_from(
        [
            b"[",
            b"]",
            b"{",
            b"}",
            b'"',
            b"\\",
            b":",
            b",",
            b"1",
            b"9" * 60,
            b"e",
            b"E+",
            b"-",
            b"0",
            b".",
            b"e400",
            b"\xff",
            b"\xc3\xa9",
            b"\xed\xa0\x80",
            b" ",
            b"null",
            b'"percent"',
            b'"metadata"',
        ]
    ),
    max_size=120,
).map(b"".join)


@needs_compiled
@settings(max_examples=500, deadline=None)
@given(st.lists(json_ish, max_size=6))
def test_compiled_equals_twin_on_bracket_quote_and_number_soup(payloads: list[bytes]) -> None:
    """The compiled one-pass scan and the twin's checks agree on depth, UTF-8 and number faults."""
    compiled, python = both(payloads)
    assert compiled == python


@needs_compiled
@settings(max_examples=500, deadline=None)
@given(st.lists(st.binary(max_size=12), min_size=1, max_size=8))
def test_compiled_equals_twin_on_bytes_inside_strings(chunks: list[bytes]) -> None:
    """Arbitrary bytes inside a field of a valid event: the compiled UTF-8 check (C) and the twin's
    (Python's strict decoder) agree on every byte sequence, overlong, surrogate and truncated ones too."""
    payloads = [
        ev(message="M", zz="Z").replace(b'"M"', b'"' + chunk.replace(b'"', b"").replace(b"\\", b"") + b'"')
        for chunk in chunks
    ]
    payloads.append(b"".join(chunks))
    compiled, python = both(payloads)
    assert compiled == python


@needs_compiled
@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(json_ish, st.builds(msgspec.json.encode, events)), max_size=5), st.booleans())
def test_compiled_equals_twin_on_malformed_http_bodies(parts: list[bytes], array: bool) -> None:
    body = b"[" + b",".join(parts) + b"]" if array else b"".join(parts)
    results = []
    for name in ("compiled", "python"):
        try:
            results.append(IMPLEMENTATIONS[name].decoder.prepare_http(body, "acme", 8))
        except (OverflowError, core.BodyRejected) as exc:
            results.append((type(exc), str(exc)))
    assert results[0] == results[1]


@settings(max_examples=500, deadline=None)
@given(st.one_of(json_ish, st.binary(max_size=80), st.builds(msgspec.json.encode, json_values)))
def test_every_parser_refusal_is_explained_in_our_words(data: bytes) -> None:
    try:
        msgspec.json.decode(data)
    except msgspec.DecodeError:
        explained = _shared.explain_json(data)
        assert explained != "not accepted by the JSON parser", data
        assert " at offset " in explained or "(input ends at offset" in explained
    else:
        assert _shared.explain_json(data) == "not accepted by the JSON parser"


@needs_compiled
@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="0123456789-:.TtZz+ ", max_size=40), st.sampled_from(["", "Z", "+05:30", "-00:00"]))
def test_compiled_equals_twin_on_timestamps(text: str, suffix: str) -> None:
    results = []
    for name in ("compiled", "python"):
        try:
            results.append(IMPLEMENTATIONS[name].decoder.parse_timestamp(text + suffix))
        except core.EventRejected as exc:
            results.append(exc.reason)
    assert results[0] == results[1]


@needs_compiled
def test_compiled_equals_twin_on_simulated_traffic() -> None:
    """Realistic traffic exercises every field (span ids, stack traces, metadata) on valid events."""
    from sentinel.simulate import SimulationConfig, generate

    payloads = list(generate(SimulationConfig(processes=60, seed=5, invalid_rate=0.05, duplicate_rate=0.05)))
    compiled, python = both(payloads)
    assert compiled == python
    assert len(compiled[0]) > 500


@pytest.mark.parametrize(
    ("payload", "suspect"),
    [
        (b'{"event_id": "a1b2c3d4-5e42-7e999-1e400"}', False),  # digits inside strings are text
        (b'{"message": "ten thousand ' + b"9" * 150 + b'"}', False),
        (b'{"k": "\\"1e400"}', False),  # an escaped quote does not end the string
        (b'{"percent": 1e400}', True),
        (b'{"m": "x", "n": -2.5E+308}', True),
        (b'{"n": ' + b"1" * 100 + b"}", True),
        (b'{"n": 1e99, "s": "1e999"}', False),
    ],
)
def test_only_numbers_outside_strings_send_an_event_to_the_exact_number_check(payload: bytes, suspect: bool) -> None:
    """The cheap gate in front of ``number_fault``: hex ids and other digits inside strings must not send
    most realistic events through the exact check (measured: 55% of a realistic mix did, for nothing)."""
    assert _shared.suspect_number(payload) is suspect
