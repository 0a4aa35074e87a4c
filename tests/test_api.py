"""The HTTP API (SPEC section 4) against a real ``sentinel serve``: Granian workers, the ingest consumer,
a SQLite file in a temporary directory and a loopback identity provider. Nothing of Sentinel is mocked.

One server (two HTTP workers) serves the whole module; every test works in tenants of its own, so the
tests neither see nor disturb each other's rows.
"""

from __future__ import annotations

import base64
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import jsonschema
import pytest
from apiserver import ApiServer, assert_problem, event, free_port, server_env, ts, unique, wait_for
from jwks_server import JwksServer, SigningKey
from prometheus_client.parser import text_string_to_metric_families

from sentinel.api.scope import request_target

INGEST = "sentinel-ingest"
VISIBLE = 10.0  # bound for "visible within a second under normal load", with room for a loaded CI box

STATUS_KEYS = {
    "process_id",
    "tenant_id",
    "status",
    "process_name",
    "process_type",
    "package_name",
    "procedure_name",
    "correlation_id",
    "current_step",
    "progress_percent",
    "started_at",
    "last_seen_at",
    "ended_at",
    "duration_ms",
    "estimated_completion",
    "error_code",
    "error_message",
    "result",
    "metadata",
    "event_count",
    "log_count",
    # additive baseline fields (sentinel.baselines, tests/test_baselines.py)
    "expected_duration_ms",
    "eta_band",
    "slow",
}
LOG_KEYS = {
    "seq",
    "timestamp",
    "level",
    "message",
    "details",
    "component",
    "correlation_id",
    "trace_id",
    "span_id",
    "duration_us",
}
LEVELS = ("TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL")
# For requests the server may refuse before reading their body: do not reuse that connection.
CLOSE = {"Connection": "close"}
# Headers that legitimately differ between two answers given a moment apart.
VOLATILE_HEADERS = {"date", "server-timing", "x-request-id"}


# -- fixtures ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def keys() -> list[SigningKey]:
    return [SigningKey.rsa(kid="api-rsa"), SigningKey.ec(kid="api-ec")]


@pytest.fixture(scope="module")
def idp(keys: list[SigningKey]) -> Iterator[JwksServer]:
    with JwksServer(keys) as server:
        yield server


