"""OpenTelemetry traces (SPEC: ``OTEL_*`` variables; no exporter configured -> tracing off).

In this process: one SDK tracer provider with an in-memory exporter, installed once for the module through
``sentinel.telemetry.tracing.install_provider`` (OpenTelemetry lets a process set its global provider only
once), read by the in-process app (Litestar's TestClient) and by a real ``IngestWorker`` over a SQLite file.
End to end: a real ``sentinel serve --dev`` exporting over OTLP/HTTP to a receiver served by this module.
Waits are bounded polls; nothing here asserts a duration.
"""

from __future__ import annotations

import contextlib
import gzip
import http.server
import json
import os
import secrets
import subprocess
import sys
import threading
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest
from apiserver import ApiServer, event, hang_up_mid_body, unique, wait_for
from helpers import enqueue, make_settings, run_worker_until_idle
from helpers import event as queue_event
from litestar.exceptions import LitestarDeprecationWarning
from litestar.testing import TestClient
from opentelemetry import trace
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

import sentinel
from sentinel.api.app import create_app
from sentinel.config import Settings, load_settings
from sentinel.security import DevAuthority
from sentinel.store.sqlite import SqliteStore
from sentinel.telemetry import tracing

T = TypeVar("T")

BOUND = 20.0
STATUS_TEMPLATES = ("/status/{process_id}", "/status/{process_id:str}")


def poll(predicate: Callable[[], T], what: str, timeout: float = BOUND) -> T:
    return wait_for(predicate, timeout, what, interval=0.01)


def new_trace() -> tuple[str, str]:
    """A random W3C trace id (32 hex) and span id (16 hex)."""
    return secrets.token_hex(16), secrets.token_hex(8)


def traceparent(trace_id: str, span_id: str) -> str:
    return f"00-{trace_id}-{span_id}-01"


# -- in this process: one provider for the module -------------------------------------------------


@pytest.fixture(scope="module")
def exporter() -> Iterator[InMemorySpanExporter]:
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    with pytest.MonkeyPatch.context() as patch:
        # Whatever this module turns on is turned off again for the modules that run after it.
        patch.setattr(tracing, "_enabled", tracing.enabled())
        tracing.install_provider(provider)
        assert tracing.enabled()
        assert trace.get_tracer_provider() is provider, (
            "another tracer provider was installed earlier in this process; OpenTelemetry keeps the first"
        )
        yield memory
        provider.shutdown()


@pytest.fixture
def spans(exporter: InMemorySpanExporter) -> InMemorySpanExporter:
    exporter.clear()
    return exporter


@dataclass
class InProcess:
    client: TestClient[Any]
    settings: Settings
    token: str


@pytest.fixture(scope="module")
def app_client(exporter: InMemorySpanExporter, tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcess]:
    data = tmp_path_factory.mktemp("tracing-app") / "data"
    settings = load_settings({"SENTINEL_DATA_DIR": str(data), "SENTINEL_FLUSH_INTERVAL_MS": "10"}, dev_mode=True)
    store = SqliteStore(settings.sqlite_path)
    store.migrate()
    store.close()
    token = DevAuthority(settings.data_dir, tenant_claim=settings.tenant_claim).mint("acme")
    # Tracing is on (the provider is installed) before the app is built: it adds the tracing middleware.
    # Litestar >= 2.2x warns, while building the app, that the handlers' inferred parameter style will
    # stop working in Litestar 3 (reported, not a tracing matter); nothing else may warn.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=LitestarDeprecationWarning)
        app = create_app(settings)
    with TestClient(app) as client:
        yield InProcess(client, settings, token)


def finished(spans: InMemorySpanExporter, name: str | Callable[[ReadableSpan], bool]) -> list[ReadableSpan]:
    match = (lambda span: span.name == name) if isinstance(name, str) else name
    return [span for span in spans.get_finished_spans() if match(span)]


def server_spans(spans: InMemorySpanExporter) -> list[ReadableSpan]:
    return finished(spans, lambda span: span.kind == SpanKind.SERVER)


