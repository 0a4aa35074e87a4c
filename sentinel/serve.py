"""``sentinel serve``: the supervisor of Granian (HTTP workers), the ingest consumer and demo traffic.

Shutdown order on SIGTERM/SIGINT (what Kubernetes expects of a pod):
1. a drain flag appears: every worker's ``/ready`` answers 503 and open SSE streams close cleanly;
2. after ``SENTINEL_DRAIN_SECONDS`` Granian is told to stop: it accepts nothing new and lets in-flight
   requests finish;
3. the ingest consumer finishes (commits or rolls back) its batch in flight; then the process exits.
A consumer that dies unexpectedly is restarted; it is the only writer of an embedded database. A Granian
worker that dies is replaced by Granian (``--respawn-failed-workers``); the others and the consumer keep
running, and the supervisor retires the dead process's live gauges from the shared metrics directory. If
Granian itself exits, everything stops with status 1 (an orchestrator restarts the whole server).

Connections: see the README's "Connections and streams". Granian serves HTTP/1.1 only (its HTTP/1-or-2
detection waits for a client's first bytes without a timeout, so a silent connection would hold a slot
for ever), closes connections whose headers do not arrive within ``SENTINEL_HTTP_HEADER_TIMEOUT_SEC``
(idle keep-alive connections included) and keeps at most ``SENTINEL_HTTP_MAX_CONNECTIONS`` per worker.
"""

from __future__ import annotations

import logging
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path
from types import FrameType

from sentinel import _core
from sentinel.config import Settings, SettingsError
from sentinel.telemetry.multiproc import MULTIPROC_ENV, prepare_multiprocess_dir, retire_dead_processes

log = logging.getLogger("sentinel.serve")

GRACE_SEC = 30.0
RETIRE_INTERVAL = 2.0  # how often dead processes' live gauges are looked for


def check_listen(host: str, port: int) -> None:
    """Bind and listen on ``host:port`` once, without ``SO_REUSEPORT``, or raise a one-line
    :class:`SettingsError`. Granian sets ``SO_REUSEPORT``, so it would share a port another server is
    listening on (and take about half its requests) instead of failing."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_NUMERICHOST | socket.AI_PASSIVE
        )[0]
    except (socket.gaierror, UnicodeError):
        raise SettingsError(f"SENTINEL_LISTEN_ADDRESS: expected an IP address to listen on, got {host!r}") from None
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(address)
            sock.listen(1)
        except OSError as exc:
            raise SettingsError(
                f"SENTINEL_LISTEN_PORT: cannot listen on {host}:{port}: {exc.strerror or exc}"
            ) from None


def raise_file_limit(needed: int) -> None:
    """Every connection is a file descriptor: lift the soft limit to the hard one for the children."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard and (hard == resource.RLIM_INFINITY or soft < hard):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        soft = hard
    if soft != resource.RLIM_INFINITY and soft < needed:
        log.warning(
            "open files limit %d is below the %d the HTTP workers may hold (SENTINEL_HTTP_MAX_CONNECTIONS "
            "per worker); raise it (ulimit -n) or lower the setting",
            soft,
            needed,
        )


def _banner(settings: Settings, host: str, port: int, workers: int) -> None:
    where = settings.sqlite_path if settings.backend == "sqlite" else settings.oracle_connect_string
    log.info(
        "Process Sentinel on http://%s:%d  (%d HTTP worker(s), core=%s, store=%s %s)",
        host,
        port,
        workers,
        _core.IMPLEMENTATION,
        settings.backend,
        where,
    )
    if settings.dev_mode:
        bar = "!" * 78
        log.warning(bar)
        log.warning("DEV MODE: tokens are signed by a local key in %s; do not expose this server.", settings.data_dir)
        log.warning("Mint one with:  sentinel token --tenant acme --data-dir %s", settings.data_dir)
        log.warning(bar)


class Supervisor:
    def __init__(self, settings: Settings, env: dict[str, str]) -> None:
        self.settings = settings
        self.env = env
        self.stopping = threading.Event()
        self.ingest: subprocess.Popen[bytes] | None = None
        self.http: subprocess.Popen[bytes] | None = None
        self.demo: subprocess.Popen[bytes] | None = None
        self.metrics_dir: Path | None = None
        self.failed = False

    def spawn(self, *args: str) -> subprocess.Popen[bytes]:
        # Children start in the runtime directory with PYTHONSAFEPATH set: started from a source
        # checkout, "python -m sentinel" would otherwise import the checkout (which holds no compiled
        # core after "pip install .") instead of the installed package.
        assert self.settings.runtime_dir is not None
        return subprocess.Popen([sys.executable, "-m", *args], env=self.env, cwd=self.settings.runtime_dir)

    def start_ingest(self) -> None:
        self.ingest = self.spawn("sentinel", "ingest")

    def watch(self) -> None:
        """Restart the ingest consumer if it dies; retire dead processes' live gauges; stop everything
        if Granian dies (it replaces its own workers)."""
        next_retire = 0.0
        while not self.stopping.wait(0.5):
            if self.ingest is not None and self.ingest.poll() is not None:
                log.error("ingest consumer exited with %s; restarting it", self.ingest.returncode)
                self.start_ingest()
            if self.http is not None and self.http.poll() is not None:
                log.error("HTTP server exited with %s", self.http.returncode)
                self.failed = True
                self.stopping.set()
            if self.metrics_dir is not None and time.monotonic() >= next_retire:
                next_retire = time.monotonic() + RETIRE_INTERVAL
                for pid in retire_dead_processes(self.metrics_dir):
                    log.info("metrics of exited process %d retired", pid)

    def shutdown(self) -> None:
        flag = self.settings.drain_flag_path
        if flag is not None:
            flag.touch()
        if self.settings.drain_sec:
            log.info("draining for %.1fs: /ready answers 503", self.settings.drain_sec)
            time.sleep(self.settings.drain_sec)
        else:
            time.sleep(0.3)  # let open SSE streams see the flag and say goodbye
        for name, proc in (("demo", self.demo), ("http", self.http), ("ingest", self.ingest)):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(GRACE_SEC)
                except subprocess.TimeoutExpired:
                    log.error("%s did not stop within %.0fs; killing it", name, GRACE_SEC)
                    proc.kill()
                    proc.wait()


