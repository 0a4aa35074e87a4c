"""Baselines against a real ``sentinel serve --dev``: statistics of completed runs, the status document's
expected duration, ETA band and slow flag, and ``GET /baselines`` (tenant-scoped, paged)."""

from __future__ import annotations

import statistics
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from apiserver import ApiServer, assert_problem, event, ts, unique
from helpers import wait_for

from sentinel.baselines import BaselinePolicy, add_sample, eta_band, quantile
from sentinel.config import SettingsError, load_settings


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    with ApiServer(tmp_path_factory.mktemp("baselines") / "data", dev=True) as server:
        yield server


def post(http: httpx.Client, events: list[dict[str, Any]]) -> None:
    answer = http.post("/events", json=events)
    assert answer.status_code == 202, answer.text


def runs(name: str, durations_ms: list[int], base: datetime, **fields: Any) -> list[dict[str, Any]]:
    events = []
    for index, duration in enumerate(durations_ms):
        pid = f"{name}-run-{index}"
        start = base + timedelta(minutes=index)
        events.append(event("STARTED", pid, timestamp=ts(base=start), process_name=name, process_type="ETL", **fields))
        events.append(event("COMPLETED", pid, timestamp=ts(duration / 1000, base=start)))
    return events


def status(http: httpx.Client, pid: str) -> dict[str, Any]:
    """The status document, or an empty dict while the process is not ingested yet."""
    answer = http.get(f"/status/{pid}")
    if answer.status_code == 404:
        return {}
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def baseline_of(http: httpx.Client, name: str) -> dict[str, Any] | None:
    answer = http.get("/baselines", params={"process_name": name})
    assert answer.status_code == 200, answer.text
    items = answer.json()["items"]
    return items[0] if items else None


def test_quantiles_match_statistics_inclusive_method() -> None:
    for values in ([5], [1, 2], [3, 1, 2, 10], list(range(1000, 1200, 10)), [7, 7, 7, 100]):
        ordered = sorted(values)
        if len(values) > 1:
            cuts = statistics.quantiles(values, n=100, method="inclusive")
            assert quantile(ordered, 0.9) == pytest.approx(cuts[89])
            assert quantile(ordered, 0.99) == pytest.approx(cuts[98])
        assert quantile(ordered, 0.5) == pytest.approx(statistics.median(values))


def test_window_keeps_only_the_last_runs() -> None:
    stats = add_sample([], 0, 100, 3)
    for duration in (200, 300, 400, 500):
        stats = add_sample(stats.samples, stats.runs, duration, 3)
    assert stats.runs == 5
    assert stats.samples == [300, 400, 500]
    assert stats.median_ms == 400


def test_eta_band_moves_toward_the_progress_estimate() -> None:
    start = 1_000_000_000_000_000
    plain = eta_band(start, 1000, 2000, None, None)
    assert (plain.earliest, plain.latest) == (
        datetime.fromtimestamp(start / 1e6 + 1, UTC),
        datetime.fromtimestamp(start / 1e6 + 2, UTC),
    )
    estimate = datetime.fromtimestamp(start / 1e6 + 10, UTC)
    half = eta_band(start, 1000, 2000, estimate, 50.0)
    assert half.earliest == datetime.fromtimestamp(start / 1e6 + 5.5, UTC)
    assert half.latest == datetime.fromtimestamp(start / 1e6 + 6, UTC)
    assert BaselinePolicy(min_runs=5).slow_threshold_ms(4, 100) is None
    assert BaselinePolicy(slow_factor=2.0, min_runs=5).slow_threshold_ms(5, 100) == 200


