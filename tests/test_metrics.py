"""Prometheus metrics (``GET /metrics``) of a real ``sentinel serve``: two Granian workers and the ingest
consumer, each writing its own file in prometheus-client's multiprocess directory, merged on every scrape.

One server serves the whole module (not dev mode: tokens are checked against a loopback JWKS, so the JWKS
fetch counter moves). It is started with ``PROMETHEUS_MULTIPROC_DIR`` pointing at a directory that holds
a stale file left by a dead process, which the server must throw away before it counts anything.
Every request of the module goes through one recording client, so the HTTP counters can be compared with
exactly what was sent. Waits are bounded polls; nothing here asserts a duration.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from apiserver import ApiServer, event, hang_up_mid_body, unique, wait_for
from hypothesis import given, settings
from hypothesis import strategies as st
from jwks_server import JwksServer, SigningKey
from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client import Counter as PromCounter
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

import sentinel
from sentinel.telemetry.metrics import HttpRecorder

pytestmark = pytest.mark.slow

INGEST = "sentinel-ingest"
TENANT = "metrics-tenant"
BOUND = 20.0  # seconds: every wait of this module is bounded by this
# Litestar's template of the status route, with or without the parameter's type.
STATUS_TEMPLATES = ("/status/{process_id}", "/status/{process_id:str}")
STATUS_ROUTE = "/status/{process_id}"  # how this module names that route; see ``route_of``
STALE_ROUTE = "/stale-route-from-a-dead-process"
STALE_FILE = "counter_999999999.db"


# -- reading metrics --------------------------------------------------------------------------------


@dataclass
class Scrape:
    """One parsed ``/metrics`` answer."""

    text: str
    families: dict[str, Any]
    samples: list[Sample]

    def values(self, name: str, **labels: str) -> list[tuple[dict[str, str], float]]:
        """``(labels, value)`` of every sample called ``name`` whose labels include ``labels``."""
        return [
            (dict(sample.labels), sample.value)
            for sample in self.samples
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items())
        ]

    def total(self, name: str, **labels: str) -> float:
        return sum(value for _, value in self.values(name, **labels))

    def one(self, name: str, **labels: str) -> float:
        found = self.values(name, **labels)
        assert len(found) == 1, f"expected one sample {name}{labels}, got {found}"
        return found[0][1]


def parse(text: str) -> Scrape:
    families = {family.name: family for family in text_string_to_metric_families(text)}
    samples = [sample for family in families.values() for sample in family.samples]
    return Scrape(text, families, samples)


def per_process_http_counts(metrics_dir: Path, scratch: Path) -> dict[int, Counter[tuple[str, str, str]]]:
    """The HTTP request counters of each process alone: every ``counter_<pid>.db`` is copied into a
    directory of its own and read with prometheus-client's own multiprocess collector."""
    found: dict[int, Counter[tuple[str, str, str]]] = {}
    for source in sorted(metrics_dir.glob("counter_*.db")):
        pid = int(source.stem.removeprefix("counter_"))
        alone = scratch / f"pid-{pid}"
        shutil.rmtree(alone, ignore_errors=True)
        alone.mkdir(parents=True)
        shutil.copyfile(source, alone / source.name)
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=str(alone))
        counts: Counter[tuple[str, str, str]] = Counter()
        for sample in parse(generate_latest(registry).decode()).samples:
            if sample.name == "sentinel_http_requests_total" and sample.value:
                counts[(route_of(sample.labels["route"]), sample.labels["method"], sample.labels["status"])] += int(
                    sample.value
                )
        if counts:
            found[pid] = counts
    return found


# -- the server and a recording client ----------------------------------------------------------------


@dataclass
class Sent:
    """What the module sent: ``(route template, method, status)`` -> count, for the routes it uses."""

    requests: Counter[tuple[str, str, str]] = field(default_factory=Counter)

    def record(self, response: httpx.Response) -> None:
        path = response.request.url.path
        method = response.request.method
        if path.startswith("/status/"):
            route = STATUS_ROUTE
        elif path in ("/events", "/processes", "/metrics", "/health"):
            route = path
        else:
            route = "other:" + path
        self.requests[(route, method, str(response.status_code))] += 1


