"""SPEC section 3 for SQL: how a batch's folded status row merges into the stored one, as one table.

Each column of ``sentinel._core.STATUS_COLUMNS`` (the core's row, folded by the same rules within a batch)
has one rule below; :func:`insert_values` and :func:`update_set` render the table in a dialect's upsert
(SQLite's ``INSERT .. ON CONFLICT DO UPDATE`` in ``sentinel.store.sqlite``, Oracle's ``MERGE`` in
``sentinel.store.oracle.sql``). A dialect says only how it names the incoming
value, the stored value and the larger of two; binds are derived by name from ``STATUS_COLUMNS``, so
neither the rules nor a bind position is restated per dialect. In an UPDATE's SET every right-hand side
reads the row as it was before the update, in both dialects, so the order of the clauses is immaterial.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final

from sentinel._core import STATUS_COLUMNS


class Merge(enum.Enum):
    KEY = "key"  # identifies the process; never updated
    LATEST = "latest"  # the value carried by the newest ``by`` timestamp (ties: the higher ``tie``)
    TERMINAL_STATUS = "terminal_status"  # the newest end's status; RUNNING again while none has ended
    MAX = "max"
    SUM = "sum"
    REPLACE = "replace"  # the incoming value (the batch's own, e.g. when it was written)


@dataclass(frozen=True)
class Rule:
    merge: Merge
    by: str | None = None  # LATEST / TERMINAL_STATUS: the timestamp column that decides
    tie: str | None = None  # and the column that breaks a tie between equal timestamps


_KEY: Final = Rule(Merge.KEY)
_NEWEST_START: Final = Rule(Merge.LATEST, "started_at")
_NEWEST_END: Final = Rule(Merge.LATEST, "ended_at", "terminal_rank")

RULES: Final[Mapping[str, Rule]] = {
    "tenant_id": _KEY,
    "process_id": _KEY,
    # the identity of a run is its newest STARTED event's
    "started_at": _NEWEST_START,
    "process_name": _NEWEST_START,
    "process_type": _NEWEST_START,
    "package_name": _NEWEST_START,
    "procedure_name": _NEWEST_START,
    "correlation_id": _NEWEST_START,
    "step_at": Rule(Merge.LATEST, "step_at"),
    "current_step": Rule(Merge.LATEST, "step_at"),
    "percent_at": Rule(Merge.LATEST, "percent_at"),
    "progress_percent": Rule(Merge.LATEST, "percent_at"),
    "metadata_at": Rule(Merge.LATEST, "metadata_at"),
    "metadata": Rule(Merge.LATEST, "metadata_at"),
    "last_seen_at": Rule(Merge.MAX),
    # the newest terminal event wins; at the same instant the higher rank (ERROR over CANCELLED over COMPLETED)
    "terminal_status": Rule(Merge.TERMINAL_STATUS, "ended_at", "terminal_rank"),
    "terminal_rank": _NEWEST_END,
    "ended_at": _NEWEST_END,
    "error_code": _NEWEST_END,
    "error_message": _NEWEST_END,
    "stack_trace": _NEWEST_END,
    "result": _NEWEST_END,
    "event_count": Rule(Merge.SUM),
    "log_count": Rule(Merge.SUM),
    "updated_at": Rule(Merge.REPLACE),
}
# The stored column of a staged one where the names differ: the row carries the terminal event's status
# (NULL when the batch holds none); the table keeps the process's status.
STORED_AS: Final[Mapping[str, str]] = {"terminal_status": "status"}


def stored_name(column: str) -> str:
    """The table column a ``STATUS_COLUMNS`` column is stored in."""
    return STORED_AS.get(column, column)


INSERT_COLUMNS: Final = tuple(map(stored_name, STATUS_COLUMNS))
KEY_COLUMNS: Final = tuple(column for column in STATUS_COLUMNS if RULES[column].merge is Merge.KEY)


@dataclass(frozen=True)
class Dialect:
    """How one SQL dialect names things; every name takes a ``STATUS_COLUMNS`` column."""

    inserted: Callable[[str], str]  # the value a new process's row is inserted with
    incoming: Callable[[str], str]  # the batch's value, in the update
    stored: Callable[[str], str]  # the stored value (before the update), and the SET target
    greatest: str  # the function giving the larger of two values


def newer(dialect: Dialect, by: str, tie: str | None = None) -> str:
    """The condition that the incoming ``by`` timestamp is newer than the stored one (ties: a higher ``tie``)."""
    new, old = dialect.incoming(by), dialect.stored(by)
    tie_break = f" OR ({new} = {old} AND {dialect.incoming(tie)} > {dialect.stored(tie)})" if tie else ""
    return f"{new} IS NOT NULL AND ({old} IS NULL OR {new} > {old}{tie_break})"


def _updated(dialect: Dialect, column: str, rule: Rule) -> str:
    new, old = dialect.incoming(column), dialect.stored(column)
    match rule.merge:
        case Merge.LATEST:
            assert rule.by is not None
            return f"CASE WHEN {newer(dialect, rule.by, rule.tie)} THEN {new} ELSE {old} END"
        case Merge.TERMINAL_STATUS:
            assert rule.by is not None
            return (
                f"CASE WHEN {newer(dialect, rule.by, rule.tie)} THEN {new}"
                f" WHEN {dialect.stored(rule.by)} IS NOT NULL THEN {old} ELSE 'RUNNING' END"
            )
        case Merge.MAX:
            return f"{dialect.greatest}({old}, {new})"
        case Merge.SUM:
            return f"{old} + {new}"
        case Merge.REPLACE:
            return new
    raise AssertionError(rule)  # pragma: no cover - KEY columns are not updated


def _inserted(dialect: Dialect, column: str) -> str:
    value = dialect.inserted(column)
    return f"COALESCE({value}, 'RUNNING')" if RULES[column].merge is Merge.TERMINAL_STATUS else value


def insert_values(dialect: Dialect) -> str:
    """The VALUES of a new process's row, in the order of :data:`INSERT_COLUMNS`."""
    return ", ".join(_inserted(dialect, column) for column in STATUS_COLUMNS)


def update_set(dialect: Dialect) -> str:
    """The SET clauses merging the batch's row into the stored one, one per line."""
    return ",\n    ".join(
        f"{dialect.stored(column)} = {_updated(dialect, column, rule)}"
        for column, rule in ((c, RULES[c]) for c in STATUS_COLUMNS)
        if rule.merge is not Merge.KEY
    )
