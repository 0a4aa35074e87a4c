"""The AQ side of ingest: a batch's dequeue, dedupe claims and writes in one transaction (the package
docstring says why it is built so)."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from contextlib import suppress
from datetime import UTC, datetime
from typing import Any, Final, cast

import msgspec
import oracledb

from sentinel._core import DEDUPE_COLUMNS, EVENT_FIELDS, LOG_COLUMNS, STATUS_COLUMNS, Batch, EventField
from sentinel._core._schema import HEX, IDENT, JSON_OBJECT, NUMBER, TEXT
from sentinel._core._shared import BAD_TIMESTAMP
from sentinel.models import now_us
from sentinel.store.base import CommitOutcome, DeadLetterRow, DuplicateKeys, QueuedMessage, StoreError
from sentinel.store.oracle import sql
from sentinel.store.oracle.errors import DEADLOCK, UNIQUE_VIOLATION, error_code, error_message, session_dead
from sentinel.store.oracle.pool import Connections, utc_us

log = logging.getLogger(__name__)

RETRY_ATTEMPTS: Final = 3  # a statement that lost a race (ORA-00001) or a deadlock (ORA-00060) runs again
MAX_REASON: Final = 1_000  # dead-letter reasons are VARCHAR2(4000 BYTE): 1000 characters always fit
REJECTED: Final = "db_rejected"  # dead-letter code of rows the database refused


class _Key(msgspec.Struct):
    tenant_id: Any = None
    event_id: Any = None


_key_decoder = msgspec.json.Decoder(_Key)

# setinputsizes per statement, in bind order, from the columns the core's rows hold. Strings: their
# longest length in characters (the driver grows the buffer for a longer value); CLOB and BLOB
# columns: LONG and LONG RAW, which the database takes for LOB inserts of any length; numbers (all
# times are microseconds) and the percentage by type. The event's own columns come from its
# declaration (``sentinel._core.EVENT_FIELDS``); a column missing here fails at import.
_NUMBER = oracledb.DB_TYPE_NUMBER
_LONG = oracledb.DB_TYPE_LONG
VARCHAR2_CHARS: Final = 1_000  # longer text is a CLOB: 4000 bytes hold 1000 characters of any kind


def event_bind_type(field: EventField) -> Any:
    """The bind type of the column keeping an event field (``EventField.column``)."""
    if field.kind == JSON_OBJECT or (field.max_length or 0) > VARCHAR2_CHARS:
        return _LONG
    if field.kind == HEX:
        return field.digits
    if field.kind in (IDENT, TEXT):
        return field.max_length
    return oracledb.DB_TYPE_BINARY_DOUBLE if field.kind == NUMBER else _NUMBER


_BIND_TYPES: Final[dict[str, Any]] = {
    **{field.column: event_bind_type(field) for field in EVENT_FIELDS if field.column},
    "terminal_status": 10,
    "code": 40,
    "reason": MAX_REASON,
    "terminal_rank": _NUMBER,
    "event_count": _NUMBER,
    "log_count": _NUMBER,
    "ts": _NUMBER,
    "payload": oracledb.DB_TYPE_LONG_RAW,
}


def _bind_types(columns: Sequence[str]) -> tuple[Any, ...]:
    return tuple(_NUMBER if column.endswith("_at") else _BIND_TYPES[column] for column in columns)


_LOG_SIZES: Final = _bind_types(LOG_COLUMNS)
_STAGE_SIZES: Final = _bind_types(STATUS_COLUMNS)
_DEDUPE_SIZES: Final = _bind_types(DEDUPE_COLUMNS)
_DEAD_SIZES: Final = _bind_types(("code", "reason", "payload", "enqueued_at", "dead_at"))


class OracleConsumer:
    """The AQ side of ingest (see ``sentinel.store.base.Consumer``); one per worker thread.

    ``fetch`` dequeues inside the transaction that ``commit`` or ``rollback`` ends, on a connection
    held for the consumer's life, with a cursor per statement kept (and its bind types declared) for
    as long as the connection lives."""

    def __init__(
        self,
        connections: Connections,
        queue_name: str,
        statuses_changed: Callable[[oracledb.Connection], None] | None = None,
    ) -> None:
        self._connections = connections
        self.queue_name = queue_name
        self._statuses_changed = statuses_changed  # run after the MERGE, in its transaction
        self._conn: oracledb.Connection | None = None
        self._queue: oracledb.Queue | None = None
        self._cursors: dict[str, oracledb.Cursor] = {}
        self._claimed: set[tuple[str, str]] = set()  # dedupe keys inserted by claim_keys() in this transaction
        self._pending = 0  # messages dequeued in this transaction

    # the connection ---------------------------------------------------------------------------
    def _connection(self) -> tuple[oracledb.Connection, oracledb.Queue]:
        if self._conn is None or self._queue is None:
            conn = self._connections.connect()
            try:
                if self._connections.vpd_installed(conn):
                    with conn.cursor() as cursor:
                        cursor.callproc(sql.SET_SERVICE_CONTEXT)
                queue = cast(oracledb.Queue, conn.queue(self.queue_name))
                options = queue.deqoptions
                options.mode = oracledb.DEQ_REMOVE
                options.visibility = oracledb.DEQ_ON_COMMIT  # the dequeue commits with the batch
                options.navigation = oracledb.DEQ_FIRST_MSG  # see higher priorities that arrived meanwhile
            except oracledb.Error as exc:
                with suppress(oracledb.Error):
                    conn.close()
                name = self.queue_name
                raise StoreError(f"oracle: cannot open queue {name}: {error_message(exc)}") from exc
            self._conn, self._queue = conn, queue
            self._cursors = {}
        return self._conn, self._queue

    def _cursor(self, text: str, sizes: Sequence[Any] | None = None) -> oracledb.Cursor:
        cursor = self._cursors.get(text)
        if cursor is None:
            conn, _ = self._connection()
            cursor = conn.cursor()
            if sizes is not None:
                cursor.setinputsizes(*sizes)
            self._cursors[text] = cursor
        return cursor

    def _failed(self, exc: oracledb.Error, what: str) -> StoreError:
        if session_dead(exc):
            self._discard()
        return StoreError(f"oracle: {what}: {error_message(exc)}")

    def _discard(self) -> None:
        """Forget a connection whose session is gone; the server rolled its transaction back, so the
        messages it held return to the queue (and are deduplicated if they come back twice)."""
        conn, self._conn, self._queue, self._cursors = self._conn, None, None, {}
        self._claimed.clear()
        self._pending = 0
        if conn is not None:
            with suppress(oracledb.Error):
                conn.close()

    # Consumer --------------------------------------------------------------------------------
    def fetch(self, limit: int, wait_sec: float) -> list[QueuedMessage]:
        """Dequeue up to ``limit`` messages into the open transaction.

        AQ waits in whole seconds (and returns as soon as a message arrives), so an idle consumer
        waits in the database for ``ceil(wait_sec)``. A consumer already holding fetched messages
        (a batch filling up) must not overrun its flush interval that way: it dequeues without
        waiting and, finding nothing, sleeps the (sub-second) rest here."""
        _, queue = self._connection()
        hold = self._pending > 0 and 0 < wait_sec < 1
        try:
            if wait_sec <= 0 or hold:
                queue.deqoptions.wait = oracledb.DEQ_NO_WAIT
            else:
                queue.deqoptions.wait = math.ceil(wait_sec)
            messages = queue.deqmany(limit)
        except oracledb.Error as exc:
            raise self._failed(exc, "dequeue failed") from exc
        if not messages and hold:
            time.sleep(wait_sec)
        self._pending += len(messages)
        return [
            QueuedMessage(message.msgid, bytes(message.payload or b""), utc_us(message.enqtime)) for message in messages
        ]

    def claim_keys(self, keys: Sequence[tuple[str, str]]) -> set[tuple[str, str]]:
        """Claim the keys by inserting them: the rows refused as duplicates (ORA-00001) are the keys
        already ingested, here or by another replica (whose uncommitted claim makes this insert wait
        for its outcome). The claims commit or roll back with the batch."""
        # Sorted: replicas claiming overlapping keys take their locks in the same order (no deadlock).
        fresh = sorted({key for key in keys if key not in self._claimed})
        if not fresh:
            return set()
        stamp = now_us()
        cursor = self._cursor(sql.INSERT_DEDUPE, _DEDUPE_SIZES)
        duplicates: set[tuple[str, str]] = set()
        todo = fresh
        for attempt in range(1, RETRY_ATTEMPTS + 1):
            # Claims made by an earlier claim_keys() of this transaction are not in this sorted run, so two
            # replicas can still wait on each other: the database then fails one side's statement
            # (ORA-00060, the statement alone is rolled back) and the claims are made again.
            last = attempt == RETRY_ATTEMPTS
            try:
                cursor.executemany(
                    sql.INSERT_DEDUPE, [(tenant, event, stamp) for tenant, event in todo], batcherrors=True
                )
                errors = cursor.getbatcherrors()
            except oracledb.Error as exc:
                if error_code(exc) == DEADLOCK and not last:
                    continue
                raise self._failed(exc, "dedupe claim failed") from exc
            again: list[tuple[str, str]] = []
            for error in errors:
                if error.code == UNIQUE_VIOLATION:
                    duplicates.add(todo[error.offset])
                elif error.code == DEADLOCK and not last:
                    again.append(todo[error.offset])
                else:
                    raise StoreError(f"oracle: dedupe claim failed: {str(error.message).strip()}")
            if not again:
                break
            todo = again
        self._claimed.update(key for key in fresh if key not in duplicates)
        return duplicates

    def commit(
        self, messages: Sequence[QueuedMessage], batch: Batch, dead_letters: Sequence[DeadLetterRow]
    ) -> CommitOutcome:
        conn, _ = self._connection()
        unclaimed = [(row[0], row[1]) for row in batch.dedupe_rows if (row[0], row[1]) not in self._claimed]
        if unclaimed:
            # claim_keys() claims every key it is asked about; claim any it was not asked about now. Nothing
            # is written yet, so repeats found here need no rollback: the worker rebuilds without them.
            repeats = self.claim_keys(unclaimed)
            if repeats:
                raise DuplicateKeys(repeats)
        stamp = now_us()
        rejected: list[DeadLetterRow] = []
        log_rows, late = _beyond_partitions(batch.log_rows, messages, stamp)
        # Sorted by (tenant_id, process_id): replicas merging overlapping processes lock their rows
        # in the same order, which keeps them from deadlocking (and _merge retries if they still do).
        status_rows = sorted(batch.status_rows, key=_process_key)
        try:
            log_errors = self._write(
                sql.INSERT_LOGS, _LOG_SIZES, log_rows, messages=messages, stamp=stamp, rejected=rejected
            )
            status_errors = self._write(
                sql.INSERT_STATUS_STAGE,
                _STAGE_SIZES,
                status_rows,
                messages=messages,
                stamp=stamp,
                rejected=rejected,
            )
            if len(status_rows) > status_errors:
                self._merge()
                if self._statuses_changed is not None:
                    self._statuses_changed(conn)
            dead = [
                (d.code, d.reason[:MAX_REASON], d.payload, d.enqueued_at, d.dead_at)
                for d in (*dead_letters, *late, *rejected)
            ]
            if dead:
                self._cursor(sql.INSERT_DEAD_LETTER, _DEAD_SIZES).executemany(sql.INSERT_DEAD_LETTER, dead)
            conn.commit()
        except oracledb.Error as exc:
            if session_dead(exc):
                self._discard()
            else:
                self._end_transaction()
            raise StoreError(f"oracle: batch commit failed: {error_message(exc)}") from exc
        self._claimed.clear()
        self._pending = 0
        extra = {REJECTED: len(rejected)} if rejected else {}
        if late:
            extra[BAD_TIMESTAMP] = len(late)
        return CommitOutcome(
            messages=len(messages),
            dead_letters=len(dead_letters) + len(late) + len(rejected),
            logs=len(log_rows) - log_errors,
            statuses=len(batch.status_rows) - status_errors,
            extra=extra,
        )

    def _write(
        self,
        text: str,
        sizes: Sequence[Any],
        rows: list[list[Any]],
        *,
        messages: Sequence[QueuedMessage],
        stamp: int,
        rejected: list[DeadLetterRow],
    ) -> int:
        """``executemany`` with batch errors; each refused row becomes a dead letter: a log row as the
        message it came from, a status row (the fold of several events) as its columns in JSON, with
        the database's error as the reason. Returns how many rows were refused."""
        if not rows:
            return 0
        cursor = self._cursor(text, sizes)
        cursor.executemany(text, rows, batcherrors=True)
        errors = cursor.getbatcherrors()
        is_log = text == sql.INSERT_LOGS
        for error in errors:
            row = rows[error.offset]
            reason = f"{'sentinel_logs' if is_log else 'sentinel_processes'}: {str(error.message).strip()}"
            payload, enqueued_at = _origin(row, messages, LOG_COLUMNS if is_log else STATUS_COLUMNS)
            rejected.append(DeadLetterRow(REJECTED, reason[:MAX_REASON], payload, enqueued_at, stamp))
        return len(errors)

    def _merge(self) -> None:
        """Run the MERGE, again if it lost a race: another replica inserted one of these processes
        first (ORA-00001: now it is there to update), or two replicas locked overlapping processes
        in a cycle and the database chose this statement to fail (ORA-00060: only the statement is
        rolled back). Retrying the statement keeps the batch: a rollback would count a retry against
        every message in it, and under contention good messages would reach the exception queue."""
        cursor = self._cursor(sql.MERGE_STATUS)
        for attempt in range(1, RETRY_ATTEMPTS + 1):
            try:
                cursor.execute(sql.MERGE_STATUS)
                return
            except oracledb.DatabaseError as exc:
                if error_code(exc) not in (UNIQUE_VIOLATION, DEADLOCK) or attempt == RETRY_ATTEMPTS:
                    raise
                log.info("oracle: status merge retried (attempt %d): %s", attempt + 1, error_message(exc))

    def _end_transaction(self) -> None:
        self._claimed.clear()
        self._pending = 0
        if self._conn is not None:
            try:
                self._conn.rollback()
            except oracledb.Error as exc:
                if session_dead(exc):
                    self._discard()
                else:
                    raise StoreError(f"oracle: rollback failed: {error_message(exc)}") from exc

    def rollback(self, messages: Sequence[QueuedMessage]) -> None:
        """Roll the batch back: the dequeued messages return to the queue (AQ counts a retry)."""
        self._end_transaction()

    def close(self) -> None:
        """Close the connection; an open batch rolls back with it."""
        for cursor in self._cursors.values():
            with suppress(oracledb.Error):
                cursor.close()
        self._claimed.clear()
        self._discard()


