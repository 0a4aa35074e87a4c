"""The Oracle scripts in sql/: they split the way SQL*Plus runs them, and sqlfluff parses them.

sqlfluff (oracle dialect, the repository's .sqlfluff) parses one statement at a time, as the
splitter cuts them: parsing whole files would let one statement outside sqlfluff's grammar hide
every statement after it. A statement whose valid Oracle syntax the grammar lacks carries
``-- noqa: PRS`` on its first line; every other statement must parse, every exempted one must still
fail (a stale exemption is an error too), and the exemptions are counted so that a new one is a
deliberate change of EXPECTED_EXEMPTIONS. No database is involved.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlfluff.core import FluffConfig, Linter

from sentinel.store import oracle_sql
from sentinel.store.oracle import plan_migration, render_plan
from sentinel.store.sqlscript import (
    SQLPLUS_COMMANDS,
    ScriptError,
    Statement,
    iter_scripts,
    scan_script,
    split_script,
)

ROOT = Path(__file__).resolve().parents[1]
SQL_DIR = ROOT / "sql"
SCRIPTS = sorted(SQL_DIR.glob("*.sql"))
NOQA = "-- noqa: PRS"

# Statements sqlfluff 4.5's Oracle grammar cannot parse although Oracle runs them:
EXPECTED_EXEMPTIONS = {
    # ALTER TABLE ... ADD (CONSTRAINT ... CHECK (col IS JSON)): no IS JSON predicate
    ("002_sentinel_tables.sql", "ALTER TABLE sentinel_processes ADD ("),
    ("002_sentinel_tables.sql", "ALTER TABLE sentinel_status_stage ADD ("),
    # interval partitioning (PARTITION BY RANGE ... INTERVAL) and an inline IS JSON check
    ("002_sentinel_tables.sql", "CREATE TABLE sentinel_logs ("),
    # CREATE INDEX ... LOCAL (local indexes of a partitioned table)
    ("002_sentinel_tables.sql", "CREATE INDEX sentinel_logs_by_process"),
    ("002_sentinel_tables.sql", "CREATE INDEX sentinel_logs_by_tenant"),
    # CREATE CONTEXT
    ("005_sentinel_vpd.sql", "CREATE OR REPLACE CONTEXT sentinel_ctx"),
}

# Adapter SQL the grammar cannot parse: ALTER TABLE ... DROP PARTITION FOR (...), and a PL/SQL block
# declaring a variable of type DBMS_AQADM.AQ$_PURGE_OPTIONS_T ("$" in the type name).
ADAPTER_EXEMPT = {"DROP_LOG_PARTITION", "PURGE_QUEUE_TABLE"}


@pytest.fixture(scope="module")
def linter() -> Linter:
    return Linter(config=FluffConfig.from_path(str(ROOT)))


def parse_errors(linter: Linter, sql: str) -> list[str]:
    parsed = linter.parse_string(sql)
    errors = [str(v.desc()) for v in parsed.violations]
    if parsed.tree is not None:
        errors += [f"unparsable: {seg.raw[:80]!r}" for seg in parsed.tree.recursive_crawl("unparsable")]
    return errors


def statements_of(path: Path) -> list[tuple[Statement, str]]:
    """Each statement with its first source line (where an exemption must be)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return [(st, lines[st.line - 1]) for st in scan_script(path.read_text(encoding="utf-8"))]


def test_there_are_six_scripts_in_order() -> None:
    assert [p.name for p in SCRIPTS] == [
        "001_sentinel_types.sql",
        "002_sentinel_tables.sql",
        "003_sentinel_queue.sql",
        "004_sentinel_pkg.sql",
        "005_sentinel_vpd.sql",
        "006_sentinel_alerts.sql",
    ]
    assert [name for name, _ in iter_scripts(SQL_DIR)] == [p.name for p in SCRIPTS]


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: p.name)
def test_every_statement_parses_unless_exempted(linter: Linter, path: Path) -> None:
    failures = []
    for statement, first_line in statements_of(path):
        errors = parse_errors(linter, statement.sql)
        exempt = NOQA in first_line
        if errors and not exempt:
            failures.append(f"line {statement.line}: {first_line.strip()}\n    " + "\n    ".join(errors[:3]))
        if exempt and not errors:
            failures.append(f"line {statement.line}: stale exemption, it parses: {first_line.strip()}")
    assert not failures, "\n".join(failures)


