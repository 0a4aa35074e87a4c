"""``sentinel.client`` against real ``sentinel serve --dev`` servers: tracked runs ending each way, the
sender's retries across a server restart, isolation of refused events, SIGKILL of a tracked producer,
resuming log streams, the logging handler, and the readers."""

from __future__ import annotations

import asyncio
import http.server
import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from apiserver import ApiServer, free_port, unique, wait_for
from jwks_server import JwksServer, SigningKey

from sentinel import models
from sentinel.client import (
    AsyncSentinelClient,
    ClientCredentials,
    ConfigurationError,
    ConnectionFailed,
    LogLine,
    NotFound,
    Process,
    SentinelClient,
    Unauthorized,
    current_run,
    event_id,
)
from sentinel.client._sender import Sender

STALL_SECONDS = 2
VISIBLE = 20.0


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    env = {"SENTINEL_HEARTBEAT_TIMEOUT_SEC": str(STALL_SECONDS)}
    with ApiServer(tmp_path_factory.mktemp("client") / "data", dev=True, env=env) as server:
        yield server


@pytest.fixture(scope="module")
def token(api: ApiServer) -> str:
    return api.dev_token("acme")


@pytest.fixture
def client(api: ApiServer, token: str) -> Iterator[SentinelClient]:
    with SentinelClient(api.base_url, token, flush_interval=0.05) as c:
        yield c


def wait_status(client: SentinelClient, process_id: str, *statuses: str, timeout: float = VISIBLE) -> Process:
    def check() -> Process | None:
        try:
            found = client.status(process_id)
        except NotFound:
            return None
        return found if found.status in statuses else None

    return wait_for(check, timeout, f"{process_id} to become {'/'.join(statuses)}")  # type: ignore[no-any-return]


def wait_count(client: SentinelClient, process_id: str, events: int, timeout: float = VISIBLE) -> Process:
    def check() -> Process | None:
        try:
            found = client.status(process_id)
        except NotFound:
            return None
        return found if found.event_count >= events else None

    return wait_for(check, timeout, f"{events} events of {process_id}")  # type: ignore[no-any-return]


# -- pure parts ----------------------------------------------------------------------------------------


def test_structs_match_the_server_documents() -> None:
    names = [field.name for field in msgspec.structs.fields(Process)]
    assert names == [field.name for field in msgspec.structs.fields(models.ProcessStatus)]
    names = [field.name for field in msgspec.structs.fields(LogLine)]
    assert names == [field.name for field in msgspec.structs.fields(models.LogEntry)]


def test_event_ids_are_time_ordered_uuid7() -> None:
    ids = [event_id() for _ in range(5000)]
    assert len(set(ids)) == len(ids)
    assert ids == sorted(ids), "ids made later sort later (the dedupe index only appends)"
    for text in ids[:50]:
        parsed = uuid.UUID(text)
        assert parsed.version == 7
        assert parsed.variant == uuid.RFC_4122
        assert len(text) == 36
    ms = uuid.UUID(ids[0]).int >> 80
    assert abs(ms - time.time() * 1000) < 60_000


@pytest.mark.parametrize("url", ["ftp://host", "localhost:8080", "http://", "not a url"])
def test_a_bad_url_is_refused_at_once(url: str) -> None:
    with pytest.raises(ConfigurationError, match="url"):
        SentinelClient(url)


def test_url_and_token_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SENTINEL_URL", "http://127.0.0.1:9/")
    monkeypatch.setenv("SENTINEL_TOKEN", "abc.def.ghi")
    with SentinelClient() as c:
        assert c.url == "http://127.0.0.1:9"
        assert c.auth is not None
        assert c.auth.token() == "abc.def.ghi"


def test_unreachable_server_is_one_clear_error() -> None:
    with SentinelClient(f"http://127.0.0.1:{free_port()}", "a.b.c", timeout=2) as c:
        with pytest.raises(ConnectionFailed, match="cannot reach Sentinel"):
            c.status("x")
        c.close(timeout=0)