@dataclass
class Env:
    api: ApiServer
    root: Path
    metrics_dir: Path
    token: str
    sent: Sent

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One request on a fresh connection (so requests spread over both workers), recorded."""
        with self.api.client(self.token, headers={"Connection": "close"}) as http:
            response = http.request(method, path, **kwargs)
        self.sent.record(response)
        return response

    def scrape(self) -> Scrape:
        response = self.request("GET", "/metrics")
        assert response.status_code == 200, response.text
        return parse(response.text)

    def sentinel(self, *args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
        """``python -m sentinel ARGS`` against the server's data directory (run outside the source tree)."""
        return subprocess.run(
            [sys.executable, "-m", "sentinel", *args],
            env=self.api.env,
            cwd=self.root,
            input=stdin,
            capture_output=True,
            timeout=60,
            check=False,
        )


def stale_metrics_dir(root: Path) -> Path:
    """A multiprocess directory holding a counter file written by a process that has since exited."""
    directory = root / "prometheus"
    directory.mkdir()
    env = {key: value for key, value in os.environ.items() if not key.startswith("PROMETHEUS_")}
    env["PROMETHEUS_MULTIPROC_DIR"] = str(directory)
    script = (
        "import os\n"
        "from prometheus_client import Counter\n"
        "c = Counter('sentinel_http_requests', 'stale', ['route', 'method', 'status'])\n"
        f"c.labels({STALE_ROUTE!r}, 'GET', '200').inc(7)\n"
        "print(os.getpid())\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, cwd=root, capture_output=True, text=True, timeout=60, check=True
    )
    written = directory / f"counter_{done.stdout.strip()}.db"
    assert written.exists(), sorted(os.listdir(directory))
    written.rename(directory / STALE_FILE)
    return directory


@pytest.fixture(scope="module")
def keys() -> list[SigningKey]:
    return [SigningKey.rsa(kid="metrics-rsa")]


@pytest.fixture(scope="module")
def idp(keys: list[SigningKey]) -> Iterator[JwksServer]:
    with JwksServer(keys) as server:
        yield server