def test_exemptions_are_exactly_the_known_ones() -> None:
    found = set()
    for path in SCRIPTS:
        firsts = [first for _, first in statements_of(path)]
        for first in firsts:
            if NOQA in first:
                known = [
                    prefix for name, prefix in EXPECTED_EXEMPTIONS if name == path.name and first.startswith(prefix)
                ]
                found.add((path.name, known[0] if known else first))
        # a marker anywhere but on a statement's first line would exempt nothing
        markers = path.read_text(encoding="utf-8").count(NOQA)
        assert markers == sum(NOQA in first for first in firsts), f"{path.name}: {NOQA} off a first line"
    assert found == EXPECTED_EXEMPTIONS
    assert len(found) == 6


PROCEDURE_NAMES = {"SET_TENANT", "SET_SERVICE_SCOPE", "CLEAR_CONTEXT"}  # names for callproc, not SQL
ADAPTER_SQL = sorted(
    name
    for name in dir(oracle_sql)
    if name.isupper()
    and not name.startswith("_")
    and isinstance(getattr(oracle_sql, name), str)
    and name not in ADAPTER_EXEMPT | PROCEDURE_NAMES
)


def test_adapter_sql_list() -> None:
    wanted = {"INSERT_LOGS", "INSERT_STATUS_STAGE", "MERGE_STATUS", "INSERT_DEDUPE", "GET_STATUS"}
    assert wanted <= set(ADAPTER_SQL)


@pytest.mark.parametrize("name", ADAPTER_SQL)
def test_adapter_sql_parses(linter: Linter, name: str) -> None:
    sql = getattr(oracle_sql, name)
    if "{view}" in sql:
        sql = sql.format(view='"SENTINEL"."AQ$SENTINEL_QUEUE_TAB"')
    assert parse_errors(linter, sql) == []


def test_adapter_exemptions_still_fail(linter: Linter) -> None:
    assert parse_errors(linter, oracle_sql.DROP_LOG_PARTITION.format(day_start=86_400_000_000))
    assert parse_errors(linter, oracle_sql.PURGE_QUEUE_TABLE)


# -- the splitter on sql/ -----------------------------------------------------------------------------

EXPECTED_COUNTS = {
    "001_sentinel_types.sql": (2, 2),  # (statements, of which PL/SQL units)
    "002_sentinel_tables.sql": (14, 0),
    "003_sentinel_queue.sql": (3, 2),
    "004_sentinel_pkg.sql": (5, 2),
    "005_sentinel_vpd.sql": (4, 3),
    "006_sentinel_alerts.sql": (15, 1),
}


def test_statement_counts() -> None:
    counts = {}
    for path in SCRIPTS:
        statements = scan_script(path.read_text(encoding="utf-8"))
        counts[path.name] = (len(statements), sum(st.plsql for st in statements))
    assert counts == EXPECTED_COUNTS
    assert len(plan_migration(SQL_DIR)) == sum(n for n, _ in EXPECTED_COUNTS.values())


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: p.name)
def test_statements_are_clean(path: Path) -> None:
    for statement in scan_script(path.read_text(encoding="utf-8")):
        sql = statement.sql
        first = re.match(r"[A-Za-z@]+", sql)
        assert first is not None
        assert first.group().upper() not in SQLPLUS_COMMANDS, sql[:60]
        assert not sql.startswith("@")
        assert sql == sql.strip()
        assert "--" not in sql, "comments are dropped"
        assert "/*" not in sql, "comments are dropped"
        assert not re.search(r"^\s*/\s*$", sql, re.MULTILINE), "no '/' terminator lines inside"
        if statement.plsql:
            assert sql.endswith(";"), sql[-60:]  # END name; (and CREATE TYPE ...;) keep their semicolon
        else:
            assert not sql.endswith(";"), sql[-60:]


