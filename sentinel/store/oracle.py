"""The Oracle store: AQ queue, array DML, optional VPD (``sql/`` holds the schema).

- **Connections.** A ``python-oracledb`` pool (thin mode by default; thick mode with
  ``SENTINEL_ORACLE_THICK_MODE``) serves producers, readers and housekeeping. The ingest consumer
  has its own dedicated connection for its whole life.
- **Ingest.** One transaction per batch covers the AQ dequeue (visibility ON_COMMIT), the dedupe
  claims, the log inserts, the status merge and the dead letters: a crash anywhere rolls all of it
  back and the messages return to the queue (after ``retry_delay``; once a message's retry count
  exceeds ``max_retries`` AQ moves it to the exception queue). Nothing is lost and nothing is applied
  twice, with any number of replicas consuming the same queue; statements that lose a race or a
  deadlock to another replica run again rather than rolling the batch back.
- **Writes** are ``executemany`` over the core's row lists as they are, with ``batcherrors``: a row
  the database refuses is dead-lettered and the batch goes on, because a rollback would count a retry
  against every message in it.
- **Reads** bind the tenant on every query. When ``005_sentinel_vpd.sql`` is installed the tenant is
  also set in the database (``sentinel_ctx_pkg``) on the pooled connection before use and cleared
  before it goes back.
- **Times** are NUMBER(19) microseconds UTC in every table, exactly as the core produces them.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import re
import secrets
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import replace
from datetime import UTC, datetime
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any, Final, cast

import msgspec
import oracledb

from sentinel._core import DEDUPE_COLUMNS, EVENT_FIELDS, LOG_COLUMNS, STATUS_COLUMNS, Batch, EventField
from sentinel._core._schema import HEX, IDENT, JSON_OBJECT, NUMBER, TEXT
from sentinel._core._shared import BAD_TIMESTAMP, MAX_EVENT_BYTES
from sentinel.config import Settings, SettingsError, load_settings
from sentinel.models import DeadLetter, LogEntry, ProcessStatus, now_us, to_us
from sentinel.store import oracle_sql as Q
from sentinel.store.base import (
    CommitOutcome,
    DeadLetterRow,
    DuplicateKeys,
    LogQuery,
    ProcessQuery,
    QueuedMessage,
    QueueStats,
    StoreError,
)
from sentinel.store.rows import dead_letter_from_row, log_from_row, status_from_row
from sentinel.store.sqlscript import Statement, scan_script, script_files

log = logging.getLogger(__name__)

# The oldest python-oracledb with everything this adapter calls: thin-mode AQ (3.0.0) with
# Queue.deqmany / enqmany (3.1.0; DPY-3001 before), and Cursor.execute(..., fetch_lobs=False) (3.4.0;
# before it the keyword is taken as a bind and every read fails with DPY-2005). pyproject.toml's
# "oracledb>=" says the same (tests/test_oracle_adapter.py checks both, and the installed driver).
DRIVER_FLOOR: Final = "3.4.0"
POOL_PING_INTERVAL_S: Final = 60  # ping a pooled connection idle this long before handing it out
POOL_IDLE_TIMEOUT_S: Final = 300  # close surplus idle pooled connections after this
POOL_WAIT_TIMEOUT_MS: Final = 10_000  # an exhausted pool fails an acquire after this, not never
PURGE_CHUNK: Final = 5_000
ENQUEUE_CHUNK: Final = 1_000
RETRY_ATTEMPTS: Final = 3  # a statement that lost a race (ORA-00001) or a deadlock (ORA-00060) runs again
MAX_REASON: Final = 1_000  # dead-letter reasons are VARCHAR2(4000 BYTE): 1000 characters always fit
REJECTED: Final = "db_rejected"  # dead-letter code of rows the database refused

# ORA- codes
UNIQUE_VIOLATION: Final = 1
DEADLOCK: Final = 60
FEATURE_NOT_ENABLED: Final = 439
NOT_PARTITIONED: Final = 14501  # object is not partitioned (002 on an edition without Partitioning)
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


def driver_release(version: str) -> tuple[int, ...]:
    """``"26.1.0"`` -> ``(26, 1, 0)``; a pre-release counts as its release."""
    return tuple(int(part) for part in re.findall(r"\d+", version)[:3])


class DriverTooOld(StoreError, SettingsError):
    """The installed python-oracledb is older than ``DRIVER_FLOOR``: a store error that the command
    line reports as one line, as it does a bad setting."""


def check_driver(version: str | None = None) -> None:
    """Refuse a python-oracledb older than ``DRIVER_FLOOR`` with one line, before anything fails
    half-way through a batch."""
    version = version or oracledb.__version__
    if driver_release(version) < driver_release(DRIVER_FLOOR):
        raise DriverTooOld(
            f"oracle: python-oracledb {version} is too old; Sentinel needs {DRIVER_FLOOR} or later"
            f" (pip install 'oracledb>={DRIVER_FLOOR}')"
        )


# -- the sql/ directory and its plan -----------------------------------------------------------------
def default_sql_dir() -> Path | Traversable:
    """``sql/`` of the source tree, else the copy packaged as ``sentinel/sql``."""
    source = Path(__file__).resolve().parents[2] / "sql"
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


# -- connecting --------------------------------------------------------------------------------------
def connect_params(settings: Settings) -> dict[str, Any]:
    """Arguments of ``oracledb.connect`` (and, with the pool sizes, ``oracledb.create_pool``).

    Thin mode: ``ORACLE_WALLET_LOCATION`` is both ``config_dir`` (tnsnames.ora, so the connect string
    may be a TNS alias) and ``wallet_location`` (ewallet.pem, unlocked by ``ORACLE_WALLET_PASSWORD``).
    Thick mode reads the wallet directory through ``init_oracle_client(config_dir=...)`` and its
    sqlnet.ora (cwallet.sso); without ``ORACLE_USER`` it authenticates with the wallet's stored
    credentials (external authentication)."""
    if not settings.oracle_connect_string:
        raise StoreError("ORACLE_CONNECT_STRING: required for the oracle backend")
    params: dict[str, Any] = {"dsn": settings.oracle_connect_string}
    if settings.oracle_user:
        params["user"] = settings.oracle_user
    if settings.oracle_password:
        params["password"] = settings.oracle_password
    wallet = str(settings.oracle_wallet_location) if settings.oracle_wallet_location else None
    if settings.oracle_thick_mode:
        if not settings.oracle_user:
            params["externalauth"] = True
    elif wallet is not None:
        params["config_dir"] = wallet
        params["wallet_location"] = wallet
        if settings.oracle_wallet_password:
            params["wallet_password"] = settings.oracle_wallet_password
    return params


def pool_params(settings: Settings) -> dict[str, Any]:
    params = connect_params(settings)
    params.update(
        min=settings.pool_min,
        max=settings.pool_max,
        increment=1,
        getmode=oracledb.POOL_GETMODE_TIMEDWAIT,
        wait_timeout=POOL_WAIT_TIMEOUT_MS,
        timeout=POOL_IDLE_TIMEOUT_S,
        ping_interval=POOL_PING_INTERVAL_S,
        session_callback=init_session,
    )
    if params.get("externalauth"):
        params["homogeneous"] = False  # thick mode requires it for external authentication
    return params


def init_thick_mode(settings: Settings) -> None:
    """Load the Oracle Client libraries once per process (``SENTINEL_ORACLE_THICK_MODE``)."""
    if oracledb.is_thin_mode():
        wallet = settings.oracle_wallet_location
        oracledb.init_oracle_client(config_dir=str(wallet) if wallet else None)


def init_session(conn: oracledb.Connection, requested_tag: str | None = None) -> None:
    """Per-session settings, run on every new connection (the pool's ``session_callback``)."""
    with conn.cursor() as cursor:
        cursor.execute(Q.SESSION_UTC)


def _error(exc: BaseException) -> Any:
    """The driver's error object of an ``oracledb.Error`` (``code``, ``message``, ``offset``...)."""
    return exc.args[0] if exc.args else None


def _code(exc: BaseException) -> int:
    return int(getattr(_error(exc), "code", 0) or 0)


def _message(exc: BaseException) -> str:
    return str(getattr(_error(exc), "message", None) or exc).strip()


def _session_dead(exc: BaseException) -> bool:
    return bool(getattr(_error(exc), "is_session_dead", False))


def _utc_us(moment: datetime | None) -> int | None:
    """A naive datetime the session produced in UTC (see ``init_session``) as microseconds."""
    return None if moment is None else to_us(moment.replace(tzinfo=UTC))


def split_queue_name(name: str) -> tuple[str | None, str]:
    owner, dot, queue = name.upper().rpartition(".")
    return (owner or None) if dot else None, queue


# -- the store ---------------------------------------------------------------------------------------
class OracleStore:
    """``sentinel.store.base.Store`` on Oracle 19c+. Build it with ``OracleStore(settings)``; the pool
    opens on first use."""

    backend = "oracle"

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
        self._pool: oracledb.ConnectionPool | None = None
        self._lock = threading.Lock()
        self._vpd: bool | None = None  # whether 005_sentinel_vpd.sql is installed (asked once)
        self._partitioned = True  # sentinel_logs has daily partitions, until a DROP PARTITION says not
        self._queue_view: str | None = None

    # connections ----------------------------------------------------------------------------
    @property
    def pool(self) -> oracledb.ConnectionPool:
        with self._lock:
            if self._pool is None:
                try:
                    self._pool = oracledb.create_pool(**pool_params(self.settings))
                except oracledb.Error as exc:
                    raise StoreError(f"oracle: cannot create the connection pool: {_message(exc)}") from exc
            return self._pool

    def connect(self) -> oracledb.Connection:
        """A dedicated connection outside the pool (the ingest consumer's), set up like pooled ones."""
        try:
            conn = oracledb.connect(**connect_params(self.settings))
            init_session(conn)
        except oracledb.Error as exc:
            raise StoreError(f"oracle: cannot connect: {_message(exc)}") from exc
        return conn

    def vpd_installed(self, conn: oracledb.Connection) -> bool:
        if self._vpd is None:
            with conn.cursor() as cursor:
                cursor.execute(Q.VPD_INSTALLED)
                row = cursor.fetchone()
            self._vpd = bool(row and row[0])
        return self._vpd

    @contextmanager
    def connection(self, tenant_id: str | None = None, *, scoped: bool = True) -> Iterator[oracledb.Connection]:
        """A pooled connection for the duration of the block; driver errors become ``StoreError``.

        With VPD installed and ``scoped``, the session is limited to ``tenant_id`` (``None``: the
        service scope of ingest and housekeeping) while in use, and cleared before it goes back to the
        pool; a connection that cannot be cleared is dropped from the pool instead."""
        pool = self.pool
        try:
            conn = pool.acquire()
        except oracledb.Error as exc:
            raise StoreError(f"oracle: no connection: {_message(exc)}") from exc
        context_set = False
        healthy = True
        try:
            if scoped and self.vpd_installed(conn):
                with conn.cursor() as cursor:
                    context_set = True
                    if tenant_id is None:
                        cursor.callproc(Q.SET_SERVICE_SCOPE)
                    else:
                        cursor.callproc(Q.SET_TENANT, [tenant_id])
            yield conn
        except oracledb.Error as exc:
            healthy = not _session_dead(exc)
            raise StoreError(f"oracle: {_message(exc)}") from exc
        finally:
            self._give_back(pool, conn, context_set=context_set, healthy=healthy)

    @staticmethod
    def _give_back(
        pool: oracledb.ConnectionPool, conn: oracledb.Connection, *, context_set: bool, healthy: bool
    ) -> None:
        if healthy and context_set:
            try:
                with conn.cursor() as cursor:
                    cursor.callproc(Q.CLEAR_CONTEXT)
            except oracledb.Error:
                healthy = False
        try:
            if healthy:
                pool.release(conn)
            else:
                pool.drop(conn)
        except oracledb.Error:
            log.warning("oracle: could not return a connection to the pool", exc_info=True)

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            with suppress(oracledb.Error):
                pool.close(force=True)

    # schema -----------------------------------------------------------------------------------
    def migrate(self) -> list[str]:
        """Run the sql/ scripts not applied yet (or changed since), in order; returns their names.

        Statements meeting "already exists" are skipped, so scripts first run with SQL*Plus, or
        interrupted half-way, can be run again. An optional script (VPD) that the database edition
        cannot run (ORA-00439) is skipped with a warning and not recorded."""
        scripts = load_scripts(self.sql_dir)
        applied: list[str] = []
        with self.connection(scoped=False) as conn, conn.cursor() as cursor:
            self._run_ddl(cursor, Q.CREATE_MIGRATIONS)
            cursor.execute(Q.APPLIED_MIGRATIONS)
            done = {name: checksum for name, checksum in cursor.fetchall()}
            for name, checksum, statements in scripts:
                if done.get(name) == checksum:
                    continue
                try:
                    for statement in statements:
                        self._run_ddl(cursor, statement.sql, plsql=statement.plsql)
                except oracledb.DatabaseError as exc:
                    if _code(exc) == FEATURE_NOT_ENABLED and any(tag in name for tag in OPTIONAL_SCRIPTS):
                        log.warning("oracle: %s skipped: %s", name, _message(exc))
                        continue
                    raise StoreError(
                        f"oracle: migration {name} failed at line {statement.line}: {_message(exc)}"
                    ) from exc
                cursor.execute(Q.RECORD_MIGRATION, {"filename": name, "checksum": checksum})
                conn.commit()
                applied.append(name)
        self._vpd = None  # ask again: 005 may just have been installed
        return applied

    @staticmethod
    def _run_ddl(cursor: oracledb.Cursor, sql: str, *, plsql: bool = False) -> None:
        try:
            cursor.execute(sql)
        except oracledb.DatabaseError as exc:
            if _code(exc) in ALREADY_EXISTS:
                log.info("oracle: skipped, already there: %s", sql.splitlines()[0])
                return
            raise
        if plsql and cursor.warning is not None:
            # "Creation succeeded with compilation errors" is a warning, not an exception.
            cursor.execute(Q.COMPILE_ERRORS)
            errors = [f"{name} {kind} {line}:{col} {text.strip()}" for name, kind, line, col, text in cursor]
            if errors:
                raise StoreError(f"oracle: compiled with errors: {'; '.join(errors)}")

    def reset(self) -> None:
        """Tests only, destroys all data: empty every Sentinel table and the queue, and make a
        rolled-back message come back at once (retry_delay 0) as the store contract tests expect."""
        with self.connection(scoped=False) as conn, conn.cursor() as cursor:
            for table in Q.TABLES:
                cursor.execute(f"TRUNCATE TABLE {table}")
            cursor.execute(Q.PURGE_QUEUE_TABLE, {"queue_table": self._queue_table(cursor)})
            cursor.execute(Q.NO_RETRY_DELAY, {"queue_name": self.queue_name})
            conn.commit()

    def ping(self) -> None:
        with self.connection(scoped=False) as conn:
            conn.ping()

    def pool_stats(self) -> tuple[int, int]:
        """(busy, open) connections of the pool, for the ``sentinel_db_pool_connections`` gauge."""
        pool = self._pool
        if pool is None:
            return 0, 0
        return int(pool.busy), int(pool.opened)

    def secret(self, name: str) -> bytes:
        with self.connection() as conn, conn.cursor() as cursor:
            cursor.execute(Q.GET_SECRET, {"name": name})
            row = cursor.fetchone()
            if row is None:
                try:
                    cursor.execute(Q.PUT_SECRET, {"name": name, "secret_value": secrets.token_bytes(32)})
                    conn.commit()
                except oracledb.IntegrityError:
                    conn.rollback()  # another replica created it first: use theirs
                cursor.execute(Q.GET_SECRET, {"name": name})
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
        with self.connection(scoped=False) as conn:
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
        return OracleConsumer(self)

    def mark_stalled(self, idle_before: int, now: int) -> int:
        with self.connection() as conn, conn.cursor() as cursor:
            cursor.execute(Q.MARK_STALLED, {"idle_before": idle_before})
            count = cursor.rowcount
            conn.commit()
        return int(count)

    def purge(self, logs_before: int, dedupe_before: int) -> tuple[int, int]:
        with self.connection() as conn, conn.cursor() as cursor:
            logs = self._drop_old_partitions(cursor, logs_before) if self._partitioned else 0
            logs += self._delete_chunks(conn, cursor, Q.PURGE_LOGS, logs_before)
            keys = self._delete_chunks(conn, cursor, Q.PURGE_DEDUPE, dedupe_before)
        return logs, keys

    def _drop_old_partitions(self, cursor: oracledb.Cursor, before: int) -> int:
        """Drop the daily log partitions that lie wholly before ``before``; returns the rows they held.

        DROP PARTITION is DDL (it commits); on a partition that is busy or cannot go, the remaining
        rows are left to the row-by-row delete. A table without partitions (002 on an edition without
        the Partitioning option) is remembered, and retention is the delete alone from then on."""
        dropped = 0
        while True:
            cursor.execute(Q.OLDEST_LOG)
            row = cursor.fetchone()
            oldest = row[0] if row else None
            if oldest is None or oldest < 0:
                return dropped
            day_start = oldest - oldest % Q.DAY_US
            day_end = day_start + Q.DAY_US
            if day_end > before:
                return dropped
            cursor.execute(Q.COUNT_LOGS_BETWEEN, {"low": day_start, "high": day_end})
            count_row = cursor.fetchone()
            try:
                cursor.execute(Q.DROP_LOG_PARTITION.format(day_start=int(day_start)))
            except oracledb.DatabaseError as exc:
                if _code(exc) == NOT_PARTITIONED:
                    self._partitioned = False
                    log.info("oracle: sentinel_logs is not partitioned; retention deletes rows")
                    return dropped
                log.info(
                    "oracle: log partition of day %d not dropped (%s); deleting rows instead",
                    day_start // Q.DAY_US,
                    _message(exc),
                )
                return dropped
            dropped += int(count_row[0]) if count_row else 0

    @staticmethod
    def _delete_chunks(conn: oracledb.Connection, cursor: oracledb.Cursor, sql: str, before: int) -> int:
        total = 0
        while True:
            cursor.execute(sql, {"before": before, "chunk": PURGE_CHUNK})
            count = int(cursor.rowcount)
            conn.commit()
            total += count
            if count < PURGE_CHUNK:
                return total

    def _queue_table(self, cursor: oracledb.Cursor) -> str:
        owner, name = split_queue_name(self.queue_name)
        cursor.execute(Q.FIND_QUEUE, {"name": name, "owner": owner})
        row = cursor.fetchone()
        if row is None:
            raise StoreError(f"oracle: queue {self.queue_name} not found (run sentinel migrate --oracle)")
        return f"{row[0]}.{row[1]}"

    def queue_stats(self) -> QueueStats:
        _, name = split_queue_name(self.queue_name)
        with self.connection(scoped=False) as conn, conn.cursor() as cursor:
            if self._queue_view is None:
                queue_owner, queue_table = self._queue_table(cursor).split(".", 1)
                self._queue_view = f'"{queue_owner}"."AQ${queue_table}"'
            cursor.execute(Q.QUEUE_STATS.format(view=self._queue_view), {"queue": name})
            row = cursor.fetchone()
        depth, oldest = row if row else (0, None)
        return QueueStats(depth=int(depth), oldest_enqueued_at=_utc_us(oldest))

    def process_counts(self) -> dict[str, int]:
        with self.connection() as conn, conn.cursor() as cursor:
            cursor.execute(Q.PROCESS_COUNTS)
            return {status: int(count) for status, count in cursor.fetchall()}

    # readers (tenant-scoped) -------------------------------------------------------------------
    def _fetch(self, tenant_id: str | None, sql: str, params: Mapping[str, Any]) -> list[Any]:
        with self.connection(tenant_id) as conn, conn.cursor() as cursor:
            cursor.execute(sql, dict(params), fetch_lobs=False)
            rows: list[Any] = cursor.fetchall()
        return rows

    def get_status(self, tenant_id: str, process_id: str) -> ProcessStatus | None:
        rows = self._fetch(tenant_id, Q.GET_STATUS, {"tenant_id": tenant_id, "process_id": process_id})
        return status_from_row(rows[0]) if rows else None

    def list_processes(self, tenant_id: str, query: ProcessQuery) -> list[ProcessStatus]:
        where = ["tenant_id = :tenant_id"]
        params: dict[str, Any] = {"tenant_id": tenant_id}
        if query.statuses:
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
        if query.after is not None:
            where.append("(last_seen_at < :after_seen OR (last_seen_at = :after_seen AND process_id > :after_id))")
            params["after_seen"], params["after_id"] = query.after
        params["limit"] = query.limit
        sql = (
            f"{Q.SELECT_PROCESS} WHERE {' AND '.join(where)}"
            " ORDER BY last_seen_at DESC, process_id FETCH FIRST :limit ROWS ONLY"
        )
        return [status_from_row(row) for row in self._fetch(tenant_id, sql, params)]

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
        sql = f"{Q.SELECT_LOG} WHERE {' AND '.join(where)} ORDER BY ts, seq FETCH FIRST :limit ROWS ONLY"
        return [_log(row) for row in self._fetch(tenant_id, sql, params)]

    def logs_after(self, tenant_id: str, process_id: str, after_seq: int, limit: int) -> list[LogEntry]:
        params = {"tenant_id": tenant_id, "process_id": process_id, "after_seq": after_seq, "limit": limit}
        return [_log(row) for row in self._fetch(tenant_id, Q.LOGS_AFTER, params)]

    def dead_letters(self, after_id: int, limit: int) -> list[DeadLetter]:
        rows = self._fetch(None, Q.DEAD_LETTERS, {"after_id": after_id, "limit": limit})
        return [dead_letter_from_row((*row[:3], row[3] or b"", *row[4:])) for row in rows]


def _log(row: Sequence[Any]) -> LogEntry:
    """Oracle keeps '' as NULL; a log message is never null in the API."""
    if row[3] is None:
        row = (*row[:3], "", *row[4:])
    return log_from_row(row)


# -- the ingest consumer -----------------------------------------------------------------------------
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

    def __init__(self, store: OracleStore) -> None:
        self._store = store
        self._conn: oracledb.Connection | None = None
        self._queue: oracledb.Queue | None = None
        self._cursors: dict[str, oracledb.Cursor] = {}
        self._claimed: set[tuple[str, str]] = set()  # dedupe keys inserted by seen() in this transaction
        self._pending = 0  # messages dequeued in this transaction

    # the connection ---------------------------------------------------------------------------
    def _connection(self) -> tuple[oracledb.Connection, oracledb.Queue]:
        if self._conn is None or self._queue is None:
            conn = self._store.connect()
            try:
                if self._store.vpd_installed(conn):
                    with conn.cursor() as cursor:
                        cursor.callproc(Q.SET_SERVICE_SCOPE)
                queue = cast(oracledb.Queue, conn.queue(self._store.queue_name))
                options = queue.deqoptions
                options.mode = oracledb.DEQ_REMOVE
                options.visibility = oracledb.DEQ_ON_COMMIT  # the dequeue commits with the batch
                options.navigation = oracledb.DEQ_FIRST_MSG  # see higher priorities that arrived meanwhile
            except oracledb.Error as exc:
                with suppress(oracledb.Error):
                    conn.close()
                name = self._store.queue_name
                raise StoreError(f"oracle: cannot open queue {name}: {_message(exc)}") from exc
            self._conn, self._queue = conn, queue
            self._cursors = {}
        return self._conn, self._queue

    def _cursor(self, sql: str, sizes: Sequence[Any] | None = None) -> oracledb.Cursor:
        cursor = self._cursors.get(sql)
        if cursor is None:
            conn, _ = self._connection()
            cursor = conn.cursor()
            if sizes is not None:
                cursor.setinputsizes(*sizes)
            self._cursors[sql] = cursor
        return cursor

    def _failed(self, exc: oracledb.Error, what: str) -> StoreError:
        if _session_dead(exc):
            self._discard()
        return StoreError(f"oracle: {what}: {_message(exc)}")

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
    def fetch(self, limit: int, wait_seconds: float) -> list[QueuedMessage]:
        """Dequeue up to ``limit`` messages into the open transaction.

        AQ waits in whole seconds (and returns as soon as a message arrives), so an idle consumer
        waits in the database for ``ceil(wait_seconds)``. A consumer already holding fetched messages
        (a batch filling up) must not overrun its flush interval that way: it dequeues without
        waiting and, finding nothing, sleeps the (sub-second) rest here."""
        _, queue = self._connection()
        hold = self._pending > 0 and 0 < wait_seconds < 1
        try:
            if wait_seconds <= 0 or hold:
                queue.deqoptions.wait = oracledb.DEQ_NO_WAIT
            else:
                queue.deqoptions.wait = math.ceil(wait_seconds)
            messages = queue.deqmany(limit)
        except oracledb.Error as exc:
            raise self._failed(exc, "dequeue failed") from exc
        if not messages and hold:
            time.sleep(wait_seconds)
        self._pending += len(messages)
        return [
            QueuedMessage(message.msgid, bytes(message.payload or b""), _utc_us(message.enqtime))
            for message in messages
        ]

    def seen(self, keys: Sequence[tuple[str, str]]) -> set[tuple[str, str]]:
        """Claim the keys by inserting them: the rows refused as duplicates (ORA-00001) are the keys
        already ingested, here or by another replica (whose uncommitted claim makes this insert wait
        for its outcome). The claims commit or roll back with the batch."""
        # Sorted: replicas claiming overlapping keys take their locks in the same order (no deadlock).
        fresh = sorted({key for key in keys if key not in self._claimed})
        if not fresh:
            return set()
        stamp = now_us()
        cursor = self._cursor(Q.INSERT_DEDUPE, _DEDUPE_SIZES)
        duplicates: set[tuple[str, str]] = set()
        todo = fresh
        for attempt in range(1, RETRY_ATTEMPTS + 1):
            # Claims made by an earlier seen() of this transaction are not in this sorted run, so two
            # replicas can still wait on each other: the database then fails one side's statement
            # (ORA-00060, the statement alone is rolled back) and the claims are made again.
            last = attempt == RETRY_ATTEMPTS
            try:
                cursor.executemany(
                    Q.INSERT_DEDUPE, [(tenant, event, stamp) for tenant, event in todo], batcherrors=True
                )
                errors = cursor.getbatcherrors()
            except oracledb.Error as exc:
                if _code(exc) == DEADLOCK and not last:
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
            # seen() claims every key it is asked about; claim any it was not asked about now. Nothing
            # is written yet, so repeats found here need no rollback: the worker rebuilds without them.
            repeats = self.seen(unclaimed)
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
                Q.INSERT_LOGS, _LOG_SIZES, log_rows, messages=messages, stamp=stamp, rejected=rejected
            )
            status_errors = self._write(
                Q.INSERT_STATUS_STAGE,
                _STAGE_SIZES,
                status_rows,
                messages=messages,
                stamp=stamp,
                rejected=rejected,
            )
            if len(status_rows) > status_errors:
                self._merge()
            dead = [
                (d.code, d.reason[:MAX_REASON], d.payload, d.enqueued_at, d.dead_at)
                for d in (*dead_letters, *late, *rejected)
            ]
            if dead:
                self._cursor(Q.INSERT_DEAD_LETTER, _DEAD_SIZES).executemany(Q.INSERT_DEAD_LETTER, dead)
            conn.commit()
        except oracledb.Error as exc:
            if _session_dead(exc):
                self._discard()
            else:
                self._end_transaction()
            raise StoreError(f"oracle: batch commit failed: {_message(exc)}") from exc
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
        sql: str,
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
        cursor = self._cursor(sql, sizes)
        cursor.executemany(sql, rows, batcherrors=True)
        errors = cursor.getbatcherrors()
        is_log = sql == Q.INSERT_LOGS
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
        cursor = self._cursor(Q.MERGE_STATUS)
        for attempt in range(1, RETRY_ATTEMPTS + 1):
            try:
                cursor.execute(Q.MERGE_STATUS)
                return
            except oracledb.DatabaseError as exc:
                if _code(exc) not in (UNIQUE_VIOLATION, DEADLOCK) or attempt == RETRY_ATTEMPTS:
                    raise
                log.info("oracle: status merge retried (attempt %d): %s", attempt + 1, _message(exc))

    def _end_transaction(self) -> None:
        self._claimed.clear()
        self._pending = 0
        if self._conn is not None:
            try:
                self._conn.rollback()
            except oracledb.Error as exc:
                if _session_dead(exc):
                    self._discard()
                else:
                    raise StoreError(f"oracle: rollback failed: {_message(exc)}") from exc

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
    limit = Q.LOG_TS_LIMIT_US
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