@pytest.fixture(scope="module")
def env(idp: JwksServer, keys: list[SigningKey], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    root = tmp_path_factory.mktemp("metrics")
    metrics_dir = stale_metrics_dir(root)
    assert (metrics_dir / STALE_FILE).exists()
    api = ApiServer(root / "data", idp=idp, workers=2, env={"PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)})
    # The server's processes run ``python -m sentinel``: start them where no ``sentinel`` folder lies.
    with contextlib.chdir(root):
        api.start()
    token = keys[0].sign(idp.claims(tenant_id=TENANT, roles=[INGEST], ttl=3600))
    try:
        yield Env(api, root, metrics_dir, token, Sent())
    except BaseException:
        api.kill()
        raise
    api.stop()


# -- the traffic --------------------------------------------------------------------------------------


@dataclass
class Traffic:
    before: Scrape
    posted: Counter[str]  # valid events stored, by event type
    accepted_messages: int  # queue messages those events made
    rejected: Counter[str]  # 422'd items, by reason code
    expected_status: Counter[str]  # processes by status after ingest
    running_id: str
    missing_id: str


@pytest.fixture(scope="module")
def traffic(env: Env) -> Traffic:
    before = env.scrape()
    running, done, failed, cancelled = (unique(name) for name in ("run", "done", "fail", "cancel"))
    first = [
        event("STARTED", running, process_name="nightly"),
        event("PROGRESS", running, step="load", percent=40),
        event("LOG", running, level="INFO", message="loading"),
        event("HEARTBEAT", running),
        event("STARTED", done),
        event("COMPLETED", done, result={"rows": 3}),
        event("STARTED", failed),
        event("ERROR", failed, error_code="ORA-1", error_message="boom"),
        event("STARTED", cancelled),
        event("CANCELLED", cancelled, reason="operator"),
    ]
    second = [event("LOG", running, level="WARN", message=f"line {i}") for i in range(2)]
    for batch in (first, second):
        answer = env.request("POST", "/events", json=batch)
        assert answer.status_code == 202, answer.text
        assert answer.json() == {"accepted": len(batch)}

    never = unique("never-queued")
    invalid = [
        event("STARTED", never),
        {**event("HEARTBEAT", never), "event_type": "EXPLODED"},
        {key: value for key, value in event("LOG", never).items() if key != "level"},
    ]
    answer = env.request("POST", "/events", json=invalid)
    assert answer.status_code == 422, answer.text
    errors = answer.json()["errors"]
    assert sorted(item["index"] for item in errors) == [1, 2], errors
    rejected = Counter(item["code"] for item in errors)

    # Visible through the API: the last process of the later request, then every process.
    def visible(process_id: str) -> bool:
        return env.request("GET", f"/status/{process_id}").status_code == 200

    wait_for(
        lambda: visible(running) and all(visible(p) for p in (done, failed, cancelled)),
        BOUND,
        "the posted processes in /status",
    )
    wait_for(
        lambda: env.request("GET", f"/status/{running}").json()["log_count"] == 3,
        BOUND,
        "all three LOG events of the running process",
    )
    missing = unique("missing")
    assert env.request("GET", f"/status/{missing}").status_code == 404
    assert env.request("GET", f"/status/{never}").status_code == 404  # the 422'd request queued nothing
    listed = env.request("GET", "/processes", params={"limit": 500})
    assert listed.status_code == 200
    assert {item["process_id"] for item in listed.json()["items"]} == {running, done, failed, cancelled}

    posted = Counter(item["event_type"] for item in first + second)
    return Traffic(
        before=before,
        posted=posted,
        accepted_messages=len(first) + len(second),
        rejected=rejected,
        expected_status=Counter({"RUNNING": 1, "COMPLETED": 1, "FAILED": 1, "CANCELLED": 1}),
        running_id=running,
        missing_id=missing,
    )


def wait_for_scrape(env: Env, check: Callable[[Scrape], bool], what: str) -> Scrape:
    """Scrape until ``check`` holds (bounded); returns the scrape that satisfied it."""

    def attempt() -> Scrape | None:
        scrape = env.scrape()
        return scrape if check(scrape) else None

    return wait_for(attempt, BOUND, what, interval=0.1)


# -- the multiprocess directory ----------------------------------------------------------------------


def test_stale_multiprocess_files_are_removed_at_start(env: Env) -> None:
    assert not (env.metrics_dir / STALE_FILE).exists(), sorted(os.listdir(env.metrics_dir))
    scrape = env.scrape()
    assert STALE_ROUTE not in scrape.text
    assert not scrape.values("sentinel_http_requests_total", route=STALE_ROUTE)
    # The directory is the one the server uses: its processes write their files there.
    assert list(env.metrics_dir.glob("counter_*.db")), sorted(os.listdir(env.metrics_dir))


# -- HTTP ---------------------------------------------------------------------------------------------


def route_of(label: str) -> str:
    return STATUS_ROUTE if label in STATUS_TEMPLATES else label


def http_counts(scrape: Scrape) -> Counter[tuple[str, str, str]]:
    counts: Counter[tuple[str, str, str]] = Counter()
    for labels, value in scrape.values("sentinel_http_requests_total"):
        counts[(route_of(labels["route"]), labels["method"], labels["status"])] += int(value)
    return counts


def test_http_requests_are_counted_by_route_template_across_workers(env: Env, traffic: Traffic) -> None:
    # Requests of their own on fresh connections until both workers have answered some (bounded).
    def both_workers() -> dict[int, Counter[tuple[str, str, str]]] | None:
        assert env.request("GET", "/health").status_code == 200
        per_pid = per_process_http_counts(env.metrics_dir, env.root / "scratch")
        return per_pid if len(per_pid) >= 2 else None

    wait_for(both_workers, BOUND, "HTTP requests counted by two worker processes", interval=0.01)

    ours = {key: n for key, n in env.sent.requests.items() if key[0] in (STATUS_ROUTE, "/events", "/processes")}
    assert ours[(STATUS_ROUTE, "GET", "200")] >= 1
    assert ours[(STATUS_ROUTE, "GET", "404")] >= 2  # the missing ids, and polls before ingest caught up
    assert ours[("/events", "POST", "202")] == 2
    assert ours[("/events", "POST", "422")] == 1
    assert ours[("/processes", "GET", "200")] == 1

    # A response can reach us a moment before its worker counts it: poll until the counts catch up.
    def caught_up(scrape: Scrape) -> bool:
        counts = http_counts(scrape)
        return all(counts[key] >= n for key, n in ours.items())

    scrape = wait_for_scrape(env, caught_up, "the HTTP counters to reach the requests sent")
    counts = http_counts(scrape)
    # Nobody else calls these routes: the merged counts are exactly what was sent, over both workers.
    assert {key: counts[key] for key in ours} == ours
    for key in counts:
        route, method, status = key
        assert method in ("GET", "HEAD", "POST"), key
        assert status.isdigit(), key
        assert len(status) == 3, key

    # Templates only: no raw process id, no raw path of a status request.
    routes = {labels["route"] for labels, _ in scrape.values("sentinel_http_requests_total")}
    assert len(routes & set(STATUS_TEMPLATES)) == 1, routes
    for route in routes:
        assert traffic.running_id not in route, routes
        assert traffic.missing_id not in route, routes
        assert not route.startswith("/status/") or route in STATUS_TEMPLATES, routes

    # The merged value of a route is the sum of what each worker process counted on its own.
    per_pid = per_process_http_counts(env.metrics_dir, env.root / "scratch")
    for key in ours:
        assert sum(pid_counts[key] for pid_counts in per_pid.values()) == counts[key], (key, per_pid)


def test_http_duration_histogram_per_route(env: Env, traffic: Traffic) -> None:
    sent_by_route: Counter[tuple[str, str]] = Counter()
    for (route, method, _), n in env.sent.requests.items():
        if route in (STATUS_ROUTE, "/events", "/processes"):
            sent_by_route[(route, method)] += n

    def observed(scrape: Scrape) -> Counter[tuple[str, str]]:
        counts: Counter[tuple[str, str]] = Counter()
        for labels, value in scrape.values("sentinel_http_request_duration_seconds_count"):
            counts[(route_of(labels["route"]), labels["method"])] += int(value)
        return counts

    scrape = wait_for_scrape(
        env,
        lambda s: all(observed(s)[key] >= n for key, n in sent_by_route.items()),
        "the duration histogram to count the requests sent",
    )
    family = scrape.families.get("sentinel_http_request_duration_seconds")
    assert family is not None, sorted(scrape.families)
    assert family.type == "histogram"
    [status_template] = {
        labels["route"]
        for labels, _ in scrape.values("sentinel_http_request_duration_seconds_count")
        if labels["route"] in STATUS_TEMPLATES
    }
    for (name, method), n in sent_by_route.items():
        route = status_template if name == STATUS_ROUTE else name
        count = scrape.one("sentinel_http_request_duration_seconds_count", route=route, method=method)
        assert count == n, (route, method, count, n)
        assert (
            scrape.one("sentinel_http_request_duration_seconds_bucket", route=route, method=method, le="+Inf") == count
        )
        assert scrape.one("sentinel_http_request_duration_seconds_sum", route=route, method=method) > 0
        buckets = [
            value
            for labels, value in scrape.values(
                "sentinel_http_request_duration_seconds_bucket", route=route, method=method
            )
        ]
        assert len(buckets) > 2, buckets
        assert buckets == sorted(buckets), buckets  # cumulative
    for labels, _ in scrape.values("sentinel_http_request_duration_seconds_count"):
        assert traffic.running_id not in labels["route"]
        assert traffic.missing_id not in labels["route"]


def test_a_client_that_hangs_up_is_counted_as_499_not_as_a_server_error(env: Env) -> None:
    def events_counts() -> Counter[str]:
        counts = http_counts(env.scrape())
        return Counter({status: n for (route, method, status), n in counts.items() if route == "/events"})

    before = events_counts()
    hang_ups = 6
    for _ in range(hang_ups):
        hang_up_mid_body(env.api.port, "/events", {"Authorization": f"Bearer {env.token}"})
    env.sent.requests[("/events", "POST", "499")] += hang_ups
    after = wait_for(
        lambda: (counts := events_counts())["499"] - before["499"] >= hang_ups and counts,
        BOUND,
        "the hang-ups to be counted",
        interval=0.1,
    )
    assert after["499"] - before["499"] == hang_ups, after
    assert after["500"] == before["500"] == 0, after  # no 500 was ever sent, none is counted


def test_head_requests_are_counted_as_head_and_a_head_stream_ends(env: Env, traffic: Traffic) -> None:
    """HEAD is its own method label; HEAD of an SSE stream is counted at all because its handler ended
    once the headers were out (a request is counted when its handler returns)."""
    answers = [
        env.request("HEAD", "/health"),
        env.request("HEAD", f"/status/{traffic.running_id}"),
        env.request("HEAD", f"/logs/{traffic.running_id}", params={"follow": "true"}),
    ]
    assert [answer.status_code for answer in answers] == [200, 200, 200]
    assert all(answer.content == b"" for answer in answers)

    def counted(scrape: Scrape) -> bool:
        counts = http_counts(scrape)
        return all(counts[(route, "HEAD", "200")] >= 1 for route in ("/health", STATUS_ROUTE, "/logs/{process_id}"))

    wait_for_scrape(env, counted, "the HEAD requests, the stream's included")


# -- ingest -------------------------------------------------------------------------------------------


def test_events_ingested_by_type_move_by_exactly_what_was_posted(env: Env, traffic: Traffic) -> None:
    def delta(scrape: Scrape) -> Counter[str]:
        moved: Counter[str] = Counter()
        for labels, value in scrape.values("sentinel_events_ingested_total"):
            change = value - traffic.before.total("sentinel_events_ingested_total", **labels)
            if change:
                moved[labels["event_type"]] += int(change)
        return moved

    scrape = wait_for_scrape(
        env, lambda s: delta(s) == traffic.posted, f"sentinel_events_ingested_total to move by {dict(traffic.posted)}"
    )
    assert delta(scrape) == traffic.posted
    accepted = scrape.total("sentinel_http_events_accepted_total") - traffic.before.total(
        "sentinel_http_events_accepted_total"
    )
    assert accepted == traffic.accepted_messages


def test_events_rejected_by_reason_for_the_refused_items(env: Env, traffic: Traffic) -> None:
    scrape = env.scrape()
    assert traffic.rejected, "the 422 named no reasons"
    for reason, n in traffic.rejected.items():
        moved = scrape.total("sentinel_events_rejected_total", reason=reason) - traffic.before.total(
            "sentinel_events_rejected_total", reason=reason
        )
        assert moved == n, (reason, moved, n, scrape.values("sentinel_events_rejected_total"))


def test_queue_gauges_and_process_counts(env: Env, traffic: Traffic) -> None:
    def settled(scrape: Scrape) -> bool:
        statuses = {labels["status"]: value for labels, value in scrape.values("sentinel_processes")}
        return (
            all(statuses.get(status) == n for status, n in traffic.expected_status.items())
            and scrape.values("sentinel_queue_depth") == [({}, 0.0)]
            and scrape.values("sentinel_ingest_lag_seconds") == [({}, 0.0)]
        )

    scrape = wait_for_scrape(env, settled, "sentinel_processes to count the posted processes, queue empty, no lag")
    statuses = {labels["status"]: value for labels, value in scrape.values("sentinel_processes")}
    assert statuses == {"RUNNING": 1, "STALLED": 0, "COMPLETED": 1, "FAILED": 1, "CANCELLED": 1}
    assert scrape.families["sentinel_queue_depth"].type == "gauge"
    assert scrape.families["sentinel_ingest_lag_seconds"].type == "gauge"
    lag = scrape.values("sentinel_ingest_lag_seconds")
    assert len(lag) == 1, lag
    assert lag[0][1] >= 0, lag


def test_batch_histograms_count_batches(env: Env, traffic: Traffic) -> None:
    scrape = wait_for_scrape(
        env,
        lambda s: s.total("sentinel_ingest_batch_size_sum") >= traffic.accepted_messages,
        "the batch size histogram to hold the posted messages",
    )
    for name in ("sentinel_ingest_batch_size", "sentinel_ingest_batch_duration_seconds"):
        assert scrape.families[name].type == "histogram"
        count = scrape.one(f"{name}_count")
        assert count > 0, name
        assert scrape.one(f"{name}_bucket", le="+Inf") == count
    # At most every posted message in its own batch.
    assert scrape.one("sentinel_ingest_batch_size_count") <= scrape.one("sentinel_ingest_batch_size_sum")


# -- process-wide gauges --------------------------------------------------------------------------------


def test_build_info(env: Env) -> None:
    scrape = env.scrape()
    found = scrape.values("sentinel_build_info")
    expected_core = "python" if os.environ.get("SENTINEL_NO_EXTENSIONS", "") not in ("", "0") else "compiled"
    assert found == [
        ({"version": sentinel.__version__, "core": expected_core, "python": platform.python_version()}, 1.0)
    ], found


def test_db_pool_connections_by_state(env: Env, traffic: Traffic) -> None:
    scrape = env.scrape()
    states = {labels["state"]: value for labels, value in scrape.values("sentinel_db_pool_connections")}
    assert set(states) == {"busy", "open"}, states
    assert states["busy"] >= 0
    assert states["open"] >= 1  # the worker that answered this scrape has read from the store
    assert all("pid" not in labels for labels, _ in scrape.values("sentinel_db_pool_connections"))


def test_jwks_fetches_counted_after_a_verified_token(env: Env, traffic: Traffic) -> None:
    assert env.request("GET", "/processes").status_code == 200  # a token checked against the JWKS
    scrape = env.scrape()
    assert "sentinel_jwks_fetches" in scrape.families, sorted(scrape.families)
    assert scrape.families["sentinel_jwks_fetches"].type == "counter"
    assert scrape.total("sentinel_jwks_fetches_total", outcome="ok") >= 1
    assert scrape.total("sentinel_jwks_fetches_total", outcome="error") == 0


# -- dead letters ---------------------------------------------------------------------------------------


def test_dead_letters_counted_after_emit_of_broken_lines(env: Env, traffic: Traffic) -> None:
    before = env.scrape()
    broken = [
        b"this is not json {",
        json.dumps(
            {
                "event_id": unique("dl"),
                "event_type": "EXPLODED",
                "process_id": "p",
                "tenant_id": TENANT,
                "timestamp": "2025-01-01T00:00:00Z",
            }
        ).encode(),
    ]
    done = env.sentinel("emit", stdin=b"\n".join(broken) + b"\n")
    assert done.returncode == 0, done.stderr.decode()

    def moved(scrape: Scrape) -> float:
        return scrape.total("sentinel_dead_letters_total") - before.total("sentinel_dead_letters_total")

    scrape = wait_for_scrape(env, lambda s: moved(s) >= len(broken), "sentinel_dead_letters_total to move")
    assert moved(scrape) == len(broken)

    listed = env.sentinel("dead-letters", "--json")
    assert listed.returncode == 0, listed.stderr.decode()
    codes = Counter(row["code"] for row in json.loads(listed.stdout)["items"])
    assert sum(codes.values()) == len(broken), codes
    for code, n in codes.items():
        change = scrape.total("sentinel_events_rejected_total", reason=code) - before.total(
            "sentinel_events_rejected_total", reason=code
        )
        assert change == n, (code, change, scrape.values("sentinel_events_rejected_total"))


# -- a multiprocess directory that does not exist yet ---------------------------------------------------


def test_serve_creates_a_missing_multiprocess_dir(tmp_path: Path) -> None:
    """``sentinel serve`` prepares ``PROMETHEUS_MULTIPROC_DIR`` itself (emptied, or created with its parents:
    ``prepare_multiprocess_dir``), so a directory that does not exist yet must not stop it."""
    metrics_dir = tmp_path / "not-yet" / "metrics"
    api = ApiServer(tmp_path / "data", dev=True, workers=1, env={"PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)})
    with contextlib.chdir(tmp_path):
        api.start()
    try:
        assert metrics_dir.is_dir()
        with api.client() as http:
            answer = http.get("/metrics")
        assert answer.status_code == 200
        assert parse(answer.text).values("sentinel_build_info"), answer.text
        assert list(metrics_dir.glob("*.db")), sorted(os.listdir(metrics_dir))
    except BaseException:
        api.kill()
        raise
    api.stop()


# -- HTTP requests counted in bulk ------------------------------------------------------------------------

BOUNDS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


def _http_metrics() -> tuple[CollectorRegistry, PromCounter, Histogram]:
    registry = CollectorRegistry()
    requests = PromCounter("t_http_requests", "requests", ["route", "method", "status"], registry=registry)
    durations = Histogram("t_http_seconds", "durations", ["route", "method"], buckets=BOUNDS, registry=registry)
    return registry, requests, durations


def _samples(registry: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in registry.collect()
        for sample in family.samples
        if not sample.name.endswith("_created")
    }


requests_seen = st.lists(
    st.tuples(
        st.sampled_from(["/status/{process_id}", "/processes", "unmatched"]),
        st.sampled_from(["GET", "POST"]),
        st.sampled_from([200, 202, 404, 500]),
        st.one_of(st.sampled_from([0.0, *BOUNDS, 3.0]), st.floats(0, 5, allow_nan=False)),
    ),
    max_size=60,
)


@settings(max_examples=150, deadline=None)
@given(requests_seen, st.integers(0, 60))
def test_bulk_flush_equals_counting_each_request(seen: list[tuple[str, str, int, float]], flush_at: int) -> None:
    """``HttpRecorder`` folds requests into the counter and histogram in bulk: after a flush the exposition
    must be exactly what an increment and an ``observe`` per request give, bucket edges included."""
    expected, requests, durations = _http_metrics()
    for route, method, status, seconds in seen:
        requests.labels(route, method, str(status)).inc()
        durations.labels(route, method).observe(seconds)

    actual, requests, durations = _http_metrics()
    recorder = HttpRecorder(requests, durations)
    for i, (route, method, status, seconds) in enumerate(seen):
        if i == flush_at:
            recorder.flush()  # flushes in the middle add up with later ones
        recorder.record(route, method, status, seconds)
    recorder.flush()
    recorder.flush()  # nothing pending: changes nothing

    got, want = _samples(actual), _samples(expected)
    assert got.keys() == want.keys()
    for key, value in want.items():
        assert got[key] == pytest.approx(value, abs=1e-9), key


def test_requests_are_held_until_a_flush() -> None:
    registry, requests, durations = _http_metrics()
    recorder = HttpRecorder(requests, durations)
    recorder.record("/processes", "GET", 200, 0.003)
    assert not any(name.startswith("t_http_requests_total") for name, _ in _samples(registry))
    recorder.flush()
    samples = _samples(registry)
    route = (("method", "GET"), ("route", "/processes"))
    assert samples[("t_http_requests_total", (*route, ("status", "200")))] == 1
    assert samples[("t_http_seconds_bucket", (("le", "0.005"), *route))] == 1  # cumulative: 0.003 <= 0.005
    assert samples[("t_http_seconds_bucket", (("le", "0.0025"), *route))] == 0
