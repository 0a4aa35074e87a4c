"""End to end: queue -> core -> SQLite, against the raw limit of the same store.

In one run, on fresh databases with the same messages:
- pipeline: messages waiting in the queue table, drained by the real ``IngestWorker`` (dequeue, decode,
  dedupe lookup, build, one transaction per batch);
- raw limit: the same statements the writer must run for those messages (queue delete, dedupe, log
  inserts, status upserts, commit per batch) with rows prebuilt before the clock starts: no decoding,
  no reading, no dedupe lookup. What any correct pipeline on this store has to pay at least.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import msgspec
import pytest
from conftest import record_ratio
from httpbench import measure
from ingest_limit import drain, enqueue_all, payloads_for, status_p99

from sentinel import _core
from sentinel.alerts.service import install_status_hook
from sentinel.config import load_settings
from sentinel.ingest.worker import now_us
from sentinel.simulate import judge
from sentinel.store import sqlite as sq

BATCH = 1000


def fresh_store(path: Path, payloads: list[bytes]) -> sq.SqliteStore:
    store = sq.SqliteStore(path)
    store.migrate()
    enqueue_all(store, payloads)
    return store


def run_pipeline(tmp: Path, payloads: list[bytes]) -> float:
    store = fresh_store(tmp / "pipeline.db", payloads)
    settings = load_settings(
        {"SENTINEL_DATA_DIR": str(tmp), "SENTINEL_BATCH_SIZE": str(BATCH), "SENTINEL_FLUSH_INTERVAL_MS": "5"}
    )
    if os.environ.get("SENTINEL_BENCH_STATUS_HOOK", "1") != "0":
        install_status_hook(store, settings)  # baselines and the alert outbox, as `sentinel ingest` runs them
    elapsed = drain(store, settings, len(payloads))
    stored = store._read("SELECT COUNT(*) FROM dedupe")[0][0]
    store.close()
    assert stored == len({msgspec.json.decode(p)["event_id"] for p in payloads})
    return elapsed


def prebuilt_rows(store: sq.SqliteStore, payloads: list[bytes]) -> list[tuple[Any, ...]]:
    ids = [row[0] for row in store._read("SELECT msg_id FROM queue ORDER BY priority, msg_id")]
    batches = []
    builder = _core.BatchBuilder()
    for i in range(0, len(ids), BATCH):
        chunk_ids = ids[i : i + BATCH]
        rows = store._read(
            "SELECT payload FROM queue WHERE msg_id IN (SELECT value FROM json_each(?)) ORDER BY priority, msg_id",
            (msgspec.json.encode(chunk_ids),),
        )
        events, _ = _core.decode_batch([row[0] for row in rows])
        batch = builder.build(events, (), now_us())
        batches.append(
            (
                msgspec.json.encode(chunk_ids),
                [list(r) for r in batch.dedupe_rows],
                [list(r) for r in batch.log_rows],
                [list(r) for r in batch.status_rows],
            )
        )
    return batches


def run_raw(tmp: Path, payloads: list[bytes]) -> float:
    store = fresh_store(tmp / "raw.db", payloads)
    batches = prebuilt_rows(store, payloads)
    conn = sq._connect(store.path, synchronous="NORMAL")
    started = time.perf_counter()
    for ids, dedupe, logs, statuses in batches:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(sq.DELETE_MESSAGES, (ids,))
        conn.executemany(sq.INSERT_DEDUPE, dedupe)
        conn.executemany(sq.INSERT_LOGS, logs)
        conn.executemany(sq.UPSERT_STATUS, statuses)
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - started
    conn.close()
    store.close()
    return elapsed


def test_pipeline_against_raw_store_limit(tmp_path: Path, payloads: list[bytes], benchmark: Any) -> None:
    benchmark.group = "ingest end to end"
    rounds = 3
    pipeline = raw = float("inf")
    for round_ in range(rounds):
        here = tmp_path / f"r{round_}"
        here.mkdir()
        raw = min(raw, run_raw(here, payloads))
        pipeline = min(pipeline, run_pipeline(here, payloads))
    n = len(payloads)
    benchmark.extra_info.update(events=n, pipeline_eps=n / pipeline, raw_eps=n / raw)
    benchmark.pedantic(lambda: None, rounds=1)
    ratio = raw / pipeline
    print(
        f"\npipeline {n / pipeline:,.0f} events/s   raw store limit {n / raw:,.0f} events/s   "
        f"pipeline/raw {ratio:.1%}  (best of {rounds}, core={_core.IMPLEMENTATION})"
    )
    record_ratio(
        "ingest: pipeline / raw store limit (same rows)",
        ratio,
        f"(pipeline {n / pipeline:,.0f} ev/s, raw {n / raw:,.0f} ev/s, {_core.IMPLEMENTATION} core)",
    )


def test_backlog_is_exactly_as_many_new_valid_events_as_asked() -> None:
    for count in (1, 999, 4321):
        backlog = payloads_for(count, limit=count)
        assert len(backlog) == count
        assert len({msgspec.json.decode(p)["event_id"] for p in backlog}) == count
        assert judge(backlog)[1] == []
    # Seeded, yet new event ids on every call: none of a backlog is a duplicate the ingest would skip.
    first, second = ({msgspec.json.decode(p)["event_id"] for p in payloads_for(50, limit=500)} for _ in range(2))
    assert len(first) == len(second) == 500
    assert not first & second


def test_status_p99_without_wrk_says_so_in_one_line_and_starts_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    status_p99(tmp_path, processes=10, backlog=100, duration=1)
    out = capsys.readouterr().out
    assert out == "status p99: not measured, wrk is not installed (apt-get install wrk)\n"
    assert list(tmp_path.iterdir()) == []


class _Ok(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def ok_server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Ok)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed")
def test_wrk_stopped_early_reports_the_time_it_ran(ok_server: str) -> None:
    """What the status p99 under ingest relies on to close its window when the queue empties."""
    opened = time.monotonic()
    result = measure(ok_server, "", connections=2, duration=120, stop_when=lambda: time.monotonic() - opened > 1)
    assert time.monotonic() - opened < 60
    assert result["requests"] > 0
    assert result["non2xx"] == 0
    assert 1e6 <= result["duration_us"] < 60e6
    assert result["rps"] == pytest.approx(result["requests"] / (result["duration_us"] / 1e6))
    assert 0 < result["p50_us"] <= result["p99_us"]


@pytest.fixture(autouse=True)
def _quiet_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("WARNING")