def serve(
    settings: Settings,
    *,
    demo: bool = False,
    demo_rate: float = 300.0,
    host: str | None = None,
    port: int | None = None,
    workers: int | None = None,
) -> int:
    host = host or settings.listen_address
    port = settings.listen_port if port is None else port
    workers = settings.http_workers if workers is None else workers
    if not 0 <= port <= 65535:
        raise SettingsError(f"--port: expected an integer from 0 to 65535, got {port}")
    if not 1 <= workers <= 256:
        raise SettingsError(f"--workers: expected an integer from 1 to 256, got {workers}")
    check_listen(host, port)
    raise_file_limit(workers * settings.http_max_connections + 256)
    runtime_dir = Path(tempfile.mkdtemp(prefix="sentinel-run-"))
    settings = replace(settings, runtime_dir=runtime_dir, data_dir=settings.data_dir.resolve())
    if settings.backend == "sqlite":
        from sentinel.store.sqlite import SqliteStore

        store = SqliteStore(settings.sqlite_path)
        store.migrate()
        store.close()
    if settings.dev_mode:
        from sentinel.security import DevAuthority

        DevAuthority(settings.data_dir, tenant_claim=settings.tenant_claim)
    metrics_dir = Path(os.environ.get(MULTIPROC_ENV) or runtime_dir / "metrics").resolve()
    prepare_multiprocess_dir(metrics_dir)
    env = dict(os.environ)
    env.update(
        {
            "SENTINEL_RUNTIME_DIR": str(runtime_dir),
            "PYTHONSAFEPATH": "1",
            "SENTINEL_DATA_DIR": str(settings.data_dir),
            "SENTINEL_DEV_MODE": "1" if settings.dev_mode else "0",
            MULTIPROC_ENV: str(metrics_dir),
        }
    )
    if demo and settings.alert_rules_file is None:
        # Alert rules on the demo's profiled procedures (sentinel.simulate_profiles), so a slow run alerts.
        from sentinel.simulate_profiles import write_demo_rules

        env["SENTINEL_ALERT_RULES_FILE"] = str(write_demo_rules(runtime_dir, ("acme", "globex")))
        env["SENTINEL_ALERT_ALLOW_PRIVATE_TARGETS"] = "1"
    _banner(settings, host, port, workers)
    supervisor = Supervisor(settings, env)
    supervisor.metrics_dir = metrics_dir

    def on_signal(signum: int, frame: FrameType | None) -> None:
        supervisor.stopping.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        supervisor.start_ingest()
        supervisor.http = supervisor.spawn(
            "granian",
            "--interface",
            "asgi",
            "--factory",
            "--host",
            host,
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--respawn-failed-workers",
            "--http",
            "1",
            "--http1-header-read-timeout",
            str(max(1, round(settings.http_header_timeout_sec * 1000))),
            "--backpressure",
            str(settings.http_max_connections),
            # Two I/O threads per worker: sockets are read and answers written while the worker's Python
            # thread runs handlers. Measured with bench/http_load.py --only status, alternating runs on
            # this 2-core machine: p99 5.8-9.9 ms (median 7.8) against 8.5-33 ms (median 10.6) with one.
            "--runtime-threads",
            "2",
            "--loop",
            "uvloop",
            "--no-ws",
            "--log-level",
            "warning",
            "--workers-kill-timeout",
            str(int(GRACE_SEC)),
            "sentinel.api.app:create_app",
        )
        if demo:
            supervisor.demo = supervisor.spawn(
                "sentinel",
                "simulate",
                "--forever",
                "--rate",
                str(demo_rate),
                "--processes",
                "200",
                "--invalid-rate",
                "0.002",
                "--tenant",
                "acme",
                "--tenant",
                "globex",
                "--profile-runs",
                "20",
                "--quiet",
            )
            log.info("demo traffic: ~%.0f events/s for tenants acme and globex", demo_rate)
        supervisor.watch()
        log.info("stopping")
        supervisor.shutdown()
    finally:
        shutil.rmtree(runtime_dir, ignore_errors=True)
    return 1 if supervisor.failed else 0
