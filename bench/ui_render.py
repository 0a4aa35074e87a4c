"""Server time of the dashboard's processes page with 50,000 processes in the tenant (``make bench-ui``).

Builds a SQLite store with ``--processes`` rows for one tenant (and as many for another, so the tenant
filter has work to do), then times, in-process through the real app (the ASGI stack without sockets):
the page shell, the first page of 50 rows (``GET /processes``), a status-filtered page, a searched page,
the counts, and one look of the live feed (what each open page costs the server every 0.5 s), while a
thread writes ``--updates`` status changes a second the way the ingest does.

    python bench/ui_render.py [--processes 50000] [--updates 100] [--rounds 40]
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import tempfile
import threading
import time
from pathlib import Path

from litestar.testing import TestClient

from sentinel.api.app import create_app
from sentinel.config import load_settings
from sentinel.security import DevAuthority
from sentinel.store.base import ProcessQuery
from sentinel.store.sqlite import SqliteStore, begin_immediate
from sentinel.ui.feeds import FEED_OVERLAP_US

STATUSES = ("RUNNING", "RUNNING", "COMPLETED", "COMPLETED", "COMPLETED", "FAILED", "STALLED", "CANCELLED")


def fill(store: SqliteStore, tenant: str, count: int) -> None:
    now = time.time_ns() // 1000
    rows = []
    for i in range(count):
        seen = now - (count - i) * 1_000_000
        status = STATUSES[i % len(STATUSES)]
        rows.append(
            (
                tenant,
                f"{tenant}-{i:07d}",
                status,
                seen - 600_000_000,
                f"job_{i % 500:03d}",
                ("ETL", "SYNC", "REPORT")[i % 3],
                f"PKG_{i % 20:02d}",
                "step",
                (i % 100) * 1.0,
                seen,
                seen,
                seen,
            )
        )
    conn = store._conn()
    begin_immediate(conn)
    conn.executemany(
        "INSERT INTO processes (tenant_id, process_id, status, started_at, process_name, process_type, package_name,"
        " current_step, progress_percent, percent_at, last_seen_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
        rows,
    )
    conn.commit()


def writer(path: Path, tenant: str, count: int, per_second: int, stop: threading.Event) -> None:
    """``per_second`` processes of the tenant move on a second, as the ingest's upserts would move them."""
    store = SqliteStore(path)
    conn = store._conn()
    i = 0
    while not stop.is_set():
        started = time.monotonic()
        now = time.time_ns() // 1000
        begin_immediate(conn)
        for _ in range(per_second // 10):
            i += 1
            conn.execute(
                "UPDATE processes SET progress_percent = ?, last_seen_at = ?, updated_at = ?"
                " WHERE tenant_id = ? AND process_id = ?",
                (i % 100, now, now, tenant, f"{tenant}-{count - 1 - (i % 5000):07d}"),
            )
        conn.commit()
        time.sleep(max(0.0, 0.1 - (time.monotonic() - started)))
    store.close()


def timed(label: str, rounds: int, call: object) -> None:
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        call()  # type: ignore[operator]
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    p95 = samples[max(0, int(len(samples) * 0.95) - 1)]
    print(f"{label:<46} median {statistics.median(samples):7.2f} ms   p95 {p95:7.2f} ms   max {samples[-1]:7.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--processes", type=int, default=50_000)
    parser.add_argument("--updates", type=int, default=100, help="status changes a second during the timing")
    parser.add_argument("--rounds", type=int, default=40)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        settings = load_settings({"SENTINEL_DATA_DIR": str(data)}, dev_mode=True)
        store = SqliteStore(settings.sqlite_path)
        store.migrate()
        started = time.perf_counter()
        fill(store, "big", args.processes)
        fill(store, "other", args.processes)
        print(f"filled {2 * args.processes:,} processes in {time.perf_counter() - started:.1f} s")
        token = DevAuthority(data).mint("big", ())
        stop = threading.Event()
        thread = threading.Thread(
            target=writer, args=(settings.sqlite_path, "big", args.processes, args.updates, stop), daemon=True
        )
        app = create_app(settings)
        with TestClient(app) as client:
            client.headers["Authorization"] = f"Bearer {token}"
            assert client.get("/processes?limit=50").status_code == 200  # warm: token cache, statements
            thread.start()
            try:

                def page(query: str) -> object:
                    def call() -> None:
                        answer = client.get(query)
                        assert answer.status_code == 200, answer.text

                    return call

                timed("GET /ui (the page shell)", args.rounds, page("/ui"))
                timed("GET /processes?limit=50 (first page)", args.rounds, page("/processes?limit=50"))
                timed("GET /processes?status=FAILED&limit=50", args.rounds, page("/processes?status=FAILED&limit=50"))
                timed("GET /processes?q=job_42&limit=50 (search)", args.rounds, page("/processes?q=job_42&limit=50"))
                timed("GET /ui/api/counts (counts by status)", args.rounds, page("/ui/api/counts"))
                query = ProcessQuery()

                def look() -> None:
                    since = time.time_ns() // 1000 - FEED_OVERLAP_US
                    store.list_processes("big", dataclasses.replace(query, updated_since=since, limit=501))

                timed("live feed: one look (what changed, 2 s back)", args.rounds, look)
                timed("live feed: one recount", args.rounds, lambda: store.count_processes("big", query))
            finally:
                stop.set()
                thread.join()
        store.close()


if __name__ == "__main__":
    main()
