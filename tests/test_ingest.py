"""Ingest (SPEC sections 2, 3 and 5): what the consumer does with every kind of message, and the
``sentinel ingest`` process under SIGKILL, SIGTERM, a standby and stall detection."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from helpers import (
    at,
    base_env,
    encode,
    enqueue,
    event,
    make_settings,
    queue_depth,
    read_only,
    run_worker_until_idle,
    sentinel_cmd,
    sentinel_popen,
    ts,
    wait_for,
)

from sentinel._core import EVENT_TYPES
from sentinel._core._shared import MAX_EVENT_BYTES
from sentinel.config import Settings
from sentinel.store.base import LogQuery
from sentinel.store.sqlite import SqliteStore

VALID_TYPES = frozenset(EVENT_TYPES)


# -- invalid messages ----------------------------------------------------------------------------------


def _missing(field: str) -> bytes:
    body = event()
    del body[field]
    return encode(body)


INVALID: list[tuple[str, bytes, str, str]] = [
    # (case id, raw payload, code, the reason starts with)
    ("truncated-json", b'{"event_id": "a1", "event_type": ', "invalid_json", "invalid JSON"),
    ("not-json", b"hello world", "invalid_json", "invalid JSON"),
    ("empty-message", b"", "invalid_json", "invalid JSON"),
    ("array", b'[{"event_id": "x"}]', "not_object", "event must be a JSON object"),
    ("string", b'"STARTED"', "not_object", "event must be a JSON object"),
    ("number", b"42", "not_object", "event must be a JSON object"),
    ("null", b"null", "not_object", "event must be a JSON object"),
    ("empty-object", b"{}", "missing_field", "event_id: required"),
    ("no-event_id", _missing("event_id"), "missing_field", "event_id: required"),
    ("no-event_type", _missing("event_type"), "missing_field", "event_type: required"),
    ("no-process_id", _missing("process_id"), "missing_field", "process_id: required"),
    ("no-tenant_id", _missing("tenant_id"), "missing_field", "tenant_id: required"),
    ("no-timestamp", _missing("timestamp"), "missing_field", "timestamp: required"),
    ("log-without-level", encode(event(event_type="LOG", level=None)), "missing_field", "level: required"),
    ("log-without-message", encode(event(event_type="LOG", message=None)), "missing_field", "message: required"),
    ("timestamp-words", encode(event(timestamp="yesterday")), "bad_timestamp", "timestamp:"),
    ("timestamp-no-offset", encode(event(timestamp="2024-05-01T10:00:00")), "bad_timestamp", "timestamp:"),
    ("timestamp-feb-30", encode(event(timestamp="2024-02-30T10:00:00Z")), "bad_timestamp", "timestamp:"),
    ("timestamp-month-13", encode(event(timestamp="2024-13-01T10:00:00Z")), "bad_timestamp", "timestamp:"),
    ("timestamp-date-only", encode(event(timestamp="2024-05-01")), "bad_timestamp", "timestamp:"),
    ("timestamp-number", encode(event(timestamp=1714557600)), "bad_timestamp", "timestamp:"),
    (
        "timestamp-1899-in-utc",
        encode(event(timestamp="1900-01-01T00:00:00+01:00")),
        "bad_timestamp",
        'timestamp: before 1900-01-01T00:00:00Z, got "1900-01-01T00:00:00+01:00"',
    ),
    (
        "event-over-the-size-limit",
        encode(event(event_type="LOG", message="m", details={"d": "x" * MAX_EVENT_BYTES})),
        "event_too_large",
        "event is 32",  # the exact words: tests/test_core.py
    ),
    ("not-json-over-the-size-limit", b"{" + b" " * MAX_EVENT_BYTES, "event_too_large", "event is 32768 bytes"),
    ("type-unknown", encode(event(event_type="FINISHED")), "bad_event_type", "event_type:"),
    ("type-lowercase", encode(event(event_type="started")), "bad_event_type", "event_type:"),
    ("type-number", encode(event(event_type=3)), "bad_event_type", "event_type:"),
    ("event_id-too-long", encode(event(event_id="x" * 65)), "bad_field", "event_id:"),
    ("event_id-empty", encode(event(event_id="")), "bad_field", "event_id:"),
    ("event_id-number", encode(event(event_id=17)), "bad_field", "event_id:"),
    ("process_id-too-long", encode(event(process_id="p" * 101)), "bad_field", "process_id:"),
    ("process_id-control", encode(event(process_id="bad\nid")), "bad_field", "process_id:"),
    ("tenant_id-too-long", encode(event(tenant_id="t" * 51)), "bad_field", "tenant_id:"),
    ("level-unknown", encode(event(event_type="LOG", level="NOTICE")), "bad_field", "level:"),
    ("percent-over-100", encode(event(event_type="PROGRESS", percent=100.5)), "bad_field", "percent:"),
    ("percent-text", encode(event(event_type="PROGRESS", percent="50")), "bad_field", "percent:"),
    ("step-too-long", encode(event(event_type="PROGRESS", step="s" * 201)), "bad_field", "step:"),
    ("message-too-long", encode(event(message="m" * 4001)), "bad_field", "message:"),
    ("metadata-array", encode(event(event_type="STARTED", metadata=[1, 2])), "bad_field", "metadata:"),
    ("result-string", encode(event(event_type="COMPLETED", result="ok")), "bad_field", "result:"),
    ("details-number", encode(event(event_type="LOG", details=5)), "bad_field", "details:"),
    ("trace_id-not-hex", encode(event(event_type="LOG", trace_id="z" * 32)), "bad_field", "trace_id:"),
    ("span_id-short", encode(event(event_type="LOG", span_id="abc")), "bad_field", "span_id:"),
    ("duration-negative", encode(event(event_type="LOG", duration_us=-1)), "bad_field", "duration_us:"),
    (
        "error_message-too-long",
        encode(event(event_type="ERROR", error_message="e" * 4001)),
        "bad_field",
        "error_message:",
    ),
]


@pytest.mark.parametrize(("raw", "code", "reason"), [c[1:] for c in INVALID], ids=[c[0] for c in INVALID])
def test_invalid_message_is_dead_lettered_and_the_queue_goes_on(
    store: Any, ingest: Any, raw: bytes, code: str, reason: str
) -> None:
    before = event(offset=1, process_id="neighbour")
    after = event(event_type="LOG", offset=2, process_id="neighbour", message="after the bad one")
    ingest([before, raw, after], [5, 5, 5])
    letters = store.dead_letters(0, 100)
    assert len(letters) == 1
    letter = letters[0]
    assert letter.code == code
    assert letter.reason.startswith(reason), letter.reason
    assert letter.payload == raw.decode()
    assert letter.dead_at is not None
    assert letter.enqueued_at is not None
    doc = store.get_status("acme", "neighbour")
    assert doc is not None
    assert (doc.event_count, doc.log_count) == (2, 1)
    assert store.queue_stats().depth == 0


@pytest.mark.parametrize(
    "raw",
    [
        # Not UTF-8 (e.g. a producer writing Latin-1): inside a string field, inside an object field.
        b'{"event_id":"bad-utf8","event_type":"HEARTBEAT","process_id":"p\xe9","tenant_id":"acme",'
        b'"timestamp":"2024-05-01T10:00:00Z"}',
        b'{"event_id":"bad-utf8","event_type":"LOG","level":"INFO","message":"caf\xe9","process_id":"p",'
        b'"tenant_id":"acme","timestamp":"2024-05-01T10:00:00Z"}',
        b'{"event_id":"bad-utf8","event_type":"STARTED","metadata":{"k":"\xff"},"process_id":"p",'
        b'"tenant_id":"acme","timestamp":"2024-05-01T10:00:00Z"}',
    ],
    ids=["in-process_id", "in-message", "in-metadata"],
)
def test_invalid_utf8_is_dead_lettered_and_the_queue_goes_on(store: Any, ingest: Any, raw: bytes) -> None:
    """JSON text must be UTF-8 (RFC 8259); a message that is not breaks a rule like any other and must be
    dead-lettered, not crash the consumer (which would then stop on the same message after every restart)."""
    before = event(offset=1, process_id="neighbour")
    after = event(offset=2, process_id="neighbour")
    ingest([before, raw, after], [5, 5, 5])
    letters = store.dead_letters(0, 100)
    assert [letter.code for letter in letters] == ["invalid_json"]
    assert letters[0].reason.startswith("invalid JSON")
    assert letters[0].payload.startswith('{"event_id":"bad-utf8"')
    doc = store.get_status("acme", "neighbour")
    assert doc is not None
    assert doc.event_count == 2


def test_many_invalid_messages_among_valid_ones(store: Any, ingest: Any, settings: Settings) -> None:
    items: list[Any] = []
    expected_codes: list[str] = []
    for round_ in range(4):
        for _, raw, code, _ in INVALID:
            items.append(raw)
            expected_codes.append(code)
            items.append(event(offset=round_, process_id=f"p{len(items) % 7}"))
    assert len(items) > 2 * settings.batch_size
    ingest(items, [5] * len(items))
    letters = store.dead_letters(0, 1000)
    assert [letter.code for letter in letters] == expected_codes
    raws = [item.decode() for item in items if isinstance(item, bytes)]
    assert [letter.payload for letter in letters] == raws
    valid = [item for item in items if isinstance(item, dict)]
    counts = Counter(item["process_id"] for item in valid)
    for pid, count in counts.items():
        doc = store.get_status("acme", pid)
        assert doc is not None
        assert doc.event_count == count


def test_unknown_fields_are_ignored(store: Any, ingest: Any) -> None:
    """SPEC section 2: unknown fields are ignored (they do not make the event invalid)."""
    ingest(
        [
            event(
                event_type="STARTED",
                process_name="job",
                color="blue",
                nested={"deep": [1, {"x": None}]},
                priority=9,
                percent="not for STARTED",
            ),
            event(event_type="HEARTBEAT", offset=1, level="NOT-A-LEVEL", result=[1, 2], unknown_flag=True),
            event(event_type="LOG", offset=2, message="hello", extra_field={"a": 1}),
        ]
    )
    assert store.dead_letters(0, 100) == []
    doc = store.get_status("acme", "proc-1")
    assert doc is not None
    assert (doc.process_name, doc.event_count, doc.log_count) == ("job", 3, 1)
    assert doc.result is None


def test_timestamps_with_offsets_are_stored_in_utc(store: Any, ingest: Any) -> None:
    ingest(
        [
            event(event_type="STARTED", timestamp="2024-05-01T12:00:00+02:00"),
            event(event_type="PROGRESS", percent=50, timestamp="2024-05-01T05:30:00.250-04:30"),
            event(event_type="LOG", message="z", timestamp="2024-05-01t10:00:05.123456000z"),
        ]
    )
    doc = store.get_status("acme", "proc-1")
    assert doc is not None
    assert doc.started_at == datetime.fromisoformat("2024-05-01T10:00:00+00:00")
    assert doc.last_seen_at == datetime.fromisoformat("2024-05-01T10:00:05.123456+00:00")
    # started 10:00:00, 50 % at 10:00:00.250 -> done at 10:00:00.500
    assert doc.estimated_completion == datetime.fromisoformat("2024-05-01T10:00:00.500+00:00")
    logs = store.list_logs("acme", "proc-1", LogQuery())
    assert [entry.timestamp for entry in logs] == [datetime.fromisoformat("2024-05-01T10:00:05.123456+00:00")]


# -- duplicates ----------------------------------------------------------------------------------------


def test_duplicates_within_and_across_batches(store: Any, ingest: Any, settings: Settings) -> None:
    events = [
        event(event_type="LOG" if index % 3 == 0 else "HEARTBEAT", offset=index, process_id=f"p{index % 5}")
        for index in range(250)
    ]
    # every event three times: twice next to each other, once more than a batch later
    stream: list[dict[str, Any]] = []
    for item in events:
        stream += [item, item]
    stream += events
    assert len(stream) > 3 * settings.batch_size
    ingest(stream, [5] * len(stream))
    ingest(events[::10])
    assert store.dead_letters(0, 10) == []
    for pid in {item["process_id"] for item in events}:
        mine = [item for item in events if item["process_id"] == pid]
        doc = store.get_status("acme", pid)
        assert doc is not None
        assert doc.event_count == len(mine)
        assert doc.log_count == sum(1 for item in mine if item["event_type"] == "LOG")
        logs = store.logs_after("acme", pid, 0, 1000)
        assert sorted(entry.message for entry in logs) == sorted(
            item["message"] for item in mine if item["event_type"] == "LOG"
        )
        assert len(logs) == doc.log_count


def test_a_repeated_event_id_with_other_content_is_ignored(store: Any, ingest: Any) -> None:
    original = event(event_type="PROGRESS", offset=1, step="extract", percent=10)
    ingest([original])
    impostor = {**original, "timestamp": ts(9), "step": "publish", "percent": 99}
    ingest([impostor, {**original, "event_type": "COMPLETED", "timestamp": ts(10)}])
    doc = store.get_status("acme", "proc-1")
    assert doc is not None
    assert (doc.status, doc.current_step, doc.progress_percent) == ("RUNNING", "extract", 10.0)
    assert doc.last_seen_at == at(1)
    assert doc.event_count == 1


@pytest.mark.parametrize("batch_size", ["1", "2", "3", "1000"])
def test_a_repeated_event_id_first_in_queue_order_wins_in_any_batch_split(tmp_path: Path, batch_size: str) -> None:
    """One rule for a repeated event id: the first message the queue hands out wins, and the rest are
    duplicates, whether the repeats are fetched in one batch or in several. The queue hands out by
    priority, then by enqueue order (errors and completions jump the queue, SPEC section 3)."""
    settings = make_settings(tmp_path, SENTINEL_BATCH_SIZE=batch_size)
    store = SqliteStore(settings.sqlite_path)
    store.migrate()
    try:
        started = event(event_id="z", event_type="STARTED", process_id="dup", process_name="first", offset=0)
        completed = event(event_id="z", event_type="COMPLETED", process_id="dup", offset=5)
        beat = event(event_id="z", event_type="HEARTBEAT", process_id="dup", offset=9)
        heartbeat = event(event_type="HEARTBEAT", process_id="dup", offset=1)
        # One priority: enqueue order decides, and the STARTED is first out.
        enqueue(store, [started, heartbeat, completed, beat, completed], [5, 5, 5, 5, 5])
        elsewhere = {**started, "process_id": "other"}
        enqueue(store, [elsewhere, {**elsewhere, "event_id": "y"}], [5, 5])
        run_worker_until_idle(store, settings)
        first = store.get_status("acme", "dup")
        assert first is not None
        # The later COMPLETED and HEARTBEAT with the STARTED's id changed nothing.
        assert (first.status, first.process_name, first.event_count) == ("RUNNING", "first", 2)
        assert first.last_seen_at == at(1)
        other = store.get_status("acme", "other")
        assert other is not None
        assert other.event_count == 1  # the id is per tenant: "z" was taken
    finally:
        store.close()


def test_a_repeated_event_id_taken_apart_by_priority(tmp_path: Path) -> None:
    """The same two messages give the same answer whether they are fetched together or one by one."""
    answers = []
    for batch_size in ("1", "2"):
        settings = make_settings(tmp_path / batch_size, SENTINEL_BATCH_SIZE=batch_size)
        store = SqliteStore(settings.sqlite_path)
        store.migrate()
        try:
            started = event(event_id="z", event_type="STARTED", process_id="dup", process_name="first", offset=0)
            completed = event(event_id="z", event_type="COMPLETED", process_id="dup", offset=5)
            enqueue(store, [started, completed])  # the producer's priorities: COMPLETED is handed out first
            run_worker_until_idle(store, settings)
            doc = store.get_status("acme", "dup")
            assert doc is not None
            answers.append((doc.status, doc.started_at, doc.event_count))
        finally:
            store.close()
    assert answers == [("COMPLETED", None, 1)] * 2


def test_emit_reports_a_line_over_the_size_limit_and_the_ingest_dead_letters_it(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    env = base_env(data_dir)
    assert sentinel_cmd("migrate", env=env).returncode == 0
    big = encode(event(event_type="LOG", process_id="big", message="m", details={"d": "x" * MAX_EVENT_BYTES}))
    small = encode(event(event_type="LOG", process_id="big", message="fits", offset=1))
    result = sentinel_cmd("emit", env=env, input=small + b"\n" + big + b"\n")
    assert result.returncode == 0, result.stderr.decode()
    told = result.stderr.decode()
    assert "queued 2 message(s); 1 will be dead-lettered by the ingest" in told, told
    assert f"line 2: event_too_large: event is {len(big)} bytes serialized, more than {MAX_EVENT_BYTES}" in told
    settings = make_settings(data_dir)
    store = SqliteStore(settings.sqlite_path)
    try:
        run_worker_until_idle(store, settings)
        (letter,) = store.dead_letters(0, 10)
        assert (letter.code, letter.payload) == ("event_too_large", big.decode())
        assert store.logs_after("acme", "big", 0, 10)[0].message == "fits"
        assert len(store.logs_after("acme", "big", 0, 10)) == 1
    finally:
        store.close()


# -- the ingest process --------------------------------------------------------------------------------


def _is_valid(line: bytes) -> dict[str, Any] | None:
    """Independent judgement of a simulator line: the simulator breaks messages by truncating them,
    by a non-RFC 3339 timestamp or by an unknown event type; everything else it writes is valid."""
    try:
        body = json.loads(line)
    except ValueError:
        return None
    if not isinstance(body, dict) or body.get("event_type") not in VALID_TYPES:
        return None
    stamp = body.get("timestamp")
    if not isinstance(stamp, str) or not stamp.endswith("Z"):
        return None
    try:
        datetime.fromisoformat(stamp)
    except ValueError:
        return None
    return body


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    path = tmp_path / "data"
    path.mkdir()
    return path


@pytest.fixture
def procs() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Processes a test starts; any still running at teardown are killed (by their own pid)."""
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


