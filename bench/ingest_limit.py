"""Ingest throughput on the embedded store against the raw log-row limit, measured in one run (issue 15).

For each case (an empty dedupe table, then one prefilled with ``--prefill`` keys: a service that has run
for a while), on a fresh copy of the same database file:

- pipeline: the messages wait in the queue table and the real ``IngestWorker`` drains them (dequeue,
  decode, dedupe, logs, statuses, alert hook, one transaction per batch), as ``sentinel ingest`` runs it;
  timed from start to the commit of the last batch.
- raw log-row limit: the LOG events' rows alone, prebuilt before the clock starts, inserted with plain
  ``executemany`` in transactions of ``--batch`` rows into the same schema and indexes, WAL,
  synchronous=NORMAL, SQLite's default checkpointing. What the disk and SQLite can take for the rows the
  service exists to store.

The ratio pipeline/raw is what the issue's goal is stated in (>= 0.5 empty, >= 0.4 prefilled). Both sides
run in the same process one after the other, so a loaded machine slows both alike.

    python bench/ingest_limit.py [--processes 2000] [--prefill 200000] [--batch 1000] [--rounds 1]
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sqlite3
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import msgspec

from sentinel import _core
from sentinel.alerts.service import install_status_hook
from sentinel.config import Settings, load_settings
from sentinel.ingest.worker import IngestWorker, now_us
from sentinel.simulate import SimulationConfig, generate, priority_of
from sentinel.store import sqlite as sq

TENANTS = ("acme",)


def payloads_for(processes: int) -> list[bytes]:
    """The issue's mix: about nine events in ten are logs."""
    cfg = SimulationConfig(
        processes=processes,
        tenants=TENANTS,
        logs_per_step=(15, 25),
        seed=20261130,
        duplicate_rate=0.0,
        late_rate=0.02,
        concurrency=200,
    )
    return list(generate(cfg))


def template(path: Path, prefill: int) -> Path:
    """A migrated database whose dedupe table already holds ``prefill`` keys of other events: random
    ids (as foreign producers send), seen within the retention window so no purge removes them."""
    store = sq.SqliteStore(path)
    store.migrate()
    store.close()
    if prefill:
        conn = sq._connect(path, synchronous="OFF")
        seen = now_us() - 3_600_000_000
        conn.execute("BEGIN")
        conn.executemany(
            sq.INSERT_DEDUPE,
            ((TENANTS[i % len(TENANTS)], str(uuid.uuid4()), seen + i) for i in range(prefill)),
        )
        conn.execute("COMMIT")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.close()
    return path


def copy_db(source: Path, target: Path) -> Path:
    shutil.copyfile(source, target)
    return target


def run_pipeline(db: Path, payloads: list[bytes], batch: int) -> float:
    store = sq.SqliteStore(db)
    for i in range(0, len(payloads), 5000):
        chunk = payloads[i : i + 5000]
        store.enqueue(chunk, [priority_of(p) for p in chunk])
    settings = load_settings(
        {"SENTINEL_DATA_DIR": str(db.parent), "SENTINEL_BATCH_SIZE": str(batch), "SENTINEL_FLUSH_INTERVAL_MS": "5"}
    )
    install_status_hook(store, settings)  # baselines and the alert outbox, as `sentinel ingest` runs them
    elapsed = drain(store, settings, len(payloads))
    stored = store._read("SELECT COUNT(*) FROM logs")[0][0]
    store.close()
    expected = sum(1 for p in payloads if msgspec.json.decode(p)["event_type"] == "LOG")
    if stored != expected:
        raise SystemExit(f"pipeline stored {stored} log rows, expected {expected}")
    return elapsed