def test_server_span_continues_the_callers_trace(app_client: InProcess, spans: InMemorySpanExporter) -> None:
    trace_id, parent_id = new_trace()
    process_id = unique("absent")
    answer = app_client.client.get(
        f"/status/{process_id}",
        headers={"Authorization": f"Bearer {app_client.token}", "traceparent": traceparent(trace_id, parent_id)},
    )
    assert answer.status_code == 404, answer.text

    [server] = poll(lambda: server_spans(spans), "the server span")
    assert server.kind == SpanKind.SERVER
    assert server.context.trace_id == int(trace_id, 16)
    assert server.parent is not None
    assert server.parent.span_id == int(parent_id, 16)
    assert server.parent.trace_id == int(trace_id, 16)
    assert server.parent.is_remote
    method, _, route = server.name.partition(" ")
    assert method == "GET", server.name
    assert route in STATUS_TEMPLATES, server.name
    attributes = dict(server.attributes or {})
    assert attributes["http.response.status_code"] == 404
    assert attributes["http.request.method"] == "GET"
    assert attributes["http.route"] == route
    assert attributes["url.path"] == f"/status/{process_id}"  # as sent, not as the /status mount rewrote it
    assert server.status.status_code != StatusCode.ERROR  # a 404 is the caller's, not the server's, error

    # The store call made for the request is a client span below the server span, in the same trace.
    children = finished(spans, lambda span: span.parent is not None and span.parent.span_id == server.context.span_id)
    assert children, [span.name for span in spans.get_finished_spans()]
    db = [span for span in children if span.kind == SpanKind.CLIENT]
    assert db, [(span.name, span.kind) for span in children]
    for span in db:
        assert span.context.trace_id == int(trace_id, 16)
        assert dict(span.attributes or {})["db.system.name"] == "sqlite"
        assert dict(span.attributes or {})["db.operation.name"] == span.name


def test_server_span_without_traceparent_starts_a_trace(app_client: InProcess, spans: InMemorySpanExporter) -> None:
    answer = app_client.client.get("/processes", headers={"Authorization": f"Bearer {app_client.token}"})
    assert answer.status_code == 200, answer.text
    [server] = poll(lambda: server_spans(spans), "the server span")
    assert server.parent is None
    assert server.name == "GET /processes"
    assert dict(server.attributes or {})["http.response.status_code"] == 200
    assert server.context.trace_id != 0


def test_server_span_per_request_of_an_event_post(app_client: InProcess, spans: InMemorySpanExporter) -> None:
    trace_id, parent_id = new_trace()
    answer = app_client.client.post(
        "/events",
        json=[event("STARTED", unique("p"))],
        headers={"Authorization": f"Bearer {app_client.token}", "traceparent": traceparent(trace_id, parent_id)},
    )
    assert answer.status_code == 202, answer.text
    [server] = poll(lambda: server_spans(spans), "the server span")
    assert server.name == "POST /events"
    assert server.context.trace_id == int(trace_id, 16)
    assert server.parent is not None
    assert server.parent.span_id == int(parent_id, 16)
    assert dict(server.attributes or {})["http.response.status_code"] == 202


# -- the ingest batch span -----------------------------------------------------------------------------