@pytest.mark.slow
def test_twenty_runs_give_the_direct_statistics_and_a_double_run_is_slow(api: ApiServer) -> None:
    name = unique("nightly")
    durations = [1000 + 37 * ((i * 7) % 20) for i in range(20)]  # known, unordered, distinct
    base = datetime.now(UTC) - timedelta(hours=2)
    with api.client(api.dev_token("acme")) as http, api.client(api.dev_token("globex")) as other:
        post(http, runs(name, durations, base, package_name="PKG_LOAD", procedure_name="RUN"))
        found = wait_for(
            lambda: (b := baseline_of(http, name)) and b["runs"] == 20 and b, 60, "20 runs in the baseline"
        )
        cuts = statistics.quantiles(durations, n=100, method="inclusive")
        # The documented approximation: the window (100 runs by default) holds all 20, so the quantiles are
        # exact up to the rounding to whole milliseconds.
        assert found["median_ms"] == pytest.approx(statistics.median(durations), abs=0.5)
        assert found["p90_ms"] == pytest.approx(cuts[89], abs=0.5)
        assert found["p99_ms"] == pytest.approx(cuts[98], abs=0.5)
        assert found["window"] == 20
        assert found["last_duration_ms"] == durations[-1]
        assert found["last_process_id"] == f"{name}-run-19"
        assert (found["process_type"], found["package_name"], found["procedure_name"]) == ("ETL", "PKG_LOAD", "RUN")
        assert baseline_of(other, name) is None  # another tenant sees nothing of it

        median = statistics.median(durations)
        slow_pid, normal_pid = f"{name}-slow", f"{name}-normal"
        start = base + timedelta(hours=1)
        keys = {"process_name": name, "process_type": "ETL", "package_name": "PKG_LOAD", "procedure_name": "RUN"}
        post(
            http,
            [
                event("STARTED", slow_pid, timestamp=ts(base=start), **keys),
                event("COMPLETED", slow_pid, timestamp=ts(2 * median / 1000, base=start)),
                event("STARTED", normal_pid, timestamp=ts(10, base=start), **keys),
                event("COMPLETED", normal_pid, timestamp=ts(10 + median / 1000, base=start)),
            ],
        )
        slow = wait_for(lambda: (s := status(http, slow_pid)).get("status") == "COMPLETED" and s, 60, "the slow run")
        normal = wait_for(
            lambda: (s := status(http, normal_pid)).get("status") == "COMPLETED" and s, 60, "the normal run"
        )
        assert slow["slow"] is True
        assert slow["expected_duration_ms"] == pytest.approx(median, abs=0.5)
        assert slow["eta_band"] is None
        assert normal["slow"] is False

        # A run in progress: expected duration and ETA band from the baseline; slow once far past it.
        running, late = f"{name}-running", f"{name}-late"
        post(
            http,
            [
                event("STARTED", running, timestamp=ts(), **keys),
                event("STARTED", late, timestamp=ts(-3600), **keys),
            ],
        )
        now = wait_for(lambda: (s := status(http, running)).get("expected_duration_ms") and s, 60, "a running document")
        current = baseline_of(http, name)
        assert current is not None
        assert now["slow"] is False
        assert now["expected_duration_ms"] == current["median_ms"]
        started = datetime.fromisoformat(now["started_at"])
        band = now["eta_band"]
        assert datetime.fromisoformat(band["earliest"]) == started + timedelta(milliseconds=current["median_ms"])
        assert datetime.fromisoformat(band["latest"]) == started + timedelta(milliseconds=current["p90_ms"])
        assert wait_for(lambda: status(http, late).get("slow"), 60, "the late run flagged slow")
        listed = http.get("/processes", params={"process_type": "ETL", "limit": 500}).json()["items"]
        by_id = {item["process_id"]: item for item in listed}
        assert by_id[slow_pid]["slow"] is True
        assert by_id[late]["slow"] is True
        assert by_id[normal_pid]["slow"] is False