_TS: Final = LOG_COLUMNS.index("ts")


def _process_key(row: Sequence[Any]) -> tuple[str, str]:
    return row[0], row[1]  # STATUS_COLUMNS: tenant_id, process_id, ...


def _beyond_partitions(
    rows: list[list[Any]], messages: Sequence[QueuedMessage], stamp: int
) -> tuple[list[list[Any]], list[DeadLetterRow]]:
    """Split off the log rows whose time no sentinel_logs partition can hold (``LOG_TS_LIMIT_US``,
    year 4840; the database would refuse them with ORA-14300) as dead letters naming the limit."""
    limit = sql.LOG_TS_LIMIT_US
    if all(row[_TS] < limit for row in rows):
        return rows, []
    kept: list[list[Any]] = []
    late: list[DeadLetterRow] = []
    latest = datetime.fromtimestamp(limit // 1_000_000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    for row in rows:
        if row[_TS] < limit:
            kept.append(row)
            continue
        reason = f"timestamp: the Oracle store keeps log lines before {latest} (sentinel_logs' daily partitions)"
        payload, enqueued_at = _origin(row, messages, LOG_COLUMNS)
        late.append(DeadLetterRow(BAD_TIMESTAMP, reason, payload, enqueued_at, stamp))
    return kept, late


def _origin(row: Sequence[Any], messages: Sequence[QueuedMessage], columns: Sequence[str]) -> tuple[bytes, int | None]:
    """What a refused row's dead letter keeps: a log row's queue message (payload and enqueue time),
    else (a status row folds several events) the row's columns as JSON."""
    message = _message_of(row, messages) if columns is LOG_COLUMNS else None
    if message is not None:
        return message.payload, message.enqueued_at
    return _row_json(columns, row), None


def _message_of(row: Sequence[Any], messages: Sequence[QueuedMessage]) -> QueuedMessage | None:
    """The queue message that produced a log row (LOG_COLUMNS: tenant_id, process_id, event_id, ...)."""
    wanted = (row[0], row[2])
    for message in messages:
        try:
            key = _key_decoder.decode(message.payload)
        except msgspec.DecodeError:
            continue
        if (key.tenant_id, key.event_id) == wanted:
            return message
    return None


def _row_json(columns: Sequence[str], row: Sequence[Any]) -> bytes:
    """A refused row as a JSON object of its columns, for the dead-letter payload."""
    return msgspec.json.encode(dict(zip(columns, row, strict=True)))
