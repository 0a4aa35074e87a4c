"""The event schema is declared once (``sentinel._core._schema.EVENT_FIELDS``): every place that names the
fields agrees with it, and a new field reaches every derived place from the declaration alone."""

from __future__ import annotations

import ast
import dataclasses
import importlib.util
import re
import sqlite3
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import msgspec
import oracledb
import pytest

from sentinel._core import DEDUPE_COLUMNS, LOG_COLUMNS, STATUS_COLUMNS, _decoder_py, _schema, _shared
from sentinel._core._schema import EVENT_ATTRS, EVENT_FIELDS, JSON_OBJECT, TEXT, WIRE_FIELDS, EventField
from sentinel.api.openapi import event_schema

try:
    from sentinel._core import _decoder_c  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - only when built with SENTINEL_NO_EXTENSIONS=1
    _decoder_c = None

ROOT = Path(__file__).resolve().parents[1]
CORE = ROOT / "sentinel" / "_core"
STORED = [field for field in EVENT_FIELDS if field.column]


def _load_gen_core() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_core", ROOT / "tools" / "gen_core.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["gen_core"] = module
    spec.loader.exec_module(module)
    return module


gen_core = _load_gen_core()


def test_generated_files_are_up_to_date() -> None:
    """``make gen`` has been run since the declaration last changed (``tools/gen_core.py --check``)."""
    assert gen_core.stale() == []
    assert gen_core.main(["gen_core.py", "--check"]) == 0


def test_constants_pxi_follows_shared() -> None:
    """The C enum both .pyx files include is ``_shared``'s event type codes."""
    text = (CORE / "_constants.pxi").read_text()
    enum = dict(re.findall(r"^    (\w+) = (\d+)$", text, re.M))
    assert {name: int(code) for name, code in enum.items()} == _shared.EVENT_TYPE_CODES
    for name, code in _shared.EVENT_TYPE_CODES.items():
        assert getattr(_shared, name) == code
    for pyx in ("_decoder_c.pyx", "_batch_c.pyx"):
        source = (CORE / pyx).read_text()
        assert 'include "_constants.pxi"' in source
        assert "    STARTED = 0" not in source, f"{pyx} declares the event codes again"


def test_a_drifted_generated_block_is_caught(tmp_path: Path) -> None:
    text = (CORE / "_decoder_c.pyi").read_text()
    edited = text.replace("    stack_trace: str | None\n", "")
    assert edited != text
    assert gen_core.with_block(edited, gen_core.annotations_block(), tmp_path / "x.pyi") == text


# -- every derived place agrees with the declaration ----------------------------------------------------
def test_event_wire_follows_the_declaration() -> None:
    assert _schema.EventWire.__struct_fields__ == WIRE_FIELDS
    defaults = dict(zip(WIRE_FIELDS, _schema.EventWire.__struct_defaults__, strict=True))
    for field in EVENT_FIELDS:
        if field.kind == JSON_OBJECT:
            assert isinstance(defaults[field.name], msgspec.Raw), field.name
        else:
            assert defaults[field.name] is None, field.name


def _class_body(path: Path, cls: str = "Event") -> list[str]:
    lines = path.read_text().splitlines()
    start = lines.index(f"cdef class {cls}:")
    body = []
    for line in lines[start + 1 :]:
        if line and not line.startswith(" "):
            break
        body.append(line.strip())
    return body


def test_pxd_attributes_follow_the_declaration() -> None:
    declared = {}
    for line in _class_body(CORE / "_decoder_c.pxd"):
        match = re.fullmatch(r"cdef readonly (\w+) (\w+)", line)
        if match:
            declared[match[2]] = match[1]
    assert declared == {field.attr: field.c_type for field in EVENT_FIELDS}


def _annotations(path: Path) -> dict[str, str]:
    tree = ast.parse(path.read_text())
    event = next(node for node in tree.body if isinstance(node, ast.ClassDef) and node.name == "Event")
    return {
        node.target.id: ast.unparse(node.annotation)
        for node in event.body
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
    }


@pytest.mark.parametrize("path", [CORE / "_decoder_c.pyi", CORE / "_decoder_py.py"], ids=lambda p: p.name)
def test_annotations_follow_the_declaration(path: Path) -> None:
    assert _annotations(path) == {field.attr: field.py_type for field in EVENT_FIELDS}


def test_twin_event_follows_the_declaration() -> None:
    assert _decoder_py.Event.__slots__ == EVENT_ATTRS
    event = _decoder_py.Event()
    for field in EVENT_FIELDS:
        if field.unset is not None:
            assert getattr(event, field.attr) == field.unset
        elif field.py_type.endswith("| None"):
            assert getattr(event, field.attr) is None


@pytest.mark.skipif(_decoder_c is None, reason="the compiled core was not built")
def test_compiled_event_follows_the_declaration() -> None:
    assert _decoder_c.WIRE_FIELDS == WIRE_FIELDS
    event = _decoder_c.decode_one(
        b'{"event_id":"e","event_type":"LOG","process_id":"p","tenant_id":"t",'
        b'"timestamp":"2026-01-01T00:00:00Z","level":"INFO","message":"m"}'
    )
    assert event.as_tuple() == tuple(getattr(event, attr) for attr in EVENT_ATTRS)
    blank = _decoder_c.Event.__new__(_decoder_c.Event)
    for field in EVENT_FIELDS:
        if field.unset is not None:
            assert getattr(blank, field.attr) == field.unset


