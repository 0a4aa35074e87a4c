"""Baselines and alerts on the Oracle adapter, against the same DRIVER-LEVEL DOUBLE as
tests/test_oracle_adapter.py (autospecced python-oracledb classes, not a database), and every statement
of the Oracle dialect parsed by sqlfluff. None of it ran against an Oracle server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import msgspec
import oracledb
import pytest
from sqlfluff.core import FluffConfig, Linter
from test_oracle_adapter import NOW, Driver, event, make_settings, status_row

from sentinel._core import BatchBuilder, decode_batch
from sentinel.alerts.dialects import for_backend
from sentinel.alerts.engine import StatusHook
from sentinel.alerts.oracle_dialect import Oracle, oracle_names
from sentinel.alerts.service import install_status_hook
from sentinel.baselines import BaselinePolicy
from sentinel.store.oracle import GET_STATUS_WITH_BASELINES, OracleStore

ROOT = Path(__file__).resolve().parents[1]
SQL_DIR = ROOT / "sql"
ORACLE = for_backend("oracle")
assert isinstance(ORACLE, Oracle)


def dialect_statements() -> dict[str, str]:
    out = {
        name: getattr(ORACLE, name)
        for name in dir(ORACLE)
        if name.isupper() and isinstance(getattr(ORACLE, name), str) and getattr(ORACLE, name)
    }
    out["ATTEMPTS_OF"] = out["ATTEMPTS_OF"].format(ids=":i0, :i1")
    out["due"] = ORACLE.due()
    out["started_since"] = ORACLE.started_since()
    out["slow_running"] = ORACLE.slow_running()
    out["rules_page"] = ORACLE.rules_page(10)
    out["deliveries_page"] = ORACLE.deliveries_page(10, with_state=True, with_rule=True)
    out["baselines_page"] = ORACLE.baselines_page(10)
    out["purge_outbox"] = ORACLE.purge_outbox(1000)
    out["GET_STATUS_WITH_BASELINES"] = GET_STATUS_WITH_BASELINES
    return out


STATEMENTS = dialect_statements()


@pytest.fixture
def driver() -> Iterator[Driver]:
    """The autospecced python-oracledb of tests/test_oracle_adapter.py, patched in the same way."""
    fake = Driver()
    with (
        mock.patch.object(oracledb, "create_pool", autospec=True, return_value=fake.pool),
        mock.patch.object(oracledb, "connect", autospec=True, side_effect=lambda *a, **k: fake.connection()),
        mock.patch.object(oracledb, "init_oracle_client", autospec=True),
    ):
        yield fake


@pytest.fixture(scope="module")
def linter() -> Linter:
    return Linter(config=FluffConfig.from_path(str(ROOT)))


@pytest.mark.parametrize("name", sorted(STATEMENTS))
def test_every_oracle_statement_parses(linter: Linter, name: str) -> None:
    parsed = linter.parse_string(STATEMENTS[name])
    errors = [str(v.desc()) for v in parsed.violations]
    if parsed.tree is not None:
        errors += [f"unparsable: {seg.raw[:80]!r}" for seg in parsed.tree.recursive_crawl("unparsable")]
    assert errors == []


def test_every_table_has_its_oracle_name() -> None:
    tables = {"sentinel_processes", "sentinel_status_changes", "sentinel_alert_outbox", "sentinel_alert_rules"}
    text = " ".join(STATEMENTS.values())
    assert all(name in text for name in tables)
    bare = [n for n, sql in STATEMENTS.items() if " processes " in f" {sql} " or "FROM alert_" in sql]
    assert bare == []
    assert oracle_names("SELECT 1 FROM sentinel_processes") == "SELECT 1 FROM sentinel_processes"
    for name in ("due", "started_since", "rules_page", "deliveries_page", "baselines_page"):
        assert STATEMENTS[name].endswith("ROWS ONLY")
        assert "LIMIT" not in STATEMENTS[name]


def test_the_schema_script_creates_every_table_the_dialect_uses() -> None:
    script = (SQL_DIR / "007_sentinel_alerts.sql").read_text().lower()
    for table in (
        "status_changes",
        "baselines",
        "baseline_samples",
        "alert_rules",
        "alert_quiet",
        "alert_state",
        "alert_outbox",
        "alert_attempts",
    ):
        assert f"create table sentinel_{table} (" in script
    assert "after insert or update of status, started_at on sentinel_processes" in script
    assert "late_start" in script  # the marker sentinel.alerts.engine.LATE_START


def rule_row(conditions: list[str]) -> tuple[str, str]:
    spec = {
        "name": "r",
        "conditions": conditions,
        "target": {"kind": "slack", "url": "https://hooks.example.com/x"},
        "quiet_period_sec": 0,
    }
    return ("rule-1", msgspec.json.encode(spec).decode())


def test_a_completed_run_joins_its_baseline_in_the_batch_transaction(driver: Driver, tmp_path: Path) -> None:
    store = OracleStore(make_settings(tmp_path), sql_dir=SQL_DIR)
    install_status_hook(store, store.settings)
    # The trigger logged one change: p1 completed after 1.5 s; its baseline had 9 runs of ~1 s.
    started, ended = NOW, NOW + 1_500_000
    driver.rows[ORACLE.CHANGES] = [
        [(7, "RUNNING", "COMPLETED", "acme", "p1", "ETL", "nightly", None, None, started, ended, None, None)],
        [[]],
    ]  # type: ignore[list-item]
    driver.rows[ORACLE.BASELINE_LOCK] = [[(9, 1000, 1100)]]
    driver.rows[ORACLE.SAMPLE_STATS] = [[(10, 1000.0, 1140.4, 1486.5)]]
    driver.rows[ORACLE.RULES_OF_TENANT] = [[rule_row(["slow", "FAILED"])]]
    driver.messages = [[driver.dequeued(event("COMPLETED", "e9"), b"m1")]]
    consumer = store.consumer()
    messages = consumer.fetch(10, 0)
    events, _ = decode_batch([m.payload for m in messages])
    consumer.commit(messages, BatchBuilder().build(events, set(), NOW), [])

    sequence = driver.sequence()
    merge = sequence.index("execute:MERGE INTO sentinel_processes")
    after = sequence[merge + 1 :]
    assert after[-1] == "commit"
    executed = [c.sql for c in driver.calls("execute")]
    order = [
        ORACLE.CHANGES,
        ORACLE.DELETE_CHANGES,
        ORACLE.RULES_OF_TENANT,
        ORACLE.BASELINE_LOCK,
        ORACLE.SAMPLE_INSERT,
        ORACLE.SAMPLE_TRIM,
        ORACLE.SAMPLE_STATS,
        ORACLE.BASELINE_PUT,
        ORACLE.MARK_RUN,
    ]
    positions = [executed.index(sql) for sql in order]
    assert positions == sorted(positions)
    assert all(c.conn is driver.log[-1].conn for c in driver.calls("execute", ORACLE.BASELINE_PUT))  # one transaction

    (put,) = driver.calls("execute", ORACLE.BASELINE_PUT)
    assert put.params["runs"] == 10
    assert (put.params["median_ms"], put.params["p90_ms"], put.params["p99_ms"]) == (1000, 1140, 1486)
    assert put.params["package_name"] == " "
    assert put.params["procedure_name"] == " "
    assert all(c.kwargs == {"fetch_lobs": False} for c in driver.calls("execute", ORACLE.CHANGES))
    (trim,) = driver.calls("execute", ORACLE.SAMPLE_TRIM)
    assert trim.params["oldest"] == 10 - 100
    (mark,) = driver.calls("execute", ORACLE.MARK_RUN)
    assert mark.params == {"expected": 1000, "slow": 0, "tenant_id": "acme", "process_id": "p1"}
    assert not driver.calls("execute", ORACLE.OUTBOX_INSERT)  # 1.5 s is under 1.1 s x 1.5: not slow


def test_a_slow_run_is_marked_and_its_alert_written_to_the_outbox(driver: Driver, tmp_path: Path) -> None:
    store = OracleStore(make_settings(tmp_path), sql_dir=SQL_DIR)
    hook = StatusHook(ORACLE, BaselinePolicy())
    driver.rows[ORACLE.CHANGES] = [
        [(3, "RUNNING", "FAILED", "acme", "p2", "ETL", "nightly", None, None, NOW, NOW + 5_000_000, "E1", "boom")]
    ]
    driver.rows[ORACLE.BASELINE_PRIOR] = [[(20, 1000, 1100)]]
    driver.rows[ORACLE.RULES_OF_TENANT] = [[rule_row(["slow", "FAILED"])]]
    driver.rowcounts[ORACLE.STATE_INSERT] = [1]
    from sentinel.alerts.db import OracleDb

    with store.connection(None) as conn:
        assert hook.run(OracleDb(conn), now=NOW + 6_000_000) == 1
    (mark,) = driver.calls("execute", ORACLE.MARK_RUN)
    assert mark.params["slow"] == 1
    outbox = driver.calls("execute", ORACLE.OUTBOX_INSERT)
    assert sorted(c.params["cond"] for c in outbox) == ["FAILED", "slow"]  # a failed run that was slow: both
    assert not driver.calls("execute", ORACLE.SAMPLE_INSERT)  # only COMPLETED runs join the baseline
    for call in outbox:
        note = msgspec.json.decode(call.params["payload"])
        assert note["tenant_id"] == "acme"
        assert note["process"]["process_id"] == "p2"
        assert call.params["idempotency_key"] == note["id"]


def test_status_reads_carry_the_baseline_fields(driver: Driver, tmp_path: Path) -> None:
    store = OracleStore(make_settings(tmp_path), sql_dir=SQL_DIR)
    row: Any = status_row(started_at=NOW, ended_at=NOW + 3_000_000, status="COMPLETED")
    driver.rows[GET_STATUS_WITH_BASELINES] = [[(*row[:-5], 1000, 1, 12, 1000, 1100)]]
    doc = store.get_status("acme", "p1")
    assert doc is not None
    assert (doc.expected_duration_ms, doc.slow, doc.eta_band) == (1000, True, None)
