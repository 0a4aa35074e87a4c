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
from oracle_scratch import PURGE_QUEUE_TABLE
from sqlfluff.core import FluffConfig, Linter

from sentinel.store.oracle import plan_migration, render_plan
from sentinel.store.oracle import sql as oracle_sql
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
    # CREATE CONTEXT
    ("005_sentinel_vpd.sql", "CREATE OR REPLACE CONTEXT sentinel_ctx"),
}

# Adapter SQL the grammar cannot parse: ALTER TABLE ... DROP PARTITION FOR (...), and a PL/SQL block
# declaring a variable of type DBMS_AQADM.AQ$_PURGE_OPTIONS_T ("$" in the type name).
ADAPTER_EXEMPT = {"DROP_LOG_PARTITION"}  # and the tests' PURGE_QUEUE_TABLE (oracle_scratch)


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


def test_the_scripts_are_in_order() -> None:
    assert [p.name for p in SCRIPTS] == [
        "001_sentinel_types.sql",
        "002_sentinel_tables.sql",
        "003_sentinel_queue.sql",
        "004_sentinel_pkg.sql",
        "005_sentinel_vpd.sql",
        "006_sentinel_dashboard.sql",
        "007_sentinel_alerts.sql",
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
    assert len(found) == 3


PROCEDURE_NAMES = {"SET_TENANT", "SET_SERVICE_CONTEXT", "CLEAR_CONTEXT"}  # names for callproc, not SQL
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
    assert parse_errors(linter, PURGE_QUEUE_TABLE)


# -- the splitter on sql/ -----------------------------------------------------------------------------

EXPECTED_COUNTS = {
    "001_sentinel_types.sql": (2, 2),  # (statements, of which PL/SQL units)
    "002_sentinel_tables.sql": (12, 1),
    "003_sentinel_queue.sql": (3, 2),
    "004_sentinel_pkg.sql": (5, 2),
    "005_sentinel_vpd.sql": (4, 3),
    "006_sentinel_dashboard.sql": (2, 0),
    "007_sentinel_alerts.sql": (15, 1),
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


# The SDK calls that build and send one event each (besides log_message and its shorthands).
EVENT_CALLS = ("start_process", "update_progress", "heartbeat", "complete_process", "fail_process", "cancel_process")


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
    for name in (*EVENT_CALLS, "log_debug", "log_info", "log_warn", "log_error"):
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


def _sdk_body() -> str:
    (body,) = [
        st.sql
        for st in scan_script((SQL_DIR / "004_sentinel_pkg.sql").read_text(encoding="utf-8"))
        if st.sql.startswith("CREATE OR REPLACE PACKAGE BODY sentinel_pkg")
    ]
    return body


def _public_units(body: str) -> list[tuple[str, str, str]]:
    """Every top-level procedure or function of the package body that its spec declares, each
    overload apart: (name, declarations, the rest up to its END)."""
    spec = (SQL_DIR / "004_sentinel_pkg.sql").read_text(encoding="utf-8").split("PACKAGE BODY", 1)[0]
    public = set(re.findall(r"^    (?:PROCEDURE|FUNCTION) (\w+)", spec, re.MULTILINE))
    units = []
    for match in re.finditer(r"^    (?:PROCEDURE|FUNCTION) (\w+)\b(.*?)^    END \1;", body, re.MULTILINE | re.DOTALL):
        name, text = match.group(1), match.group(2)
        if name in public:
            head, _, rest = ("\n" + re.split(r"\bIS\n", text, maxsplit=1)[1]).partition("\n    BEGIN\n")
            units.append((name, head, rest))
    assert public <= {name for name, _, _ in units}
    return units


def test_sdk_limits_and_levels_match_the_core() -> None:
    from sentinel._core import LEVELS
    from sentinel._core._shared import MAX_EVENT_BYTES

    body = _sdk_body()
    limit = re.search(r"c_max_event_bytes CONSTANT PLS_INTEGER := (\d+);", body)
    assert limit is not None
    assert int(limit.group(1)) == MAX_EVENT_BYTES
    declared = re.search(r"c_levels CONSTANT VARCHAR2\(\d+\) := '([^']*)';", body)
    assert declared is not None
    assert tuple(declared.group(1).split(", ")) == LEVELS
    accepted = re.search(r"IF l_level IN \(([^)]*)\) THEN", body)
    assert accepted is not None
    assert tuple(level.strip().strip("'") for level in accepted.group(1).split(",")) == LEVELS
    # the level reaches the event only through level_of, never straight from the argument
    assert "l_event.log_level := level_of(p_level);" in body
    assert "UPPER(p_level)" not in body


def test_no_sdk_call_can_raise_into_the_caller_outside_strict_mode() -> None:
    """Monitoring never breaks the job: each public call that builds an event does everything in its
    body, inside a handler that keeps the error and re-raises only in strict mode, and assigns
    nothing from its arguments in its declarations (those run outside the handler)."""
    handler = "\n".join(
        [
            "    EXCEPTION",
            "        WHEN OTHERS THEN",
            "            failed;",
            "            IF g_strict THEN",
            "                RAISE;",
        ]
    )
    units = _public_units(_sdk_body())
    senders = {name for name, _, rest in units if "send(l_event" in rest}
    assert senders == {*EVENT_CALLS, "log_message"}
    for name, declarations, rest in units:
        assert "p_" not in declarations, f"{name}: an argument is used in its declarations"
        if "send(l_event" in rest or name == "to_json":
            assert handler in rest, f"{name}: no guarding handler"
        elif name.startswith("log_"):
            assert "log_message(" in rest  # log_debug .. log_error delegate to the guarded one
        elif name == "start_process":
            assert "start_process(\n            p_process_id     => l_process_id," in rest  # the guarded one
        else:
            # set_tenant, set_strict, last_error cannot fail: they copy a cut argument or a flag
            assert name in ("set_tenant", "set_strict", "last_error"), name
    assert "g_tenant := SUBSTR(p_tenant_id, 1, 50);" in _sdk_body()


def test_render_plan_is_a_sqlplus_script() -> None:
    text = render_plan(SQL_DIR)
    # rendering and splitting again gives the same statements
    assert split_script(text) == [sql for _, sql in plan_migration(SQL_DIR)]


# -- no comment after a terminator: SQL*Plus would not end the statement there ---------------------------


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: p.name)
def test_no_comment_follows_a_terminator_in_sql(path: Path) -> None:
    """The lint over sql/: every statement ends its line with its terminator (a plain statement with
    ``;``, a PL/SQL unit with a line holding only ``/``), with nothing after it but blanks. Read from
    the source lines, apart from the splitter, which refuses the same thing (tests below)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    failures = []
    for statement in scan_script("\n".join(lines)):
        if statement.plsql:
            after = [line for line in lines[statement.end_line :] if line.strip()]
            if not after or after[0] != "/":
                failures.append(f"line {statement.line}: PL/SQL unit not closed by a line holding only '/'")
        elif not lines[statement.end_line - 1].rstrip().endswith(";"):
            failures.append(f"line {statement.end_line}: {lines[statement.end_line - 1].strip()!r} does not end at ';'")
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize(
    ("script", "line", "terminator"),
    [
        ("CREATE INDEX i ON t (a) LOCAL; -- noqa: PRS\n", 1, ";"),
        ("SELECT 1 FROM dual;\nSELECT 2 FROM dual;-- note\n", 2, ";"),
        ("SELECT 1 FROM dual;   /* note */\n", 1, ";"),
        ("SELECT 1 FROM dual; SELECT 2 FROM dual; -- note\n", 1, ";"),
        ("BEGIN\n    NULL;\nEND;\n/ -- note\n", 4, "/"),
        ("BEGIN\n    NULL;\nEND;\n  /  /* note */\n", 4, "/"),
        ("SELECT 1\nFROM dual\n/ -- note\n", 3, "/"),
    ],
)
def test_a_comment_after_a_terminator_is_refused(script: str, line: int, terminator: str) -> None:
    with pytest.raises(ScriptError, match=f"line {line}: a comment after the terminator '{re.escape(terminator)}'"):
        split_script(script)


@pytest.mark.parametrize(
    "script",
    [
        "SELECT 1 FROM dual; -- a comment\n",
        "CREATE OR REPLACE CONTEXT c USING p; -- noqa: PRS\n",
        "BEGIN NULL; END;\n/ -- a comment\n",
    ],
)
def test_migrate_refuses_a_script_sqlplus_would_run_otherwise(tmp_path: Path, script: str) -> None:
    (tmp_path / "001_a.sql").write_text("SELECT 0 FROM dual;\n" + script, encoding="utf-8")
    with pytest.raises(ScriptError, match=r"line [23]: a comment after the terminator"):
        plan_migration(tmp_path)


def test_comments_that_do_not_follow_a_terminator_are_fine() -> None:
    script = """
CREATE TABLE t ( -- noqa: PRS
    a NUMBER -- the first column; no terminator here
);
SELECT 'a; -- not a comment' FROM dual;
SELECT q'[b; /* not one either */]' FROM dual;
SELECT /*+ full(t) */ a FROM t; \t
CREATE OR REPLACE PACKAGE BODY p AS
    PROCEDURE x IS BEGIN NULL; END x; -- inside PL/SQL a ';' ends nothing
END p; -- still inside: the unit ends at the '/' line
/
"""
    statements = scan_script(script)
    assert [st.sql.split()[0] for st in statements] == ["CREATE", "SELECT", "SELECT", "SELECT", "CREATE"]
    assert statements[0].sql == "CREATE TABLE t (\n    a NUMBER\n)"
    assert statements[1].sql == "SELECT 'a; -- not a comment' FROM dual"


# -- the splitter on tricky input ------------------------------------------------------------------------


def test_semicolons_and_slashes_in_strings_and_comments() -> None:
    script = """
-- a comment; with a semicolon and a quote '
INSERT INTO t (a, b) VALUES ('x; y', 'it''s / here');
-- a comment on its own line; after the terminator's line
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


# -- the SQL the guide and the README tell people to run --------------------------------------------------

DOCS = [ROOT / "docs" / "oracle.md", ROOT / "README.md"]


def doc_statements(path: Path) -> list[str]:
    """Every statement of the ```sql blocks of a document, split as SQL*Plus would run them (the
    splitter refuses a comment after a terminator there too)."""
    text = path.read_text(encoding="utf-8")
    statements = []
    for indent, block in re.findall(r"^( *)```sql\n(.*?)^ *```", text, re.DOTALL | re.MULTILINE):
        script = "\n".join(line[len(indent) :] for line in block.splitlines())
        statements += [st.sql for st in scan_script(script)]
    return statements


@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.name)
def test_the_sql_in_the_docs_splits_and_parses(linter: Linter, path: Path) -> None:
    statements = doc_statements(path)
    assert statements
    failures = [
        f"{sql.splitlines()[0]}: {errors[:2]}"
        for sql in statements
        # sqlfluff cannot lex PL/SQL inquiry directives ($$PLSQL_UNIT) of the example procedure
        if "$$PLSQL_UNIT" not in sql and (errors := parse_errors(linter, sql))
    ]
    assert not failures, "\n".join(failures)


