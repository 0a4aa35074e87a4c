"""SPEC section 3 for SQL is one table (``sentinel.store.status_rules``) rendered per dialect: every staged
column has exactly one rule, and each dialect's statement binds a column by its name, never by a position
typed by hand. (What the rules do, in every arrival order, is tests/test_store_contract.py's subject.)"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

from sentinel._core import STATUS_COLUMNS
from sentinel.store import status_rules
from sentinel.store.oracle import sql as oracle_sql
from sentinel.store.sqlite import UPSERT_STATUS, SqliteStore
from sentinel.store.status_rules import RULES, Merge


def _insert_pairs(statement: str, columns_after: str, values_after: str) -> dict[str, str]:
    columns = statement.split(columns_after, 1)[1].split(")", 1)[0].split(", ")
    values = re.findall(r"COALESCE\([^)]*\)|[^,\s()]+", statement.split(values_after, 1)[1].split("\n", 1)[0])
    return dict(zip(columns, values, strict=True))


def test_every_staged_column_has_one_rule_over_staged_columns() -> None:
    assert tuple(RULES) == STATUS_COLUMNS
    for column, rule in RULES.items():
        decided_by = [c for c in (rule.by, rule.tie) if c is not None]
        assert set(decided_by) <= set(STATUS_COLUMNS), column
        assert bool(rule.by) == (rule.merge in (Merge.LATEST, Merge.TERMINAL_STATUS)), column
    assert status_rules.KEY_COLUMNS == ("tenant_id", "process_id")


def test_sqlite_upsert_binds_each_column_by_its_name() -> None:
    pairs = _insert_pairs(UPSERT_STATUS, "INSERT INTO processes (", "VALUES (")
    assert tuple(pairs) == status_rules.INSERT_COLUMNS
    for column, value in zip(STATUS_COLUMNS, pairs.values(), strict=True):
        bind = f"?{STATUS_COLUMNS.index(column) + 1}"
        assert value == (f"COALESCE({bind}, 'RUNNING')" if column == "terminal_status" else bind)
    # one SET clause per column that is not the key, each naming the column it updates
    updated = re.findall(r"^\s+(\w+) = ", UPSERT_STATUS.split("DO UPDATE SET", 1)[1], re.MULTILINE)
    assert updated == [status_rules.stored_name(c) for c in STATUS_COLUMNS if c not in status_rules.KEY_COLUMNS]


def test_oracle_merge_reads_each_staged_column_by_its_name() -> None:
    pairs = _insert_pairs(oracle_sql.MERGE_STATUS, "WHEN NOT MATCHED THEN INSERT (", "VALUES (")
    assert tuple(pairs) == status_rules.INSERT_COLUMNS
    for column, value in zip(STATUS_COLUMNS, pairs.values(), strict=True):
        assert value == ("COALESCE(s.terminal_status, 'RUNNING')" if column == "terminal_status" else f"s.{column}")
    staged = oracle_sql.INSERT_STATUS_STAGE.split("(", 1)[1].split(")", 1)[0].split(", ")
    assert tuple(staged) == STATUS_COLUMNS


def test_the_rendered_columns_are_the_tables(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.db")
    try:
        store.migrate()
        with sqlite3.connect(tmp_path / "s.db") as conn:
            table = {row[1] for row in conn.execute("PRAGMA table_info(processes)")}
    finally:
        store.close()
    assert set(status_rules.INSERT_COLUMNS) <= table
    stage = Path(__file__).resolve().parents[1] / "sql" / "002_sentinel_tables.sql"
    text = stage.read_text(encoding="utf-8").lower()
    stage_ddl = text.split("create global temporary table sentinel_status_stage", 1)[1].split(";", 1)[0]
    assert all(re.search(rf"^\s*{column}\s", stage_ddl, re.MULTILINE) for column in STATUS_COLUMNS)
