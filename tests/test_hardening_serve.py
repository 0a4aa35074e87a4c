"""Connections, streams and supervision of a real ``sentinel serve`` (issue 9, sections 3 and 4).

- Silent, idle and slow connections are closed after the documented timeouts, and ``/health`` answers
  while connections stay within the limits (the limits are lowered here so a few hundred sockets prove it).
- Live streams are bounded per tenant (429) and per worker (503), both with ``Retry-After``, and counted
  in the metrics.
- A Granian worker killed with SIGKILL is replaced; the other workers and the ingest consumer keep running
  and the dead worker's live gauges are retired.
- A frozen (SIGSTOP) ingest consumer makes ``/ready`` answer 503 once messages wait past
  ``SENTINEL_INGEST_STALL_SEC``, and the lag figure grows meanwhile.
- A second server on a port in use (or any address it cannot listen on) refuses to start with one line.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import itertools
import json
import os
import selectors
import signal
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from apiserver import ApiServer, assert_problem, children_of, event, sentinel_run, unique, wait_for
from helpers import enqueue
from helpers import event as helper_event

from sentinel.api.problems import ApiProblem
from sentinel.api.streams import StreamLimiter, StreamLimitReached
from sentinel.config import Settings, SettingsError, load_settings
from sentinel.ingest.lock import progress_age, record_progress
from sentinel.ingest.worker import PROGRESS_INTERVAL, IngestWorker
from sentinel.store.sqlite import SqliteStore

INGEST = "sentinel-ingest"
VISIBLE = 20.0

# A small server: one worker with 64 connection slots, 16 streams (8 per tenant), short timeouts.
MAX_CONNECTIONS = 64
MAX_STREAMS = 16
MAX_TENANT_STREAMS = 8
BODY_TIMEOUT = 2.0
LIMITED_ENV = {
    "SENTINEL_HTTP_MAX_CONNECTIONS": str(MAX_CONNECTIONS),
    "SENTINEL_HTTP_HEADER_TIMEOUT_SEC": "1",
    "SENTINEL_HTTP_BODY_TIMEOUT_SEC": str(BODY_TIMEOUT),
    "SENTINEL_SSE_MAX_STREAMS": str(MAX_STREAMS),
    "SENTINEL_SSE_MAX_STREAMS_PER_TENANT": str(MAX_TENANT_STREAMS),
    "SENTINEL_SSE_KEEPALIVE_SEC": "0.5",
}


# -- helpers ------------------------------------------------------------------------------------------


def connect(api: ApiServer) -> socket.socket:
    return socket.create_connection(("127.0.0.1", api.port), timeout=30)


def wait_closed(sockets: list[socket.socket], timeout: float) -> list[bytes]:
    """Wait until the server has closed every socket (EOF or reset); returns what each received.
    Fails naming how many are still open after ``timeout``."""
    received = {sock: b"" for sock in sockets}
    selector = selectors.DefaultSelector()
    for sock in sockets:
        sock.setblocking(False)
        selector.register(sock, selectors.EVENT_READ)
    open_count = len(sockets)
    deadline = time.monotonic() + timeout
    try:
        while open_count:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"{open_count} of {len(sockets)} connections still open after {timeout}s"
            for key, _ in selector.select(min(remaining, 1.0)):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                try:
                    data = sock.recv(65536)
                except ConnectionResetError:
                    data = b""
                except BlockingIOError:
                    continue
                if data:
                    received[sock] += data
                    continue
                selector.unregister(sock)
                open_count -= 1
    finally:
        selector.close()
        for sock in sockets:
            sock.close()
    return [received[sock] for sock in sockets]


def read_head(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """Status, headers (lower-case names) and the body bytes read so far of one HTTP/1.1 answer."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed before the answer's head: {data!r}"
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(lines[0].split()[1]), headers, rest


def open_stream(api: ApiServer, token: str, process_id: str) -> tuple[socket.socket, int, dict[str, str], bytes]:
    sock = connect(api)
    sock.sendall(
        f"GET /logs/{process_id}?follow=true HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {token}\r\n"
        "Accept: text/event-stream\r\n\r\n".encode()
    )
    status, headers, rest = read_head(sock)
    return sock, status, headers, rest


