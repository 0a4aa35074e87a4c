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
        (b'{"metadata":' + b"[" * 5000 + b"]" * 5000 + b"}", "invalid_json", "invalid JSON: nested too deeply"),
        (ev(event_id="e").replace(b'"e"', b'"e\xe9"'), "invalid_json", "invalid JSON: not UTF-8 (byte 0xe9)"),
        (
            ev(event_type="LOG", level="INFO", message="m", details={"k": "v"}).replace(b'"v"', b'"\xff"'),
            "invalid_json",
            "invalid JSON: not UTF-8 (byte 0xff)",
        ),
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
        (ev(timestamp="2026-11-26T10:00:00"), "bad_timestamp", "expected RFC 3339 with an offset"),
        (ev(timestamp="2026-11-26"), "bad_timestamp", "expected RFC 3339 with an offset"),
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
        "2026-11-26T10:00:00.1234567890Z",
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
    for body in (b"", b"null", b"42", b"[", b"{oops", b'{"a":1},{"b":2}', b"[" * 5000 + b"]" * 5000):
        with pytest.raises(core.BodyRejected):
            impl.decoder.prepare_http(body, "acme", 10)


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


@needs_compiled
def test_compiled_equals_twin_on_simulated_traffic() -> None:
    """Realistic traffic exercises every field (span ids, stack traces, metadata) on valid events."""
    from sentinel.simulate import SimulationConfig, generate

    payloads = list(generate(SimulationConfig(processes=60, seed=5, invalid_rate=0.05, duplicate_rate=0.05)))
    compiled, python = both(payloads)
    assert compiled == python
    assert len(compiled[0]) > 500