def drain(store: sq.SqliteStore, settings: Settings, count: int) -> float:
    """Seconds the real ``IngestWorker`` takes to commit ``count`` queued messages."""
    worker = IngestWorker(store, settings)
    thread = threading.Thread(target=worker.run)
    started = time.monotonic()
    thread.start()
    # Polled slowly so the bench takes no GIL time from the worker; the end is the worker's own record
    # of when its last batch committed.
    while worker.messages_done < count and thread.is_alive():
        time.sleep(0.02)
    elapsed = worker.last_batch_at - started
    worker.stop()
    thread.join()
    if worker.messages_done < count:
        raise SystemExit(f"the worker stopped after {worker.messages_done} of {count} messages")
    return elapsed


def log_rows(payloads: list[bytes]) -> list[list[Any]]:
    events, rejects = _core.decode_batch(payloads)
    assert not rejects
    built = _core.BatchBuilder(retain=len(events) + 1).build(events, (), now_us())
    return [list(row) for row in built.log_rows]


def run_raw(db: Path, rows: list[list[Any]], batch: int) -> float:
    conn = sq._connect(db, synchronous="NORMAL")
    started = time.perf_counter()
    for i in range(0, len(rows), batch):
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(sq.INSERT_LOGS, rows[i : i + batch])
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - started
    (count,) = conn.execute("SELECT COUNT(*) FROM logs").fetchone()
    conn.close()
    if count != len(rows):
        raise SystemExit(f"raw stored {count} log rows, expected {len(rows)}")
    return elapsed


def case(name: str, base: Path, work: Path, payloads: list[bytes], rows: list[list[Any]], args: Any) -> float:
    best_pipeline = best_raw = float("inf")
    for round_ in range(args.rounds):
        raw_db = copy_db(base, work / f"{name}-raw-{round_}.db")
        best_raw = min(best_raw, run_raw(raw_db, rows, args.batch))
        pipe_db = copy_db(base, work / f"{name}-pipe-{round_}.db")
        best_pipeline = min(best_pipeline, run_pipeline(pipe_db, payloads, args.batch))
        for path in work.glob(f"{name}-*-{round_}.db*"):
            path.unlink()
    eps = len(payloads) / best_pipeline
    raw = len(rows) / best_raw
    print(
        f"{name:<22} pipeline {eps:>9,.0f} events/s   raw log rows {raw:>9,.0f} rows/s   ratio {eps / raw:.2f}",
        flush=True,
    )
    return eps / raw


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--processes", type=int, default=2000, help="simulated processes (~100 events each)")
    parser.add_argument("--prefill", type=int, default=200_000, help="dedupe keys stored before the second case")
    parser.add_argument("--batch", type=int, default=1000, help="ingest batch size and raw executemany batch")
    parser.add_argument("--rounds", type=int, default=1, help="rounds per case; the best is reported")
    parser.add_argument("--dir", type=Path, default=None, help="scratch directory (default: a temporary one)")
    args = parser.parse_args()
    for flag in ("processes", "batch", "rounds"):
        if getattr(args, flag) < 1:
            parser.error(f"--{flag} must be at least 1")
    if args.prefill < 0:
        parser.error("--prefill must not be negative")
    logging.basicConfig(level=logging.WARNING)

    payloads = payloads_for(args.processes)
    logs = sum(1 for p in payloads if msgspec.json.decode(p)["event_type"] == "LOG")
    rows = log_rows([p for p in payloads if msgspec.json.decode(p)["event_type"] == "LOG"])
    print(
        f"{len(payloads):,} events ({logs:,} logs), batch {args.batch}, core={_core.IMPLEMENTATION}, "
        f"sqlite {sqlite3.sqlite_version}, {os.cpu_count()} cpus",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="sentinel-ingest-bench-", dir=args.dir) as scratch:
        work = Path(scratch)
        empty = template(work / "empty.db", 0)
        case("empty dedupe", empty, work, payloads, rows, args)
        if args.prefill:
            started = time.perf_counter()
            full = template(work / "prefilled.db", args.prefill)
            print(f"(prefilled {args.prefill:,} dedupe keys in {time.perf_counter() - started:.0f}s)", flush=True)
            case(f"{args.prefill:,} dedupe keys", full, work, payloads, rows, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