def metric(api: ApiServer, name: str, **labels: str) -> float:
    """The sum of the samples of ``name`` whose labels include ``labels``."""
    text = httpx.get(f"{api.base_url}/metrics", timeout=10, trust_env=False).text
    total = 0.0
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        series, _, value = line.rpartition(" ")
        metric_name, _, label_text = series.partition("{")
        if metric_name != name:
            continue
        if all(f'{key}="{wanted}"' in label_text for key, wanted in labels.items()):
            total += float(value)
    return total


def health_ok(api: ApiServer, tries: int = 5) -> None:
    """``/health`` and ``/ready`` answer 200 ``tries`` times (each bounded; the bound only catches a hang)."""
    with httpx.Client(base_url=api.base_url, timeout=5.0, trust_env=False) as http:
        for _ in range(tries):
            assert http.get("/health").status_code == 200
            assert http.get("/ready").status_code == 200


def create_process(api: ApiServer, token: str) -> str:
    process_id = unique("proc")
    with api.client(token) as http:
        answer = http.post(
            "/events", json=[event("STARTED", process_id), event("LOG", process_id, message="first line")]
        )
        assert answer.status_code == 202, answer.text

        def visible() -> bool:
            page = http.get(f"/logs/{process_id}")
            return page.status_code == 200 and len(page.json()["items"]) == 1

        wait_for(visible, VISIBLE, f"{process_id} to be stored")
    return process_id


def child(api: ApiServer, needle: str) -> int:
    pids = [pid for pid, cmdline in api.children() if needle in cmdline]
    assert len(pids) == 1, f"expected one {needle!r} child: {api.children()}"
    return pids[0]


def socket_inode(server_port: int, client_port: int) -> str:
    """The inode of the server side of a loopback connection (from /proc/net/tcp)."""
    local, remote = f"0100007F:{server_port:04X}", f"0100007F:{client_port:04X}"
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1] == local and fields[2] == remote:
            return fields[9]
    raise AssertionError(f"no server socket for client port {client_port}")


def owner_of(inode: str, pids: list[int]) -> int:
    target = f"socket:[{inode}]"
    for pid in pids:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            with contextlib.suppress(OSError):
                if os.readlink(fd) == target:
                    return pid
    raise AssertionError(f"no worker holds socket {inode}")


# -- settings and the limiter (no server) ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"SENTINEL_HTTP_MAX_CONNECTIONS": "8"}, "SENTINEL_HTTP_MAX_CONNECTIONS"),
        ({"SENTINEL_HTTP_MAX_CONNECTIONS": "many"}, "SENTINEL_HTTP_MAX_CONNECTIONS"),
        ({"SENTINEL_HTTP_MAX_CONNECTIONS": "100", "SENTINEL_SSE_MAX_STREAMS": "100"}, "SENTINEL_SSE_MAX_STREAMS"),
        ({"SENTINEL_SSE_MAX_STREAMS": "0"}, "SENTINEL_SSE_MAX_STREAMS"),
        ({"SENTINEL_SSE_MAX_STREAMS": "10", "SENTINEL_SSE_MAX_STREAMS_PER_TENANT": "11"}, "PER_TENANT"),
        ({"SENTINEL_HTTP_HEADER_TIMEOUT_SEC": "61"}, "SENTINEL_HTTP_HEADER_TIMEOUT_SEC"),
        ({"SENTINEL_HTTP_HEADER_TIMEOUT_SEC": "0"}, "SENTINEL_HTTP_HEADER_TIMEOUT_SEC"),
        ({"SENTINEL_HTTP_BODY_TIMEOUT_SEC": "-1"}, "SENTINEL_HTTP_BODY_TIMEOUT_SEC"),
        ({"SENTINEL_SSE_KEEPALIVE_SEC": "nan!"}, "SENTINEL_SSE_KEEPALIVE_SEC"),
        ({"SENTINEL_INGEST_STALL_SEC": "0"}, "SENTINEL_INGEST_STALL_SEC"),
        ({"SENTINEL_LISTEN_ADDRESS": "localhost"}, "SENTINEL_LISTEN_ADDRESS"),
        ({"SENTINEL_LISTEN_ADDRESS": "10.0.0.256"}, "SENTINEL_LISTEN_ADDRESS"),
    ],
)
def test_bad_connection_settings_stop_with_one_line(env: dict[str, str], named: str) -> None:
    with pytest.raises(SettingsError) as raised:
        load_settings(env)
    message = str(raised.value)
    assert named in message
    assert "\n" not in message


