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
import json
import os
import secrets
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from cryptography.hazmat.primitives import serialization

REPO = Path(__file__).resolve().parent.parent

# Each wrk run gets its own @SEED@ and @NONCE@ (see run_wrk): wrk never seeds Lua's generator, so without
# them every run would draw the same ids and post the same event ids as the run before.
THREAD_INDEX_LUA = """
local threads = 0
setup = function(thread)
  threads = threads + 1
  thread:set("index", threads)
end
"""
STATUS_LUA = (
    THREAD_INDEX_LUA
    + """
-- A pool of requests for random ids, built once per thread: formatting a request on every call would
-- make the load generator, which shares the machine's two cores, the busiest process.
local pool = {}
local next_request = 0
init = function(args)
  math.randomseed(@SEED@ + index)
  local ids = {}
  for line in io.lines("%(ids)s") do ids[#ids + 1] = line end
  wrk.headers["Authorization"] = "Bearer %(token)s"
  for i = 1, 4096 do
    pool[i] = wrk.format("GET", "/status/" .. ids[math.random(#ids)])
  end
end
request = function()
  next_request = next_request %% #pool + 1
  return pool[next_request]
end
"""
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
REPORT_LUA = """
done = function(summary, latency, requests)
  io.write(string.format('RESULT {"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, ' ..
    '"non2xx": %d, "socket_errors": %d}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    summary.errors.status, summary.errors.connect + summary.errors.read + summary.errors.write +
    summary.errors.timeout))
end
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} not ready in {timeout}s")


def sentinel(*args: str, env: dict[str, str]) -> None:
    subprocess.run([sys.executable, "-m", "sentinel", *args], env=env, check=True, cwd=tempfile.gettempdir())


def wait_drained(db_path: Path, timeout: float = 600.0) -> None:
    """Until the ingest has consumed the queue."""
    deadline = time.monotonic() + timeout
    db = sqlite3.connect(db_path, timeout=30)
    try:
        while db.execute("SELECT COUNT(*) FROM queue").fetchone()[0]:
            if time.monotonic() > deadline:
                raise RuntimeError(f"queue of {db_path} not drained in {timeout}s")
            time.sleep(0.2)
    finally:
        db.close()


def prepare(data: Path, processes: int, env: dict[str, str]) -> list[str]:
    sentinel("migrate", env=env)
    sentinel("simulate", "-n", str(processes), "--seed", "11", "--quiet", env=env)
    ingest = subprocess.Popen([sys.executable, "-m", "sentinel", "ingest"], env=env, cwd=tempfile.gettempdir())
    db = sqlite3.connect(data / "sentinel.db")
    try:
        wait_drained(data / "sentinel.db")
    finally:
        ingest.terminate()
        ingest.wait()
    ids = [row[0] for row in db.execute("SELECT process_id FROM processes WHERE tenant_id = 'acme'")]
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    return ids


def wrk(url: str, script: str, connections: int, duration: int) -> str:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(
            script.replace("@SEED@", str(secrets.randbelow(2**31))).replace("@NONCE@", secrets.token_hex(6))
            + REPORT_LUA
        )
    try:
        return subprocess.run(
            ["wrk", "-t2", f"-c{connections}", f"-d{duration}s", "--timeout", "10s", "-s", handle.name, url],
            capture_output=True,
            check=True,
            text=True,
            timeout=duration + 60,
        ).stdout
    finally:
        os.unlink(handle.name)


def run_wrk(url: str, script: str, connections: int, duration: int) -> dict[str, float]:
    wrk(url, script, connections, 2)  # warm up: connections, caches, the verified-token cache
    out = wrk(url, script, connections, duration)
    line = next(x for x in out.splitlines() if x.startswith("RESULT "))
    result: dict[str, float] = json.loads(line[len("RESULT ") :])
    result["rps"] = result["requests"] / (result["duration_us"] / 1e6)
    return result


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
    base_env = {k: v for k, v in os.environ.items() if not k.startswith(("SENTINEL_", "OAUTH2_", "ORACLE_"))}
    prepared, sdata, bdata = work / "prepared", work / "sentinel-data", work / "baseline-data"
    env = {**base_env, "SENTINEL_DATA_DIR": str(sdata)}
    print(f"preparing {args.processes} processes ...", flush=True)
    ids = prepare(prepared, args.processes, {**env, "SENTINEL_DATA_DIR": str(prepared)})
    (work / "ids.txt").write_text("\n".join(ids) + "\n")

    from sentinel.security import DevAuthority

    authority = DevAuthority(prepared)  # its key is copied with the data, so the token holds every round
    token = authority.mint("acme", roles=["sentinel-ingest"], ttl_seconds=3600)
    public_pem = work / "public.pem"
    key = serialization.load_pem_private_key(authority.key_path.read_bytes(), password=None)
    public_pem.write_bytes(
        key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    scripts = {
        "GET /status/{id}": ("/status/x", STATUS_LUA % {"ids": work / "ids.txt", "token": token}),
        "GET /processes": ("/processes?limit=50", PLAIN_LUA % {"token": token}),
        "POST /events (100/request)": ("/events", EVENTS_LUA % {"token": token, "stamp": stamp}),
    }
    if args.only:
        wanted = {"status": "GET /status/{id}", "processes": "GET /processes", "events": "POST /events (100/request)"}
        scripts = {label: scripts[label] for label in (wanted[name] for name in args.only)}
    results: dict[str, dict[str, list[dict[str, float]]]] = {}
    servers = {
        "sentinel": (
            [
                sys.executable,
                "-m",
                "sentinel",
                "serve",
                "--dev",
                "--host",
                "127.0.0.1",
                "--workers",
                str(args.workers),
                "--port",
            ],
            {**env, "SENTINEL_DATA_DIR": str(sdata)},
        ),
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
        ),
    }
    for round_no in range(1, args.rounds + 1):
        # Each round starts each server afresh on a fresh copy of the prepared data: how its workers
        # happen to share the connections is part of what a round measures, so it is drawn again; what
        # earlier rounds posted (a growing log table, an ingest backlog) is not.
        for name, (command, server_env) in servers.items():
            data = sdata if name == "sentinel" else bdata
            shutil.rmtree(data, ignore_errors=True)
            shutil.copytree(prepared, data)
            port = free_port()
            log_path = work / f"{name}.log"
            with log_path.open("wb") as log_file:
                proc = subprocess.Popen(
                    [*command, str(port)],
                    env=server_env,
                    cwd=REPO if name == "baseline" else work,
                    stdout=log_file,
                    stderr=subprocess.STDOUT,
                )
            try:
                try:
                    wait_ready(f"http://127.0.0.1:{port}/" + ("ready" if name == "sentinel" else "docs"), proc)
                except RuntimeError:
                    print(log_path.read_text(errors="replace")[-3000:], file=sys.stderr)
                    raise
                for label, (path, script) in scripts.items():
                    result = run_wrk(f"http://127.0.0.1:{port}{path}", script, args.connections, args.duration)
                    results.setdefault(label, {}).setdefault(name, []).append(result)
                    print(
                        f"round {round_no}  {name:9} {label:28} {result['rps']:9.0f} req/s  "
                        f"p50 {result['p50_us'] / 1000:7.2f} ms  p99 {result['p99_us'] / 1000:7.2f} ms  "
                        f"non-2xx {result['non2xx']}  socket errors {result['socket_errors']}",
                        flush=True,
                    )
            finally:
                proc.terminate()
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
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
