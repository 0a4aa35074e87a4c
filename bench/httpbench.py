"""What the HTTP benches share: a prepared data directory, a dev token, a server started and stopped
on loopback, and wrk driven by a Lua script that reports one machine-readable RESULT line.

Used by ``http_load.py`` (Sentinel against the baseline) and ``ingest_limit.py`` (GET /status p99
while the ingest drains a backlog).
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

# Each wrk run gets its own @SEED@ and @NONCE@ (see wrk): wrk never seeds Lua's generator, so without
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
REPORT_LUA = """
done = function(summary, latency, requests)
  io.write(string.format('RESULT {"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, ' ..
    '"non2xx": %d, "socket_errors": %d}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    summary.errors.status, summary.errors.connect + summary.errors.read + summary.errors.write +
    summary.errors.timeout))
end
"""
WARM_UP_SEC = 2


def clean_env() -> dict[str, str]:
    """This process's environment without any Sentinel, OAuth2 or Oracle setting a caller may have set."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("SENTINEL_", "OAUTH2_", "ORACLE_"))}


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


@contextmanager
def server(command: list[str], env: dict[str, str], cwd: Path, ready_path: str, log_path: Path) -> Iterator[str]:
    """Start ``command`` with a free loopback port appended, wait until ``ready_path`` answers 200, yield
    the base URL; stop the server (SIGTERM, then SIGKILL after 30 s) on the way out. Its output goes to
    ``log_path``, whose tail is shown if it never gets ready."""
    port = free_port()
    with log_path.open("wb") as log_file:
        proc = subprocess.Popen([*command, str(port)], env=env, cwd=cwd, stdout=log_file, stderr=subprocess.STDOUT)
    try:
        try:
            wait_ready(f"http://127.0.0.1:{port}{ready_path}", proc)
        except RuntimeError:
            print(log_path.read_text(errors="replace")[-3000:], file=sys.stderr)
            raise
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def sentinel_serve(workers: int) -> list[str]:
    """``sentinel serve --dev`` on loopback (it runs the ingest consumer too); the port is appended."""
    serve = ("serve", "--dev", "--host", "127.0.0.1", "--workers", str(workers), "--port")
    return [sys.executable, "-m", "sentinel", *serve]


def queue_depth(db: sqlite3.Connection) -> int:
    return int(db.execute("SELECT COUNT(*) FROM queue").fetchone()[0])


def queue_empty(db: sqlite3.Connection) -> bool:
    """Cheaper than :func:`queue_depth` on a long queue: for polling while something is measured."""
    return db.execute("SELECT 1 FROM queue LIMIT 1").fetchone() is None


def wait_drained(db_path: Path, ingest: subprocess.Popen[bytes], timeout: float = 600.0) -> None:
    """Until the ``ingest`` process has consumed the queue."""
    deadline = time.monotonic() + timeout
    db = sqlite3.connect(db_path, timeout=30)
    try:
        while not queue_empty(db):
            if ingest.poll() is not None:
                raise RuntimeError(f"the ingest exited with {ingest.returncode} before draining {db_path}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"queue of {db_path} not drained in {timeout}s")
            time.sleep(0.2)
    finally:
        db.close()


def prepare(data: Path, processes: int, env: dict[str, str]) -> list[str]:
    """A migrated data directory holding ``processes`` simulated processes of tenant acme, ingested by
    one ``sentinel ingest`` run; returns their ids. What the commands print goes to ``prepare.log``
    beside ``data``, shown if one fails."""
    log_path = data.parent / "prepare.log"
    with log_path.open("wb") as log:

        def sentinel(*args: str) -> subprocess.Popen[bytes]:
            command = [sys.executable, "-m", "sentinel", *args]
            return subprocess.Popen(command, env=env, cwd=tempfile.gettempdir(), stdout=log, stderr=log)

        try:
            for args in (("migrate",), ("simulate", "-n", str(processes), "--seed", "11", "--quiet")):
                if sentinel(*args).wait():
                    raise RuntimeError(f"sentinel {args[0]} failed")
            ingest = sentinel("ingest")
            try:
                wait_drained(data / "sentinel.db", ingest)
            finally:
                ingest.terminate()
                ingest.wait()
        except RuntimeError:
            print(log_path.read_text(errors="replace")[-3000:], file=sys.stderr)
            raise
    db = sqlite3.connect(data / "sentinel.db")
    ids = [row[0] for row in db.execute("SELECT process_id FROM processes WHERE tenant_id = 'acme'")]
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    return ids


def dev_token(data: Path) -> str:
    """A token for tenant acme with the ingest role, signed by the dev key kept in ``data`` (created there
    if missing), which ``sentinel serve --dev`` on that directory accepts."""
    from sentinel.security import DevAuthority

    return DevAuthority(data).mint("acme", roles=["sentinel-ingest"], ttl_seconds=3600)


def status_script(ids: list[str], token: str, work: Path) -> str:
    """The Lua script for GET /status/{random id of ``ids``}; the ids are written to ``work``."""
    path = work / "ids.txt"
    path.write_text("\n".join(ids) + "\n")
    return STATUS_LUA % {"ids": path, "token": token}


def wrk(url: str, script: str, connections: int, duration: int, stop_when: Callable[[], bool] | None = None) -> str:
    """wrk's output for ``duration`` seconds of load, or until ``stop_when()`` (polled every 0.1 s) is
    true: wrk is then interrupted (SIGINT), which ends the run early and still reports it."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(
            script.replace("@SEED@", str(secrets.randbelow(2**31))).replace("@NONCE@", secrets.token_hex(6))
            + REPORT_LUA
        )
    command = ["wrk", "-t2", f"-c{connections}", f"-d{duration}s", "--timeout", "10s", "-s", handle.name, url]
    try:
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            if stop_when is not None:
                stopping = False
                while proc.poll() is None:
                    # Sent again until wrk exits: wrk ignores SIGINT until its threads (and their Lua
                    # init) are up, so a signal sent in the window's first moments would be lost.
                    if stopping or stop_when():
                        stopping = True
                        proc.send_signal(signal.SIGINT)
                    time.sleep(0.1)
            out, err = proc.communicate(timeout=duration + 60)
        except BaseException:
            proc.kill()
            proc.wait()
            raise
    finally:
        os.unlink(handle.name)
    if proc.returncode:
        raise subprocess.CalledProcessError(proc.returncode, command, out, err)
    return out


def measure(
    url: str, script: str, connections: int, duration: int, stop_when: Callable[[], bool] | None = None
) -> dict[str, float]:
    """One wrk run (see :func:`wrk`): requests, duration_us, p50_us, p99_us, non2xx, socket_errors and
    rps, over the time it really ran."""
    out = wrk(url, script, connections, duration, stop_when)
    line = next(x for x in out.splitlines() if x.startswith("RESULT "))
    result: dict[str, float] = json.loads(line[len("RESULT ") :])
    result["rps"] = result["requests"] / (result["duration_us"] / 1e6)
    return result


def warm_up(url: str, script: str, connections: int) -> None:
    """Connections, caches, the verified-token cache: what a measured run should not pay for."""
    wrk(url, script, connections, WARM_UP_SEC)


def run_wrk(url: str, script: str, connections: int, duration: int) -> dict[str, float]:
    warm_up(url, script, connections)
    return measure(url, script, connections, duration)
