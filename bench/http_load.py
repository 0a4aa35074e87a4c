"""HTTP load: Sentinel against a FastAPI/uvicorn baseline of the same endpoints, tokens on.

One run prepares an embedded database with realistic data, then drives, on each server in turn (never
both at once), ``GET /status/{id}`` (random ids), ``GET /processes`` and ``POST /events`` (100 events a
request, every event new) with wrk at a fixed connection count, and prints requests/s, p50 and p99
latency for each, and Sentinel/baseline ratios. Each server gets its own copy of the same database.
The measurement is repeated in rounds, each on freshly started servers over a fresh copy of the data;
the summary gives medians and the worst p99, so one lucky (or unlucky) round cannot decide the result.
Within a round POST /events comes last, so the ingest of what it accepts never overlaps the reads.

    python bench/http_load.py [--connections 64] [--duration 10] [--workers 2] [--processes 2000] [--rounds 3]
                              [--only status|processes|events ...]

Needs wrk (Debian package ``wrk``). Everything listens on 127.0.0.1 only and stops by itself.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from httpbench import (
    REPO,
    THREAD_INDEX_LUA,
    clean_env,
    dev_token,
    prepare,
    run_wrk,
    sentinel_serve,
    server,
    status_script,
)

PLAIN_LUA = """
wrk.headers["Authorization"] = "Bearer %(token)s"
"""
EVENTS_LUA = (
    THREAD_INDEX_LUA
    + """
local counter = 0
local stamp = "%(stamp)s"
wrk.method = "POST"
wrk.headers["Authorization"] = "Bearer %(token)s"
wrk.headers["Content-Type"] = "application/json"
request = function()
  counter = counter + 1
  local parts = {}
  for i = 1, 100 do
    parts[i] = string.format(
      '{"event_id":"@NONCE@-%%d-%%d-%%d","event_type":"LOG","process_id":"load-%%d","timestamp":"%%s",' ..
      '"level":"INFO","message":"load test line %%d","component":"bench"}',
      index, counter, i, counter %% 500, stamp, i)
  end
  return wrk.format(nil, nil, nil, "[" .. table.concat(parts, ",") .. "]")
end
"""
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--processes", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3, help="fresh server starts per endpoint (medians reported)")
    parser.add_argument(
        "--only",
        action="append",
        choices=["status", "processes", "events"],
        help="measure only these endpoints (repeatable); all three by default",
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is needed: apt-get install wrk", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="sentinel-http-bench-"))
    base_env = clean_env()
    prepared, sdata, bdata = work / "prepared", work / "sentinel-data", work / "baseline-data"
    print(f"preparing {args.processes} processes ...", flush=True)
    ids = prepare(prepared, args.processes, {**base_env, "SENTINEL_DATA_DIR": str(prepared)})

    from sentinel.security import DevAuthority

    token = dev_token(prepared)  # its key is copied with the data, so the token holds every round
    public_pem = work / "public.pem"
    key = serialization.load_pem_private_key(DevAuthority(prepared).key_path.read_bytes(), password=None)
    public_pem.write_bytes(
        key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    scripts = {
        "GET /status/{id}": ("/status/x", status_script(ids, token, work)),
        "GET /processes": ("/processes?limit=50", PLAIN_LUA % {"token": token}),
        "POST /events (100/request)": ("/events", EVENTS_LUA % {"token": token, "stamp": stamp}),
    }
    if args.only:
        wanted = {"status": "GET /status/{id}", "processes": "GET /processes", "events": "POST /events (100/request)"}
        scripts = {label: scripts[label] for label in (wanted[name] for name in args.only)}
    results: dict[str, dict[str, list[dict[str, float]]]] = {}
    servers = {
        "sentinel": (sentinel_serve(args.workers), {**base_env, "SENTINEL_DATA_DIR": str(sdata)}, "/ready"),
        "baseline": (
            [
                sys.executable,
                "-m",
                "uvicorn",
                "bench.baseline.app:app",
                "--host",
                "127.0.0.1",
                "--workers",
                str(args.workers),
                "--log-level",
                "warning",
                "--port",
            ],
            {
                **base_env,
                "BASELINE_DB": str(bdata / "sentinel.db"),
                "BASELINE_PUBLIC_KEY": str(public_pem),
                "PYTHONPATH": str(REPO),
            },
            "/docs",
        ),
    }
    for round_no in range(1, args.rounds + 1):
        # Each round starts each server afresh on a fresh copy of the prepared data: how its workers
        # happen to share the connections is part of what a round measures, so it is drawn again; what
        # earlier rounds posted (a growing log table, an ingest backlog) is not.
        for name, (command, server_env, ready_path) in servers.items():
            data = sdata if name == "sentinel" else bdata
            shutil.rmtree(data, ignore_errors=True)
            shutil.copytree(prepared, data)
            cwd = REPO if name == "baseline" else work
            with server(command, server_env, cwd, ready_path, work / f"{name}.log") as base_url:
                for label, (path, script) in scripts.items():
                    result = run_wrk(base_url + path, script, args.connections, args.duration)
                    results.setdefault(label, {}).setdefault(name, []).append(result)
                    print(
                        f"round {round_no}  {name:9} {label:28} {result['rps']:9.0f} req/s  "
                        f"p50 {result['p50_us'] / 1000:7.2f} ms  p99 {result['p99_us'] / 1000:7.2f} ms  "
                        f"non-2xx {result['non2xx']}  socket errors {result['socket_errors']}",
                        flush=True,
                    )
    print(
        f"\n{args.connections} connections, {args.duration}s per endpoint, {args.workers} workers each, wrk -t2; "
        f"median of {args.rounds} round(s), worst in brackets"
    )
    print(
        f"{'endpoint':28} {'sentinel/baseline req/s':>24} {'sentinel p99':>22} {'baseline p99':>22} "
        f"{'events/s accepted':>18}"
    )
    for label, by in results.items():
        s_rps = statistics.median(r["rps"] for r in by["sentinel"])
        b_rps = statistics.median(r["rps"] for r in by["baseline"])
        s_p99 = [r["p99_us"] / 1000 for r in by["sentinel"]]
        b_p99 = [r["p99_us"] / 1000 for r in by["baseline"]]
        events = f"{s_rps * 100:,.0f}" if label.startswith("POST") else ""
        print(
            f"{label:28} {s_rps / b_rps:23.2f}x "
            f"{statistics.median(s_p99):9.2f}ms ({max(s_p99):7.2f}ms) "
            f"{statistics.median(b_p99):9.2f}ms ({max(b_p99):7.2f}ms) {events:>18}"
        )
    threading.Thread(target=shutil.rmtree, args=(work,), kwargs={"ignore_errors": True}).start()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