def test_openapi_event_schema_follows_the_declaration() -> None:
    schema = event_schema()
    assert schema.properties is not None
    assert list(schema.properties) == list(WIRE_FIELDS)
    assert schema.required == [f.name for f in EVENT_FIELDS if f.required and f.name != "tenant_id"]
    for field in EVENT_FIELDS:
        prop: Any = schema.properties[field.name]
        if field.kind in (TEXT, _schema.IDENT):
            assert prop.max_length == field.max_length, field.name
        if field.choices is not None:
            assert prop.enum == list(field.choices), field.name
        if field.minimum is not None:
            assert (prop.minimum, prop.maximum) == (field.minimum, field.maximum), field.name


# -- the stores' tables --------------------------------------------------------------------------------
def _sqlite_columns() -> dict[str, dict[str, str]]:
    db = sqlite3.connect(":memory:")
    script = (ROOT / "sentinel" / "store" / "sqlite_migrations" / "0001_initial.sql").read_text()
    db.executescript(script)
    tables = [row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    columns = {table: {row[1]: row[2] for row in db.execute(f"PRAGMA table_info({table})")} for table in tables}
    db.close()
    return columns


def _oracle_columns() -> dict[str, dict[str, str]]:
    """The column types of every CREATE TABLE in sql/002 (sentinel_logs' sits inside a PL/SQL string)."""
    text = (ROOT / "sql" / "002_sentinel_tables.sql").read_text()
    tables: dict[str, dict[str, str]] = {}
    for match in re.finditer(r"CREATE (?:GLOBAL TEMPORARY )?TABLE (\w+) \((.*?)(?:\n\)|\)\]')", text, re.S):
        columns = {}
        for line in match[2].splitlines():
            column = re.match(r"\s*(\w+)\s+([A-Z_0-9]+(?:\([^)]*\))?)", line)
            if column and column[1] != "CONSTRAINT":
                columns[column[1].lower()] = column[2]
        tables[match[1]] = columns
    return tables


def _oracle_name(column: str) -> str:
    return "log_level" if column == "level" else column


def test_every_stored_field_has_a_row_column() -> None:
    """A stored field is in the core's log or status rows, which the stores insert as they are."""
    for field in STORED:
        assert field.column in LOG_COLUMNS or field.column in STATUS_COLUMNS, field.name


def test_sqlite_tables_hold_the_rows() -> None:
    tables = _sqlite_columns()
    assert set(LOG_COLUMNS) <= set(tables["logs"])
    assert set(STATUS_COLUMNS) - {"terminal_status"} <= set(tables["processes"])
    assert set(DEDUPE_COLUMNS) <= set(tables["dedupe"])
    affinity = {"number": "REAL", "integer": "INTEGER", "choice": "INTEGER"}
    for field in STORED:
        for table, columns in (("logs", LOG_COLUMNS), ("processes", STATUS_COLUMNS)):
            if field.column in columns:
                assert tables[table][field.column] == affinity.get(field.kind, "TEXT"), (table, field.name)


def test_oracle_tables_hold_the_rows_with_the_declared_limits() -> None:
    from sentinel.store.oracle.consumer import _BIND_TYPES

    tables = _oracle_columns()
    assert {_oracle_name(c) for c in LOG_COLUMNS} <= set(tables["sentinel_logs"])
    assert list(tables["sentinel_status_stage"]) == list(STATUS_COLUMNS)
    assert set(STATUS_COLUMNS) - {"terminal_status"} <= set(tables["sentinel_processes"])
    assert set(DEDUPE_COLUMNS) <= set(tables["sentinel_dedupe"])
    for field in STORED:
        bind = _BIND_TYPES[field.column]
        for table, columns in (
            ("sentinel_logs", LOG_COLUMNS),
            ("sentinel_processes", STATUS_COLUMNS),
            ("sentinel_status_stage", STATUS_COLUMNS),
        ):
            if field.column not in columns:
                continue
            sql_type = tables[table][_oracle_name(field.column)]
            if isinstance(bind, int):
                assert sql_type == f"VARCHAR2({bind} CHAR)", (table, field.name)
                assert bind == (field.max_length or field.digits), (table, field.name)
            elif bind is oracledb.DB_TYPE_LONG:
                assert sql_type == "CLOB", (table, field.name)
            elif bind is oracledb.DB_TYPE_BINARY_DOUBLE:
                assert sql_type == "BINARY_DOUBLE", (table, field.name)
            else:
                assert bind is oracledb.DB_TYPE_NUMBER
                assert sql_type.startswith("NUMBER("), (table, field.name)


# -- a new optional field: one declaration, and every derived place follows ----------------------------
NEW = EventField("owner_team", TEXT, max_length=100, column="owner_team")


def test_a_new_optional_field_reaches_every_derived_place() -> None:
    fields = (*EVENT_FIELDS, NEW)
    wire = _schema.wire_struct(fields)
    assert wire.__struct_fields__ == (*WIRE_FIELDS, "owner_team")
    assert msgspec.json.encode(wire(event_id="e", owner_team="core")) == b'{"event_id":"e","owner_team":"core"}'

    pxi = gen_core.event_fields_pxi(fields)
    assert f"F_OWNER_TEAM = {len(EVENT_FIELDS)}" in pxi
    assert f"WIRE_FIELD_COUNT = {len(fields)}" in pxi
    assert "event.owner_team," in pxi
    assert "cdef readonly object owner_team" in gen_core.pxd_block(fields)
    assert "owner_team: str | None" in gen_core.annotations_block(fields)
    assert "    self.owner_team = None" in gen_core.twin_block(fields)

    schema = event_schema(fields)
    assert schema.properties is not None
    assert schema.properties["owner_team"].max_length == 100  # type: ignore[union-attr]

    from sentinel.store.oracle.consumer import event_bind_type

    assert event_bind_type(NEW) == 100
    assert event_bind_type(dataclasses.replace(NEW, max_length=4000)) is oracledb.DB_TYPE_LONG
