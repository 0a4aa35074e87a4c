"""Machine instructions one HTTP request costs inside a worker (interpreter, SQLite, msgspec and all),
counted by callgrind.

Wall-clock figures on a shared two-core machine move by a third from one run to the next; an instruction
count barely moves. This drives the ASGI app in-process on uvloop (no server, no sockets: what a Granian
worker's Python thread runs for the request, less Granian's own part), under ``valgrind --tool=callgrind``,
twice: with WARMUP requests and with WARMUP + N. The difference divided by N is the cost of one request,
start-up excluded. Hash randomisation is fixed and the periodic metrics flush is left out (it runs by the
clock, which valgrind slows), so repeated runs agree to within a few hundred instructions.

    python bench/request_cost.py [--requests 2000] [--path status|processes|health]

Needs valgrind (Debian package ``valgrind``). GET /status cycles through 2,000 simulated processes, so
routing caches miss as they would under real traffic.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # also under PYTHONSAFEPATH=1
from http_load import prepare

WARMUP = 500


def drive(data: Path, path: str, requests: int) -> None:
    """Lifespan start-up, then ``requests`` GETs through the app, then exit without tear-down."""
    import uvloop

    from sentinel.api.app import create_app
    from sentinel.security import DevAuthority
    from sentinel.telemetry.metrics import HttpRecorder

    HttpRecorder.FLUSH_SEC = 1e9  # counted in the request instead would depend on valgrind's speed

    token = DevAuthority(data).mint("acme", roles=["sentinel-ingest"], ttl_seconds=3600).encode()
    ids = (data / "ids.txt").read_text().split()
    app = create_app()

    async def call(target: str) -> None:
        scope: dict[str, Any] = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": target,
            "raw_path": target.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": [(b"host", b"127.0.0.1"), (b"authorization", b"Bearer " + token)],
            "client": ("127.0.0.1", 40000),
            "server": ("127.0.0.1", 8080),
            "state": {},
        }

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start" and message["status"] != 200:
                raise SystemExit(f"{target} answered {message['status']}")

        await app(scope, receive, send)  # type: ignore[arg-type]

    async def main() -> None:
        startup: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        await startup.put({"type": "lifespan.startup"})
        started = asyncio.Event()

        async def lifespan_send(message: dict[str, Any]) -> None:
            if message["type"] == "lifespan.startup.complete":
                started.set()

        lifespan = asyncio.create_task(app({"type": "lifespan", "state": {}}, startup.get, lifespan_send))  # type: ignore[arg-type]
        await started.wait()
        for i in range(requests):
            await call(f"/status/{ids[i % len(ids)]}" if path == "status" else f"/{path}")
        if lifespan.done():
            raise SystemExit(f"the app's lifespan ended during the run: {lifespan.exception()!r}")
        os._exit(0)  # the count ends here: no tear-down, no interpreter shutdown

    uvloop.install()
    asyncio.run(main())


def clean_env() -> dict[str, str]:
    """This environment without settings that would change what is measured (another backend, tracing)."""
    own = ("SENTINEL_", "OAUTH2_", "ORACLE_", "OTEL_", "PROMETHEUS_")
    return {key: value for key, value in os.environ.items() if not key.startswith(own)}


def count(data: Path, path: str, requests: int) -> int:
    env = {**clean_env(), "SENTINEL_DATA_DIR": str(data), "SENTINEL_DEV_MODE": "1", "PYTHONHASHSEED": "0"}
    env["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="sentinel-cost-metrics-")
    command = [sys.executable, __file__, "--drive", str(data), "--path", path, "--requests", str(requests)]
    out = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", *command],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    shutil.rmtree(env["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)
    found = re.search(r"Collected : (\d+)", out.stderr)
    if found is None:
        raise RuntimeError(f"no instruction count in callgrind's output:\n{out.stderr[-2000:]}")
    return int(found.group(1))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--path", choices=["status", "processes", "health"], default="status")
    parser.add_argument("--drive", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.drive is not None:
        drive(args.drive, args.path, args.requests)
        return 0
    if shutil.which("valgrind") is None:
        print("valgrind is needed: apt-get install valgrind", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="sentinel-cost-"))
    try:
        data = work / "data"
        ids = prepare(data, 2000, {**clean_env(), "SENTINEL_DATA_DIR": str(data)})
        (data / "ids.txt").write_text("\n".join(ids) + "\n")
        before = count(data, args.path, WARMUP)
        after = count(data, args.path, WARMUP + args.requests)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"GET /{args.path}: {(after - before) / args.requests:,.0f} instructions a request (callgrind)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