def test_the_guide_states_what_the_database_requires() -> None:
    guide = (ROOT / "docs" / "oracle.md").read_text(encoding="utf-8")
    statements = doc_statements(ROOT / "docs" / "oracle.md")
    owner_grants = next(sql for sql in statements if sql.startswith("GRANT CREATE SESSION, CREATE TABLE"))
    assert "CREATE SEQUENCE" in owner_grants  # identity columns create sequences
    # stored code gets the package and both types directly, with synonyms; not the role
    for name in ("sentinel_pkg", "sentinel_attr", "sentinel_attrs"):
        assert f"GRANT EXECUTE ON sentinel.{name} TO app_owner" in statements
        assert f"CREATE SYNONYM app_owner.{name} FOR sentinel.{name}" in statements
    assert not any(sql.startswith("GRANT sentinel_producer TO") for sql in statements)
    # a separate service user reads the queue depth from the AQ$ view
    assert "GRANT SELECT ON aq$sentinel_queue_tab TO sentinel_svc" in statements
    # USER_DATA is a BLOB: no 2,000-byte cast; the replay runs in PL/SQL
    assert "CAST_TO_VARCHAR2(user_data)" not in guide
    assert any("DBMS_AQ.DEQUEUE(queue_name => 'AQ$_SENTINEL_QUEUE_TAB_E'" in sql for sql in statements)
    assert "*exceeds* `max_retries`" in guide
    assert "## What no test here can hold" in guide