def test_plsql_units_are_kept_whole() -> None:
    package = {
        st.sql.split()[4]: st
        for st in scan_script((SQL_DIR / "004_sentinel_pkg.sql").read_text(encoding="utf-8"))
        if st.plsql
    }
    body = package["BODY"]
    assert body.sql.startswith("CREATE OR REPLACE PACKAGE BODY sentinel_pkg AS")
    assert body.sql.endswith("END sentinel_pkg;")
    assert body.sql.count(";") > 100
    # the procedures of the SDK are all in it
    for name in (
        "start_process",
        "update_progress",
        "heartbeat",
        "complete_process",
        "fail_process",
        "cancel_process",
        "log_debug",
        "log_info",
        "log_warn",
        "log_error",
    ):
        assert f"PROCEDURE {name}(" in body.sql
    assert "FUNCTION start_process(" in body.sql
    assert "PRAGMA AUTONOMOUS_TRANSACTION" in body.sql
    # a format string with ':' and '"' survived inside a string literal
    assert """'YYYY-MM-DD"T"HH24:MI:SS.FF6TZH:TZM'""" in body.sql


def test_sdk_priorities_match_the_core() -> None:
    from sentinel._core import EVENT_TYPES, PRIORITIES

    spec = (SQL_DIR / "004_sentinel_pkg.sql").read_text(encoding="utf-8")
    declared = {
        name.upper(): int(value)
        for name, value in re.findall(r"c_priority_(\w+)\s+CONSTANT PLS_INTEGER := (\d+);", spec)
    }
    wanted = dict(zip(EVENT_TYPES, PRIORITIES, strict=True))
    assert declared == {
        "ERROR": wanted["ERROR"],
        "COMPLETED": wanted["COMPLETED"],
        "CANCELLED": wanted["CANCELLED"],
        "STARTED": wanted["STARTED"],
        "PROGRESS": wanted["PROGRESS"],
        "LOG": wanted["LOG"],
        "HEARTBEAT": wanted["HEARTBEAT"],
    }


def test_render_plan_is_a_sqlplus_script() -> None:
    text = render_plan(SQL_DIR)
    # rendering and splitting again gives the same statements
    assert split_script(text) == [sql for _, sql in plan_migration(SQL_DIR)]


# -- the splitter on tricky input ------------------------------------------------------------------------


def test_semicolons_and_slashes_in_strings_and_comments() -> None:
    script = """
-- a comment; with a semicolon and a quote '
INSERT INTO t (a, b) VALUES ('x; y', 'it''s / here'); -- trailing; comment
/* block; comment
/
'still a comment' */
SELECT "odd;name" FROM t WHERE c = 'a/b'
/
"""
    assert split_script(script) == [
        "INSERT INTO t (a, b) VALUES ('x; y', 'it''s / here')",
        """SELECT "odd;name" FROM t WHERE c = 'a/b'""",
    ]


@pytest.mark.parametrize(
    ("literal", "text"),
    [
        ("q'[a;b]'", "a;b"),
        ("q'{it's; }'", "it's; "),
        ("Q'(x)y;)'", "x)y;"),
        ("q'<;>'", ";"),
        ("q'!a'; b!'", "a'; b"),
        ("nq'[national;]'", "national;"),
    ],
)
def test_q_quotes(literal: str, text: str) -> None:
    assert split_script(f"SELECT {literal} FROM dual; SELECT 2 FROM dual;") == [
        f"SELECT {literal} FROM dual",
        "SELECT 2 FROM dual",
    ]


def test_a_slash_line_inside_a_multiline_string_does_not_end_the_statement() -> None:
    script = "INSERT INTO t VALUES ('line one\n/\nline three');\nSELECT 1 FROM dual;\n"
    assert split_script(script) == ["INSERT INTO t VALUES ('line one\n/\nline three')", "SELECT 1 FROM dual"]