def test_connection_settings_defaults() -> None:
    settings = load_settings({})
    assert settings.http_max_connections == 2048
    assert settings.http_header_timeout_sec == 10.0
    assert settings.http_body_timeout_sec == 15.0
    assert settings.sse_max_streams == 256
    assert settings.sse_max_streams_per_tenant == 32
    assert settings.sse_keepalive_sec == 15.0
    assert settings.ingest_stall_sec == 30.0


def test_stream_limiter_counts_per_tenant_and_worker_and_releases_once() -> None:
    limiter = StreamLimiter(max_streams=3, max_per_tenant=2)
    a1 = limiter.acquire("a", "logs")
    a2 = limiter.acquire("a", "processes")  # every kind shares the tenant's budget
    with pytest.raises(StreamLimitReached) as tenant_full:
        limiter.acquire("a", "logs")
    assert isinstance(tenant_full.value, ApiProblem)
    assert (tenant_full.value.status, tenant_full.value.code) == (429, "too_many_streams")
    assert tenant_full.value.headers["Retry-After"].isdigit()
    b1 = limiter.acquire("b", "logs")
    with pytest.raises(StreamLimitReached) as worker_full:
        limiter.acquire("c", "logs")
    assert (worker_full.value.status, worker_full.value.code) == (503, "stream_capacity")
    assert worker_full.value.headers["Retry-After"].isdigit()
    a1.release()
    a1.release()  # idempotent
    assert (limiter.open, limiter.open_for("a")) == (2, 1)
    with b1:
        pass
    assert not b1.held
    del a2
    gc.collect()  # a slot dropped without release (a response never started) is released
    assert (limiter.open, limiter.open_for("a"), limiter.open_for("b")) == (0, 0, 0)


def test_slot_hold_releases_when_the_stream_ends_fails_or_is_closed() -> None:
    asyncio.run(_hold_releases())


async def _hold_releases() -> None:
    limiter = StreamLimiter(max_streams=4, max_per_tenant=4)

    async def lines(fail: bool = False) -> Any:
        yield 1
        yield 2
        if fail:
            raise RuntimeError("store gone")

    assert [item async for item in limiter.acquire("t", "logs").hold(lines())] == [1, 2]
    assert limiter.open == 0
    with pytest.raises(RuntimeError):
        async for _ in limiter.acquire("t", "logs").hold(lines(fail=True)):
            pass
    assert limiter.open == 0
    held = limiter.acquire("t", "logs").hold(lines())
    assert await anext(held) == 1
    assert limiter.open == 1
    await held.aclose()  # the client went away
    assert limiter.open == 0
    async with limiter.acquire("t", "logs"):
        assert limiter.open == 1
    assert limiter.open == 0


def test_worker_reports_progress_when_it_commits_and_when_it_has_caught_up(
    sqlite_store: SqliteStore, settings: Settings, tmp_path: Path
) -> None:
    mark = tmp_path / "ingest.progress"
    assert progress_age(mark, time.time()) is None
    enqueue(sqlite_store, [helper_event(process_id=f"p-{i}") for i in range(20)])
    worker = IngestWorker(sqlite_store, settings)
    calls: list[float] = []

    def on_progress() -> None:
        calls.append(time.monotonic())
        record_progress(mark)

    worker.on_progress = on_progress
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        wait_for(lambda: worker.messages_done == 20 and calls, 30, "the batch to commit and be reported")
        first = len(calls)
        # Caught up: it keeps saying so, at most once per PROGRESS_INTERVAL.
        wait_for(lambda: len(calls) > first, 30, "progress while idle")
    finally:
        worker.stop()
        thread.join(30)
    assert all(b - a >= PROGRESS_INTERVAL * 0.99 for a, b in itertools.pairwise(calls))
    age = progress_age(mark, time.time())
    assert age is not None
    assert age < 30


