"""The store: producers (AQ enqueue), readers (tenant bound on every query) and housekeeping.

Times are NUMBER(19) microseconds UTC in every table, exactly as the core produces them.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any, Final

import oracledb

from sentinel import baselines
from sentinel._core._shared import MAX_EVENT_BYTES
from sentinel.alerts.oracle_dialect import oracle_names
from sentinel.config import Settings
from sentinel.models import DeadLetter, LogEntry, ProcessStatus, from_us
from sentinel.store.base import LogQuery, ProcessQuery, QueueStats, StoreError
from sentinel.store.oracle import sql
from sentinel.store.oracle.consumer import OracleConsumer
from sentinel.store.oracle.errors import NOT_PARTITIONED, check_driver, error_code, error_message
from sentinel.store.oracle.migrations import migrate
from sentinel.store.oracle.pool import Connections, init_thick_mode, utc_us
from sentinel.store.rows import dead_letter_from_row, log_from_row, status_from_row

log = logging.getLogger(__name__)

PURGE_CHUNK: Final = 5_000
ENQUEUE_CHUNK: Final = 1_000
GET_STATUS_WITH_BASELINES: Final = oracle_names(baselines.with_baselines(sql.GET_STATUS, None, " "))


def split_queue_name(name: str) -> tuple[str | None, str]:
    owner, dot, queue = name.upper().rpartition(".")
    return (owner or None) if dot else None, queue


class OracleStore:
    """``sentinel.store.base.Store`` on Oracle 19c+. Build it with ``OracleStore(settings)``; the pool
    opens on first use."""

    backend = "oracle"

    # Run inside every transaction that may change statuses, before it commits (sentinel.alerts.service).
    status_hook: Callable[[oracledb.Connection], None] | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> OracleStore:
        return cls(settings)

    def __init__(self, settings: Settings, *, sql_dir: Path | Traversable | None = None) -> None:
        check_driver()
        self.settings = settings
        self.sql_dir = sql_dir
        self.queue_name = settings.queue_name
        self.thick = settings.oracle_thick_mode
        if self.thick:
            init_thick_mode(settings)
        self.connections = Connections(settings)
        self._partitioned = True  # sentinel_logs has daily partitions, until a DROP PARTITION says not
        self._queue_view: str | None = None
        self.baseline_policy = baselines.BaselinePolicy.from_settings(settings)

    def connection(
        self, tenant_id: str | None = None, *, tenant_context: bool = True
    ) -> AbstractContextManager[oracledb.Connection]:
        """A pooled connection for a block, limited to ``tenant_id`` under VPD (``Connections.connection``)."""
        return self.connections.connection(tenant_id, tenant_context=tenant_context)

    def close(self) -> None:
        self.connections.close()

    # schema -----------------------------------------------------------------------------------
    def migrate(self) -> list[str]:
        """Run the sql/ scripts not applied yet (or changed since); see ``migrations.migrate``."""
        return migrate(self.connections, self.sql_dir)

    def ping(self) -> None:
        with self.connections.connection(tenant_context=False) as conn:
            conn.ping()

    def pool_stats(self) -> tuple[int, int]:
        """(busy, open) connections of the pool, for the ``sentinel_db_pool_connections`` gauge."""
        return self.connections.stats()

    def secret(self, name: str) -> bytes:
        with self.connections.connection() as conn, conn.cursor() as cursor:
            cursor.execute(sql.GET_SECRET, {"name": name})
            row = cursor.fetchone()
            if row is None:
                try:
                    cursor.execute(sql.PUT_SECRET, {"name": name, "secret_value": secrets.token_bytes(32)})
                    conn.commit()
                except oracledb.IntegrityError:
                    conn.rollback()  # another replica created it first: use theirs
                cursor.execute(sql.GET_SECRET, {"name": name})
                row = cursor.fetchone()
        if row is None:
            raise StoreError(f"oracle: secret {name!r} could not be created")
        return bytes(row[0])

    # producers --------------------------------------------------------------------------------
    def enqueue(self, payloads: Sequence[bytes], priorities: Sequence[int]) -> int:
        if len(payloads) != len(priorities):
            raise ValueError("one priority per payload")
        if not payloads:
            return 0
        # A RAW message holds at most MAX_EVENT_BYTES, and one oversized payload would fail the whole
        # enqmany (every request grouped into it): refuse it before anything is sent. POST /events
        # refuses such events itself, so this is the last wall, not the first.
        for index, payload in enumerate(payloads):
            if len(payload) > MAX_EVENT_BYTES:
                raise ValueError(f"event {index}: {len(payload)} bytes, more than {MAX_EVENT_BYTES}")
        with self.connections.connection(tenant_context=False) as conn:
            queue = conn.queue(self.queue_name)
            for start in range(0, len(payloads), ENQUEUE_CHUNK):
                messages = [
                    conn.msgproperties(payload=payload, priority=priority)
                    for payload, priority in zip(
                        payloads[start : start + ENQUEUE_CHUNK],
                        priorities[start : start + ENQUEUE_CHUNK],
                        strict=True,
                    )
                ]
                if self.thick:
                    # Thick mode with Oracle Client < 21 may fail enqmany on pooled connections
                    # (Oracle bug 29928074): one message at a time there.
                    for message in messages:
                        queue.enqone(message)
                else:
                    queue.enqmany(messages)
            conn.commit()
        return len(payloads)

    # the consumer and housekeeping ------------------------------------------------------------
    def consumer(self) -> OracleConsumer:
        return OracleConsumer(self.connections, self.queue_name, self._statuses_changed)

    def _statuses_changed(self, conn: oracledb.Connection) -> None:
        if self.status_hook is not None:
            self.status_hook(conn)

    def mark_stalled(self, idle_before: int, now: int) -> int:
        _, name = split_queue_name(self.queue_name)
        with self.connections.connection() as conn, conn.cursor() as cursor:
            cursor.execute(
                sql.MARK_STALLED.format(view=self._view(cursor)),
                {
                    "now": now,
                    "idle_before": idle_before,
                    # enq_timestamp is a TIMESTAMP in UTC (every session works in UTC): bound naive.
                    "idle_before_ts": from_us(idle_before).replace(tzinfo=None),
                    "queue": name,
                },
            )
            count = cursor.rowcount
            if count and self.status_hook is not None:
                self.status_hook(conn)
            conn.commit()
        return int(count)

    def purge(self, logs_before: int, dedupe_before: int) -> tuple[int, int]:
        with self.connections.connection() as conn, conn.cursor() as cursor:
            logs = self._drop_old_partitions(cursor, logs_before) if self._partitioned else 0
            logs += self._delete_chunks(conn, cursor, sql.PURGE_LOGS, logs_before)
            keys = self._delete_chunks(conn, cursor, sql.PURGE_DEDUPE, dedupe_before)
        return logs, keys

    def _drop_old_partitions(self, cursor: oracledb.Cursor, before: int) -> int:
        """Drop the daily log partitions that lie wholly before ``before``; returns the rows they held.

        DROP PARTITION is DDL (it commits); on a partition that is busy or cannot go, the remaining
        rows are left to the row-by-row delete. A table without partitions (002 on an edition without
        the Partitioning option) is remembered, and retention is the delete alone from then on."""
        dropped = 0
        while True:
            cursor.execute(sql.OLDEST_LOG)
            row = cursor.fetchone()
            oldest = row[0] if row else None
            if oldest is None or oldest < 0:
                return dropped
            day_start = oldest - oldest % sql.DAY_US
            day_end = day_start + sql.DAY_US
            if day_end > before:
                return dropped
            cursor.execute(sql.COUNT_LOGS_BETWEEN, {"low": day_start, "high": day_end})
            count_row = cursor.fetchone()
            try:
                cursor.execute(sql.DROP_LOG_PARTITION.format(day_start=int(day_start)))
            except oracledb.DatabaseError as exc:
                if error_code(exc) == NOT_PARTITIONED:
                    self._partitioned = False
                    log.info("oracle: sentinel_logs is not partitioned; retention deletes rows")
                    return dropped
                log.info(
                    "oracle: log partition of day %d not dropped (%s); deleting rows instead",
                    day_start // sql.DAY_US,
                    error_message(exc),
                )
                return dropped
            dropped += int(count_row[0]) if count_row else 0

    @staticmethod
    def _delete_chunks(conn: oracledb.Connection, cursor: oracledb.Cursor, text: str, before: int) -> int:
        total = 0
        while True:
            cursor.execute(text, {"before": before, "chunk": PURGE_CHUNK})
            count = int(cursor.rowcount)
            conn.commit()
            total += count
            if count < PURGE_CHUNK:
                return total

    def queue_table(self, cursor: oracledb.Cursor) -> str:
        owner, name = split_queue_name(self.queue_name)
        cursor.execute(sql.FIND_QUEUE, {"name": name, "owner": owner})
        row = cursor.fetchone()
        if row is None:
            raise StoreError(f"oracle: queue {self.queue_name} not found (run sentinel migrate --oracle)")
        return f"{row[0]}.{row[1]}"

    def _view(self, cursor: oracledb.Cursor) -> str:
        """The AQ$ view of the queue table (from the dictionary, once)."""
        if self._queue_view is None:
            queue_owner, queue_table = self.queue_table(cursor).split(".", 1)
            self._queue_view = f'"{queue_owner}"."AQ${queue_table}"'
        return self._queue_view

    def queue_stats(self) -> QueueStats:
        _, name = split_queue_name(self.queue_name)
        with self.connections.connection(tenant_context=False) as conn, conn.cursor() as cursor:
            cursor.execute(sql.QUEUE_STATS.format(view=self._view(cursor)), {"queue": name})
            row = cursor.fetchone()
        depth, oldest = row if row else (0, None)
        return QueueStats(depth=int(depth), oldest_enqueued_at=utc_us(oldest))

    def process_counts(self) -> dict[str, int]:
        with self.connections.connection() as conn, conn.cursor() as cursor:
            cursor.execute(sql.PROCESS_COUNTS)
            return {status: int(count) for status, count in cursor.fetchall()}

    # readers (tenant-scoped) -------------------------------------------------------------------
    def _fetch(self, tenant_id: str | None, text: str, params: Mapping[str, Any]) -> list[Any]:
        with self.connections.connection(tenant_id) as conn, conn.cursor() as cursor:
            cursor.execute(text, dict(params), fetch_lobs=False)
            rows: list[Any] = cursor.fetchall()
        return rows

    def get_status(self, tenant_id: str, process_id: str) -> ProcessStatus | None:
        rows = self._fetch(tenant_id, GET_STATUS_WITH_BASELINES, {"tenant_id": tenant_id, "process_id": process_id})
        return self._status(rows[0]) if rows else None

    def _status(self, row: Sequence[Any]) -> ProcessStatus:
        process, extra = baselines.split_row(row)
        return baselines.apply(status_from_row(process), extra, self.baseline_policy)

    @staticmethod
    def _process_filters(tenant_id: str, query: ProcessQuery, *, with_status: bool) -> tuple[list[str], dict[str, Any]]:
        where = ["tenant_id = :tenant_id"]
        params: dict[str, Any] = {"tenant_id": tenant_id}
        if with_status and query.statuses:
            names = [f"status_{i}" for i in range(len(query.statuses))]
            where.append(f"status IN ({', '.join(':' + n for n in names)})")
            params.update(zip(names, query.statuses, strict=True))
        if query.process_type is not None:
            where.append("process_type = :process_type")
            params["process_type"] = query.process_type
        if query.package_name is not None:
            where.append("package_name = :package_name")
            params["package_name"] = query.package_name
        if query.updated_since is not None:
            where.append("updated_at >= :updated_since")
            params["updated_since"] = query.updated_since
        if query.search is not None:
            # INSTR, not LIKE: '%' and '_' in the search are literal characters.
            where.append("(INSTR(LOWER(process_id), :search) > 0 OR INSTR(LOWER(process_name), :search) > 0)")
            params["search"] = query.search.lower()
        return where, params

    def list_processes(self, tenant_id: str, query: ProcessQuery) -> list[ProcessStatus]:
        where, params = self._process_filters(tenant_id, query, with_status=True)
        if query.changed_after is not None:
            # Part 2 of a walk (see ProcessQuery): the processes changed since it began. Oracle reads
            # '' as NULL, so the start of part 2 ("") binds no process_id at all.
            where.append("updated_at > :snapshot")
            params["snapshot"] = query.snapshot or 0
            if query.changed_after:
                where.append("process_id > :changed_after")
                params["changed_after"] = query.changed_after
            order = "process_id"
        else:
            if query.snapshot is not None:
                where.append("updated_at <= :snapshot")
                params["snapshot"] = query.snapshot
            if query.after is not None:
                where.append("(last_seen_at < :after_seen OR (last_seen_at = :after_seen AND process_id > :after_id))")
                params["after_seen"], params["after_id"] = query.after
            order = "last_seen_at DESC, process_id"
        params["limit"] = query.limit
        text = f"{sql.SELECT_PROCESS} WHERE {' AND '.join(where)} ORDER BY {order} FETCH FIRST :limit ROWS ONLY"
        text = oracle_names(baselines.with_baselines(text, baselines.outer_order(order), " "))
        return [self._status(row) for row in self._fetch(tenant_id, text, params)]

    def count_processes(self, tenant_id: str, query: ProcessQuery) -> dict[str, int]:
        where, params = self._process_filters(tenant_id, query, with_status=False)
        text = f"SELECT status, COUNT(*) FROM sentinel_processes WHERE {' AND '.join(where)} GROUP BY status"
        return {status: int(count) for status, count in self._fetch(tenant_id, text, params)}

    def stack_trace(self, tenant_id: str, process_id: str) -> str | None:
        rows = self._fetch(tenant_id, sql.STACK_TRACE, {"tenant_id": tenant_id, "process_id": process_id})
        return rows[0][0] if rows else None

    def process_snapshot(self, tenant_id: str) -> int:
        rows = self._fetch(tenant_id, sql.PROCESS_SNAPSHOT, {"tenant_id": tenant_id})
        return int(rows[0][0] or 0) if rows else 0

    def list_logs(self, tenant_id: str, process_id: str, query: LogQuery) -> list[LogEntry]:
        where = ["tenant_id = :tenant_id", "process_id = :process_id", "log_level >= :min_level"]
        params: dict[str, Any] = {
            "tenant_id": tenant_id,
            "process_id": process_id,
            "min_level": query.min_level,
        }
        if query.since is not None:
            where.append("ts >= :since")
            params["since"] = query.since
        if query.after is not None:
            where.append("(ts > :after_ts OR (ts = :after_ts AND seq > :after_seq))")
            params["after_ts"], params["after_seq"] = query.after
        params["limit"] = query.limit
        text = f"{sql.SELECT_LOG} WHERE {' AND '.join(where)} ORDER BY ts, seq FETCH FIRST :limit ROWS ONLY"
        return [_log(row) for row in self._fetch(tenant_id, text, params)]

    def logs_after(self, tenant_id: str, process_id: str, after_seq: int, limit: int) -> list[LogEntry]:
        params = {"tenant_id": tenant_id, "process_id": process_id, "after_seq": after_seq, "limit": limit}
        return [_log(row) for row in self._fetch(tenant_id, sql.LOGS_AFTER, params)]

    def dead_letters(self, after_id: int, limit: int) -> list[DeadLetter]:
        rows = self._fetch(None, sql.DEAD_LETTERS, {"after_id": after_id, "limit": limit})
        return _dead_letters(rows)

    def recent_dead_letters(
        self, limit: int, since_us: int | None = None, before_id: int | None = None
    ) -> tuple[int, list[DeadLetter]]:
        since = -(2**63) + 1 if since_us is None else since_us  # dead_at is NUMBER(19)
        before = 2**63 - 1 if before_id is None else before_id
        total = self._fetch(None, sql.COUNT_DEAD_LETTERS, {"since": since})[0][0]
        params = {"since": since, "before_id": before, "limit": limit}
        return int(total), _dead_letters(self._fetch(None, sql.RECENT_DEAD_LETTERS, params))


def _dead_letters(rows: Sequence[Sequence[Any]]) -> list[DeadLetter]:
    """An empty payload is stored as NULL by Oracle; a dead letter's payload is never null."""
    return [dead_letter_from_row((*row[:3], row[3] or b"", *row[4:])) for row in rows]


def _log(row: Sequence[Any]) -> LogEntry:
    """Oracle keeps '' as NULL; a log message is never null in the API."""
    if row[3] is None:
        row = (*row[:3], "", *row[4:])
    return log_from_row(row)