# -- tests -------------------------------------------------------------------------------------------
def split_dsn(dsn: str) -> tuple[str | None, str | None, str]:
    """``user/password@connect_string`` -> its parts (a bare connect string has no user)."""
    credentials, at, connect = dsn.rpartition("@")
    if not at:
        return None, None, dsn
    user, _, password = credentials.partition("/")
    return user or None, password or None, connect


def open_test_store(dsn: str, env: Mapping[str, str] | None = None) -> OracleStore:
    """A migrated, emptied store for the contract tests, from ``SENTINEL_TEST_ORACLE_DSN``
    (``user/password@host:port/service``, or a TNS alias with the credentials in ``ORACLE_USER`` /
    ``ORACLE_PASSWORD``). Other settings (wallet, thick mode, queue name) come from ``env``
    (default: the environment). Every Sentinel table and the queue are emptied: use a scratch schema."""
    values = dict(os.environ if env is None else env)
    user, password, connect = split_dsn(dsn)
    values.update(SENTINEL_BACKEND="oracle", ORACLE_CONNECT_STRING=connect)
    if user:
        values["ORACLE_USER"] = user
    if password:
        values["ORACLE_PASSWORD"] = password
    settings = replace(load_settings(values), pool_min=1, pool_max=4)
    store = OracleStore(settings)
    store.migrate()
    store.reset()
    return store
