"""The schema: the ``sql/`` scripts, the plan a dry run prints, and ``migrate``."""

from __future__ import annotations

import hashlib
import logging
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Final

import oracledb

from sentinel.store.base import StoreError
from sentinel.store.oracle import sql
from sentinel.store.oracle.errors import FEATURE_NOT_ENABLED, error_code, error_message
from sentinel.store.oracle.pool import Connections
from sentinel.store.sqlscript import Statement, scan_script, script_files

log = logging.getLogger(__name__)

# "Already exists" errors a re-run of sql/ meets; `migrate` skips the statement.
ALREADY_EXISTS: Final = frozenset(
    {
        955,  # name is already used by an existing object
        1408,  # such column list already indexed
        1430,  # column being added already exists in table
        1920,  # user or role name conflicts with another user or role name
        1921,  # role name conflicts with another user or role name
        2260,  # table can have only one primary key
        2261,  # such unique or primary key already exists in the table
        2264,  # name already used by an existing constraint
        2275,  # such a referential constraint already exists in the table
        24001,  # cannot create QUEUE_TABLE, already exists
        24006,  # cannot create QUEUE, already exists
        28101,  # policy already exists
    }
)
OPTIONAL_SCRIPTS: Final = ("_vpd",)  # skipped with a note where the edition lacks the feature (ORA-00439)


def default_sql_dir() -> Path | Traversable:
    """``sql/`` of the source tree, else the copy packaged as ``sentinel/sql``."""
    source = Path(__file__).resolve().parents[3] / "sql"
    if source.is_dir():
        return source
    packaged = resources.files("sentinel").joinpath("sql")
    if packaged.is_dir():
        return packaged
    raise StoreError(f"oracle: no sql/ directory (looked in {source} and in the sentinel package)")


def load_scripts(sql_dir: Path | Traversable | None = None) -> list[tuple[str, str, list[Statement]]]:
    """``(file name, sha256 of its text, statements)`` for every script, in order."""
    scripts = []
    for entry in script_files(sql_dir or default_sql_dir()):
        text = entry.read_text(encoding="utf-8")
        scripts.append((entry.name, hashlib.sha256(text.encode()).hexdigest(), scan_script(text)))
    return scripts


def plan_migration(sql_dir: Path | Traversable | None = None) -> list[tuple[str, str]]:
    """Every ``(file name, statement)`` that ``migrate`` would run, in order, without a database:
    what ``sentinel migrate --oracle --dry-run`` prints."""
    return [(name, st.sql) for name, _, statements in load_scripts(sql_dir) for st in statements]


def render_plan(sql_dir: Path | Traversable | None = None) -> str:
    """The plan as one SQL*Plus script (``;`` after SQL, ``/`` after PL/SQL units), for a dry run
    that can be reviewed or run by hand."""
    out = []
    for name, _, statements in load_scripts(sql_dir):
        out.append(f"-- {name}")
        out.extend(f"{st.sql}\n/" if st.plsql else f"{st.sql};" for st in statements)
    return "\n\n".join(out) + "\n"


def migrate(connections: Connections, sql_dir: Path | Traversable | None = None) -> list[str]:
    """Run the sql/ scripts not applied yet (or changed since), in order; returns their names.

    Statements meeting "already exists" are skipped, so scripts first run with SQL*Plus, or
    interrupted half-way, can be run again. An optional script (VPD) that the database edition
    cannot run (ORA-00439) is skipped with a warning and not recorded."""
    scripts = load_scripts(sql_dir)
    applied: list[str] = []
    with connections.connection(tenant_context=False) as conn, conn.cursor() as cursor:
        _run_ddl(cursor, sql.CREATE_MIGRATIONS)
        cursor.execute(sql.APPLIED_MIGRATIONS)
        done = {name: checksum for name, checksum in cursor.fetchall()}
        for name, checksum, statements in scripts:
            if done.get(name) == checksum:
                continue
            try:
                for statement in statements:
                    _run_ddl(cursor, statement.sql, plsql=statement.plsql)
            except oracledb.DatabaseError as exc:
                if error_code(exc) == FEATURE_NOT_ENABLED and any(tag in name for tag in OPTIONAL_SCRIPTS):
                    log.warning("oracle: %s skipped: %s", name, error_message(exc))
                    continue
                raise StoreError(
                    f"oracle: migration {name} failed at line {statement.line}: {error_message(exc)}"
                ) from exc
            cursor.execute(sql.RECORD_MIGRATION, {"filename": name, "checksum": checksum})
            conn.commit()
            applied.append(name)
    connections.forget_vpd()  # ask again: 005 may just have been installed
    return applied


def _run_ddl(cursor: oracledb.Cursor, ddl: str, *, plsql: bool = False) -> None:
    try:
        cursor.execute(ddl)
    except oracledb.DatabaseError as exc:
        if error_code(exc) in ALREADY_EXISTS:
            log.info("oracle: skipped, already there: %s", ddl.splitlines()[0])
            return
        raise
    if plsql and cursor.warning is not None:
        # "Creation succeeded with compilation errors" is a warning, not an exception.
        cursor.execute(sql.COMPILE_ERRORS)
        errors = [f"{name} {kind} {line}:{col} {text.strip()}" for name, kind, line, col, text in cursor]
        if errors:
            raise StoreError(f"oracle: compiled with errors: {'; '.join(errors)}")
