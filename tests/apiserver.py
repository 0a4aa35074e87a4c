"""A real ``sentinel serve`` (Granian + one ingest consumer) on a free loopback port, for the API tests.

Not a test module. Usage::

    with JwksServer([key]) as idp, ApiServer(tmp_path, idp=idp) as api:
        with api.client(token) as http:
            http.get("/status/p-1")

The server is a subprocess with its own data directory (a real SQLite file), talking to a loopback
identity provider (:class:`jwks_server.JwksServer`) or running in dev mode. ``start()`` waits, bounded,
until ``/ready`` answers 200 and shows the server's output when it does not; ``stop()`` sends SIGTERM and
insists on exit status 0 within a bound.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import httpx
from helpers import wait_for
from jwks_server import JwksServer

T = TypeVar("T")

AUDIENCE = "sentinel"
START_TIMEOUT = 60.0
STOP_TIMEOUT = 45.0

# Settings the parent test run might carry that must not leak into a server under test.
_SCRUBBED_PREFIXES = ("SENTINEL_", "ORACLE_", "OAUTH2_", "POOL_", "OTEL_", "PROMETHEUS_")
_PROXY_VARS = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_env(data_dir: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """A clean environment for a ``sentinel`` subprocess: no inherited Sentinel or proxy settings, the
    core selection of this test run (``SENTINEL_NO_EXTENSIONS``) kept, and ``extra`` on top."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(_SCRUBBED_PREFIXES) and key.lower() not in _PROXY_VARS
    }
    if os.environ.get("SENTINEL_NO_EXTENSIONS"):
        env["SENTINEL_NO_EXTENSIONS"] = os.environ["SENTINEL_NO_EXTENSIONS"]
    env.update(
        {
            "SENTINEL_DATA_DIR": str(data_dir),
            "SENTINEL_FLUSH_INTERVAL_MS": "10",
            "SENTINEL_HEARTBEAT_TIMEOUT_SEC": "3600",
            "PYTHONUNBUFFERED": "1",
            "NO_PROXY": "127.0.0.1,localhost",
        }
    )
    env.update(extra or {})
    return env


