"""Split SQL*Plus scripts into statements the driver can execute one by one.

The rules are SQL*Plus's, so that ``sql/*.sql`` runs the same under ``sqlplus @file`` and under
``sentinel migrate --oracle``:

- a plain SQL statement ends at ``;`` (dropped) or at a line holding only ``/``;
- a PL/SQL unit (``CREATE [OR REPLACE] PACKAGE [BODY] | PROCEDURE | FUNCTION | TRIGGER | TYPE [BODY]``,
  ``DECLARE``, ``BEGIN``) ends at a line holding only ``/``; its own semicolons are kept;
- comments and blank lines are dropped (optimizer hints ``/*+ ... */`` are kept), and quoting is
  honoured: ``'...'`` (with ``''``), ``q'[...]'`` in all its delimiter forms, and ``"identifiers"``, so
  a ``;`` or ``/`` inside them never ends a statement;
- SQL*Plus commands at the start of a statement (``SET``, ``PROMPT``, ``WHENEVER``, ``SPOOL``, ``@``,
  ``EXIT``, ``DEFINE``, ...) are dropped; ``EXEC[UTE] call`` becomes ``BEGIN call; END;``;
- a comment after a terminator on its line (``...; -- note``, ``/ -- note``) is refused: SQL*Plus does
  not end the statement there, so under ``sqlplus @file`` it would not run (or would run with the
  next one) while a lenient splitter ran it. Comments go on their own line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Final

SQLPLUS_COMMANDS: Final = frozenset(
    {
        "SET",
        "PROMPT",
        "PRO",
        "WHENEVER",
        "SPOOL",
        "SPO",
        "EXIT",
        "QUIT",
        "DEFINE",
        "DEF",
        "UNDEFINE",
        "UNDEF",
        "REM",
        "REMARK",
        "SHOW",
        "SHO",
        "COLUMN",
        "COL",
        "TTITLE",
        "BTITLE",
        "BREAK",
        "COMPUTE",
        "PAUSE",
        "ACCEPT",
        "VARIABLE",
        "VAR",
        "CLEAR",
        "TIMING",
        "HOST",
        "CONNECT",
        "CONN",
        "DISCONNECT",
    }
)
# "SET" opens these SQL statements rather than the SQL*Plus command.
_SQL_AFTER_SET: Final = frozenset({"TRANSACTION", "ROLE", "CONSTRAINT", "CONSTRAINTS"})
_PLSQL_OBJECTS: Final = frozenset({"PACKAGE", "PROCEDURE", "FUNCTION", "TRIGGER", "TYPE", "LIBRARY"})
_CREATE_MODIFIERS: Final = frozenset({"OR", "REPLACE", "EDITIONABLE", "NONEDITIONABLE", "EDITIONING"})
_Q_CLOSERS: Final = {"[": "]", "{": "}", "(": ")", "<": ">"}
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_$#]*")


class ScriptError(ValueError):
    """The script cannot be split (an unterminated string or comment), or SQL*Plus would split it
    otherwise (a comment after a terminator)."""


_COMMENT_AFTER_SLASH = re.compile(r"/\s*(--|/\*)")


@dataclass(frozen=True, slots=True)
class Statement:
    """One executable statement; ``line``/``end_line`` are 1-based lines of the source it spans."""

    sql: str
    line: int
    end_line: int
    plsql: bool


def is_plsql(words: list[str]) -> bool:
    """Whether a statement opening with ``words`` (upper case) is a PL/SQL unit that ends at ``/``."""
    if not words:
        return False
    if words[0] in ("DECLARE", "BEGIN"):
        return True
    if words[0] != "CREATE":
        return False
    for word in words[1:]:
        if word not in _CREATE_MODIFIERS:
            return word in _PLSQL_OBJECTS
    return False


class _Scanner:
    """A line-oriented scanner carrying quote and comment state across lines."""

    def __init__(self) -> None:
        self.statements: list[Statement] = []
        self.buffer: list[str] = []  # the statement so far, comments removed
        self.start_line = 0
        self.end_line = 0
        self.plsql: bool | None = None  # decided at the statement's first ";" or "/"
        self.quote: str | None = None  # closing sequence of the open quoted text
        self.in_comment = False
        self.terminated = False  # a ";" ended a statement on this line and nothing followed yet

    def pending(self, tail: str = "") -> bool:
        return bool(tail.strip()) or any(chunk.strip() for chunk in self.buffer)

    def kind(self, tail: str = "") -> bool:
        if self.plsql is None:
            head = "".join(self.buffer) + tail
            self.plsql = is_plsql([word.upper() for word in _WORD.findall(head)[:6]])
        return self.plsql

    def add(self, chunk: str, line_no: int) -> None:
        if chunk.strip():
            if not self.pending():
                self.start_line = line_no
            self.end_line = line_no
        if chunk.strip() or self.pending():
            self.buffer.append(chunk)

    def emit(self) -> None:
        plsql = self.kind()
        sql = "".join(self.buffer).strip()
        if sql:
            self.statements.append(Statement(sql, self.start_line, self.end_line, plsql))
        self.buffer = []
        self.plsql = None

    def feed(self, line: str, line_no: int) -> None:
        stripped = line.strip()
        self.terminated = False
        if self.quote is None and not self.in_comment:
            if stripped == "/":
                if self.pending():
                    self.emit()
                return
            if _COMMENT_AFTER_SLASH.match(stripped):
                raise _comment_after_terminator(line_no, "/")
            if not self.pending() and self._sqlplus_command(stripped, line_no):
                return
        self._scan(line, line_no)

    def _sqlplus_command(self, stripped: str, line_no: int) -> bool:
        if stripped.startswith("@"):
            return True
        if not stripped[:1].isalpha():
            return False
        words = [word.upper() for word in _WORD.findall(stripped)[:2]]
        if words[0] in ("EXEC", "EXECUTE") and len(words) > 1 and words[1] != "IMMEDIATE":
            call = stripped.split(None, 1)[1].rstrip().rstrip(";").rstrip()
            self.statements.append(Statement(f"BEGIN {call}; END;", line_no, line_no, True))
            return True
        if words[0] == "SET" and len(words) > 1 and words[1] in _SQL_AFTER_SET:
            return False
        return words[0] in SQLPLUS_COMMANDS

    def _scan(self, line: str, line_no: int) -> None:
        out: list[str] = []
        i, n = 0, len(line)
        while i < n:
            if self.in_comment:
                end = line.find("*/", i)
                if end < 0:
                    break
                self.in_comment = False
                out.append(" ")
                i = end + 2
            elif self.quote is not None:
                end = line.find(self.quote, i)
                if end < 0:
                    out.append(line[i:])
                    break
                out.append(line[i : end + len(self.quote)])
                i = end + len(self.quote)
                self.quote = None
            elif line.startswith("--", i):
                if self.terminated:
                    raise _comment_after_terminator(line_no, ";")
                break
            elif line.startswith("/*", i) and not line.startswith("/*+", i):
                if self.terminated:
                    raise _comment_after_terminator(line_no, ";")
                self.in_comment = True
                i += 2
            elif line[i] in "qQ" and line.startswith("'", i + 1) and i + 2 < n and _starts_literal(line, i):
                delimiter = line[i + 2]
                self.quote = _Q_CLOSERS.get(delimiter, delimiter) + "'"
                self.terminated = False
                out.append(line[i : i + 3])
                i += 3
            elif line[i] in "'\"":
                self.quote = line[i]
                self.terminated = False
                out.append(line[i])
                i += 1
            elif line[i] == ";" and not self.kind("".join(out)):
                self.add("".join(out), line_no)
                out = []
                self.emit()
                self.terminated = True
                i += 1
            else:
                if not line[i].isspace():
                    self.terminated = False
                out.append(line[i])
                i += 1
        chunk = "".join(out)
        self.add(chunk + "\n" if self.quote is not None else chunk.rstrip() + "\n", line_no)

    def finish(self) -> list[Statement]:
        if self.quote is not None:
            raise ScriptError(f"unterminated quoted text (expecting {self.quote!r}) at end of script")
        if self.in_comment:
            raise ScriptError("unterminated /* comment at end of script")
        if self.pending():
            self.emit()
        return self.statements


def _comment_after_terminator(line_no: int, terminator: str) -> ScriptError:
    return ScriptError(
        f"line {line_no}: a comment after the terminator {terminator!r}; SQL*Plus does not end the statement"
        " there (sqlplus @file would not run it as written): put the comment on a line of its own"
    )


def _starts_literal(line: str, i: int) -> bool:
    """``q'`` at ``i`` opens a q-quoted literal unless it ends an identifier (``seq'`` is not one);
    ``nq'`` (national) is a literal too."""
    if i == 0:
        return True
    before = line[i - 1]
    if before in "nN":
        return i < 2 or not (line[i - 2].isalnum() or line[i - 2] in "_$#")
    return not (before.isalnum() or before in "_$#")


def scan_script(text: str) -> list[Statement]:
    """Statements of a SQL*Plus script with the source lines each one spans."""
    scanner = _Scanner()
    for number, line in enumerate(text.splitlines(), start=1):
        scanner.feed(line, number)
    return scanner.finish()


def split_script(text: str) -> list[str]:
    """The executable statements of a SQL*Plus script, in order (see the module docstring)."""
    return [statement.sql for statement in scan_script(text)]


def script_files(sql_dir: Path | Traversable) -> list[Path | Traversable]:
    """The ``*.sql`` files of a directory in name order (``001_...`` before ``002_...``)."""
    return sorted((entry for entry in sql_dir.iterdir() if entry.name.endswith(".sql")), key=lambda e: e.name)


def iter_scripts(sql_dir: Path | Traversable) -> list[tuple[str, list[str]]]:
    """``(file name, statements)`` for every script of ``sql_dir``, in file order."""
    return [(entry.name, split_script(entry.read_text(encoding="utf-8"))) for entry in script_files(sql_dir)]