# -- connections and streams (one small server) ----------------------------------------------------------


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    with ApiServer(tmp_path_factory.mktemp("limited") / "data", dev=True, workers=1, env=LIMITED_ENV) as server:
        yield server


@pytest.mark.slow
def test_silent_connections_beyond_capacity_are_closed_and_health_answers_again(limited: ApiServer) -> None:
    # Three times the worker's connection slots, sending nothing: each is closed after the header
    # timeout, those waiting in the kernel's backlog once a slot frees; then /health answers.
    silent = [connect(limited) for _ in range(3 * MAX_CONNECTIONS)]
    received = wait_closed(silent, timeout=90)
    assert all(data == b"" for data in received)
    health_ok(limited)


@pytest.mark.slow
def test_health_answers_while_silent_connections_stay_within_the_limit(limited: ApiServer) -> None:
    # An attacker keeps three quarters of the slots busy with silent connections, reopening each one the
    # server closes; health checks keep answering meanwhile.
    keep = MAX_CONNECTIONS * 3 // 4
    stop = threading.Event()
    opened = [0]

    def attacker() -> None:
        held: list[socket.socket] = []
        try:
            while not stop.is_set():
                alive = []
                for sock in held:
                    sock.setblocking(False)
                    try:
                        closed = sock.recv(1) == b""
                    except BlockingIOError:
                        closed = False
                    except ConnectionResetError:
                        closed = True
                    if closed:
                        sock.close()
                    else:
                        alive.append(sock)
                held = alive
                while len(held) < keep:
                    held.append(connect(limited))
                    opened[0] += 1
                stop.wait(0.05)
        finally:
            for sock in held:
                sock.close()

    thread = threading.Thread(target=attacker, daemon=True)
    thread.start()
    try:
        wait_for(lambda: opened[0] >= 2 * keep, 60, "the attacker to have reopened its connections once")
        health_ok(limited, tries=10)
    finally:
        stop.set()
        thread.join(30)


@pytest.mark.slow
def test_idle_keep_alive_and_slow_header_connections_are_closed(limited: ApiServer) -> None:
    idle = connect(limited)
    idle.sendall(b"GET /health HTTP/1.1\r\nHost: test\r\n\r\n")
    status, _, _ = read_head(idle)
    assert status == 200
    slow_headers = [connect(limited) for _ in range(20)]
    for sock in slow_headers:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: test\r\n")  # and never the rest
    received = wait_closed([idle, *slow_headers], timeout=60)
    assert all(b"HTTP/1.1 200" not in data for data in received[1:])


