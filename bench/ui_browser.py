"""The dashboard in chromium with 50,000 processes in the tenant and 100 status changes a second.

Starts ``sentinel serve --dev`` on a fresh data directory, posts ``--processes`` STARTED events, opens
the processes page in headless chromium (``/usr/bin/chromium``) and, while ``--rate`` PROGRESS events a
second arrive over ``POST /events`` for ``--seconds``, records: the time to the first 50 rows, the main
thread's long tasks (over 50 ms), the time from a click on a status count to its rows, how many rows
the live feed moved, and how many streams the page opened.

    python bench/ui_browser.py [--processes 50000] [--rate 100] [--seconds 20]
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
from playwright.sync_api import sync_playwright

from sentinel.security import DevAuthority

CHROMIUM_ARGS = ["--disable-background-networking", "--disable-component-update", "--no-sandbox"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--processes", type=int, default=50_000)
    parser.add_argument("--rate", type=int, default=100, help="PROGRESS events a second during the run")
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        port = free_port()
        env = {**os.environ, "SENTINEL_DATA_DIR": str(data), "NO_PROXY": "127.0.0.1"}
        server = subprocess.Popen(
            [sys.executable, "-m", "sentinel", "serve", "--dev", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            http = httpx.Client(base_url=base, trust_env=False, timeout=60)
            deadline = time.monotonic() + 60
            while True:
                try:
                    if http.get("/ready").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise SystemExit("server did not become ready")
                time.sleep(0.2)
            token = DevAuthority(data).mint("big", ["sentinel-ingest"])
            http.headers["Authorization"] = f"Bearer {token}"
            started = time.perf_counter()
            for first in range(0, args.processes, 5000):
                batch = [
                    {
                        "event_id": f"s-{i}",
                        "event_type": "STARTED",
                        "process_id": f"big-{i:07d}",
                        "timestamp": now(),
                        "process_name": f"job_{i % 500:03d}",
                        "process_type": ("ETL", "SYNC", "REPORT")[i % 3],
                    }
                    for i in range(first, min(first + 5000, args.processes))
                ]
                assert http.post("/events", json=batch).status_code == 202
            last = f"big-{args.processes - 1:07d}"
            while http.get(f"/status/{last}").status_code != 200:
                time.sleep(0.2)
            print(f"{args.processes:,} processes stored in {time.perf_counter() - started:.1f} s")

            stop = threading.Event()
            sent = [0]

            def produce() -> None:
                tick = 0
                while not stop.is_set():
                    begun = time.monotonic()
                    events = []
                    for _ in range(max(1, args.rate // 10)):
                        tick += 1
                        events.append(
                            {
                                "event_id": f"p-{tick}",
                                "event_type": "PROGRESS",
                                "process_id": f"big-{args.processes - 1 - (tick % 40):07d}",
                                "timestamp": now(),
                                "percent": tick % 100,
                                "step": f"step {tick % 7}",
                            }
                        )
                    http.post("/events", json=events)
                    sent[0] += len(events)
                    time.sleep(max(0.0, 0.1 - (time.monotonic() - begun)))

            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS
                )
                page = browser.new_page(viewport={"width": 1440, "height": 900})
                requests: list[str] = []
                page.on("request", lambda r: requests.append(r.url))
                page.add_init_script(
                    "window.__long = []; new PerformanceObserver(l => l.getEntries().forEach(e => "
                    "window.__long.push([e.startTime, e.duration]))).observe({type: 'longtask', buffered: true});"
                )
                page.goto(base + "/ui")
                page.fill("#dev-tenant", "big")
                opened = time.perf_counter()
                page.click("#dev-sign-in")
                page.wait_for_function(
                    "() => document.querySelectorAll('tbody tr[data-id]').length === 50", timeout=60000
                )
                first_rows = (time.perf_counter() - opened) * 1000
                page.wait_for_selector(".live.on", timeout=60000)
                page.evaluate(
                    "window.__moved = 0; new MutationObserver(m => window.__moved += m.length)"
                    ".observe(document.querySelector('tbody'), {childList: true, subtree: true})"
                )
                producer = threading.Thread(target=produce, daemon=True)
                producer.start()
                steady = page.evaluate("performance.now()")
                clicks = []
                end = time.monotonic() + args.seconds
                while time.monotonic() < end:
                    page.wait_for_timeout(2000)
                    # FAILED has no rows here (an empty table), ALL has 50: each click is a full reload.
                    for status, ready in (("FAILED", "td.empty"), ("ALL", "tbody tr[data-id]")):
                        took = page.evaluate(
                            """([status, ready]) => new Promise(done => {
                                const t0 = performance.now();
                                document.querySelector(`button.count.s-${status}`).click();
                                const check = () => document.querySelector(ready)
                                    ? done(performance.now() - t0) : requestAnimationFrame(check);
                                requestAnimationFrame(check);
                            })""",
                            [status, ready],
                        )
                        clicks.append(took)
                stop.set()
                producer.join()
                long_tasks = [d for start, d in page.evaluate("window.__long") if start >= steady]
                before = [d for start, d in page.evaluate("window.__long") if start < steady]
                moved = page.evaluate("window.__moved")
                streams = sum("/ui/api/processes/live" in url for url in requests)
                browser.close()
            clicks.sort()
            print(f"first 50 rows after sign-in: {first_rows:.0f} ms")
            print(f"{sent[0]} PROGRESS events over {args.seconds:.0f} s ({sent[0] / args.seconds:.0f}/s)")
            print(
                f"long tasks (>50 ms) while updates arrive: {len(long_tasks)}, total {sum(long_tasks):.0f} ms,"
                f" longest {max(long_tasks, default=0):.0f} ms"
                f" (before: {len(before)}, longest {max(before, default=0):.0f} ms)"
            )
            median, worst = clicks[len(clicks) // 2], clicks[-1]
            print(f"click on a status count -> its rows shown: median {median:.0f} ms, max {worst:.0f} ms")
            print(f"table mutations from the live feed: {moved}")
            print(f"live streams opened by the page: {streams} (one per filter change: {len(clicks)} clicks)")
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(60)


if __name__ == "__main__":
    main()