@pytest.fixture(scope="module")
def api(idp: JwksServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    with ApiServer(tmp_path_factory.mktemp("api") / "data", idp=idp, workers=2) as server:
        yield server


@dataclass
class Caller:
    tenant: str
    http: httpx.Client


@pytest.fixture(scope="module")
def connect(api: ApiServer, idp: JwksServer, keys: list[SigningKey]) -> Iterator[Callable[..., Caller]]:
    """``connect(tenant=None, roles=(INGEST,))``: an HTTP client with a fresh valid token for that tenant."""
    clients: list[httpx.Client] = []

    def make(tenant: str | None = None, roles: Sequence[str] = (INGEST,), key: int = 0) -> Caller:
        tenant = tenant or unique("tenant")
        token = keys[key].sign(idp.claims(tenant_id=tenant, roles=list(roles), ttl=3600))
        client = api.client(token)
        clients.append(client)
        return Caller(tenant, client)

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def caller(connect: Callable[..., Caller]) -> Caller:
    return connect()


@pytest.fixture(scope="module")
def barrier(connect: Callable[..., Caller]) -> Callable[[], None]:
    """Returns once everything queued before the call has been ingested: a HEARTBEAT (the lowest queue
    priority) queued after it is consumed after it, so once that one is visible the rest was stored."""
    own = connect()

    def wait() -> None:
        process_id = unique("barrier")
        post(own.http, [event("HEARTBEAT", process_id)])
        wait_status(own.http, process_id)

    return wait


# -- helpers ----------------------------------------------------------------------------------------


def post(http: httpx.Client, events: Any) -> None:
    answer = http.post("/events", json=events)
    count = 1 if isinstance(events, dict) else len(events)
    assert answer.status_code == 202, answer.text
    assert answer.json() == {"accepted": count}


def wait_status(
    http: httpx.Client, process_id: str, done: Callable[[dict[str, Any]], bool] = lambda doc: True
) -> dict[str, Any]:
    last: list[Any] = [None]

    def check() -> dict[str, Any] | None:
        answer = http.get(f"/status/{process_id}")
        last[0] = (answer.status_code, answer.text)
        if answer.status_code == 200 and done(answer.json()):
            return answer.json()
        assert answer.status_code in (200, 404), answer.text
        return None

    try:
        return wait_for(check, VISIBLE, f"status of {process_id}")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; last answer {last[0]}") from None


def follow_pages(http: httpx.Client, path: str, params: dict[str, Any]) -> tuple[list[dict[str, Any]], int]:
    """Every item of a paged list, following ``next_cursor`` to the end; also the number of pages."""
    items: list[dict[str, Any]] = []
    pages = 0
    cursor = None
    while True:
        query = dict(params)
        if cursor is not None:
            query["cursor"] = cursor
        answer = http.get(path, params=query)
        assert answer.status_code == 200, answer.text
        page = answer.json()
        assert set(page) == {"items", "next_cursor"}
        pages += 1
        items.extend(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return items, pages
        assert page["items"], "a page with a next_cursor must not be empty"
        assert pages < 1000, "pagination does not end"


def metric_samples(api: ApiServer, name: str) -> list[tuple[dict[str, str], float]]:
    with api.client() as http:
        answer = http.get("/metrics")
    assert answer.status_code == 200
    found = []
    for family in text_string_to_metric_families(answer.text):
        for sample in family.samples:
            if sample.name == name:
                found.append((dict(sample.labels), sample.value))
    return found


def parse_time(text: str) -> datetime:
    assert text.endswith("Z"), text
    return datetime.fromisoformat(text.removesuffix("Z") + "+00:00")


def comparable_headers(response: httpx.Response) -> dict[str, str]:
    return {name: value for name, value in response.headers.items() if name.lower() not in VOLATILE_HEADERS}


# -- operations endpoints ---------------------------------------------------------------------------


def test_health_answers_without_a_token(api: ApiServer) -> None:
    with api.client() as http:
        answer = http.get("/health")
    assert answer.status_code == 200
    body = answer.json()
    assert body["status"] == "ok"
    assert body["version"]
    expected_core = "python" if os.environ.get("SENTINEL_NO_EXTENSIONS", "") not in ("", "0") else "compiled"
    assert body["core"] == expected_core


def test_ready_reports_each_check(api: ApiServer) -> None:
    with api.client() as http:
        answer = http.get("/ready")
    assert answer.status_code == 200
    assert answer.json() == {"status": "ready", "checks": {"store": "ok", "ingest": "ok", "keys": "ok"}}


def test_metrics_label_routes_by_template_and_count_ingest(api: ApiServer, caller: Caller) -> None:
    raw_id = unique("raw-process-id")
    before = sum(
        value
        for labels, value in metric_samples(api, "sentinel_events_ingested_total")
        if labels.get("event_type") == "STARTED"
    )
    post(caller.http, [event("STARTED", raw_id)])
    wait_status(caller.http, raw_id)
    assert caller.http.get(f"/status/{raw_id}").status_code == 200
    assert caller.http.get(f"/logs/{raw_id}").status_code == 200
    assert caller.http.get(f"/status/{unique('absent')}").status_code == 404

    # Each worker flushes its HTTP counts every half second (and before answering a scrape itself), so
    # a scrape served by the other worker may not show these requests yet.
    def counted() -> list[tuple[dict[str, str], float]] | None:
        requests = metric_samples(api, "sentinel_http_requests_total")
        keys = {(labels["route"], labels["method"], labels["status"]) for labels, _ in requests}
        wanted = {("/status/{process_id}", "GET", "200"), ("/status/{process_id}", "GET", "404")}
        return requests if wanted <= keys and ("/events", "POST", "202") in keys else None

    requests = wait_for(counted, VISIBLE, "the HTTP requests to be counted", interval=0.1)
    routes = {labels["route"] for labels, _ in requests}
    assert not any(raw_id in route or "absent" in route for route in routes), routes
    assert {route for route in routes if route.startswith("/status")} == {"/status/{process_id}"}, routes

    # A made-up method reaches the /status mount (405) but must not become a label of its own.
    assert caller.http.request("BREW", f"/status/{raw_id}").status_code == 405

    def other_method_counted() -> list[tuple[dict[str, str], float]] | None:
        requests = metric_samples(api, "sentinel_http_requests_total")
        return requests if any(labels["method"] == "_OTHER" for labels, _ in requests) else None

    requests = wait_for(other_method_counted, VISIBLE, "the made-up method to be counted as _OTHER", interval=0.1)
    assert {labels["method"] for labels, _ in requests} <= {"GET", "POST", "OPTIONS", "_OTHER"}, requests

    def ingested() -> float:
        return sum(
            value
            for labels, value in metric_samples(api, "sentinel_events_ingested_total")
            if labels.get("event_type") == "STARTED"
        )

    wait_for(lambda: ingested() > before, VISIBLE, "sentinel_events_ingested_total to move")


def test_metrics_content_type_is_one_well_formed_media_type(api: ApiServer) -> None:
    """Prometheus (3.x) refuses a scrape whose Content-Type does not parse; a repeated parameter does not."""
    with api.client() as http:
        answer = http.get("/metrics")
    assert answer.status_code == 200
    content_type = answer.headers["content-type"]
    media, *parameters = [part.strip() for part in content_type.split(";")]
    assert media == "text/plain"
    names = [parameter.split("=", 1)[0].strip().lower() for parameter in parameters]
    assert len(names) == len(set(names)), f"repeated parameter in Content-Type: {content_type!r}"
    assert "version=0.0.4" in content_type or "version=1.0.0" in content_type


def test_openapi_document_lists_every_endpoint(api: ApiServer) -> None:
    with api.client() as http:
        document = http.get("/schema/openapi.json")
        ui = http.get("/schema")
    assert document.status_code == 200
    spec = document.json()
    assert spec["openapi"].startswith("3.")
    paths = spec["paths"]
    expected = {
        "/health": "get",
        "/ready": "get",
        "/metrics": "get",
        "/processes": "get",
        "/status/{process_id}": "get",
        "/logs/{process_id}": "get",
        "/events": "post",
    }
    for path, method in expected.items():
        assert method in paths.get(path, {}), f"{method.upper()} {path} missing from the OpenAPI document"
    schemes = spec["components"]["securitySchemes"]
    assert any(scheme.get("scheme") == "bearer" for scheme in schemes.values()), schemes
    parameters = {parameter["name"] for parameter in paths["/processes"]["get"]["parameters"]}
    assert {"status", "process_type", "package_name", "updated_since", "limit", "cursor"} <= parameters
    assert ui.status_code == 200
    assert ui.headers["content-type"].startswith("text/html")
    assert "<html" in ui.text.lower()


def _openapi(api: ApiServer) -> dict[str, Any]:
    with api.client() as http:
        answer = http.get("/schema/openapi.json")
    assert answer.status_code == 200
    spec: dict[str, Any] = answer.json()
    return spec


def _validate(spec: dict[str, Any], schema: dict[str, Any], document: Any) -> list[str]:
    """Errors of ``document`` against ``schema`` (which may $ref the spec's components)."""
    validator = jsonschema.Draft202012Validator({**schema, "components": spec.get("components", {})})
    return [f"{'/'.join(map(str, error.absolute_path))}: {error.message}" for error in validator.iter_errors(document)]


def test_documented_response_schemas_accept_real_documents(api: ApiServer, caller: Caller) -> None:
    """What /status and /processes answer must validate against the schema the API publishes for them:
    a running process (``result`` null) included."""
    process_id = unique("documented")
    post(caller.http, [event("STARTED", process_id, metadata={"a": 1}), event("LOG", process_id)])
    doc = wait_status(caller.http, process_id, lambda doc: doc["log_count"] == 1)
    assert doc["result"] is None
    spec = _openapi(api)
    status_schema = spec["paths"]["/status/{process_id}"]["get"]["responses"]["200"]["content"]["application/json"][
        "schema"
    ]
    assert _validate(spec, status_schema, doc) == []
    page_schema = spec["paths"]["/processes"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert _validate(spec, page_schema, caller.http.get("/processes").json()) == []


def test_openapi_documents_the_event_body_and_the_log_page(api: ApiServer) -> None:
    """Generated clients (and schemathesis) learn the request and response shapes from the document: the
    body of POST /events and the page of GET /logs must be in it, not an empty schema."""
    spec = _openapi(api)
    post_events = spec["paths"]["/events"]["post"]
    assert "application/json" in post_events.get("requestBody", {}).get("content", {}), post_events
    logs_200 = spec["paths"]["/logs/{process_id}"]["get"]["responses"]["200"]["content"]["application/json"]
    assert logs_200["schema"] != {}, "GET /logs documents its 200 answer as an empty schema"


def test_openapi_documents_the_error_answers(api: ApiServer) -> None:
    """Every status SPEC section 4 names for an operation is declared, as application/problem+json."""
    spec = _openapi(api)
    expected = {
        ("/processes", "get"): {"400", "401", "403"},
        ("/status/{process_id}", "get"): {"401", "403", "404"},
        ("/logs/{process_id}", "get"): {"400", "401", "403", "404"},
        ("/events", "post"): {"400", "401", "403", "413", "415", "422"},
    }
    missing = {}
    for (path, method), statuses in expected.items():
        responses = spec["paths"][path][method]["responses"]
        absent = sorted(
            status
            for status in statuses
            if "application/problem+json" not in responses.get(status, {}).get("content", {})
        )
        if absent:
            missing[f"{method.upper()} {path}"] = absent
    assert missing == {}, f"undocumented error answers: {missing}"


def test_ready_answers_503_naming_ingest_while_the_consumer_is_down(api: ApiServer, caller: Caller) -> None:
    """The supervisor restarts a dead consumer; until then /ready says which check fails."""
    consumers = [pid for pid, cmdline in api.children() if "sentinel ingest" in cmdline]
    assert len(consumers) == 1, api.children()
    seen: list[dict[str, Any]] = []
    with api.client(timeout=5) as http:
        os.kill(consumers[0], signal.SIGKILL)

        def unready() -> bool:
            answer = http.get("/ready")
            if answer.status_code == 503:
                seen.append(answer.json())
                return True
            return False

        wait_for(unready, 10, "/ready to answer 503 after the consumer died", interval=0.005)
        assert seen[0]["status"] == "unavailable"
        assert seen[0]["checks"]["ingest"] == "not running"
        assert seen[0]["checks"]["store"] == "ok"
        wait_for(lambda: http.get("/ready").status_code == 200, 30, "/ready to recover")
    # The restarted consumer ingests again.
    process_id = unique("after-restart")
    post(caller.http, [event("STARTED", process_id)])
    assert wait_status(caller.http, process_id)["status"] == "RUNNING"


# -- status -----------------------------------------------------------------------------------------


def test_posted_events_show_in_status(caller: Caller) -> None:
    process_id = unique("job")
    now = datetime.now(UTC)
    post(
        caller.http,
        [
            event(
                "STARTED",
                process_id,
                timestamp=ts(-60, base=now),
                process_name="Nightly load",
                process_type="batch",
                package_name="PKG_LOAD",
                procedure_name="RUN",
                correlation_id="corr-1",
                metadata={"run": 7},
            ),
            event("PROGRESS", process_id, timestamp=ts(-30, base=now), step="transform", percent=50),
        ],
    )
    doc = wait_status(caller.http, process_id, lambda doc: doc["event_count"] == 2)
    assert set(doc) == STATUS_KEYS
    assert doc["tenant_id"] == caller.tenant
    assert doc["status"] == "RUNNING"
    assert doc["process_name"] == "Nightly load"
    assert doc["process_type"] == "batch"
    assert doc["package_name"] == "PKG_LOAD"
    assert doc["procedure_name"] == "RUN"
    assert doc["correlation_id"] == "corr-1"
    assert doc["current_step"] == "transform"
    assert doc["progress_percent"] == 50
    assert doc["metadata"] == {"run": 7}
    assert doc["started_at"].endswith("Z")
    assert doc["last_seen_at"].endswith("Z")
    # started + elapsed x 100 / percent: 60 s after the start at 50 % after 30 s.
    assert parse_time(doc["estimated_completion"]) == now
    assert parse_time(doc["started_at"]) == now - timedelta(seconds=60)
    assert parse_time(doc["last_seen_at"]) == now - timedelta(seconds=30)
    assert doc["ended_at"] is None
    assert doc["log_count"] == 0

    post(caller.http, event("COMPLETED", process_id, timestamp=ts(-10, base=now), result={"rows": 3}))
    done = wait_status(caller.http, process_id, lambda doc: doc["status"] == "COMPLETED")
    assert done["result"] == {"rows": 3}
    assert done["ended_at"].endswith("Z")
    assert done["duration_ms"] == 50_000


def test_a_repeated_event_id_is_ignored(caller: Caller, barrier: Callable[[], None]) -> None:
    process_id = unique("idem")
    once = event("HEARTBEAT", process_id)
    post(caller.http, [once])
    post(caller.http, [once])
    barrier()
    assert wait_status(caller.http, process_id)["event_count"] == 1


@pytest.mark.parametrize(
    "process_id",
    ["a b", "x?y", "h#1", "p%41", "ümlaut", "semi;colon", "back\\slash", "plus+sign", "emoji😀", "' OR 1=1 --"],
)
def test_any_valid_process_id_is_reachable(caller: Caller, process_id: str) -> None:
    post(caller.http, [event("STARTED", process_id), event("LOG", process_id, message=process_id)])
    path = quote(process_id, safe="")
    doc = wait_status(caller.http, path)
    assert doc["process_id"] == process_id
    assert [item["message"] for item in caller.http.get(f"/logs/{path}").json()["items"]] == [process_id]


def test_process_ids_with_a_slash_are_reachable(caller: Caller, barrier: Callable[[], None]) -> None:
    """SPEC 2 allows any process_id without control characters, "/" included (``etl/daily``). Each must
    be readable under its own (percent-encoded) id, and never answer for a neighbour's id."""
    ids = ["etl/daily", "job", "job/", "/job", "a//b"]
    post(caller.http, [event("STARTED", process_id, process_name=f"name of {process_id}") for process_id in ids])
    barrier()
    listed = {row["process_id"] for row in caller.http.get("/processes").json()["items"]}
    assert listed == set(ids)
    wrong = {}
    for process_id in ids:
        answer = caller.http.get("/status/" + quote(process_id, safe=""))
        got = answer.json().get("process_id") if answer.status_code == 200 else answer.status_code
        if got != process_id:
            wrong[process_id] = got
        logs = caller.http.get("/logs/" + quote(process_id, safe=""))
        if logs.status_code != 200:
            wrong[f"logs of {process_id}"] = logs.status_code
    assert wrong == {}, f"answered for another id or not at all: {wrong}"


def test_unknown_process_is_404_problem(caller: Caller) -> None:
    assert_problem(caller.http.get(f"/status/{unique('nothing')}"), 404)
    assert_problem(caller.http.get(f"/logs/{unique('nothing')}"), 404)


@pytest.mark.parametrize(
    ("raw_path", "root_path", "target"),
    [
        (b"/status/a%2Fb", "", b"/status/a%2Fb"),
        (b"/status/job/?x=1&y=2", "", b"/status/job/"),  # some servers keep the query in raw_path
        (b"/sentinel/status/a//b", "/sentinel", b"/status/a//b"),  # served under a URL prefix
        (b"/status/x", "/other", b"/status/x"),
    ],
)
def test_request_target_is_the_path_as_sent_below_the_prefix(raw_path: bytes, root_path: str, target: bytes) -> None:
    assert request_target({"type": "http", "raw_path": raw_path, "root_path": root_path}) == target  # type: ignore[typeddict-item]


def test_request_target_needs_the_raw_path() -> None:
    with pytest.raises(RuntimeError, match="raw_path"):
        request_target({"type": "http", "path": "/status/x"})  # type: ignore[typeddict-item]


def test_status_route_answers_other_paths_and_methods_like_any_route(caller: Caller) -> None:
    """GET /status is an ASGI handler mounted at /status, and a mount takes every method and every path
    that starts with its name: those must get the answers an ordinary route gives."""
    http = caller.http
    assert_problem(http.get("/status"), 404)
    assert_problem(http.get("/statusx/abc"), 404)
    assert_problem(http.get("/status/"), 404, "not_found")
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        refused = assert_problem(http.request(method, "/status/abc"), 405)
        assert refused["status"] == 405
        assert http.request(method, "/status/abc").headers["allow"] == "GET, HEAD, OPTIONS"
    options = http.options("/status/abc")
    assert options.status_code == 204, options.text
    assert options.headers["allow"] == "GET, HEAD, OPTIONS"
    assert options.content == b""


# -- /processes ---------------------------------------------------------------------------------------


def test_processes_filters(caller: Caller, barrier: Callable[[], None]) -> None:
    http = caller.http
    old = {"running": unique("run"), "done": unique("done"), "failed": unique("fail"), "cancelled": unique("cxl")}
    post(
        http,
        [
            event("STARTED", old["running"], timestamp=ts(-3600), process_type="batch", package_name="PKG_A"),
            event("STARTED", old["done"], timestamp=ts(-3600), process_type="batch", package_name="PKG_B"),
            event("COMPLETED", old["done"], timestamp=ts(-3500)),
            event("STARTED", old["failed"], timestamp=ts(-3600), process_type="plsql", package_name="PKG_B"),
            event("ERROR", old["failed"], timestamp=ts(-3400), error_code="ORA-01555", error_message="snapshot"),
            event("CANCELLED", old["cancelled"], timestamp=ts(-3300), reason="operator"),
        ],
    )
    barrier()
    time.sleep(0.05)
    boundary = ts()
    time.sleep(0.05)
    new = unique("new")
    post(http, [event("STARTED", new, process_type="plsql", package_name="PKG_A")])
    barrier()

    def ids(**params: Any) -> set[str]:
        answer = http.get("/processes", params=params)
        assert answer.status_code == 200, answer.text
        return {item["process_id"] for item in answer.json()["items"]}

    everything = set(old.values()) | {new}
    assert ids() == everything
    assert ids(status="RUNNING") == {old["running"], new}
    assert ids(status="COMPLETED,FAILED") == {old["done"], old["failed"]}
    assert ids(status="cancelled") == {old["cancelled"]}
    assert ids(status="COMPLETED, CANCELLED") == {old["done"], old["cancelled"]}
    assert ids(status="STALLED") == set()
    assert ids(process_type="batch") == {old["running"], old["done"]}
    assert ids(process_type="plsql", status="FAILED") == {old["failed"]}
    assert ids(package_name="PKG_B") == {old["done"], old["failed"]}
    assert ids(package_name="PKG_A", process_type="plsql") == {new}
    assert ids(package_name="NOPE") == set()
    assert ids(updated_since=boundary) == {new}
    assert ids(updated_since=ts(3600)) == set()

    failed = http.get("/processes", params={"status": "FAILED"}).json()["items"][0]
    assert failed["error_code"] == "ORA-01555"
    assert failed["error_message"] == "snapshot"
    assert failed["tenant_id"] == caller.tenant

    # Newest last_seen_at first.
    order = [item["process_id"] for item in http.get("/processes").json()["items"]]
    assert order[0] == new
    assert order.index(old["cancelled"]) < order.index(old["failed"]) < order.index(old["done"])


@pytest.mark.parametrize(
    ("params", "names"),
    [
        ({"status": "BOGUS"}, "status"),
        ({"status": "RUNNING,BOGUS"}, "status"),
        ({"status": ""}, "status"),
        ({"updated_since": "yesterday"}, "updated_since"),
        ({"updated_since": "2024-01-01T00:00:00"}, "updated_since"),
        ({"updated_since": "2024-02-30T00:00:00Z"}, "updated_since"),
        ({"limit": "0"}, "limit"),
        ({"limit": "501"}, "limit"),
        ({"limit": "-1"}, "limit"),
        ({"limit": "ten"}, "limit"),
    ],
)
def test_processes_bad_filters_are_400(caller: Caller, params: dict[str, str], names: str) -> None:
    problem = assert_problem(caller.http.get("/processes", params=params), 400)
    assert names in problem["detail"]


def test_processes_keyset_pagination_has_no_gaps_or_duplicates(caller: Caller, barrier: Callable[[], None]) -> None:
    http = caller.http
    count = 520
    base = -2000.0
    now = datetime.now(UTC)
    expected: list[tuple[float, str]] = []
    events = []
    for i in range(count):
        process_id = f"pg-{i:04d}-{random.randrange(10**6):06d}"
        offset = base + (i // 7)  # groups of seven share a last_seen_at: the tie-break is exercised
        expected.append((offset, process_id))
        kind = "odd" if i % 2 else "even"
        events.append(event("STARTED", process_id, timestamp=ts(offset, base=now), process_type=kind))
        events.append(event("LOG", process_id, timestamp=ts(offset, base=now), message=f"line {process_id}"))
    random.shuffle(events)
    for start in range(0, len(events), 1000):
        post(http, events[start : start + 1000])
    barrier()
    order = [process_id for _, process_id in sorted(expected, key=lambda item: (-item[0], item[1]))]

    items, pages = follow_pages(http, "/processes", {"limit": 37})
    got = [item["process_id"] for item in items]
    assert len(got) == len(set(got)), "a process appeared twice"
    assert got == order
    assert pages == -(-count // 37)

    # Every item is a full status document of this tenant.
    assert all(set(item) == STATUS_KEYS and item["tenant_id"] == caller.tenant for item in items)

    # With filters, the cursor carries on within the filtered set.
    odd, _ = follow_pages(http, "/processes", {"limit": 50, "process_type": "odd", "status": "RUNNING"})
    assert [item["process_id"] for item in odd] == [p for p in order if int(p.split("-")[1]) % 2]

    # Default page size 50; the maximum 500 still leaves a cursor for the rest.
    first = http.get("/processes").json()
    assert len(first["items"]) == 50
    assert first["next_cursor"] is not None
    biggest = http.get("/processes", params={"limit": 500}).json()
    assert len(biggest["items"]) == 500
    rest = http.get("/processes", params={"limit": 500, "cursor": biggest["next_cursor"]}).json()
    assert [item["process_id"] for item in biggest["items"] + rest["items"]] == order
    assert rest["next_cursor"] is None
    # The page size is not part of the cursor: the next page may be asked for with another limit.
    second = http.get("/processes", params={"limit": 3, "cursor": first["next_cursor"]}).json()
    assert [item["process_id"] for item in second["items"]] == order[50:53]


def test_a_walk_returns_every_process_even_one_that_moves_up(connect: Callable[..., Caller]) -> None:
    """Six processes A..F; a walk reads F, E; then B gets a heartbeat (moving it to the top, before the
    cursor). Following next_cursor to the end still returns B (after the unchanged D, C, A)."""
    caller = connect()
    http = caller.http
    now = datetime.now(UTC)
    names = {name: unique(f"walk-{name}") for name in "ABCDEF"}
    post(http, [event("STARTED", pid, timestamp=ts(index - 60, base=now)) for index, pid in enumerate(names.values())])
    wait_for(lambda: len(http.get("/processes").json()["items"]) == 6, VISIBLE, "the six processes")
    first = http.get("/processes", params={"limit": 2}).json()
    assert [item["process_id"] for item in first["items"]] == [names["F"], names["E"]]
    post(http, [event("HEARTBEAT", names["B"], timestamp=ts(0, base=now))])
    wait_status(http, names["B"], lambda doc: doc["event_count"] == 2)
    rest: list[str] = []
    cursor = first["next_cursor"]
    while cursor is not None:
        page = http.get("/processes", params={"limit": 2, "cursor": cursor}).json()
        assert page["items"], "a page with a next_cursor must not be empty"
        rest += [item["process_id"] for item in page["items"]]
        cursor = page["next_cursor"]
    assert rest == [names["D"], names["C"], names["A"], names["B"]]
    # A new walk sees B in its new place.
    fresh, _ = follow_pages(http, "/processes", {"limit": 4})
    assert [item["process_id"] for item in fresh] == [names[n] for n in "BFEDCA"]


def test_openapi_states_the_paging_guarantee(api: ApiServer) -> None:
    spec = _openapi(api)
    description = spec["paths"]["/processes"]["get"]["description"]
    assert "every process that existed when it began" in description
    assert "may appear twice" in description
    logs = spec["paths"]["/logs/{process_id}"]["get"]["description"]
    assert "every line that existed when it began" in logs


def _tamper(cursor: str) -> list[str]:
    raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    body, tag = raw[:-16], raw[-16:]
    position = json.loads(body)
    position[0] -= 1  # an earlier keyset position, same signature
    edited = json.dumps(position, separators=(",", ":")).encode()
    flipped = bytearray(raw)
    flipped[len(flipped) // 2] ^= 0x01
    return [
        base64.urlsafe_b64encode(edited + tag).rstrip(b"=").decode(),
        base64.urlsafe_b64encode(bytes(flipped)).rstrip(b"=").decode(),
        cursor[:-2],
        cursor + "AA",
        cursor[::-1],
    ]


def test_cursor_misuse_is_a_precise_400(connect: Callable[..., Caller], barrier: Callable[[], None]) -> None:
    owner = connect()
    stranger = connect()
    post(owner.http, [event("STARTED", f"cur-{i}", timestamp=ts(-i), process_type="t") for i in range(6)])
    post(stranger.http, [event("STARTED", f"cur-{i}", timestamp=ts(-i), process_type="t") for i in range(6)])
    barrier()
    cursor = owner.http.get("/processes", params={"limit": 2}).json()["next_cursor"]
    assert cursor
    assert owner.http.get("/processes", params={"limit": 2, "cursor": cursor}).status_code == 200

    for bad in _tamper(cursor):
        assert_problem(owner.http.get("/processes", params={"cursor": bad}), 400, "bad_cursor")
    # Another tenant's cursor: refused, never a page of anybody's data.
    assert_problem(stranger.http.get("/processes", params={"cursor": cursor}), 400, "bad_cursor")
    # Replayed with other filters.
    for filters in ({"status": "RUNNING"}, {"process_type": "t"}, {"package_name": "x"}, {"updated_since": ts(-3600)}):
        assert_problem(owner.http.get("/processes", params={"cursor": cursor, **filters}), 400, "bad_cursor")
    # Garbage of every shape.
    for garbage in ("", "garbage", "%%%", "!!!!", "é" * 8, "A" * 2000, "W10", "bnVsbA", "AAAA" * 8):
        assert_problem(owner.http.get("/processes", params={"cursor": garbage}), 400, "bad_cursor")
    # A /processes cursor is no /logs cursor.
    assert_problem(owner.http.get("/logs/cur-1", params={"cursor": cursor}), 400, "bad_cursor")


# -- /logs ------------------------------------------------------------------------------------------


def test_logs_order_filters_and_pagination(caller: Caller, barrier: Callable[[], None]) -> None:
    http = caller.http
    process_id = unique("logs")
    count = 130
    now = datetime.now(UTC)
    lines = [
        event("LOG", process_id, timestamp=ts(i - 1000, base=now), level=LEVELS[i % 6], message=f"line {i}")
        for i in range(count)
    ]
    shuffled = lines[:]
    random.shuffle(shuffled)  # arrival order differs from time order: the answer follows timestamps
    post(http, [event("STARTED", process_id, timestamp=ts(-2000))])
    post(http, shuffled[:70])
    post(http, shuffled[70:])
    barrier()
    messages = [line["message"] for line in lines]

    page = http.get(f"/logs/{process_id}").json()
    assert len(page["items"]) == 100  # default limit
    assert page["next_cursor"] is not None
    assert [item["message"] for item in page["items"]] == messages[:100]
    assert all(set(item) == LOG_KEYS for item in page["items"])

    items, pages = follow_pages(http, f"/logs/{process_id}", {"limit": 25})
    assert [item["message"] for item in items] == messages
    assert pages == 6
    seqs = [item["seq"] for item in items]
    assert len(set(seqs)) == count

    everything = http.get(f"/logs/{process_id}", params={"limit": 1000}).json()
    assert [item["message"] for item in everything["items"]] == messages
    assert everything["next_cursor"] is None

    warn_up, _ = follow_pages(http, f"/logs/{process_id}", {"level": "warn", "limit": 10})
    assert [item["message"] for item in warn_up] == [
        line["message"] for line in lines if LEVELS.index(line["level"]) >= 3
    ]
    assert {item["level"] for item in warn_up} == {"WARN", "ERROR", "FATAL"}
    fatal = http.get(f"/logs/{process_id}", params={"level": "FATAL", "limit": 1000}).json()["items"]
    assert [item["message"] for item in fatal] == [line["message"] for line in lines if line["level"] == "FATAL"]

    since = lines[100]["timestamp"]
    recent, _ = follow_pages(http, f"/logs/{process_id}", {"since": since, "limit": 7})
    assert [item["message"] for item in recent] == messages[100:]
    both = http.get(f"/logs/{process_id}", params={"since": since, "level": "ERROR"}).json()["items"]
    assert [item["message"] for item in both] == [
        line["message"] for line in lines[100:] if LEVELS.index(line["level"]) >= 4
    ]

    # A cursor belongs to its filters and its process.
    cursor = http.get(f"/logs/{process_id}", params={"level": "WARN", "limit": 5}).json()["next_cursor"]
    assert cursor
    assert http.get(f"/logs/{process_id}", params={"level": "WARN", "cursor": cursor}).status_code == 200
    other_filters = http.get(f"/logs/{process_id}", params={"level": "INFO", "cursor": cursor})
    assert_problem(other_filters, 400, "bad_cursor")
    assert_problem(http.get(f"/logs/{process_id}", params={"cursor": cursor}), 400, "bad_cursor")
    for bad in _tamper(cursor):
        assert_problem(http.get(f"/logs/{process_id}", params={"level": "WARN", "cursor": bad}), 400)
    assert_problem(http.get(f"/logs/{process_id}", params={"cursor": "garbage"}), 400, "bad_cursor")


def test_logs_with_one_timestamp_page_by_arrival(caller: Caller, barrier: Callable[[], None]) -> None:
    """Lines sharing a timestamp keep their storage order, and the cursor neither skips nor repeats them."""
    process_id = unique("same-ts")
    stamp = ts(-5)
    post(caller.http, [event("LOG", process_id, timestamp=stamp, message=f"same {i}") for i in range(40)])
    barrier()
    items, pages = follow_pages(caller.http, f"/logs/{process_id}", {"limit": 7})
    assert [item["message"] for item in items] == [f"same {i}" for i in range(40)]
    assert pages == 6


def test_log_item_carries_every_field(caller: Caller, barrier: Callable[[], None]) -> None:
    process_id = unique("log-fields")
    moment = (datetime.now(UTC) - timedelta(hours=1)).replace(microsecond=123456)
    local = moment.astimezone(timezone(timedelta(hours=2))).isoformat()  # an offset other than Z
    post(
        caller.http,
        [
            event(
                "LOG",
                process_id,
                level="ERROR",
                message="failed to load",
                details={"table": "T1", "rows": [1, 2]},
                component="loader",
                correlation_id="corr-9",
                trace_id="0af7651916cd43dd8448eb211c80319c",
                span_id="b7ad6b7169203331",
                duration_us=1234,
                timestamp=local,
            )
        ],
    )
    post(caller.http, [event("LOG", process_id, level="INFO", message="ok")])
    barrier()
    items = caller.http.get(f"/logs/{process_id}").json()["items"]
    assert len(items) == 2
    first = items[0]
    assert first["timestamp"] == moment.isoformat().replace("+00:00", "Z")
    assert first["level"] == "ERROR"
    assert first["message"] == "failed to load"
    assert first["details"] == {"table": "T1", "rows": [1, 2]}
    assert first["component"] == "loader"
    assert first["correlation_id"] == "corr-9"
    assert first["trace_id"] == "0af7651916cd43dd8448eb211c80319c"
    assert first["span_id"] == "b7ad6b7169203331"
    assert first["duration_us"] == 1234
    assert isinstance(first["seq"], int)
    second = items[1]
    assert second["details"] is None
    assert second["trace_id"] is None
    assert wait_status(caller.http, process_id)["log_count"] == 2


@pytest.mark.parametrize(
    ("params", "names"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "1001"}, "limit"),
        ({"level": "LOUD"}, "level"),
        ({"since": "not-a-time"}, "since"),
    ],
)
def test_logs_bad_filters_are_400(
    caller: Caller, barrier: Callable[[], None], params: dict[str, str], names: str
) -> None:
    process_id = unique("logs-bad")
    post(caller.http, [event("LOG", process_id)])
    barrier()
    problem = assert_problem(caller.http.get(f"/logs/{process_id}", params=params), 400)
    assert names in problem["detail"]


# -- POST /events -----------------------------------------------------------------------------------


def test_single_object_body_is_accepted(caller: Caller) -> None:
    process_id = unique("single")
    answer = caller.http.post("/events", json=event("STARTED", process_id))
    assert answer.status_code == 202
    assert answer.json() == {"accepted": 1}
    wait_status(caller.http, process_id)


def test_content_types(caller: Caller) -> None:
    process_id = unique("media")
    body = json.dumps([event("HEARTBEAT", process_id)]).encode()
    # "Connection: close" on each refusal: the server may drop a connection whose body it did not read
    # (see test_connection_dropped_after_an_early_413_is_announced); this test is about media types.
    for media in ("text/plain", "application/x-www-form-urlencoded", "application/xml"):
        refused = caller.http.post("/events", content=body, headers={"content-type": media, **CLOSE})
        assert_problem(refused, 415)
    missing = caller.http.build_request("POST", "/events", content=body, headers=CLOSE)
    assert "content-type" not in missing.headers
    assert_problem(caller.http.send(missing), 415)
    for media in ("application/json; charset=utf-8", "APPLICATION/JSON", "application/cloudevents+json"):
        again = json.dumps([event("HEARTBEAT", process_id)]).encode()
        answer = caller.http.post("/events", content=again, headers={"content-type": media})
        assert answer.status_code == 202, (media, answer.text)


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"{",
        b'[{"event_id": "x"',
        b"\xff\xfe\x00",
        b"",
        b"   ",
        b'"a string"',
        b"42",
        b"null",
        b"true",
        b"[]",
    ],
    ids=[
        "text",
        "open-brace",
        "truncated",
        "binary",
        "empty",
        "blank",
        "string",
        "number",
        "null",
        "bool",
        "empty-array",
    ],
)
def test_body_that_is_not_events_json_is_400(caller: Caller, body: bytes) -> None:
    answer = caller.http.post("/events", content=body, headers={"content-type": "application/json"})
    assert_problem(answer, 400)


def test_two_concatenated_objects_are_not_json(caller: Caller, barrier: Callable[[], None]) -> None:
    """``{...},{...}`` is not a JSON document (neither an object nor an array): 400, nothing queued."""
    first, second = unique("concat"), unique("concat")
    body = (json.dumps(event("HEARTBEAT", first)) + "," + json.dumps(event("HEARTBEAT", second))).encode()
    answer = caller.http.post("/events", content=body, headers={"content-type": "application/json"})
    barrier()
    assert caller.http.get(f"/status/{first}").status_code == 404, "part of a non-JSON body was queued"
    assert_problem(answer, 400)


@pytest.mark.parametrize("depth", [200, 1000, 5000])
def test_deeply_nested_body_is_refused_not_a_server_error(caller: Caller, depth: int) -> None:
    answer = caller.http.post(
        "/events", content=b"[" * depth + b"]" * depth, headers={"content-type": "application/json"}
    )
    assert answer.status_code in (400, 413, 422), answer.text
    assert_problem(answer, answer.status_code)


@pytest.mark.parametrize("depth", [63, 64, 65, 1000])
def test_nesting_limit_is_explicit(caller: Caller, depth: int) -> None:
    """An event may nest 64 levels (itself level 1), alone or in an array body; deeper is a 400 naming
    the limit, never a 500, whatever the worker's stack."""
    process_id = unique("deep-meta")
    started = event("STARTED", process_id)
    text = json.dumps(started)[:-1] + ', "metadata": ' + '{"a": ' * (depth - 1) + "1" + "}" * (depth - 1) + "}"
    for body in (text, "[" + text + "]"):
        answer = caller.http.post("/events", content=body.encode(), headers={"content-type": "application/json"})
        if depth <= 64:
            assert answer.status_code == 202, answer.text
        else:
            problem = assert_problem(answer, 400)
            assert "nested deeper than 64 levels" in problem["detail"]


def test_a_body_that_is_not_utf8_is_400_wherever_the_byte_is(caller: Caller, barrier: Callable[[], None]) -> None:
    """One rule: a body that is not valid UTF-8 JSON is a 400 naming the byte and its offset, whether the
    byte sits in a known field of an object body, of an array body, or in a field nobody reads."""
    process_id = unique("utf8")
    good = json.dumps(event("HEARTBEAT", process_id, message="MARK")).encode()
    bad = good.replace(b"MARK", b"M\xffRK")
    unknown = json.dumps(event("HEARTBEAT", process_id, extra="MARK")).encode().replace(b"MARK", b"M\xffRK")
    for body in (bad, b"[" + bad + b"]", b"[" + good + b"," + bad + b"]", unknown, b"[" + unknown + b"]"):
        answer = caller.http.post("/events", content=body, headers={"content-type": "application/json"})
        problem = assert_problem(answer, 400)
        assert "not UTF-8 (byte 0xff at offset " in problem["detail"], problem
    barrier()
    assert caller.http.get(f"/status/{process_id}").status_code == 404, "part of a refused body was queued"


def test_numbers_the_api_could_not_return_are_refused_naming_the_field(caller: Caller) -> None:
    process_id = unique("inf")
    for kind, field, text in (
        ("PROGRESS", "percent", '"percent": 1e400'),
        ("PROGRESS", "percent", '"percent": -1e999'),
        ("STARTED", "metadata", '"metadata": {"m": [1, -1e400]}'),
        ("STARTED", "metadata", '"metadata": {"m": 1e400}'),
        ("PROGRESS", "metadata", '"metadata": {"m": {"n": 1E+400}}'),
        ("LOG", "details", '"details": {"d": -1e999}'),
        ("COMPLETED", "result", '"result": {"x": 1e400}'),
        ("COMPLETED", "result", '"result": {"x": ' + "9" * 400 + ".0}"),
    ):
        body = json.dumps(event(kind, process_id))[:-1] + ", " + text + "}"
        answer = caller.http.post("/events", content=body.encode(), headers={"content-type": "application/json"})
        problem = assert_problem(answer, 422, "invalid_events")
        ((error),) = problem["errors"]
        assert error["code"] == "bad_field"
        assert error["reason"].startswith(f"{field}: number out of range"), error
    assert caller.http.get(f"/status/{process_id}").status_code == 404


def test_rfc3339_forms_are_accepted_and_refusals_say_why(caller: Caller) -> None:
    http = caller.http
    process_id = unique("rfc3339")
    post(http, [event("STARTED", process_id, timestamp="2026-11-30T10:00:00.1234567891Z")])
    doc = wait_status(http, process_id)
    assert doc["started_at"] == "2026-11-30T10:00:00.123456Z"
    for value in ("2026-11-30T10:00:00.1234567891Z", "2026-11-30t10:00:00+05:30", "2016-12-31T23:59:60Z"):
        assert http.get(f"/logs/{process_id}", params={"since": value}).status_code == 200
        assert http.get("/processes", params={"updated_since": value}).status_code == 200
    problem = assert_problem(http.get("/processes", params={"updated_since": "2026-04-31T10:00:00Z"}), 400)
    assert problem["detail"] == 'updated_since: day out of range for its month, got "2026-04-31T10:00:00Z"'
    problem = assert_problem(http.get(f"/logs/{process_id}", params={"since": "2026-11-30T10:00:00"}), 400)
    assert problem["detail"].startswith("since: expected RFC 3339 with an offset")


def test_timestamp_bounds_are_instants_in_utc(caller: Caller, barrier: Callable[[], None]) -> None:
    """Years 1900-9999 in UTC on both ends: an offset cannot smuggle 1899 in, nor keep 1900 out."""
    http = caller.http
    process_id = unique("bounds")
    for value in ("1900-01-01T00:00:00+01:00", "1899-12-31T23:59:59.999999Z", "1900-01-01T00:59:59+01:00"):
        problem = assert_problem(http.post("/events", json=[event("STARTED", process_id, timestamp=value)]), 422)
        ((error),) = problem["errors"]
        assert (error["code"], error["reason"]) == (
            "bad_timestamp",
            f'timestamp: before 1900-01-01T00:00:00Z, got "{value}"',
        ), error
    problem = assert_problem(http.get("/processes", params={"updated_since": "1900-01-01T00:00:00+00:01"}), 400)
    assert problem["detail"].startswith("updated_since: before 1900-01-01T00:00:00Z"), problem
    post(http, [event("STARTED", process_id, timestamp="1899-12-31T23:00:00-01:00")])
    assert wait_status(http, process_id)["started_at"] == "1900-01-01T00:00:00Z"


def test_a_start_stamped_after_the_end_never_gives_a_negative_duration(
    caller: Caller, barrier: Callable[[], None]
) -> None:
    """STARTED after COMPLETED, in one request or in two, in either order: duration_ms is never below 0."""
    http = caller.http
    apart, together, reversed_ = unique("late-start"), unique("late-start"), unique("late-start")
    post(http, [event("COMPLETED", apart, timestamp=ts(0))])
    wait_status(http, apart, lambda doc: doc["status"] == "COMPLETED")
    post(http, [event("STARTED", apart, timestamp=ts(30))])
    post(http, [event("STARTED", together, timestamp=ts(30)), event("COMPLETED", together, timestamp=ts(0))])
    post(http, [event("COMPLETED", reversed_, timestamp=ts(0)), event("STARTED", reversed_, timestamp=ts(30))])
    barrier()
    for process_id in (apart, together, reversed_):
        doc = wait_status(http, process_id, lambda doc: doc["started_at"] is not None)
        assert doc["status"] == "COMPLETED", doc
        assert doc["duration_ms"] is not None, doc
        assert doc["duration_ms"] >= 0, doc
        assert parse_time(doc["started_at"]) <= parse_time(doc["ended_at"]), doc


def test_a_lone_surrogate_escape_is_refused_with_a_precise_reason(caller: Caller) -> None:
    process_id = unique("surrogate")
    for escape in ("\\ud800", "\\udfff", "x\\ud800\\u0041", "\\udc00\\ud800"):
        item = json.dumps(event("LOG", process_id, message="MARK")).replace("MARK", escape)
        for body in (item, f"[{item}]"):
            answer = caller.http.post("/events", content=body.encode(), headers={"content-type": "application/json"})
            problem = assert_problem(answer, 400, "bad_body")
            assert "unpaired UTF-16 surrogate escape in a string at offset " in problem["detail"], problem
    assert caller.http.get(f"/status/{process_id}").status_code == 404


def test_every_problem_carries_a_code(caller: Caller) -> None:
    """The framework's own answers (no route, wrong method, bad parameter) carry a code like ours."""
    http = caller.http
    assert_problem(http.get("/no-such-route"), 404, "not_found")
    assert_problem(http.get("/processes/extra/segments"), 404, "not_found")
    assert_problem(http.delete("/events"), 405, "method_not_allowed")
    assert_problem(http.put("/processes"), 405, "method_not_allowed")
    assert_problem(http.post("/logs/abc"), 405, "method_not_allowed")
    assert_problem(http.get("/processes", params={"limit": "²"}), 400, "bad_request")
    for value in ("²", "١٢", "9223372036854775808", "-1", "0", "0x10", "1.5", " "):
        assert_problem(http.get("/processes", params={"limit": value}), 400, "bad_request")
        assert_problem(http.get("/logs/abc", params={"limit": value}), 400, "bad_request")


def test_invalid_items_refuse_the_whole_request(caller: Caller, barrier: Callable[[], None]) -> None:
    good = [unique("good") for _ in range(3)]
    items: list[Any] = [
        event("STARTED", good[0]),
        {k: v for k, v in event("HEARTBEAT", good[1]).items() if k != "event_id"},  # 1: no event_id
        event("HEARTBEAT", good[1]),
        event("EXPLODED", good[2]),  # 3: unknown type
        event("HEARTBEAT", good[2], timestamp="2024-13-45"),  # 4: bad timestamp
        event("LOG", good[2], level="LOUD"),  # 5: bad level
        "not an object",  # 6
        event("PROGRESS", good[2], percent=101),  # 7: out of range
        event("HEARTBEAT", "bad\u0007id"),  # 8: control character
        event("HEARTBEAT", good[2]),
    ]
    answer = caller.http.post("/events", json=items)
    problem = assert_problem(answer, 422, "invalid_events")
    errors = problem["errors"]
    assert [error["index"] for error in errors] == [1, 3, 4, 5, 6, 7, 8]
    reasons = {error["index"]: error["reason"] for error in errors}
    assert "event_id" in reasons[1]
    assert "event_type" in reasons[3]
    assert "timestamp" in reasons[4]
    assert "level" in reasons[5]
    assert "percent" in reasons[7]
    assert "process_id" in reasons[8]
    assert all(error["code"] for error in errors)
    assert "nothing was queued" in problem["detail"]
    barrier()
    for process_id in good:
        assert caller.http.get(f"/status/{process_id}").status_code == 404, f"{process_id} was queued"


def test_foreign_tenant_in_a_body_is_403_and_nothing_queued(caller: Caller, barrier: Callable[[], None]) -> None:
    mine, theirs = unique("mine"), unique("theirs")
    other = unique("tenant")
    answer = caller.http.post(
        "/events",
        json=[
            event("STARTED", mine, tenant_id=caller.tenant),
            event("STARTED", theirs, tenant_id=other),
        ],
    )
    problem = assert_problem(answer, 403, "foreign_tenant")
    assert [error["index"] for error in problem["errors"]] == [1]
    barrier()
    assert caller.http.get(f"/status/{mine}").status_code == 404
    assert caller.http.get(f"/status/{theirs}").status_code == 404
    # Naming the token's own tenant explicitly is fine.
    post(caller.http, [event("STARTED", mine, tenant_id=caller.tenant)])
    assert wait_status(caller.http, mine)["tenant_id"] == caller.tenant


def test_posting_needs_the_ingest_role(connect: Callable[..., Caller], barrier: Callable[[], None]) -> None:
    reader = connect(roles=("viewer",))
    process_id = unique("no-role")
    refused = reader.http.post("/events", json=[event("STARTED", process_id)], headers=CLOSE)
    problem = assert_problem(refused, 403)
    assert INGEST in problem["detail"]
    assert "www-authenticate" not in refused.headers
    barrier()
    assert reader.http.get(f"/status/{process_id}").status_code == 404  # reading needs no role
    assert reader.http.get("/processes").status_code == 200


def test_body_over_the_byte_limit_is_413(api: ApiServer, caller: Caller, barrier: Callable[[], None]) -> None:
    process_id = unique("big")
    big = [event("LOG", process_id, message="x" * 3900) for _ in range(300)]  # ~1.2 MB > 1 MiB
    body = json.dumps(big).encode()
    assert len(body) > 1_048_576
    headers = {"content-type": "application/json", "authorization": caller.http.headers["authorization"]}
    # A connection of its own for each: the server drops a connection whose body it did not read
    # (see test_connection_dropped_after_an_early_413_is_announced).
    with api.client() as http:
        assert_problem(http.post("/events", content=body, headers=headers), 413)

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit holds while reading
        for start in range(0, len(body), 65536):
            yield body[start : start + 65536]

    with api.client() as http:
        assert_problem(http.post("/events", content=chunks(), headers=headers), 413)
    barrier()
    assert caller.http.get(f"/status/{process_id}").status_code == 404


def _refused_upload(port: int, authorization: str) -> tuple[list[str], bool]:
    """POST a body over the limit on a raw connection: the answer's head, and whether the server then
    closed the connection (within 3 s)."""
    body = b"[" + b" " * 1_200_000 + b"]"
    request = (
        b"POST /events HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: " + authorization.encode() + b"\r\n"
        b"Content-Type: application/json\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:

        def send() -> None:
            try:
                sock.sendall(request + body)
            except OSError:
                pass  # the server stopped reading: that is the point

        sender = threading.Thread(target=send, daemon=True)
        sender.start()
        received = b""
        while b"\r\n\r\n" not in received:
            chunk = sock.recv(65536)
            assert chunk, f"connection closed without an answer: {received!r}"
            received += chunk
        head = received.split(b"\r\n\r\n", 1)[0].decode("latin-1").lower().split("\r\n")
        sender.join(10)
        sock.settimeout(3)
        try:
            while sock.recv(65536):
                pass
        except TimeoutError:
            return head, False
        except ConnectionResetError:
            pass
        return head, True


def test_connection_dropped_after_an_early_413_is_announced(api: ApiServer, caller: Caller) -> None:
    """A 413 sent before the body was read ends the connection; the answer must say so
    (``Connection: close``), or a keep-alive client sends its next request into a closed socket and
    fails with "server disconnected" instead of getting an answer."""
    for _ in range(5):
        head, closed = _refused_upload(api.port, caller.http.headers["authorization"])
        assert head[0].startswith("http/1.1 413"), head
        announced = any(line.replace(" ", "") == "connection:close" for line in head[1:])
        assert announced or not closed, f"connection closed after {head} without 'Connection: close'"


def test_event_count_limit(caller: Caller, barrier: Callable[[], None]) -> None:
    process_id = "n"  # the tenant is this test's own: short names keep 10,001 events under 1 MiB
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    many = [
        {"event_id": f"{i:x}", "event_type": "HEARTBEAT", "process_id": process_id, "timestamp": stamp}
        for i in range(10_001)
    ]
    body = json.dumps(many, separators=(",", ":")).encode()
    assert len(body) < 1_048_576  # under the byte limit: the count limit is what refuses it
    over = caller.http.post("/events", content=body, headers={"content-type": "application/json"})
    assert_problem(over, 413)
    barrier()
    assert caller.http.get(f"/status/{process_id}").status_code == 404

    exactly = caller.http.post(
        "/events",
        content=json.dumps(many[:10_000], separators=(",", ":")).encode(),
        headers={"content-type": "application/json"},
    )
    assert exactly.status_code == 202, exactly.text
    assert exactly.json() == {"accepted": 10_000}
    assert wait_status(caller.http, process_id, lambda doc: doc["event_count"] == 10_000)

    empties = caller.http.post(
        "/events", content=b"[" + b",".join([b"{}"] * 10_001) + b"]", headers={"content-type": "application/json"}
    )
    assert_problem(empties, 413)


# -- tenant isolation -------------------------------------------------------------------------------


def test_other_tenants_process_looks_exactly_like_a_missing_one(
    connect: Callable[..., Caller], barrier: Callable[[], None]
) -> None:
    alice, bob = connect(), connect()
    secret = unique("secret")
    post(alice.http, [event("STARTED", secret), event("LOG", secret, message="alice only")])
    barrier()
    absent = unique("absent")
    # Same length for both ids, so nothing (not even a length) can differ because of the id itself.
    absent = absent[: len(secret)].ljust(len(secret), "x")
    for path in ("/status/{}", "/logs/{}", "/logs/{}?follow=true", "/logs/{}?level=ERROR"):
        foreign = bob.http.get(path.format(secret))
        missing = bob.http.get(path.format(absent))
        assert foreign.status_code == missing.status_code == 404
        assert foreign.content == missing.content
        assert comparable_headers(foreign) == comparable_headers(missing)
    streamed = bob.http.get(f"/logs/{secret}", headers={"Accept": "text/event-stream"})
    assert_problem(streamed, 404)
    assert alice.http.get(f"/status/{secret}").status_code == 200


def test_lists_and_logs_never_carry_another_tenants_rows(
    connect: Callable[..., Caller], barrier: Callable[[], None]
) -> None:
    alice, bob = connect(), connect()
    shared = unique("shared")
    post(
        alice.http,
        [
            event("STARTED", shared, timestamp=ts(-100), process_type="alice-type"),
            event("LOG", shared, timestamp=ts(-90), message="from alice", level="ERROR"),
            event("COMPLETED", shared, timestamp=ts(-80)),
            event("STARTED", unique("alice-only"), process_type="alice-type"),
        ],
    )
    post(
        bob.http,
        [
            event("STARTED", shared, timestamp=ts(-50), process_type="bob-type"),
            event("LOG", shared, timestamp=ts(-40), message="from bob", level="ERROR"),
            event("LOG", shared, timestamp=ts(-30), message="bob again"),
        ],
    )
    barrier()
    a = wait_status(alice.http, shared)
    b = wait_status(bob.http, shared)
    summary = ("status", "process_type", "event_count", "log_count")
    assert tuple(a[key] for key in summary) == ("COMPLETED", "alice-type", 3, 1)
    assert tuple(b[key] for key in summary) == ("RUNNING", "bob-type", 3, 2)
    assert [item["message"] for item in alice.http.get(f"/logs/{shared}").json()["items"]] == ["from alice"]
    assert [item["message"] for item in bob.http.get(f"/logs/{shared}").json()["items"]] == ["from bob", "bob again"]
    bob_rows, _ = follow_pages(bob.http, "/processes", {"limit": 1})
    assert [row["process_id"] for row in bob_rows] == [shared]
    assert {row["tenant_id"] for row in bob_rows} == {bob.tenant}
    alice_rows, _ = follow_pages(alice.http, "/processes", {"process_type": "alice-type"})
    assert len(alice_rows) == 2
    assert {row["tenant_id"] for row in alice_rows} == {alice.tenant}
    assert bob.http.get("/processes", params={"process_type": "alice-type"}).json()["items"] == []


# -- STALLED through the API (a server with a two-second heartbeat timeout) -------------------------


def test_stalled_status_and_recovery(
    idp: JwksServer, keys: list[SigningKey], tmp_path_factory: pytest.TempPathFactory
) -> None:
    server = ApiServer(tmp_path_factory.mktemp("stall") / "data", idp=idp, env={"SENTINEL_HEARTBEAT_TIMEOUT_SEC": "2"})
    tenant = unique("tenant")
    server.start()
    try:
        with server.client(keys[1].sign(idp.claims(tenant_id=tenant, roles=[INGEST]))) as http:
            quiet, done = unique("quiet"), unique("done")
            post(http, [event("STARTED", quiet), event("STARTED", done), event("COMPLETED", done)])
            wait_status(http, quiet, lambda doc: doc["status"] == "STALLED")
            stalled = http.get("/processes", params={"status": "STALLED,COMPLETED"}).json()["items"]
            assert {(row["process_id"], row["status"]) for row in stalled} == {(quiet, "STALLED"), (done, "COMPLETED")}
            assert http.get("/processes", params={"status": "RUNNING"}).json()["items"] == []
            post(http, [event("HEARTBEAT", quiet)])
            # Its next event makes it RUNNING again (until it is quiet for the timeout once more).
            wait_status(http, quiet, lambda doc: doc["status"] == "RUNNING" and doc["event_count"] == 2)
            assert wait_status(http, done)["status"] == "COMPLETED"  # terminal is never stalled
    except BaseException:
        server.kill()
        raise
    server.stop()


def test_serve_from_a_directory_with_a_sentinel_folder_runs_the_installed_package(tmp_path: Path) -> None:
    """Started from a source checkout (which has no compiled core after ``pip install .``), the
    server's children must still import the installed package, never the folder they start in."""
    import sentinel._core as core

    shadow = tmp_path / "checkout"
    (shadow / "sentinel").mkdir(parents=True)
    (shadow / "sentinel" / "__init__.py").write_text('raise ImportError("imported the checkout")\n')
    command = Path(sys.executable).parent / "sentinel"
    port = free_port()
    env = server_env(tmp_path / "data", {"SENTINEL_LISTEN_PORT": str(port)})
    proc = subprocess.Popen(
        [str(command), "serve", "--dev", "--host", "127.0.0.1", "--workers", "1"],
        cwd=shadow,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=2.0) as http:
            deadline = time.monotonic() + 60
            ready = None
            while time.monotonic() < deadline and proc.poll() is None:
                try:
                    ready = http.get("/ready")
                    if ready.status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                time.sleep(0.2)
            assert ready is not None
            assert ready.status_code == 200, ready.text  # the ingest child is alive too
            assert http.get("/health").json()["core"] == core.IMPLEMENTATION
    finally:
        proc.terminate()
        output = proc.communicate(timeout=60)[0].decode(errors="replace")
    assert proc.returncode == 0, output
    assert "imported the checkout" not in output