@pytest.mark.slow
def test_bodies_sent_too_slowly_get_408_and_nothing_is_stored(limited: ApiServer) -> None:
    token = limited.dev_token(unique("tenant"), INGEST)
    process_id = unique("slow")
    body = json.dumps([event("STARTED", process_id)]).encode()
    head = (
        f"POST /events HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    sockets = [connect(limited) for _ in range(30)]
    for sock in sockets:
        sock.sendall(head)
    # 4 bytes a second on every connection, until the server answers or hangs up.
    received = {sock: b"" for sock in sockets}
    done: set[socket.socket] = set()
    deadline = time.monotonic() + 60
    for offset in range(0, len(body), 1):
        for sock in sockets:
            if sock in done:
                continue
            try:
                sock.sendall(body[offset : offset + 1])
                sock.setblocking(False)
                received[sock] += sock.recv(65536)
            except BlockingIOError:
                pass
            except OSError:
                done.add(sock)
            finally:
                sock.setblocking(True)
            if received[sock]:
                done.add(sock)
        if len(done) == len(sockets) or time.monotonic() > deadline:
            break
        time.sleep(0.25)
    answers = wait_closed(sockets, timeout=30)
    for sock, rest in zip(sockets, answers, strict=True):
        answer = received[sock] + rest
        assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
        assert b"body_timeout" in answer
    with limited.client(token) as http:
        assert http.get(f"/status/{process_id}").status_code == 404
    assert metric(limited, "sentinel_http_requests_total", route="/events", status="408") >= len(sockets)


@pytest.mark.slow
def test_streams_are_bounded_per_tenant_and_per_worker(limited: ApiServer) -> None:
    tokens = {name: limited.dev_token(unique(name), INGEST) for name in ("a", "b", "c")}
    processes = {name: create_process(limited, token) for name, token in tokens.items()}
    refused_before = {
        limit: metric(limited, "sentinel_sse_streams_refused_total", kind="logs", limit=limit)
        for limit in ("tenant", "worker")
    }
    streams: dict[str, list[socket.socket]] = {"a": [], "b": [], "c": []}
    try:
        # Tenant a fills its share, then is refused (429); b fills the worker's rest; c is refused (503).
        for name, count, refusal in (("a", MAX_TENANT_STREAMS, 429), ("b", MAX_STREAMS - MAX_TENANT_STREAMS, 503)):
            for _ in range(count):
                sock, status, _, _ = open_stream(limited, tokens[name], processes[name])
                streams[name].append(sock)
                assert status == 200
            refused_by = "a" if refusal == 429 else "c"
            sock, status, headers, _ = open_stream(limited, tokens[refused_by], processes[refused_by])
            sock.close()
            assert (status, headers.get("retry-after")) == (refusal, "5")
        with limited.client(tokens["c"]) as http:
            refused = http.get(f"/logs/{processes['c']}", params={"follow": "true"})
            assert_problem(refused, 503, "stream_capacity")
            assert refused.headers["retry-after"] == "5"
            assert http.get(f"/logs/{processes['c']}").status_code == 200  # pages are not streams
        # The dashboard's live feed counts against the same budgets as the log followers.
        with limited.client(tokens["a"]) as http:
            assert_problem(http.get("/ui/api/processes/live"), 429, "too_many_streams")
        with limited.client(tokens["c"]) as http:
            assert_problem(http.get("/ui/api/processes/live"), 503, "stream_capacity")
        health_ok(limited)
        # The body deadline does not cut a stream: keep-alives still flow well past it.
        first = streams["a"][0]
        first.settimeout(10)
        until = time.monotonic() + 2 * BODY_TIMEOUT
        while time.monotonic() < until:
            assert first.recv(65536), "the stream was closed"
        assert b": keep-alive" in first.recv(65536)
        assert metric(limited, "sentinel_sse_streams", kind="logs") == MAX_STREAMS
        for limit in ("tenant", "worker"):
            now = metric(limited, "sentinel_sse_streams_refused_total", kind="logs", limit=limit)
            assert now >= refused_before[limit] + 1, limit

        # A stream that ends gives its slot back.
        streams["a"].pop().close()

        def reopened() -> bool:
            sock, status, _, _ = open_stream(limited, tokens["a"], processes["a"])
            if status == 200:
                streams["a"].append(sock)
                return True
            sock.close()
            return False

        wait_for(reopened, VISIBLE, "a freed slot to take a new stream", interval=0.2)
    finally:
        for sock in streams["a"] + streams["b"]:
            sock.close()
    wait_for(
        lambda: metric(limited, "sentinel_sse_streams", kind="logs") == 0, VISIBLE, "every stream slot to be released"
    )


# -- supervision --------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_killed_worker_is_replaced_and_its_live_gauges_retired(tmp_path: Path) -> None:
    with ApiServer(tmp_path / "data", dev=True, workers=3) as api:
        token = api.dev_token(unique("tenant"), INGEST)
        process_id = create_process(api, token)
        granian = child(api, "granian")
        ingest = child(api, "sentinel ingest")
        workers = [pid for pid, _ in children_of(granian)]
        assert len(workers) == 3
        streams = []
        for _ in range(9):
            sock, status, _, _ = open_stream(api, token, process_id)
            assert status == 200
            streams.append(sock)
        owners = [owner_of(socket_inode(api.port, sock.getsockname()[1]), workers) for sock in streams]
        victim = max(set(owners), key=owners.count)
        doomed = [sock for sock, owner in zip(streams, owners, strict=True) if owner == victim]
        survivors = [sock for sock, owner in zip(streams, owners, strict=True) if owner != victim]
        wait_for(lambda: metric(api, "sentinel_sse_streams", kind="logs") == 9, VISIBLE, "9 streams counted")

        os.kill(victim, signal.SIGKILL)
        wait_closed(doomed, timeout=30)

        def replaced() -> list[int] | None:
            now = [pid for pid, _ in children_of(granian)]
            return now if len(now) == 3 and victim not in now else None

        now = wait_for(replaced, 60, "Granian to replace the killed worker")
        assert set(workers) - {victim} <= set(now)
        assert child(api, "granian") == granian
        assert child(api, "sentinel ingest") == ingest
        health_ok(api)
        expected = len(survivors)
        wait_for(
            lambda: metric(api, "sentinel_sse_streams", kind="logs") == expected,
            VISIBLE,
            f"the live-stream gauge to count the {expected} streams of live workers",
        )
        # Ingest still runs: a new event is stored.
        create_process(api, token)
        for sock in survivors:
            sock.close()


@pytest.mark.slow
def test_a_frozen_ingest_makes_ready_fail_and_the_lag_grow(tmp_path: Path) -> None:
    stall = 2.0
    with ApiServer(tmp_path / "data", dev=True, env={"SENTINEL_INGEST_STALL_SEC": str(stall)}) as api:
        token = api.dev_token(unique("tenant"), INGEST)
        ingest = child(api, "sentinel ingest")
        process_id = unique("frozen")
        os.kill(ingest, signal.SIGSTOP)
        try:
            # Frozen but with nothing waiting: still ready, for longer than the stall bound.
            with api.client() as http:
                until = time.monotonic() + stall * 1.5
                while time.monotonic() < until:
                    assert http.get("/ready").status_code == 200
                    time.sleep(0.2)
            with api.client(token) as http:
                assert http.post("/events", json=[event("STARTED", process_id)]).status_code == 202

                def unready() -> dict[str, Any] | None:
                    answer = http.get("/ready")
                    return answer.json() if answer.status_code == 503 else None

                body = wait_for(unready, 60, "/ready to answer 503", interval=0.2)
                assert body["checks"]["ingest"].startswith("stalled"), body
                assert body["checks"]["store"] == "ok"
            first = metric(api, "sentinel_ingest_lag_seconds")
            assert metric(api, "sentinel_queue_depth") >= 1
            assert first > 0
            wait_for(lambda: metric(api, "sentinel_ingest_lag_seconds") > first + 0.5, 30, "the lag to grow")
        finally:
            os.kill(ingest, signal.SIGCONT)
        with api.client(token) as http:
            wait_for(lambda: http.get("/ready").status_code == 200, 60, "/ready to recover")
            wait_for(lambda: http.get(f"/status/{process_id}").status_code == 200, VISIBLE, "the event to be stored")
        wait_for(lambda: metric(api, "sentinel_queue_depth") == 0, VISIBLE, "the queue to drain")
        assert metric(api, "sentinel_ingest_lag_seconds") < stall


@pytest.mark.slow
def test_a_second_server_refuses_a_port_in_use_and_other_bind_failures(tmp_path: Path) -> None:
    with ApiServer(tmp_path / "first", dev=True) as first:
        cases = [
            (["--host", "127.0.0.1", "--port", str(first.port)], f"127.0.0.1:{first.port}"),
            (["--host", "192.0.2.1", "--port", str(first.port)], f"192.0.2.1:{first.port}"),  # not ours
            (["--host", "localhost"], "'localhost'"),
            (["--port", "70000"], "--port"),
            (["--port", "-1"], "--port"),
            (["--workers", "0"], "--workers"),
        ]
        env = dict(first.env, SENTINEL_DATA_DIR=str(tmp_path / "second"))
        for argv, named in cases:
            done = sentinel_run("serve", "--dev", *argv, env=env, timeout=60)
            assert done.returncode == 2, (argv, done.stdout, done.stderr)
            lines = done.stderr.strip().splitlines()
            assert len(lines) == 1, done.stderr
            assert named in lines[0], lines
        # The first server kept every request.
        health_ok(first, tries=10)