def _start_ingest(data_dir: Path, procs: list[subprocess.Popen[bytes]], name: str, **env: str) -> Any:
    err = data_dir.parent / f"{name}.err"
    proc = sentinel_popen("ingest", env=base_env(data_dir, **env), stderr_path=err)
    procs.append(proc)
    return proc


def _stderr(data_dir: Path, name: str) -> str:
    path = data_dir.parent / f"{name}.err"
    return path.read_text(errors="replace") if path.exists() else ""


def _stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 20.0) -> int:
    proc.send_signal(sig)
    return proc.wait(timeout=timeout)


def _dropped_to(proc: subprocess.Popen[bytes], db: Path, threshold: int) -> bool:
    return proc.poll() is not None or queue_depth(db) <= threshold


@pytest.mark.slow
def test_crash_with_sigkill_loses_and_duplicates_nothing(data_dir: Path, procs: list[Any]) -> None:
    env = base_env(data_dir)
    sim = sentinel_cmd(
        "simulate",
        "-n",
        "1500",
        "--seed",
        "7",
        "--duplicate-rate",
        "0.02",
        "--invalid-rate",
        "0.01",
        "-q",
        "--stdout",
        env=env,
    )
    assert sim.returncode == 0, sim.stderr.decode()
    lines = [line for line in sim.stdout.split(b"\n") if line]
    stream = data_dir.parent / "stream.jsonl"
    stream.write_bytes(b"\n".join(lines) + b"\n")

    valid: dict[str, dict[str, Any]] = {}
    invalid: Counter[bytes] = Counter()
    for line in lines:
        body = _is_valid(line)
        if body is None:
            invalid[line] += 1
        else:
            assert valid.setdefault(body["event_id"], body) == body, "one event_id, two contents"
    assert invalid, "the stream should hold broken messages"
    assert len(lines) > len(valid) + sum(invalid.values()), "the stream should hold duplicates"
    per_process = Counter((b["tenant_id"], b["process_id"]) for b in valid.values())
    logs = [b for b in valid.values() if b["event_type"] == "LOG"]
    logs_per_process = Counter((b["tenant_id"], b["process_id"]) for b in logs)
    log_ids = {(b["tenant_id"], b["event_id"]) for b in logs}

    assert sentinel_cmd("migrate", env=env).returncode == 0  # emit queues only into an existing database
    emitted = sentinel_cmd("emit", str(stream), env=env)
    assert emitted.returncode == 0, emitted.stderr.decode()
    db = data_dir / "sentinel.db"
    total = queue_depth(db)
    assert total == len(lines)

    # Kill -9 three times in the middle of the stream, each time after the queue has dropped a bit more.
    for round_, fraction in enumerate((0.85, 0.6, 0.35)):
        proc = _start_ingest(data_dir, procs, f"killed-{round_}", SENTINEL_BATCH_SIZE="200")
        threshold = int(total * fraction)
        wait_for(partial(_dropped_to, proc, db, threshold), 60, f"depth <= {threshold}", interval=0.002)
        assert proc.poll() is None, _stderr(data_dir, f"killed-{round_}")
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=10) == -signal.SIGKILL
        assert queue_depth(db) > 0, "the consumer was to be killed in the middle of the stream"

    final = _start_ingest(data_dir, procs, "final", SENTINEL_BATCH_SIZE="200")
    wait_for(lambda: final.poll() is not None or queue_depth(db) == 0, 60, "the queue to drain")
    assert _stop(final) == 0, _stderr(data_dir, "final")

    conn = read_only(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("SELECT COUNT(*) FROM queue").fetchone()[0] == 0
        dedupe = conn.execute("SELECT tenant_id, event_id FROM dedupe").fetchall()
        assert len(dedupe) == len(set(dedupe))
        assert set(dedupe) == {(b["tenant_id"], event_id) for event_id, b in valid.items()}
        log_rows = conn.execute("SELECT tenant_id, event_id FROM logs").fetchall()
        assert len(log_rows) == len(set(log_rows)), "a log row was written twice"
        assert set(log_rows) == log_ids
        counts = {
            (t, p): (e, n)
            for t, p, e, n in conn.execute("SELECT tenant_id, process_id, event_count, log_count FROM processes")
        }
        assert counts == {key: (per_process[key], logs_per_process[key]) for key in per_process}
        letters = Counter(bytes(row[0]) for row in conn.execute("SELECT payload FROM dead_letters"))
        assert letters == invalid
    finally:
        conn.close()


def _unique_stream(count: int) -> list[dict[str, Any]]:
    return [
        event(
            event_type="LOG" if index % 4 == 0 else "HEARTBEAT",
            offset=index / 1000,
            process_id=f"p{index % 97}",
            message=f"line {index}",
        )
        for index in range(count)
    ]


def test_sigterm_finishes_the_batch_in_flight_and_exits_0(data_dir: Path, procs: list[Any]) -> None:
    events = _unique_stream(20_000)
    store = SqliteStore(data_dir / "sentinel.db")
    store.migrate()
    try:
        store.enqueue([encode(item) for item in events], [5] * len(events))
    finally:
        store.close()
    db = data_dir / "sentinel.db"
    proc = _start_ingest(data_dir, procs, "ingest", SENTINEL_BATCH_SIZE="200")
    wait_for(lambda: proc.poll() is not None or queue_depth(db) <= len(events) - 1000, 60, "ingest to start")
    assert _stop(proc) == 0, _stderr(data_dir, "ingest")

    conn = read_only(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        remaining = {json.loads(bytes(p))["event_id"] for (p,) in conn.execute("SELECT payload FROM queue")}
        assert remaining, "SIGTERM was to arrive in the middle of the stream"
        consumed = [item for item in events if item["event_id"] not in remaining]
        assert len(consumed) + len(remaining) == len(events)
        # every message that left the queue has all its effects, and no other message has any
        dedupe = {event_id for (event_id,) in conn.execute("SELECT event_id FROM dedupe")}
        assert dedupe == {item["event_id"] for item in consumed}
        logged = [event_id for (event_id,) in conn.execute("SELECT event_id FROM logs")]
        assert sorted(logged) == sorted(item["event_id"] for item in consumed if item["event_type"] == "LOG")
        expected = Counter(item["process_id"] for item in consumed)
        stored = dict(conn.execute("SELECT process_id, event_count FROM processes").fetchall())
        assert stored == dict(expected)
    finally:
        conn.close()


def _write_lock_free(db: Path) -> bool:
    """True if a write transaction can start right now (nobody holds the write lock)."""
    conn = sqlite3.connect(db, timeout=0.05, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("ROLLBACK")
        return True
    except sqlite3.OperationalError:
        return False
    finally:
        conn.close()


def test_second_consumer_waits_as_standby_and_takes_over(data_dir: Path, procs: list[Any]) -> None:
    db = data_dir / "sentinel.db"
    store = SqliteStore(db)
    store.migrate()
    try:
        first = _start_ingest(data_dir, procs, "first")
        store.enqueue([encode(event(process_id="warmup"))], [5])
        wait_for(lambda: first.poll() is not None or queue_depth(db) == 0, 30, "the first consumer to run")
        assert first.poll() is None, _stderr(data_dir, "first")

        second = _start_ingest(data_dir, procs, "second")
        wait_for(
            lambda: second.poll() is not None or "standby" in _stderr(data_dir, "second"),
            30,
            "the second consumer to report it is a standby",
        )
        assert second.poll() is None, _stderr(data_dir, "second")

        # Freeze the first consumer (outside a write transaction): nobody may consume now.
        for _ in range(50):
            first.send_signal(signal.SIGSTOP)
            if _write_lock_free(db):
                break
            first.send_signal(signal.SIGCONT)
            time.sleep(0.05)
        else:
            pytest.fail("could not freeze the first consumer outside a transaction")
        try:
            batch = [event(process_id="while-frozen", offset=index) for index in range(5)]
            store.enqueue([encode(item) for item in batch], [5] * len(batch))
            time.sleep(1.5)  # several standby polls
            assert queue_depth(db) == len(batch), "the standby consumed while the first still held the lock"
            assert second.poll() is None
        finally:
            first.send_signal(signal.SIGCONT)
        wait_for(lambda: queue_depth(db) == 0, 30, "the first consumer to resume")
        assert _stop(first) == 0, _stderr(data_dir, "first")

        # The standby takes over.
        takeover = [encode(event(process_id="after-takeover", offset=index)) for index in range(3)]
        store.enqueue(takeover, [5] * 3)
        wait_for(lambda: second.poll() is not None or queue_depth(db) == 0, 30, "the standby to take over")
        assert second.poll() is None, _stderr(data_dir, "second")
        doc = store.get_status("acme", "after-takeover")
        assert doc is not None
        assert doc.event_count == 3
        frozen = store.get_status("acme", "while-frozen")
        assert frozen is not None
        assert frozen.event_count == 5

        # A standby stopped while it waits exits cleanly, and the active consumer is not disturbed.
        third = _start_ingest(data_dir, procs, "third")
        wait_for(
            lambda: third.poll() is not None or "standby" in _stderr(data_dir, "third"),
            30,
            "the third consumer to report it is a standby",
        )
        assert _stop(third) == 0, _stderr(data_dir, "third")
        store.enqueue([encode(event(process_id="after-takeover", offset=10))], [5])
        wait_for(lambda: queue_depth(db) == 0, 30, "the second consumer to go on")
        doc = store.get_status("acme", "after-takeover")
        assert doc is not None
        assert doc.event_count == 4
        assert _stop(second) == 0, _stderr(data_dir, "second")
    finally:
        store.close()


def test_stall_detection_end_to_end(data_dir: Path, procs: list[Any]) -> None:
    db = data_dir / "sentinel.db"
    store = SqliteStore(db)
    store.migrate()
    try:
        proc = _start_ingest(data_dir, procs, "ingest", SENTINEL_HEARTBEAT_TIMEOUT_SEC="1")
        store.enqueue(
            [
                encode(event(event_type="STARTED", process_id="quiet")),
                encode(event(event_type="STARTED", process_id="done")),
                encode(event(event_type="COMPLETED", offset=1, process_id="done")),
            ],
            [5, 5, 5],
        )

        def status(pid: str) -> str | None:
            doc = store.get_status("acme", pid)
            return None if doc is None else doc.status

        wait_for(lambda: proc.poll() is not None or status("quiet") == "STALLED", 30, "quiet to be STALLED")
        assert proc.poll() is None, _stderr(data_dir, "ingest")
        assert status("done") == "COMPLETED"

        store.enqueue([encode(event(event_type="HEARTBEAT", offset=2, process_id="quiet"))], [5])
        wait_for(lambda: status("quiet") == "RUNNING", 30, "quiet to be RUNNING again", interval=0.005)
        wait_for(lambda: status("quiet") == "STALLED", 30, "quiet to be STALLED again")

        store.enqueue([encode(event(event_type="COMPLETED", offset=3, process_id="quiet"))], [5])
        wait_for(lambda: status("quiet") == "COMPLETED", 30, "quiet to complete")
        doc = store.get_status("acme", "quiet")
        assert doc is not None
        assert (doc.event_count, doc.ended_at) == (3, at(3))
        assert _stop(proc) == 0, _stderr(data_dir, "ingest")
        # once stopped, nothing changes any more: the COMPLETED is final
        assert status("quiet") == "COMPLETED"
        assert status("done") == "COMPLETED"
    finally:
        store.close()


@pytest.mark.slow
def test_no_false_stall_after_downtime(data_dir: Path, procs: list[Any]) -> None:
    """SPEC section 3: a RUNNING process whose fresh HEARTBEAT waits in the queue while Sentinel is down
    for longer than the timeout is not marked STALLED when ingest starts again."""
    db = data_dir / "sentinel.db"
    store = SqliteStore(db)
    store.migrate()
    try:
        proc = _start_ingest(data_dir, procs, "first", SENTINEL_HEARTBEAT_TIMEOUT_SEC="3")
        store.enqueue([encode(event(event_type="STARTED", process_id="steady"))], [5])
        wait_for(lambda: store.get_status("acme", "steady") is not None, 30, "steady to be stored")
        assert _stop(proc) == 0, _stderr(data_dir, "first")
        time.sleep(4)  # down for longer than the timeout
        store.enqueue([encode(event(event_type="HEARTBEAT", offset=4, process_id="steady"))], [5])
        proc = _start_ingest(data_dir, procs, "second", SENTINEL_HEARTBEAT_TIMEOUT_SEC="3")
        wait_for(lambda: proc.poll() is not None or queue_depth(db) == 0, 30, "the heartbeat to be ingested")
        doc = store.get_status("acme", "steady")
        assert doc is not None
        assert (doc.status, doc.event_count) == ("RUNNING", 2)
        assert "marked STALLED" not in _stderr(data_dir, "second")
        assert _stop(proc) == 0, _stderr(data_dir, "second")
    finally:
        store.close()


def test_poison_message_does_not_stop_sentinel_ingest(data_dir: Path, procs: list[Any]) -> None:
    """A message that is not UTF-8 goes to the dead letters; the process keeps consuming."""
    db = data_dir / "sentinel.db"
    store = SqliteStore(db)
    store.migrate()
    try:
        proc = _start_ingest(data_dir, procs, "ingest")
        store.enqueue(
            [
                encode(event(process_id="before")),
                b'{"event_id":"latin1","event_type":"LOG","level":"INFO","message":"caf\xe9","process_id":"p",'
                b'"tenant_id":"acme","timestamp":"2024-05-01T10:00:00Z"}',
                encode(event(process_id="after")),
            ],
            [5, 5, 5],
        )
        wait_for(lambda: proc.poll() is not None or queue_depth(db) == 0, 30, "the queue to drain")
        assert proc.poll() is None, f"sentinel ingest died:\n{_stderr(data_dir, 'ingest')}"
        assert store.get_status("acme", "after") is not None
        assert [d.code for d in store.dead_letters(0, 10)] == ["invalid_json"]
        assert _stop(proc) == 0
    finally:
        store.close()


def test_ingest_refuses_a_bad_setting(data_dir: Path) -> None:
    result = sentinel_cmd("ingest", env=base_env(data_dir, SENTINEL_BATCH_SIZE="0"))
    assert result.returncode == 2
    assert result.stderr.decode().count("\n") == 1
    assert "SENTINEL_BATCH_SIZE" in result.stderr.decode()


# -- a kill during a background checkpoint ---------------------------------------------------------------

# ``sentinel ingest`` with the WAL thresholds made tiny, so its Checkpointer runs after nearly every
# batch, and each checkpoint announced on a pipe: "<" as it starts, ">" when it returns.
_ANNOUNCING_INGEST = """
import os, sys
from sentinel.store import sqlite as sq
from sentinel.cli import main

fd = int(os.environ["CHECKPOINT_FD"])
sq.WAL_KEPT_BYTES = 16 * 1024
sq.WAL_SOFT_BYTES = 64 * 1024

class Announcing(sq.Checkpointer):
    def checkpoint(self):
        os.write(fd, b"<")
        super().checkpoint()
        os.write(fd, b">")

sq.Checkpointer = Announcing
sys.exit(main(["ingest"]))
"""


def _kill_during_checkpoint(data_dir: Path, procs: list[Any], name: str, nth: int) -> bool:
    """Start the announcing ingest, SIGKILL it as its ``nth`` checkpoint starts; True when the
    checkpoint had not returned by then (the kill landed inside it)."""
    read_end, write_end = os.pipe()
    env = base_env(data_dir, SENTINEL_BATCH_SIZE="200", CHECKPOINT_FD=str(write_end))
    with open(data_dir.parent / f"{name}.err", "ab") as err:
        proc = subprocess.Popen(
            [sys.executable, "-c", _ANNOUNCING_INGEST],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=err,
            pass_fds=(write_end,),
        )
    procs.append(proc)
    os.close(write_end)
    with os.fdopen(read_end, "rb", buffering=0) as announcements:
        starts = 0
        while starts < nth:
            mark = announcements.read(1)
            assert mark, f"the ingest ended before its checkpoint {nth}: {_stderr(data_dir, name)}"
            starts += mark == b"<"
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=10) == -signal.SIGKILL
        return announcements.read() == b""


@pytest.mark.slow
def test_sigkill_during_a_background_checkpoint_loses_and_duplicates_nothing(data_dir: Path, procs: list[Any]) -> None:
    env = base_env(data_dir)
    sim = sentinel_cmd("simulate", "-n", "1200", "--seed", "11", "--duplicate-rate", "0.02", "-q", "--stdout", env=env)
    assert sim.returncode == 0, sim.stderr.decode()
    lines = [line for line in sim.stdout.split(b"\n") if line]
    bodies = [json.loads(line) for line in lines]
    valid = {b["event_id"]: b for b in bodies}
    assert len(valid) < len(lines), "the stream should hold duplicates"
    stream = data_dir.parent / "stream.jsonl"
    stream.write_bytes(b"\n".join(lines) + b"\n")
    assert sentinel_cmd("migrate", env=env).returncode == 0
    emitted = sentinel_cmd("emit", str(stream), env=env)
    assert emitted.returncode == 0, emitted.stderr.decode()
    db = data_dir / "sentinel.db"
    total = queue_depth(db)

    inside = [_kill_during_checkpoint(data_dir, procs, f"checkpointing-{n}", nth=4) for n in range(4)]
    assert any(inside), "no kill landed while a checkpoint was running"
    assert 0 < queue_depth(db) < total, "the kills were to land in the middle of the stream"

    final = _start_ingest(data_dir, procs, "final", SENTINEL_BATCH_SIZE="200")
    wait_for(lambda: final.poll() is not None or queue_depth(db) == 0, 120, "the queue to drain")
    assert _stop(final) == 0, _stderr(data_dir, "final")

    conn = read_only(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        dedupe = conn.execute("SELECT tenant_id, event_id FROM dedupe").fetchall()
        assert sorted(dedupe) == sorted({(b["tenant_id"], event_id) for event_id, b in valid.items()})
        logs = conn.execute("SELECT tenant_id, event_id FROM logs").fetchall()
        assert sorted(logs) == sorted(
            {(b["tenant_id"], event_id) for event_id, b in valid.items() if b["event_type"] == "LOG"}
        ), "a log row was lost or written twice"
        events = Counter((b["tenant_id"], b["process_id"]) for b in valid.values())
        stored = dict(conn.execute("SELECT tenant_id || ' ' || process_id, event_count FROM processes").fetchall())
        assert stored == {f"{t} {p}": n for (t, p), n in events.items()}
    finally:
        conn.close()


def test_none_and_bytes_bind_unchanged_through_the_stores_adapters(tmp_path: Path) -> None:
    """sentinel.store.sqlite registers adapters for None and bytes (they skip CPython's slow adapter
    protocol); what is stored must be exactly what was bound, NULL and BLOB, on every connection."""
    assert sqlite3.adapters[(type(None), sqlite3.PrepareProtocol)] is not None
    assert sqlite3.adapters[(bytes, sqlite3.PrepareProtocol)] is bytes
    conn = sqlite3.connect(tmp_path / "adapters.db")
    try:
        conn.execute("CREATE TABLE t (a, b, c)")
        values = [(None, b"", b"\x00\xffjson"), (b"x" * 70_000, None, bytearray(b"ba")), (0, "", memoryview(b"mv"))]
        conn.executemany("INSERT INTO t VALUES (?, ?, ?)", values)
        rows = conn.execute("SELECT a, typeof(a), b, typeof(b), c, typeof(c) FROM t ORDER BY rowid").fetchall()
    finally:
        conn.close()
    assert rows == [
        (None, "null", b"", "blob", b"\x00\xffjson", "blob"),
        (b"x" * 70_000, "blob", None, "null", b"ba", "blob"),
        (0, "integer", "", "text", b"mv", "blob"),
    ]