@pytest.mark.slow
def test_baselines_page_through_every_key_once(api: ApiServer) -> None:
    prefix = unique("paged")
    base = datetime.now(UTC) - timedelta(hours=3)
    with api.client(api.dev_token("pager")) as http:
        events = []
        for n in range(7):
            events += runs(f"{prefix}-{n}", [100 + n], base + timedelta(minutes=n))
        post(http, events)
        wait_for(lambda: len(http.get("/baselines", params={"limit": 500}).json()["items"]) == 7, 60, "7 baselines")
        seen, cursor = [], None
        while True:
            params: dict[str, Any] = {"limit": 3}
            if cursor:
                params["cursor"] = cursor
            page = http.get("/baselines", params=params).json()
            seen += [item["process_name"] for item in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert seen == sorted(f"{prefix}-{n}" for n in range(7))
        assert_problem(http.get("/baselines", params={"cursor": "garbage"}), 400, "bad_cursor")
    with api.client() as anonymous:
        assert_problem(anonymous.get("/baselines"), 401)


@pytest.mark.slow
def test_openapi_documents_the_new_fields(api: ApiServer) -> None:
    with api.client() as http:
        document = http.get("/schema/openapi.json").json()
    status_schema = document["components"]["schemas"]["ProcessStatus"]["properties"]
    for field in ("expected_duration_ms", "eta_band", "slow"):
        assert field in status_schema
    assert "median" in str(status_schema["expected_duration_ms"])
    assert "/baselines" in document["paths"]
    assert {"/alert-rules", "/alert-deliveries"} <= set(document["paths"])


@pytest.mark.slow
def test_a_run_whose_start_arrives_after_its_end_is_judged_and_counted(api: ApiServer) -> None:
    name = unique("late")
    base = datetime.now(UTC) - timedelta(hours=1)
    with api.client(api.dev_token("acme")) as http:
        post(http, runs(name, [100] * 5, base))
        wait_for(lambda: (b := baseline_of(http, name)) and b["runs"] == 5, 60, "five runs")
        pid, start = f"{name}-late", base + timedelta(minutes=30)
        post(http, [event("COMPLETED", pid, timestamp=ts(1.0, base=start))])
        ended = wait_for(lambda: (s := status(http, pid)).get("status") == "COMPLETED" and s, 60, "the end first")
        assert (ended["slow"], ended["expected_duration_ms"]) == (False, None)  # no start: nothing to judge yet
        post(http, [event("STARTED", pid, timestamp=ts(base=start), process_name=name, process_type="ETL")])
        judged = wait_for(lambda: (s := status(http, pid)).get("started_at") and s, 60, "the late start")
        assert judged["slow"] is True
        assert judged["expected_duration_ms"] == 100
        assert wait_for(lambda: (b := baseline_of(http, name)) and b["runs"] == 6 and b, 60, "counted once")
        assert baseline_of(http, name)["last_duration_ms"] == 1000  # type: ignore[index]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("SENTINEL_BASELINE_WINDOW", "4"),
        ("SENTINEL_SLOW_FACTOR", "0.5"),
        ("SENTINEL_SLOW_MIN_RUNS", "x"),
        ("SENTINEL_ALERT_ADMIN_ROLE", "admin role"),
        ("SENTINEL_ALERT_MAX_ATTEMPTS", "0"),
        ("SENTINEL_ALERT_RETRY_BASE_SEC", "-1"),
        ("SENTINEL_ALERTMANAGER_REPOST_SEC", "0.5"),
        ("SENTINEL_ALERT_ALLOW_PRIVATE_TARGETS", "maybe"),
    ],
)
def test_a_bad_setting_is_named_in_one_line(name: str, value: str) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings({name: value})
    assert str(caught.value).startswith(f"{name}: ")
    assert "\n" not in str(caught.value)


def test_settings_reach_the_policy() -> None:
    settings = load_settings(
        {"SENTINEL_BASELINE_WINDOW": "20", "SENTINEL_SLOW_FACTOR": "2", "SENTINEL_SLOW_MIN_RUNS": "3"}
    )
    assert BaselinePolicy.from_settings(settings) == BaselinePolicy(window=20, slow_factor=2.0, min_runs=3)