def test_plsql_blocks_end_at_the_slash_only() -> None:
    script = """
CREATE OR REPLACE
  PACKAGE BODY p AS
    PROCEDURE x IS BEGIN NULL; END x;  -- inner ; kept
END p;
/
DECLARE
    v VARCHAR2(10) := ';';
BEGIN
    NULL;
END;
/
BEGIN NULL; END;
/
CREATE OR REPLACE TRIGGER trg BEFORE INSERT ON t FOR EACH ROW
BEGIN
    :NEW.a := 1;
END;
/
CREATE TYPE t_list AS TABLE OF NUMBER;
/
CREATE OR REPLACE VIEW v AS SELECT 1 AS a FROM dual;
"""
    statements = scan_script(script)
    assert [st.plsql for st in statements] == [True, True, True, True, True, False]
    assert statements[0].sql == (
        "CREATE OR REPLACE\n  PACKAGE BODY p AS\n    PROCEDURE x IS BEGIN NULL; END x;\nEND p;"
    )
    assert statements[1].sql.endswith("END;")
    assert "';'" in statements[1].sql
    assert statements[4].sql == "CREATE TYPE t_list AS TABLE OF NUMBER;"
    assert statements[5].sql == "CREATE OR REPLACE VIEW v AS SELECT 1 AS a FROM dual"
    assert (statements[0].line, statements[0].end_line) == (2, 5)


def test_sqlplus_commands_are_dropped() -> None:
    script = """SET DEFINE OFF
SET SERVEROUTPUT ON SIZE UNLIMITED
WHENEVER SQLERROR EXIT SQL.SQLCODE
PROMPT creating things; really
SPOOL out.log
DEFINE x = 1
@other.sql
@@relative.sql
REM a remark
SET TRANSACTION READ ONLY;
EXEC dbms_output.put_line('hi');
UPDATE t SET a = 1;
EXIT
"""
    assert split_script(script) == [
        "SET TRANSACTION READ ONLY",
        "BEGIN dbms_output.put_line('hi'); END;",
        "UPDATE t SET a = 1",
    ]


def test_hints_are_kept_and_crlf_is_fine() -> None:
    script = "SELECT /*+ index(t t_i) */ a FROM t;\r\nBEGIN\r\n  NULL;\r\nEND;\r\n/\r\n"
    assert split_script(script) == ["SELECT /*+ index(t t_i) */ a FROM t", "BEGIN\n  NULL;\nEND;"]


def test_a_sql_statement_may_end_with_a_slash_and_blank_input_gives_nothing() -> None:
    assert split_script("SELECT 1\nFROM dual\n/\n") == ["SELECT 1\nFROM dual"]
    assert split_script("\n\n-- only a comment\n/* and another */\n") == []
    assert split_script("SELECT 1 FROM dual") == ["SELECT 1 FROM dual"]  # no terminator at the end


@pytest.mark.parametrize("script", ["SELECT 'open FROM dual;", "SELECT q'[open FROM dual;", "/* open"])
def test_unterminated_text_is_an_error(script: str) -> None:
    with pytest.raises(ScriptError):
        split_script(script)


def test_iter_scripts_reads_files_in_name_order(tmp_path: Path) -> None:
    (tmp_path / "010_b.sql").write_text("SELECT 2 FROM dual;\n", encoding="utf-8")
    (tmp_path / "002_a.sql").write_text("SELECT 1 FROM dual;\nSELECT 3 FROM dual;\n", encoding="utf-8")
    (tmp_path / "notes.txt").write_text("SELECT 4 FROM dual;\n", encoding="utf-8")
    assert iter_scripts(tmp_path) == [
        ("002_a.sql", ["SELECT 1 FROM dual", "SELECT 3 FROM dual"]),
        ("010_b.sql", ["SELECT 2 FROM dual"]),
    ]