def test_ingest_batch_span_links_to_producer_traces(spans: InMemorySpanExporter, tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data")
    store = SqliteStore(settings.sqlite_path)
    store.migrate()
    try:
        (trace_a, span_a), (trace_b, span_b) = new_trace(), new_trace()
        log_a = queue_event(event_type="LOG", process_id="traced", trace_id=trace_a, span_id=span_a)
        log_b = queue_event(event_type="LOG", process_id="traced", trace_id=trace_b, span_id=span_b)
        items = [
            queue_event(event_type="STARTED", process_id="traced"),
            log_a,
            log_b,
            queue_event(event_type="HEARTBEAT", process_id="traced"),
            queue_event(event_type="LOG", process_id="traced"),  # no trace: no link
        ]
        enqueue(store, items)
        run_worker_until_idle(store, settings)
    finally:
        store.close()

    batches = finished(spans, "ingest.batch")
    assert batches, [span.name for span in spans.get_finished_spans()]
    total = 0
    links: dict[tuple[int, int], dict[str, Any]] = {}
    for batch in batches:
        attributes = dict(batch.attributes or {})
        assert attributes["sentinel.batch.outcome"] == "committed", attributes
        total += int(attributes["sentinel.batch.messages"])
        for link in batch.links:
            links[(link.context.trace_id, link.context.span_id)] = dict(link.attributes or {})
        # The commit is a database client span below the batch span.
        commits = finished(
            spans,
            lambda span, b=batch: (
                span.name == "commit_batch" and span.parent is not None and span.parent.span_id == b.context.span_id
            ),
        )
        assert len(commits) == 1, [(span.name, span.parent) for span in spans.get_finished_spans()]
        assert commits[0].kind == SpanKind.CLIENT
        assert commits[0].context.trace_id == batch.context.trace_id
        assert dict(commits[0].attributes or {})["db.system.name"] == "sqlite"
    assert total == len(items)
    assert sum(int(dict(b.attributes or {})["sentinel.batch.events"]) for b in batches) == len(items)
    assert links == {
        (int(trace_a, 16), int(span_a, 16)): {"sentinel.event_id": log_a["event_id"]},
        (int(trace_b, 16), int(span_b, 16)): {"sentinel.event_id": log_b["event_id"]},
    }
    # The batch span starts a trace of its own: it is linked to the producers' traces, not a child of one.
    assert all(batch.context.trace_id not in (int(trace_a, 16), int(trace_b, 16)) for batch in batches)


def test_ingest_batch_span_counts_dead_letters_and_caps_links(spans: InMemorySpanExporter, tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data", SENTINEL_BATCH_SIZE="1000")
    store = SqliteStore(settings.sqlite_path)
    store.migrate()
    shared_trace, shared_span = new_trace()
    try:
        items: list[Any] = [
            queue_event(
                event_type="LOG", process_id="many", trace_id=secrets.token_hex(16), span_id=secrets.token_hex(8)
            )
            for _ in range(tracing.MAX_LINKS + 10)
        ]
        # The same producer span named twice is one link.
        items += [
            queue_event(event_type="LOG", process_id="same", trace_id=shared_trace, span_id=shared_span)
            for _ in range(2)
        ]
        items.append(b"{not json")
        enqueue(store, items)
        run_worker_until_idle(store, settings)
    finally:
        store.close()
    batches = finished(spans, "ingest.batch")
    assert batches
    assert sum(int(dict(b.attributes or {})["sentinel.batch.messages"]) for b in batches) == len(items)
    assert sum(int(dict(b.attributes or {})["sentinel.batch.dead_letters"]) for b in batches) == 1
    assert sum(int(dict(b.attributes or {})["sentinel.batch.events"]) for b in batches) == len(items) - 1
    for batch in batches:
        assert len(batch.links) <= tracing.MAX_LINKS
        keys = [(link.context.trace_id, link.context.span_id) for link in batch.links]
        assert len(keys) == len(set(keys)), "a producer span is linked once per batch"
    # More distinct producer spans than the cap: every batch links as many as it may.
    assert sum(len(batch.links) for batch in batches) >= tracing.MAX_LINKS
    if len(batches) == 1:
        assert len(batches[0].links) == tracing.MAX_LINKS


# -- tracing_requested --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, False),
        ({"OTEL_SERVICE_NAME": "x", "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": "http://127.0.0.1:4318"}, False),
        ({"OTEL_TRACES_EXPORTER": "none"}, False),
        ({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, False),
        ({"OTEL_SDK_DISABLED": "true"}, False),
        ({"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "otlp"}, False),
        ({"OTEL_SDK_DISABLED": "TRUE", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, False),
        ({"OTEL_TRACES_EXPORTER": "otlp"}, True),
        ({"OTEL_TRACES_EXPORTER": "console"}, True),
        ({"OTEL_SDK_DISABLED": "false", "OTEL_TRACES_EXPORTER": "otlp"}, True),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318/v1/traces"}, True),
    ],
)
def test_tracing_requested(env: dict[str, str], expected: bool) -> None:
    assert tracing.tracing_requested(env) is expected


def test_tracing_requested_reads_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "OTEL_SDK_DISABLED",
        "OTEL_TRACES_EXPORTER",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    ):
        monkeypatch.delenv(name, raising=False)
    assert tracing.tracing_requested() is False
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "otlp")
    assert tracing.tracing_requested() is True
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    assert tracing.tracing_requested() is False


# -- end to end over OTLP/HTTP ------------------------------------------------------------------------


@dataclass
class ReceivedSpan:
    service: str | None
    name: str
    kind: int
    trace_id: str
    span_id: str
    parent_span_id: str
    attributes: dict[str, Any]
    links: list[tuple[str, str]]
    status: int  # STATUS_CODE_UNSET 0, OK 1, ERROR 2


def _value(any_value: Any) -> Any:
    kind = any_value.WhichOneof("value")
    return None if kind is None else getattr(any_value, kind)


@dataclass
class OtlpReceiver:
    """An OTLP/HTTP (protobuf) trace receiver on 127.0.0.1: ``POST /v1/traces``."""

    spans: list[ReceivedSpan] = field(default_factory=list)
    requests: int = 0
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def accept(self, body: bytes) -> None:
        message = ExportTraceServiceRequest()
        message.ParseFromString(body)
        found = []
        for resource_spans in message.resource_spans:
            resource = {a.key: _value(a.value) for a in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    found.append(
                        ReceivedSpan(
                            service=resource.get("service.name"),
                            name=span.name,
                            kind=span.kind,
                            trace_id=span.trace_id.hex(),
                            span_id=span.span_id.hex(),
                            parent_span_id=span.parent_span_id.hex(),
                            attributes={a.key: _value(a.value) for a in span.attributes},
                            links=[(link.trace_id.hex(), link.span_id.hex()) for link in span.links],
                            status=span.status.code,
                        )
                    )
        with self.lock:
            self.requests += 1
            self.spans.extend(found)

    def snapshot(self) -> list[ReceivedSpan]:
        with self.lock:
            return list(self.spans)


class _OtlpHandler(http.server.BaseHTTPRequestHandler):
    server: _OtlpServer
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.headers.get("Content-Encoding", "").lower() == "gzip":
            body = gzip.decompress(body)
        if self.path != "/v1/traces":
            self.server.receiver.errors.append(f"POST {self.path}")
            self._answer(404, b"")
            return
        try:
            self.server.receiver.accept(body)
        except Exception as exc:  # reported by the test, answered as a bad request
            self.server.receiver.errors.append(repr(exc))
            self._answer(400, b"")
            return
        self._answer(200, ExportTraceServiceResponse().SerializeToString())

    def _answer(self, status: int, payload: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        return


class _OtlpServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, receiver: OtlpReceiver) -> None:
        self.receiver = receiver
        super().__init__(("127.0.0.1", 0), _OtlpHandler)


@contextlib.contextmanager
def otlp_receiver() -> Iterator[tuple[OtlpReceiver, str]]:
    receiver = OtlpReceiver()
    server = _OtlpServer(receiver)
    thread = threading.Thread(target=server.serve_forever, name="otlp-receiver", daemon=True)
    thread.start()
    try:
        yield receiver, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def spans_named(spans: Sequence[ReceivedSpan], predicate: Callable[[ReceivedSpan], bool]) -> list[ReceivedSpan]:
    return [span for span in spans if predicate(span)]


@pytest.mark.slow
def test_spans_exported_over_otlp_http_by_a_real_server(tmp_path: Path) -> None:
    request_trace, request_parent = new_trace()
    event_trace, event_span = new_trace()
    head_trace, head_parent = new_trace()
    gone_trace, gone_parent = new_trace()
    process_id = unique("otlp")
    with otlp_receiver() as (receiver, endpoint):
        api = ApiServer(
            tmp_path / "data",
            dev=True,
            workers=2,
            env={
                "OTEL_TRACES_EXPORTER": "otlp",
                "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
                "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
                "OTEL_BSP_SCHEDULE_DELAY": "200",
                "OTEL_SERVICE_NAME": "sentinel-test",
            },
        )
        # The server's processes run ``python -m sentinel``: start them where no ``sentinel`` folder lies.
        with contextlib.chdir(tmp_path):
            api.start()
            try:
                token = api.dev_token("acme")
            except BaseException:
                api.kill()
                raise
        try:
            with api.client(token) as http:
                answer = http.get(
                    f"/status/{process_id}", headers={"traceparent": traceparent(request_trace, request_parent)}
                )
                assert answer.status_code == 404, answer.text
                log = event("LOG", process_id, trace_id=event_trace, span_id=event_span)
                answer = http.post("/events", json=[event("STARTED", process_id), log])
                assert answer.status_code == 202, answer.text
                poll(lambda: http.get(f"/status/{process_id}").status_code == 200, "the events in /status")
                poll(lambda: http.get(f"/status/{process_id}").json()["log_count"] == 1, "the LOG event stored")
                head = http.head("/health", headers={"traceparent": traceparent(head_trace, head_parent)})
                assert head.status_code == 200, head.text
            hang_up_mid_body(
                api.port,
                "/events",
                {"Authorization": f"Bearer {token}", "traceparent": traceparent(gone_trace, gone_parent)},
            )
        except BaseException:
            api.kill()
            raise
        api.stop()  # SIGTERM: every process flushes its spans on the way out

        # Everything was exported by the time the server has exited; a short bounded wait covers a
        # receiver thread still decoding the last request.
        def exported() -> list[ReceivedSpan] | None:
            spans = receiver.snapshot()
            ok = (
                spans_named(spans, lambda s: s.trace_id == request_trace and s.kind == 2)
                and spans_named(spans, lambda s: s.name == "ingest.batch" and (event_trace, event_span) in s.links)
                and spans_named(spans, lambda s: s.trace_id == head_trace and s.kind == 2)
                and spans_named(spans, lambda s: s.trace_id == gone_trace and s.kind == 2)
            )
            return spans if ok else None

        try:
            spans = poll(exported, "the request span and the batch span at the receiver", timeout=10.0)
        except AssertionError:
            raise AssertionError(
                f"received {[(s.name, s.trace_id, s.links) for s in receiver.snapshot()]}; "
                f"errors {receiver.errors}\n{api.output()}"
            ) from None
        assert not receiver.errors, receiver.errors

    # The request's server span, in the caller's trace, below the caller's span.
    [request] = spans_named(spans, lambda s: s.trace_id == request_trace and s.kind == 2)  # SPAN_KIND_SERVER
    assert request.parent_span_id == request_parent
    assert request.service == "sentinel-test"
    method, _, route = request.name.partition(" ")
    assert method == "GET", request.name
    assert route in STATUS_TEMPLATES, request.name
    assert request.attributes["http.response.status_code"] == 404
    assert request.status == 0  # a 404 is the client's matter: the span status stays unset

    # HEAD is a method of its own, answered by the GET route.
    [head_span] = spans_named(spans, lambda s: s.trace_id == head_trace and s.kind == 2)
    assert head_span.name == "HEAD /health", head_span.name
    assert head_span.attributes["http.request.method"] == "HEAD"
    assert head_span.attributes["http.response.status_code"] == 200
    # A client that hung up mid-body: 499 as in the metrics, and not the server's error.
    [gone] = spans_named(spans, lambda s: s.trace_id == gone_trace and s.kind == 2)
    assert gone.name == "POST /events", gone.name
    assert gone.parent_span_id == gone_parent
    assert gone.attributes["http.response.status_code"] == 499, gone.attributes
    assert gone.status == 0, gone.status
    # Its store call, a client span of the same trace.
    db = spans_named(spans, lambda s: s.trace_id == request_trace and s.parent_span_id == request.span_id)
    assert db, [(s.name, s.parent_span_id) for s in spans]
    assert all(s.kind == 3 for s in db), db  # SPAN_KIND_CLIENT

    # The ingest process's batch span, linked to the trace the LOG event named.
    [batch] = spans_named(spans, lambda s: s.name == "ingest.batch" and (event_trace, event_span) in s.links)
    assert batch.service == "sentinel-test"
    assert batch.attributes["sentinel.batch.outcome"] == "committed"
    assert batch.attributes["sentinel.batch.messages"] >= 2
    assert batch.trace_id != event_trace
    commits = spans_named(spans, lambda s: s.name == "commit_batch" and s.parent_span_id == batch.span_id)
    assert len(commits) == 1, commits
    assert commits[0].trace_id == batch.trace_id


def test_tracing_stays_off_without_an_exporter(tmp_path: Path) -> None:
    """No exporter configured: ``configure_tracing`` installs nothing and database spans are no-ops.
    Checked in a fresh interpreter, where this module's provider is not installed."""
    script = (
        "from opentelemetry import trace\n"
        "from sentinel.telemetry import tracing\n"
        "assert tracing.configure_tracing() is False\n"
        "assert tracing.enabled() is False\n"
        "assert type(trace.get_tracer_provider()).__name__ == 'ProxyTracerProvider'\n"
        "with tracing.db_span('x', 'sqlite'):\n"
        "    assert not trace.get_current_span().get_span_context().is_valid\n"
        "assert tracing.event_links([]) == []\n"
    )
    env = {key: value for key, value in os.environ.items() if not key.startswith("OTEL_")}
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr


def test_console_exporter_with_default_service_name_and_version(tmp_path: Path) -> None:
    """``OTEL_TRACES_EXPORTER=console`` turns tracing on; without ``OTEL_SERVICE_NAME`` the resource names
    the service ``process-sentinel`` with Sentinel's version, and ``OTEL_RESOURCE_ATTRIBUTES`` are kept."""
    script = (
        "from sentinel.telemetry import tracing\n"
        "assert tracing.configure_tracing() is True\n"
        "assert tracing.configure_tracing() is True  # idempotent\n"
        "with tracing.db_span('probe', 'sqlite'):\n"
        "    pass\n"
        "tracing.shutdown()\n"
    )
    env = {key: value for key, value in os.environ.items() if not key.startswith("OTEL_")}
    env.update(OTEL_TRACES_EXPORTER="console", OTEL_RESOURCE_ATTRIBUTES="deployment.environment=test")
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    span = json.loads(done.stdout)
    assert span["name"] == "probe"
    assert span["kind"] == "SpanKind.CLIENT"
    assert span["attributes"] == {"db.system.name": "sqlite", "db.operation.name": "probe"}
    resource = span["resource"]["attributes"]
    assert resource["service.name"] == "process-sentinel"
    assert resource["service.version"] == sentinel.__version__
    assert resource["deployment.environment"] == "test"