def sentinel_run(*args: str, env: Mapping[str, str], timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    """``python -m sentinel ARGS`` to completion, output captured as text."""
    return subprocess.run(
        [sys.executable, "-m", "sentinel", *args],
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


class ApiServer:
    """``python -m sentinel serve`` on 127.0.0.1 and a free port, its output in ``<data_dir>/../*.log``."""

    def __init__(
        self,
        data_dir: Path,
        *,
        idp: JwksServer | None = None,
        dev: bool = False,
        workers: int = 1,
        audience: str = AUDIENCE,
        env: Mapping[str, str] | None = None,
        discovery: bool = False,
    ) -> None:
        if idp is None and not dev:
            raise ValueError("ApiServer needs an identity provider or dev=True")
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.idp = idp
        self.dev = dev
        self.workers = workers
        self.port = free_port()
        extra: dict[str, str] = {}
        if idp is not None and not dev:
            extra["OAUTH2_ISSUER"] = idp.issuer
            extra["OAUTH2_AUDIENCE"] = audience
            if not discovery:
                extra["OAUTH2_JWK_SET_URI"] = idp.jwks_uri
        extra.update(env or {})
        self.env = server_env(self.data_dir, extra)
        self.log_path = self.data_dir.parent / f"{self.data_dir.name}-server-{self.port}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    # -- lifecycle --------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def argv(self) -> list[str]:
        argv = [
            sys.executable,
            "-m",
            "sentinel",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--workers",
            str(self.workers),
        ]
        if self.dev:
            argv.append("--dev")
        return argv

    def start(self, timeout: float = START_TIMEOUT) -> ApiServer:
        assert self.proc is None, "already started"
        with open(self.log_path, "ab") as log:
            log.write(f"\n===== start #{self.starts + 1}: {' '.join(self.argv())}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                self.argv(),
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.starts += 1
        deadline = time.monotonic() + timeout
        last = "no answer yet"
        with httpx.Client(base_url=self.base_url, trust_env=False, timeout=2.0) as http:
            while True:
                if self.proc.poll() is not None:
                    code = self.proc.returncode
                    self.proc = None
                    raise AssertionError(f"sentinel serve exited with {code} before it was ready:\n{self.output()}")
                try:
                    answer = http.get("/ready")
                    if answer.status_code == 200:
                        return self
                    last = f"{answer.status_code} {answer.text}"
                except httpx.TransportError as exc:
                    last = repr(exc)
                if time.monotonic() > deadline:
                    self.kill()
                    raise AssertionError(
                        f"sentinel serve not ready within {timeout}s (last /ready: {last}):\n{self.output()}"
                    )
                time.sleep(0.05)

    def terminate(self) -> None:
        """Send SIGTERM to the supervisor (it drains and stops its children)."""
        assert self.proc is not None, "not running"
        self.proc.send_signal(signal.SIGTERM)

    def wait(self, timeout: float = STOP_TIMEOUT) -> int:
        assert self.proc is not None, "not running"
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(
                f"sentinel serve did not exit within {timeout}s of SIGTERM:\n{self.output()}"
            ) from None
        self.proc = None
        return code

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """SIGTERM, then insist on a clean exit (status 0) within ``timeout``."""
        if self.proc is None:
            return
        self.terminate()
        code = self.wait(timeout)
        assert code == 0, f"sentinel serve exited with {code} after SIGTERM:\n{self.output()}"

    def kill(self) -> None:
        """Last resort after a failure: SIGKILL the server's own process group (it was started in one)."""
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)

    def output(self) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return "(no output)"
        return text[-20_000:]

    def __enter__(self) -> ApiServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            self.stop()
        else:
            self.kill()

    # -- clients ----------------------------------------------------------------------------------

    def client(self, token: str | None = None, *, timeout: float = 10.0, **kwargs: Any) -> httpx.Client:
        headers = dict(kwargs.pop("headers", {}))
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        return httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout, trust_env=False, **kwargs)

    def dev_token(self, tenant: str, *roles: str, ttl: int = 3600) -> str:
        """A token minted by ``sentinel token`` for this (dev-mode) server's data directory."""
        args = ["token", "--tenant", tenant, "--ttl", str(ttl)]
        for role in roles:
            args += ["--role", role]
        done = sentinel_run(*args, env=self.env)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    # -- process tree -----------------------------------------------------------------------------

    def children(self) -> list[tuple[int, str]]:
        """``(pid, command line)`` of the supervisor's direct children (Granian, the ingest consumer)."""
        assert self.proc is not None, "not running"
        return children_of(self.proc.pid)


def children_of(parent: int) -> list[tuple[int, str]]:
    """``(pid, command line)`` of the live (not zombie) direct children of process ``parent``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        # The command name (field 2) may hold spaces; state and parent pid follow its ')'.
        state, ppid = stat.rsplit(")", 1)[1].split()[:2]
        if int(ppid) == parent and state != "Z":
            found.append((int(entry.name), cmdline.strip()))
    return found


# -- events and documents ---------------------------------------------------------------------------

_ids = itertools.count()


def unique(prefix: str) -> str:
    """A name no other test (or earlier run on a reused server) uses."""
    return f"{prefix}-{next(_ids)}-{uuid.uuid4().hex[:8]}"


def ts(offset_sec: float = 0.0, *, base: datetime | None = None) -> str:
    """RFC 3339 UTC (``Z``) for ``base`` (default: now) + ``offset_sec``. Recent, so retention never
    purges a test's logs; pass one ``base`` to get exact, comparable instants."""
    moment = (base or datetime.now(UTC)) + timedelta(seconds=offset_sec)
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")


def event(event_type: str, process_id: str, **fields: Any) -> dict[str, Any]:
    """A valid event with a unique ``event_id`` (``timestamp`` now unless given; LOG gets level/message)."""
    body: dict[str, Any] = {
        "event_id": unique("ev"),
        "event_type": event_type,
        "process_id": process_id,
        "timestamp": ts(),
    }
    if event_type == "LOG":
        body.update(level="INFO", message="a log line")
    body.update(fields)
    return {key: value for key, value in body.items() if value is not None}


def assert_problem(response: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    """The answer is an RFC 9457 problem document with this status; returns it."""
    assert response.status_code == status, f"expected {status}, got {response.status_code}: {response.text}"
    media = response.headers.get("content-type", "").split(";")[0].strip()
    assert media == "application/problem+json", f"not a problem document: {media!r} {response.text}"
    body = response.json()
    assert isinstance(body, dict), body
    assert body["status"] == status, body
    # Every problem the API returns carries a code, the framework's own answers (404, 405, ...) too.
    for member in ("title", "detail", "code"):
        assert isinstance(body.get(member), str), body
        assert body[member], body
    if code is not None:
        assert body.get("code") == code, body
    return body


def hang_up_mid_body(port: int, path: str, headers: Mapping[str, str]) -> None:
    """A POST of one event whose client sends the headers and half the body, then closes the connection.
    The server reads them in that order, so its handler always begins, and finds the client gone while it
    waits for the rest (as with a client that times out mid-upload)."""
    body = json.dumps([event("STARTED", unique("gone"))]).encode()
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", "Content-Type: application/json"]
    lines += [f"Content-Length: {len(body)}", *(f"{name}: {value}" for name, value in headers.items())]
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + body[: len(body) // 2])


# -- Server-Sent Events -----------------------------------------------------------------------------


@dataclass
class SseEvent:
    event: str
    data: str
    id: str | None


class SseReader:
    """Reads one SSE response in a thread: ``events`` fill up as they arrive; ``finished`` is set when
    the server ends the stream (``error`` says how, if not cleanly)."""

    def __init__(
        self,
        client: httpx.Client,
        url: str,
        *,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.client = client
        self.url = url
        self.params = dict(params or {})
        self.headers = dict(headers or {})
        self.events: list[SseEvent] = []
        self.status: int | None = None
        self.content_type: str | None = None
        self.error: BaseException | None = None
        self.started = threading.Event()
        self.finished = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="sse-reader", daemon=True)

    def start(self) -> SseReader:
        self._thread.start()
        assert self.started.wait(15), "the SSE request got no answer"
        assert self.status == 200, f"SSE answered {self.status}"
        return self

    def _run(self) -> None:
        try:
            with self.client.stream("GET", self.url, params=self.params, headers=self.headers) as response:
                self.status = response.status_code
                self.content_type = response.headers.get("content-type")
                self.started.set()
                if response.status_code != 200:
                    response.read()
                    return
                fields: dict[str, str] = {}
                for line in response.iter_lines():
                    if line == "":
                        if fields:
                            with self._lock:
                                self.events.append(
                                    SseEvent(fields.get("event", "message"), fields.get("data", ""), fields.get("id"))
                                )
                        fields = {}
                        continue
                    if line.startswith(":"):
                        continue
                    name, _, value = line.partition(":")
                    value = value.removeprefix(" ")
                    fields[name] = fields[name] + "\n" + value if name == "data" and name in fields else value
        except BaseException as exc:  # reported to the test thread
            self.error = exc
        finally:
            self.started.set()
            self.finished.set()

    def snapshot(self) -> list[SseEvent]:
        with self._lock:
            return list(self.events)

    def wait_for(self, predicate: Callable[[list[SseEvent]], bool], timeout: float, what: str) -> list[SseEvent]:
        def check() -> list[SseEvent] | None:
            events = self.snapshot()
            if predicate(events):
                return events or [SseEvent("none", "", None)]
            if self.finished.is_set():
                raise AssertionError(f"stream ended ({self.error!r}) before {what}: {events}")
            return None

        return wait_for(check, timeout, what)

    def join(self, timeout: float) -> list[SseEvent]:
        """Wait for the server to end the stream; fail if it does not within ``timeout``."""
        self._thread.join(timeout)
        assert not self._thread.is_alive(), f"stream still open after {timeout}s: {self.snapshot()}"
        assert self.error is None, f"stream broke: {self.error!r}"
        return self.snapshot()