def test_full_buffer_drop_policy_counts_what_it_drops() -> None:
    # A server that is down: nothing leaves the buffer, so it fills.
    c = SentinelClient(f"http://127.0.0.1:{free_port()}", "a.b.c", max_buffer=3, full_policy="drop", max_batch=3)
    for number in range(5):
        c.emit("HEARTBEAT", f"p-{number}")
    stats = c.stats()
    assert (stats.pending, stats.dropped, stats.sent) == (3, 2, 0)
    assert c.close(timeout=0.5) is False
    assert c.stats().dropped == 5, "what was never delivered is counted too"


def test_full_buffer_block_policy_waits_then_drops_after_its_timeout() -> None:
    c = SentinelClient(
        f"http://127.0.0.1:{free_port()}", "a.b.c", max_buffer=2, max_batch=2, full_policy="block", block_timeout=0.3
    )
    c.emit("HEARTBEAT", "a")
    c.emit("HEARTBEAT", "b")
    started = time.monotonic()
    c.emit("HEARTBEAT", "c")
    assert time.monotonic() - started >= 0.25, "a full buffer made emit wait"
    assert c.stats().dropped == 1
    c.close(timeout=0)


class _Scripted(http.server.BaseHTTPRequestHandler):
    """A stand-in server answering POST /events from a script: (status, headers, body)."""

    script: list[tuple[int, dict[str, str], bytes]] = []
    seen: list[tuple[float, bytes]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        type(self).seen.append((time.monotonic(), body))
        status, headers, answer = type(self).script.pop(0) if type(self).script else (202, {}, b'{"accepted":1}')
        self.send_response(status)
        for name, value in {"content-type": "application/problem+json", **headers}.items():
            self.send_header(name, value)
        self.send_header("content-length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def scripted() -> Iterator[tuple[str, type[_Scripted]]]:
    handler = type("Handler", (_Scripted,), {"script": [], "seen": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_is_honoured(scripted: tuple[str, type[_Scripted]], status: int) -> None:
    url, handler = scripted
    problem = json.dumps({"title": "busy", "status": status, "detail": "later"}).encode()
    handler.script = [(status, {"retry-after": "1"}, problem)]
    with SentinelClient(url, "a.b.c") as c:
        ident = c.emit("HEARTBEAT", "p")
        assert c.flush(15)
        assert c.stats().retries == 1
        assert c.stats().sent == 1
    (first, body1), (second, body2) = handler.seen
    assert second - first >= 0.95, "the retry waited for Retry-After"
    assert body1 == body2, "the retry resends the same batch"
    assert json.loads(body2)[0]["event_id"] == ident


def test_413_splits_the_batch(scripted: tuple[str, type[_Scripted]]) -> None:
    url, handler = scripted
    handler.script = [(413, {}, b'{"title":"too large","status":413}')]
    with SentinelClient(url, "a.b.c", flush_interval=60, max_batch=10) as c:
        for number in range(4):
            c.emit("HEARTBEAT", f"p{number}")
        assert c.flush(10)
        assert c.stats().sent == 4
        assert c.stats().rejected == 0
    assert [len(json.loads(body)) for _, body in handler.seen] == [4, 2, 2]


@pytest.mark.slow
def test_client_credentials_fetch_refresh_and_work_against_a_server(tmp_path: Path) -> None:
    key = SigningKey.ec(kid="cc")
    issued: list[str] = []

    class TokenEndpoint(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["content-length"])).decode()
            assert "grant_type=client_credentials" in body
            assert self.headers["authorization"].startswith("Basic ")
            token = key.sign(idp.claims(tenant_id="acme", ttl=60, roles=["sentinel-ingest"]))
            issued.append(token)
            answer = json.dumps({"access_token": token, "expires_in": 2, "token_type": "Bearer"}).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    with JwksServer([key]) as idp:
        endpoint = http.server.ThreadingHTTPServer(("127.0.0.1", 0), TokenEndpoint)
        threading.Thread(target=endpoint.serve_forever, daemon=True).start()
        try:
            credentials = ClientCredentials(
                "svc", "s3cret", token_url=f"http://127.0.0.1:{endpoint.server_address[1]}/token"
            )
            first = credentials.token()
            assert credentials.token() == first, "kept while fresh"
            time.sleep(1.2)  # within the last half of its 2 s life: renewed before it expires
            second = credentials.token()
            assert second != first
            assert credentials.fetches == 2
            assert issued == [first, second]
            # a service's client: tokens from the endpoint, accepted by a real server
            with (
                ApiServer(tmp_path / "data", idp=idp) as server,
                SentinelClient(server.base_url, credentials, flush_interval=0.05) as client,
            ):
                process_id = unique("cc")
                client.emit("STARTED", process_id)
                assert client.flush(VISIBLE)
                assert client.stats().sent == 1
                assert wait_count(client, process_id, 1).tenant_id == "acme"
            discovered = ClientCredentials("svc", "s3cret", issuer=idp.issuer)
            assert discovered._endpoint() == idp.issuer + "/protocol/openid-connect/token"
            discovered.close()
            credentials.close()
        finally:
            endpoint.shutdown()
            endpoint.server_close()


# -- tracked runs against a real server ------------------------------------------------------------------


@pytest.mark.slow
def test_tracked_run_completes_with_its_result(client: SentinelClient) -> None:
    name = unique("Daily contract load")
    with client.track(name, process_type="BATCH", metadata={"day": "2026-11-30"}, heartbeat_interval=0.1) as run:
        assert current_run() is run
        run.progress(40, "load")
        run.log.info("loaded", rows=1200, component="loader")
        wait_for(lambda: client.stats().sent >= 4, VISIBLE, "heartbeats")
        run.result = {"rows": 1200}
    assert current_run() is None
    assert run.outcome == "COMPLETED"
    done = wait_status(client, run.process_id, "COMPLETED")
    assert (done.process_name, done.process_type, done.result) == (name, "BATCH", {"rows": 1200})
    assert (done.current_step, done.progress_percent, done.metadata) == ("load", 40.0, {"day": "2026-11-30"})
    assert done.event_count >= 5, "STARTED, PROGRESS, LOG, heartbeat(s), COMPLETED"
    (line,) = client.logs(run.process_id)
    assert (line.level, line.message, line.details, line.component) == ("INFO", "loaded", {"rows": 1200}, "loader")


@pytest.mark.slow
def test_tracked_run_fails_with_type_message_and_traceback(client: SentinelClient) -> None:
    class LoadError(RuntimeError):
        pass

    with pytest.raises(LoadError), client.track(unique("failing")) as run:
        raise LoadError("ORA-01555 snapshot too old")
    failed = wait_status(client, run.process_id, "FAILED")
    assert failed.error_code is not None
    assert failed.error_code.endswith("LoadError")
    assert failed.error_message == "ORA-01555 snapshot too old"
    # the traceback travels too: it is what the ERROR event carried (the server keeps it with the process)
    assert run.outcome == "FAILED"


@pytest.mark.slow
def test_keyboard_interrupt_cancels_the_run(client: SentinelClient) -> None:
    with pytest.raises(KeyboardInterrupt), client.track(unique("interrupted")) as run:
        raise KeyboardInterrupt
    cancelled = wait_status(client, run.process_id, "CANCELLED")
    assert cancelled.error_message is not None
    assert "KeyboardInterrupt" in cancelled.error_message


@pytest.mark.slow
def test_decorator_tracks_each_call_as_its_own_run(client: SentinelClient) -> None:
    kind = unique("DECORATED")

    @client.track("decorated job", process_type=kind)
    def job(rows: int) -> dict[str, int]:
        run = current_run()
        assert run is not None
        run.progress(50, "half")
        if rows < 0:
            raise ValueError("negative rows")
        return {"rows": rows}

    assert job(7) == {"rows": 7}
    assert job(8) == {"rows": 8}
    with pytest.raises(ValueError, match="negative"):
        job(-1)
    found = wait_for(
        lambda: (got := list(client.processes(process_type=kind))) and len(got) == 3 and got,
        VISIBLE,
        "three decorated runs",
    )
    for process in found:
        wait_status(client, process.process_id, "COMPLETED", "FAILED")
    ended = sorted((client.status(p.process_id).status, str(client.status(p.process_id).result)) for p in found)
    assert ended == [("COMPLETED", "{'rows': 7}"), ("COMPLETED", "{'rows': 8}"), ("FAILED", "None")]


@pytest.mark.slow
def test_async_client_tracks_and_reads(api: ApiServer, token: str) -> None:
    async def scenario() -> None:
        async with AsyncSentinelClient(api.base_url, token, flush_interval=0.05) as client:
            async with client.track(unique("async run"), heartbeat_interval=0.1) as run:
                run.progress(10, "start")
                run.log.warn("careful")
                await asyncio.sleep(0.3)
                run.result = {"ok": True}

            @client.track("async decorated")
            async def job() -> int:
                await asyncio.sleep(0.05)
                return 3

            assert await job() == 3

            async def cancelled_run() -> None:
                async with client.track(unique("async cancelled")) as inner:
                    holder.append(inner)
                    await asyncio.sleep(60)

            holder: list[Any] = []
            task = asyncio.create_task(cancelled_run())
            await asyncio.sleep(0.2)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

            for process_id, status in ((run.process_id, "COMPLETED"), (holder[0].process_id, "CANCELLED")):
                for _ in range(400):
                    try:
                        found = await client.status(process_id)
                    except NotFound:
                        found = None
                    if found is not None and found.status == status:
                        break
                    await asyncio.sleep(0.05)
                assert found is not None, process_id
                assert found.status == status, found
            done = await client.status(run.process_id)
            assert done.result == {"ok": True}
            assert done.event_count >= 4
            assert [line.message async for line in client.logs(run.process_id)] == ["careful"]
            assert [line.message async for line in client.logs(run.process_id, follow=True)] == ["careful"]
            assert run.process_id in [p.process_id async for p in client.processes(status="COMPLETED")]
            with pytest.raises(NotFound):
                await client.status(unique("absent"))

    asyncio.run(scenario())


# -- sending -------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_one_invalid_event_is_isolated_reported_once_and_never_retried(api: ApiServer, token: str) -> None:
    refused: list[Any] = []
    process_id = unique("isolate")
    with SentinelClient(api.base_url, token, flush_interval=60, on_reject=refused.append) as client:
        client.emit("STARTED", process_id, process_name="isolation")
        bad = client.emit("LOG", process_id, level="LOUD", message="not a level")
        client.emit("LOG", process_id, level="INFO", message="kept")
        client.emit("PROGRESS", process_id, percent=250)
        client.emit("COMPLETED", process_id)
        assert client.flush(VISIBLE)
        stats = client.stats()
        assert (stats.sent, stats.rejected, stats.retries, stats.pending) == (3, 2, 0, 0)
        assert next(r.event.get("event_id") for r in refused) == bad
        assert [(r.status, r.code) for r in refused] == [(422, "bad_field"), (422, "bad_field")]
        assert "level" in refused[0].reason
        assert "percent" in refused[1].reason
        assert client.flush(5)
        assert client.stats().rejected == 2, "reported once, not again"
        assert len(client.rejections) == 2
        done = wait_status(client, process_id, "COMPLETED")
        assert done.event_count == 3
        assert [line.message for line in client.logs(process_id)] == ["kept"]


@pytest.mark.slow
def test_retries_across_a_server_restart_never_double_an_event(tmp_path: Path) -> None:
    with ApiServer(tmp_path / "data", dev=True) as server:
        token = server.dev_token("acme")
        process_id = unique("restart")
        client = SentinelClient(server.base_url, token, flush_interval=0.05, max_retry_delay=1.0)
        try:
            client.emit("STARTED", process_id)
            for number in range(20):
                client.emit("LOG", process_id, level="INFO", message=f"before {number}")
            assert client.flush(VISIBLE)
            server.stop()
            for number in range(30):
                client.emit("LOG", process_id, level="INFO", message=f"during {number}")
            wait_for(lambda: client.stats().retries >= 2, VISIBLE, "retries while the server is down")
            server.start()
            client.emit("COMPLETED", process_id)
            assert client.flush(60)
            stats = client.stats()
            assert (stats.sent, stats.dropped, stats.rejected) == (52, 0, 0)
            done = wait_status(client, process_id, "COMPLETED")
            assert (done.event_count, done.log_count) == (52, 50)
            messages = [line.message for line in client.logs(process_id)]
            assert sorted(messages) == sorted([f"before {n}" for n in range(20)] + [f"during {n}" for n in range(30)])
            assert len(set(messages)) == len(messages) == 50
        finally:
            client.close()


@pytest.mark.slow
def test_a_resent_batch_is_stored_once(client: SentinelClient, api: ApiServer, token: str) -> None:
    """The server never answered (from the client's side): the same ids go again, and count once."""
    process_id = unique("resend")
    ids = [event_id() for _ in range(3)]
    body = [
        {"event_id": ids[0], "event_type": "STARTED", "process_id": process_id, "timestamp": "2026-11-30T10:00:00Z"},
        {"event_id": ids[1], "event_type": "HEARTBEAT", "process_id": process_id, "timestamp": "2026-11-30T10:00:01Z"},
        {"event_id": ids[2], "event_type": "HEARTBEAT", "process_id": process_id, "timestamp": "2026-11-30T10:00:02Z"},
    ]
    for _ in range(3):
        for item in body:
            client.send(item)
        assert client.flush(VISIBLE)
    assert wait_count(client, process_id, 3).event_count == 3
    time.sleep(1.0)  # time for a doubled event to show, if one had been stored
    assert client.status(process_id).event_count == 3


def producer_script(tmp_path: Path, source: str) -> tuple[list[str], dict[str, str]]:
    """A producer program in a file of its own: its command line and a clean environment."""
    script = tmp_path / f"producer-{uuid.uuid4().hex[:8]}.py"
    script.write_text(textwrap.dedent(source))
    env = {k: v for k, v in os.environ.items() if not k.startswith("SENTINEL_")}
    return [sys.executable, str(script)], env


@pytest.mark.slow
def test_sigkill_of_a_tracked_producer_leads_to_stalled(api: ApiServer, token: str, tmp_path: Path) -> None:
    process_id = unique("killed")
    argv, env = producer_script(
        tmp_path,
        f"""
        import sys, time
        from sentinel.client import SentinelClient
        client = SentinelClient({api.base_url!r}, {token!r}, flush_interval=0.05)
        with client.track("doomed", process_id={process_id!r}, heartbeat_interval=0.2) as run:
            run.progress(10, "working")
            print("started", flush=True)
            time.sleep(600)
        """,
    )
    producer = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE)
    try:
        assert producer.stdout is not None
        assert producer.stdout.readline().strip() == b"started"
        with SentinelClient(api.base_url, token) as reader:
            wait_count(reader, process_id, 5)  # heartbeats arrive
            assert reader.status(process_id).status == "RUNNING"
            producer.send_signal(signal.SIGKILL)
            producer.wait(10)
            stalled = wait_status(reader, process_id, "STALLED", timeout=STALL_SECONDS + 30)
            assert stalled.ended_at is None
            assert stalled.current_step == "working"
    finally:
        if producer.poll() is None:
            producer.kill()
            producer.wait(10)
        if producer.stdout is not None:
            producer.stdout.close()


@pytest.mark.slow
def test_events_still_buffered_at_exit_are_delivered(api: ApiServer, token: str, tmp_path: Path) -> None:
    process_id = unique("at-exit")
    argv, env = producer_script(
        tmp_path,
        f"""
        from sentinel.client import SentinelClient
        client = SentinelClient({api.base_url!r}, {token!r}, flush_interval=3600)
        client.emit("STARTED", {process_id!r})
        client.emit("COMPLETED", {process_id!r}, result={{"exit": "without close"}})
        """,
    )
    subprocess.run(argv, env=env, check=True, timeout=60)
    with SentinelClient(api.base_url, token) as reader:
        assert wait_status(reader, process_id, "COMPLETED").result == {"exit": "without close"}


# -- logging -------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_logging_handler_ships_records_of_the_current_run(client: SentinelClient) -> None:
    from opentelemetry.sdk.trace import TracerProvider

    logger = logging.getLogger(unique("app").replace("-", "_"))
    logger.setLevel(1)
    logger.propagate = False
    handler = client.handler()
    logger.addHandler(handler)
    catch_all = unique("catch-all")
    # On the root logger, with a process for records outside a run: the client's own records (httpx
    # logs each request the sender makes, on the sender's thread) must still stay out, or they loop.
    root_handler = client.handler(process_id=catch_all)
    logging.getLogger().addHandler(root_handler)
    httpx_logger = logging.getLogger("httpx")
    httpx_level = httpx_logger.level
    httpx_logger.setLevel(logging.INFO)  # httpx logs every request the sender makes, on the sender's thread
    tracer = TracerProvider().get_tracer("test")
    before = client.stats().sent
    try:
        logger.info("outside any run")  # no run, no process_id: nowhere to go
        assert client.flush(VISIBLE)
        assert client.stats().sent == before
        with client.track(unique("logged")) as run, tracer.start_as_current_span("load") as span:
            logger.debug("rows %d", 5, extra={"batch": 3, "table": "contracts"})
            logger.warning("slow")
            logger.log(5, "very fine")
            try:
                raise KeyError("missing")
            except KeyError:
                logger.exception("lookup failed")
            logger.critical("giving up")
        context = span.get_span_context()
    finally:
        logger.removeHandler(handler)
        logging.getLogger().removeHandler(root_handler)
        httpx_logger.setLevel(httpx_level)
    wait_status(client, run.process_id, "COMPLETED")
    lines = list(client.logs(run.process_id))
    assert [(line.level, line.message) for line in lines] == [
        ("DEBUG", "rows 5"),
        ("WARN", "slow"),
        ("TRACE", "very fine"),
        ("ERROR", "lookup failed"),
        ("FATAL", "giving up"),
    ]
    first = lines[0]
    assert first.details is not None
    assert (first.details["batch"], first.details["table"]) == (3, "contracts")
    assert first.component == logger.name
    assert lines[3].details is not None
    assert "KeyError: 'missing'" in lines[3].details["exception"]
    assert client.flush(VISIBLE)
    with pytest.raises(NotFound):
        client.status(catch_all)  # nothing of the client's own was shipped
    assert {(line.trace_id, line.span_id) for line in lines} == {
        (f"{context.trace_id:032x}", f"{context.span_id:016x}")
    }


# -- reading -------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_processes_iterator_follows_cursors_and_filters(client: SentinelClient) -> None:
    kind = unique("PAGED")
    ids = [unique("paged") for _ in range(7)]
    for process_id in ids:
        client.emit("STARTED", process_id, process_type=kind)
    client.emit("COMPLETED", ids[0])
    assert client.flush(VISIBLE)
    wait_status(client, ids[0], "COMPLETED")
    wait_for(lambda: len(list(client.processes(process_type=kind))) == 7, VISIBLE, "seven processes")
    walked = [p.process_id for p in client.processes(process_type=kind, page_size=2)]
    assert sorted(walked) == sorted(ids)
    assert len(walked) == 7
    running = {p.process_id for p in client.processes(process_type=kind, status=["RUNNING", "STALLED"])}
    assert running == set(ids[1:])
    assert [p.process_id for p in client.processes(process_type=kind, status="COMPLETED")] == [ids[0]]


@pytest.mark.slow
def test_logs_are_paged_and_filtered(client: SentinelClient) -> None:
    process_id = unique("paged-logs")
    client.emit("STARTED", process_id)
    for number in range(12):
        client.emit("LOG", process_id, level="ERROR" if number % 4 == 0 else "DEBUG", message=f"line {number}")
    assert client.flush(VISIBLE)
    wait_count(client, process_id, 13)
    assert [line.message for line in client.logs(process_id, page_size=5)] == [f"line {n}" for n in range(12)]
    assert [line.message for line in client.logs(process_id, level="ERROR")] == ["line 0", "line 4", "line 8"]


@pytest.mark.slow
def test_reading_errors_carry_the_servers_reasons(api: ApiServer, client: SentinelClient) -> None:
    with pytest.raises(NotFound, match="no such process"):
        client.status(unique("absent"))
    with pytest.raises(NotFound):
        list(client.logs(unique("absent"), follow=True))
    with SentinelClient(api.base_url, "not.a.jwt") as stranger, pytest.raises(Unauthorized, match="401"):
        list(stranger.processes())


@pytest.mark.slow
def test_follow_survives_a_server_restart_without_losing_or_repeating_a_line(tmp_path: Path) -> None:
    with ApiServer(tmp_path / "data", dev=True) as server:
        token = server.dev_token("acme")
        process_id = unique("follow")
        producer = SentinelClient(server.base_url, token, flush_interval=0.05, max_retry_delay=1.0)
        reader = SentinelClient(server.base_url, token)
        got: list[LogLine] = []
        failure: list[BaseException] = []

        def follow() -> None:
            try:
                got.extend(reader.logs(process_id, follow=True))
            except BaseException as exc:
                failure.append(exc)

        try:
            producer.emit("STARTED", process_id)
            for number in range(10):
                producer.emit("LOG", process_id, level="INFO", message=f"line {number:03d}")
            assert producer.flush(VISIBLE)
            wait_count(reader, process_id, 11)
            thread = threading.Thread(target=follow, daemon=True)
            thread.start()
            wait_for(lambda: len(got) >= 10 or failure, VISIBLE, "the backlog")
            server.stop()  # every open stream is dropped
            for number in range(10, 25):
                producer.emit("LOG", process_id, level="INFO", message=f"line {number:03d}")
            server.start()
            assert producer.flush(60)
            wait_for(lambda: len(got) >= 25 or failure, 60, "lines after the restart")
            for number in range(25, 30):
                producer.emit("LOG", process_id, level="INFO", message=f"line {number:03d}")
            producer.emit("COMPLETED", process_id)
            assert producer.flush(VISIBLE)
            thread.join(60)
            assert not thread.is_alive(), "the stream ends once the process has ended"
            assert not failure, failure
            assert [line.message for line in got] == [f"line {n:03d}" for n in range(30)]
            assert [line.seq for line in got] == sorted({line.seq for line in got})
        finally:
            producer.close()
            reader.close()


def test_sender_rejects_are_never_retried_on_other_4xx(scripted: tuple[str, type[_Scripted]]) -> None:
    url, handler = scripted
    handler.script = [(400, {}, b'{"title":"Bad Request","status":400,"detail":"body is not valid JSON"}')]
    reasons: list[Any] = []
    sender = Sender(lambda body: _post(url, body), flush_interval=0.01, on_reject=reasons.append)
    sender.put(b'{"event_id":"x"}')
    assert sender.flush(10)
    assert sender.stats().rejected == 1
    assert len(handler.seen) == 1
    assert reasons[0].status == 400
    assert "not valid JSON" in reasons[0].reason
    sender.close(1)


def _post(url: str, body: bytes) -> Any:
    import httpx

    return httpx.post(f"{url}/events", content=body, headers={"content-type": "application/json"})


@pytest.mark.slow
def test_process_ids_with_reserved_characters_are_read_back(client: SentinelClient) -> None:
    process_id = unique("job/with spaces?and#hash%2F")
    client.emit("STARTED", process_id)
    client.emit("LOG", process_id, level="INFO", message="odd id")
    assert client.flush(VISIBLE)
    assert wait_count(client, process_id, 2).process_id == process_id
    assert [line.message for line in client.logs(process_id)] == ["odd id"]
    with pytest.raises(ValueError, match="process_id"):
        client.status("")


# -- following a process that is not stored yet; ids that are dot segments ------------------------------

README = Path(__file__).resolve().parent.parent / "README.md"


def readme_python_example() -> str:
    """The code block of the README's "Report from Python" section, as written."""
    section = README.read_text(encoding="utf-8").split("## Report from Python", 1)[1]
    return section.split("```python\n", 1)[1].split("```", 1)[0]


@pytest.mark.slow
def test_the_readme_python_example_runs_as_written(api: ApiServer, token: str, tmp_path: Path) -> None:
    """The follow starts right after the run's events were accepted (202), before the ingest stored
    them: the client waits for the process to appear instead of failing with 404."""
    script = tmp_path / "example.py"
    script.write_text(readme_python_example(), encoding="utf-8")
    env = {**os.environ, "SENTINEL_URL": api.base_url, "SENTINEL_TOKEN": token, "NO_PROXY": "127.0.0.1"}
    for attempt in range(5):
        done = subprocess.run(
            [sys.executable, str(script)], env=env, capture_output=True, timeout=120, check=False, cwd=tmp_path
        )
        assert done.returncode == 0, (attempt, done.stderr.decode())
        assert "Traceback" not in done.stderr.decode()
        assert done.stdout.decode().splitlines()[-1] == "INFO loaded", (attempt, done.stdout.decode())


@pytest.mark.slow
def test_follow_waits_for_a_process_that_is_not_stored_yet(client: SentinelClient, api: ApiServer, token: str) -> None:
    process_id = unique("late")
    got: list[str] = []
    failures: list[BaseException] = []

    def follow() -> None:
        try:
            got.extend(line.message for line in client.logs(process_id, follow=True, appear_within=VISIBLE))
        except BaseException as exc:  # handed to the test thread
            failures.append(exc)

    follower = threading.Thread(target=follow)
    follower.start()
    time.sleep(1.0)  # the follower is asking for a process nobody has reported yet
    client.emit("STARTED", process_id)
    client.emit("LOG", process_id, level="INFO", message="finally")
    client.emit("COMPLETED", process_id)
    assert client.flush(VISIBLE)
    follower.join(VISIBLE * 2)
    assert not follower.is_alive()
    assert failures == []
    assert got == ["finally"]

    async def async_follow() -> list[str]:
        async with AsyncSentinelClient(api.base_url, token, flush_interval=0.05) as aclient:
            other = unique("late-async")
            aclient.emit("STARTED", other)
            aclient.emit("LOG", other, level="INFO", message="async too")
            aclient.emit("COMPLETED", other)  # followed at once: accepted (202) is not yet stored
            return [line.message async for line in aclient.logs(other, follow=True)]

    assert asyncio.run(async_follow()) == ["async too"]


@pytest.mark.slow
def test_follow_of_a_process_that_never_appears_is_not_found_after_the_wait(api: ApiServer, token: str) -> None:
    absent = unique("never")
    with SentinelClient(api.base_url, token) as client:
        started = time.monotonic()
        with pytest.raises(NotFound, match="waited 1s for it to appear"):
            list(client.logs(absent, follow=True, appear_within=1))
        assert time.monotonic() - started >= 1
        with pytest.raises(NotFound, match="no such process"):
            list(client.logs(absent, follow=True, appear_within=0))
        with pytest.raises(ValueError, match="appear_within"):
            list(client.logs(absent, follow=True, appear_within=-1))

    async def scenario() -> None:
        async with AsyncSentinelClient(api.base_url, token) as aclient:
            with pytest.raises(NotFound, match=r"waited 0\.5s for it to appear"):
                [line async for line in aclient.logs(absent, follow=True, appear_within=0.5)]

    asyncio.run(scenario())


ODD_IDS = [".", "..", "...", "./x", "../..", "a/../b", "a/./b", "%2E%2E", "%2e", "..%2F", "?", "#", "?a=b#c"]
ODD_IDS += [" ", " .. ", "a b", "ü/é", "日本語", "%", "%zz", "x/", "/x"]
# Ids made only of slashes reach /status; the server's /logs route does not match them (reported).
SLASH_IDS = ["/", "//"]


@pytest.mark.slow
def test_every_path_the_client_builds_reaches_odd_process_ids(api: ApiServer) -> None:
    """Dot segments, slashes, '%', '?', '#', spaces and Unicode reach the server as the id itself, on
    status, paged logs and the follow stream, from both clients (a fresh tenant: '.' is one id)."""
    token = api.dev_token(unique("odd")[:40])
    with SentinelClient(api.base_url, token, flush_interval=0.05) as client:
        for process_id in SLASH_IDS:
            client.emit("STARTED", process_id)
        for process_id in ODD_IDS:
            client.emit("STARTED", process_id)
            client.emit("LOG", process_id, level="INFO", message=f"line of {process_id}")
            client.emit("COMPLETED", process_id)
        assert client.flush(VISIBLE)
        for process_id in ODD_IDS:
            assert wait_status(client, process_id, "COMPLETED").process_id == process_id
            assert [line.message for line in client.logs(process_id)] == [f"line of {process_id}"]
            assert [line.message for line in client.logs(process_id, follow=True)] == [f"line of {process_id}"]
        for process_id in SLASH_IDS:
            assert wait_status(client, process_id, "RUNNING").process_id == process_id

    async def scenario() -> None:
        async with AsyncSentinelClient(api.base_url, token) as aclient:
            for process_id in ODD_IDS:
                assert (await aclient.status(process_id)).process_id == process_id
                assert [line.message async for line in aclient.logs(process_id)] == [f"line of {process_id}"]
                followed = [line.message async for line in aclient.logs(process_id, follow=True)]
                assert followed == [f"line of {process_id}"]

    asyncio.run(scenario())
