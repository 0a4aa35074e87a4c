"""``sentinel simulate --profile-runs N``: procedures with stable durations give baselines, a slow run
flagged slow, a failed run, and alerts for the demo's rules; through the real ingest worker and SQLite."""

from __future__ import annotations

import random
import statistics
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

import msgspec
from apiserver import sentinel_run, server_env
from helpers import make_settings, run_worker_until_idle

from sentinel.alerts.service import install_status_hook, sync_config_rules
from sentinel.config import Settings
from sentinel.simulate import SimulationConfig, generate, priority_of
from sentinel.simulate_profiles import PROFILES, SLOW_FACTOR, SPREAD, profile_events, write_demo_rules
from sentinel.store.sqlite import SqliteStore


def test_profiles_have_stable_durations_then_a_slow_and_a_failed_run() -> None:
    now = datetime.now(UTC)
    events = list(profile_events(("acme",), 30, random.Random(7), "t", now))
    starts: dict[str, datetime] = {}
    durations: dict[str, list[float]] = defaultdict(list)
    ends: dict[str, str] = {}
    for event in events:
        at = datetime.fromisoformat(event["timestamp"])
        assert at <= now
        if event["event_type"] == "STARTED":
            starts[event["process_id"]] = at
            procedure = event["procedure_name"]
        elif event["event_type"] in ("COMPLETED", "ERROR"):
            durations[procedure].append((at - starts[event["process_id"]]).total_seconds() * 1000)
            ends[event["process_id"]] = event["event_type"]
    for profile in PROFILES:
        runs = durations[profile.procedure_name]
        assert len(runs) == 32
        normal = runs[:30]
        assert abs(statistics.mean(normal) - profile.mean_ms) < profile.mean_ms * SPREAD * 2
        assert max(normal) < profile.mean_ms * (1 + 6 * SPREAD)
        assert runs[30] == profile.mean_ms * SLOW_FACTOR
    assert sorted(ends.values()).count("ERROR") == len(PROFILES)


def test_a_wave_gives_baselines_a_slow_run_and_an_alert(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path,
        SENTINEL_ALERT_RULES_FILE=str(write_demo_rules(tmp_path, ("acme",))),
        SENTINEL_ALERT_ALLOW_PRIVATE_TARGETS="1",
    )
    store = SqliteStore(settings.sqlite_path)
    try:
        check_a_wave(store, settings)
    finally:
        store.close()


def check_a_wave(store: SqliteStore, settings: Settings) -> None:
    store.migrate()
    install_status_hook(store, settings)
    assert sync_config_rules(store, settings) == 1
    messages = list(generate(SimulationConfig(processes=0, tenants=("acme",), profile_runs=20, seed=3, prefix="w")))
    store.enqueue(messages, [priority_of(m) for m in messages])
    run_worker_until_idle(store, settings)

    conn = store._conn()
    found = conn.execute("SELECT procedure_name, runs, median_ms FROM baselines WHERE tenant_id = 'acme'").fetchall()
    by_procedure = {name: (runs, median) for name, runs, median in found}
    for profile in PROFILES:
        runs, median = by_procedure[profile.procedure_name]
        assert runs == 21  # 20 normal runs, then the slow one (judged against those 20 first); failed runs never join
        assert abs(median - profile.mean_ms) < profile.mean_ms * 0.1
    slow = store.get_status("acme", "w-close_day-0020")
    assert slow is not None
    assert slow.slow is True
    assert slow.expected_duration_ms is not None
    outbox = [
        msgspec.json.decode(p)
        for (p,) in conn.execute("SELECT payload FROM alert_outbox WHERE kind = 'firing'").fetchall()
    ]
    assert sorted(note["condition"] for note in outbox) == ["FAILED", "slow"]  # the demo rule: PKG_BILLING
    assert {note["process"]["package_name"] for note in outbox} == {"PKG_BILLING"}


def test_profile_runs_must_be_a_small_count(tmp_path: Path) -> None:
    done = sentinel_run("simulate", "--stdout", "--profile-runs", "-3", env=server_env(tmp_path))
    assert done.returncode == 2
    assert "--profile-runs: expected a whole number from 0 to 10000, got -3" in done.stderr
