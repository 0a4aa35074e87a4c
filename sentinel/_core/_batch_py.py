"""Pure-Python twin of ``_batch_c``: validated events -> arena rows for ``executemany``.

Rows are lists kept in arenas and overwritten batch after batch, so a steady stream allocates no
new rows; an arena that grew for one huge batch gives the extra rows back at its next reset.
"""

from __future__ import annotations

from collections.abc import Container, Sequence
from typing import Any

from . import _shared
from ._decoder_py import Event

_LOG_WIDTH = len(_shared.LOG_COLUMNS)
_STATUS_WIDTH = len(_shared.STATUS_COLUMNS)
(
    _TENANT,
    _PROCESS,
    _STARTED_AT,
    _NAME,
    _TYPE,
    _PACKAGE,
    _PROCEDURE,
    _CORRELATION,
    _STEP_AT,
    _STEP,
    _PERCENT_AT,
    _PERCENT,
    _METADATA_AT,
    _METADATA,
    _LAST_SEEN,
    _TERMINAL,
    _RANK,
    _ENDED_AT,
    _ERROR_CODE,
    _ERROR_MESSAGE,
    _STACK,
    _RESULT,
    _EVENTS,
    _LOGS,
    _UPDATED_AT,
) = range(_STATUS_WIDTH)


class RowArena:
    """Reusable fixed-width rows. ``retain`` is the high-water mark kept across resets."""

    __slots__ = ("_count", "_rows", "retain", "width")

    def __init__(self, width: int, retain: int) -> None:
        self.width = width
        self.retain = retain
        self._rows: list[list[Any]] = []
        self._count = 0

    def take(self) -> list[Any]:
        if self._count < len(self._rows):
            row = self._rows[self._count]
        else:
            row = [None] * self.width
            self._rows.append(row)
        self._count += 1
        return row

    def rows(self) -> list[list[Any]]:
        return self._rows[: self._count]

    def reset(self) -> None:
        self._count = 0
        if len(self._rows) > self.retain:
            del self._rows[self.retain :]

    @property
    def allocated(self) -> int:
        return len(self._rows)

    def __len__(self) -> int:
        return self._count


class BatchBuilder:
    """Applies SPEC section 3 to a batch: one coalesced status row per process, log rows, dedupe keys."""

    __slots__ = ("_dedupe", "_index", "_logs", "_statuses")

    def __init__(self, retain: int = 4096) -> None:
        self._logs = RowArena(_LOG_WIDTH, retain)
        self._statuses = RowArena(_STATUS_WIDTH, retain)
        self._dedupe = RowArena(len(_shared.DEDUPE_COLUMNS), retain)
        self._index: dict[tuple[str, str], list[Any]] = {}

    def arena_sizes(self) -> tuple[int, int, int]:
        return self._logs.allocated, self._statuses.allocated, self._dedupe.allocated

    def build(self, events: Sequence[Event], seen: Container[tuple[str, str]], now_us: int) -> _shared.Batch:
        """``seen`` holds the ``(tenant_id, event_id)`` keys already stored; those events, and repeats
        within this batch, are counted as duplicates and change nothing."""
        self._logs.reset()
        self._statuses.reset()
        self._dedupe.reset()
        index = self._index
        index.clear()
        batch_keys: set[tuple[str, str]] = set()
        counts = [0] * len(_shared.EVENT_TYPES)
        duplicates = 0
        for event in events:
            key = (event.tenant_id, event.event_id)
            if key in batch_keys or key in seen:
                duplicates += 1
                continue
            batch_keys.add(key)
            dedupe = self._dedupe.take()
            dedupe[0] = event.tenant_id
            dedupe[1] = event.event_id
            dedupe[2] = now_us
            kind = event.kind
            counts[kind] += 1
            pkey = (event.tenant_id, event.process_id)
            status = index.get(pkey)
            if status is None:
                status = self._statuses.take()
                status[:] = _EMPTY_STATUS
                status[_TENANT] = event.tenant_id
                status[_PROCESS] = event.process_id
                status[_LAST_SEEN] = event.ts
                status[_UPDATED_AT] = now_us
                index[pkey] = status
            _apply(status, event)
            if kind == _shared.LOG:
                _log_row(self._logs.take(), event, now_us)
        return _shared.Batch(self._logs.rows(), self._statuses.rows(), self._dedupe.rows(), counts, duplicates)


_EMPTY_STATUS: list[Any] = [None] * _STATUS_WIDTH
_EMPTY_STATUS[_RANK] = 0
_EMPTY_STATUS[_EVENTS] = 0
_EMPTY_STATUS[_LOGS] = 0


def _apply(status: list[Any], event: Event) -> None:
    ts = event.ts
    kind = event.kind
    status[_EVENTS] += 1
    status[_LAST_SEEN] = max(status[_LAST_SEEN], ts)
    if kind == _shared.LOG:
        status[_LOGS] += 1
    elif kind == _shared.STARTED:
        if status[_STARTED_AT] is None or ts > status[_STARTED_AT]:
            status[_STARTED_AT] = ts
            status[_NAME] = event.process_name
            status[_TYPE] = event.process_type
            status[_PACKAGE] = event.package_name
            status[_PROCEDURE] = event.procedure_name
            status[_CORRELATION] = event.correlation_id
    elif kind == _shared.PROGRESS:
        # Step and percent each follow their own newest report, so a report that carries only one
        # of them never hides the other, and folding a batch equals applying its events one by one.
        if event.step is not None and (status[_STEP_AT] is None or ts > status[_STEP_AT]):
            status[_STEP_AT] = ts
            status[_STEP] = event.step
        if event.percent is not None and (status[_PERCENT_AT] is None or ts > status[_PERCENT_AT]):
            status[_PERCENT_AT] = ts
            status[_PERCENT] = event.percent
    elif kind in _shared.TERMINAL_STATUS:
        rank = _shared.TERMINAL_RANK[kind]
        if status[_TERMINAL] is None or ts > status[_ENDED_AT] or (ts == status[_ENDED_AT] and rank > status[_RANK]):
            status[_TERMINAL] = _shared.TERMINAL_STATUS[kind]
            status[_RANK] = rank
            status[_ENDED_AT] = ts
            status[_RESULT] = event.result
            status[_ERROR_CODE] = event.error_code
            status[_ERROR_MESSAGE] = event.reason if kind == _shared.CANCELLED else event.error_message
            status[_STACK] = event.stack_trace
    if event.metadata is not None and (status[_METADATA_AT] is None or ts > status[_METADATA_AT]):
        status[_METADATA_AT] = ts
        status[_METADATA] = event.metadata


def _log_row(row: list[Any], event: Event, now_us: int) -> None:
    row[0] = event.tenant_id
    row[1] = event.process_id
    row[2] = event.event_id
    row[3] = event.ts
    row[4] = event.level
    row[5] = event.message
    row[6] = event.details
    row[7] = event.component
    row[8] = event.correlation_id
    row[9] = event.trace_id
    row[10] = event.span_id
    row[11] = event.duration_us
    row[12] = now_us
