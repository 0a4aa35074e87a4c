"""The embedded store: one SQLite file in WAL mode holding the queue and every table.

Exactly one consumer writes batches (``sentinel.ingest`` holds a lock file to guarantee it); producers
and readers use their own per-thread connections. WAL lets readers run while the writer commits, and
each batch is one ``BEGIN IMMEDIATE`` transaction: the queue rows leave in the same commit that stores
their effects, so a crash at any point loses nothing and duplicates nothing.
"""

from __future__ import annotations

import errno
import hashlib
import os
import secrets
import select
import socket
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Any, Final

import msgspec

from sentinel import baselines
from sentinel._core import STATUS_COLUMNS, Batch
from sentinel.models import DeadLetter, LogEntry, ProcessStatus, now_us
from sentinel.store import status_rules
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
from sentinel.store.rows import (
    DEAD_LETTER_COLUMNS,
    LOG_ENTRY_COLUMNS,
    PROCESS_COLUMNS,
    dead_letter_from_row,
    log_from_row,
    status_from_row,
)

# CPython's sqlite3 binds int, float, str and bytearray directly but sends every other parameter, None
# and bytes included, through its adapter protocol: a registry miss, then two failed attribute lookups
# that raise and clear AttributeError. A status row carries some 18 NULLs among 25 parameters and a log
# row several. Measured on CPython 3.11: 0.4 us per None bound, 0.14 us with a registered adapter (found
# at the first step); the status upsert fell from about 24 to 13-16 us a row. Both adapters are C
# callables returning their argument unchanged (``{}.get(None)`` is None; ``bytes(b)`` is ``b`` for exact
# bytes), so what is bound does not change. Process-wide, like every sqlite3 adapter: only Sentinel's own
# processes import this module.
_NONE_AS_IS: Final[Callable[[None], None]] = {}.get  # type: ignore[assignment]  # C-level; see above
sqlite3.register_adapter(type(None), _NONE_AS_IS)
sqlite3.register_adapter(bytes, bytes)

BUSY_TIMEOUT_MS: Final = 10_000
# The consumer's WAL (see ``Checkpointer``): checkpointed in the background once it holds this much,
# checkpointed on the commit path only past the hard limit, and truncated back to the kept size when
# it restarts. Recovery after a crash replays at most the hard limit plus one batch.
WAL_KEPT_BYTES: Final = 4 * 1024 * 1024
WAL_SOFT_BYTES: Final = 16 * 1024 * 1024
WAL_HARD_BYTES: Final = 128 * 1024 * 1024
INGEST_CACHE_KIB: Final = 64 * 1024
PURGE_CHUNK: Final = 5_000

# SPEC section 3 as an upsert, rendered from sentinel.store.status_rules (the same table as Oracle's
# MERGE): the same fold the core applies within a batch, so batch-then-merge equals event-by-event. The
# row is the core's, positional in STATUS_COLUMNS order: ?N is bound to STATUS_COLUMNS[N - 1].
_UPSERT_DIALECT: Final = status_rules.Dialect(
    inserted=lambda column: f"?{STATUS_COLUMNS.index(column) + 1}",
    incoming=lambda column: f"excluded.{status_rules.stored_name(column)}",
    stored=status_rules.stored_name,
    greatest="MAX",
)
UPSERT_STATUS: Final = f"""
INSERT INTO processes ({", ".join(status_rules.INSERT_COLUMNS)})
VALUES ({status_rules.insert_values(_UPSERT_DIALECT)})
ON CONFLICT ({", ".join(status_rules.KEY_COLUMNS)}) DO UPDATE SET
    {status_rules.update_set(_UPSERT_DIALECT)}
"""
INSERT_LOGS: Final = """
INSERT INTO logs (tenant_id, process_id, event_id, ts, level, message, details, component, correlation_id,
    trace_id, span_id, duration_us, ingested_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
"""
INSERT_DEDUPE: Final = "INSERT OR IGNORE INTO dedupe (tenant_id, event_id, seen_at) VALUES (?, ?, ?)"
INSERT_DEAD: Final = "INSERT INTO dead_letters (code, reason, payload, enqueued_at, dead_at) VALUES (?, ?, ?, ?, ?)"
DELETE_MESSAGES: Final = "DELETE FROM queue WHERE msg_id IN (SELECT value FROM json_each(?))"
ENQUEUE: Final = "INSERT INTO queue (priority, enqueued_at, payload) VALUES (?, ?, ?)"

# RUNNING -> STALLED for processes idle since :idle_before (their newest event was stored before it,
# so received before it), unless the queue may still hold a newer event for them: while the queue holds a
# message older than :idle_before, ingest lags more than the timeout and the sweep waits; otherwise a
# process with a message waiting in the queue (claimed by the consumer or not) is left alone. The
# waiting messages are then younger than the timeout, which bounds what the second test reads.
MARK_STALLED: Final = """
UPDATE processes SET status = 'STALLED', updated_at = :now
WHERE status = 'RUNNING' AND updated_at < :idle_before
    AND NOT EXISTS (SELECT 1 FROM queue WHERE enqueued_at < :idle_before)
    AND (tenant_id, process_id) NOT IN (
        SELECT CAST(payload AS TEXT) ->> '$.tenant_id', CAST(payload AS TEXT) ->> '$.process_id' FROM queue
        WHERE json_valid(CAST(payload AS TEXT))
            AND CAST(payload AS TEXT) ->> '$.tenant_id' IS NOT NULL
            AND CAST(payload AS TEXT) ->> '$.process_id' IS NOT NULL
    )
"""

_SELECT_PROCESS = f"SELECT {', '.join(PROCESS_COLUMNS)} FROM processes"
_GET_STATUS = baselines.with_baselines(f"{_SELECT_PROCESS} WHERE tenant_id = ? AND process_id = ?", None, "")
_SELECT_LOG = f"SELECT {', '.join(LOG_ENTRY_COLUMNS)} FROM logs"


def begin_immediate(conn: sqlite3.Connection, timeout: float = BUSY_TIMEOUT_MS / 1000) -> None:
    """Take the write lock, polling every half millisecond or so.

    SQLite's own busy handler sleeps in growing steps (1, 2, 5, 10 ... 100 ms), so a writer that meets
    another one (HTTP producers and the ingest consumer share the file) wakes up long after the lock
    was freed and can lose it again to the other side, time after time. Short polls take the lock
    within a fraction of a millisecond of its release."""
    conn.execute("PRAGMA busy_timeout = 0")
    try:
        deadline = time.monotonic() + timeout
        pause = 0.0002
        while True:
            try:
                conn.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if exc.sqlite_errorcode & 0xFF != sqlite3.SQLITE_BUSY or time.monotonic() >= deadline:
                    raise
            time.sleep(pause)
            pause = min(pause * 1.5, 0.002)
    finally:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")


def _open_failure(path: Path, exc: BaseException) -> StoreError:
    """One line naming the database file and what is wrong with it (sqlite's own words are vague)."""
    why = str(exc)
    if path.is_dir():
        why = "it is a directory"
    elif not path.exists() and path.parent.is_dir() and not os.access(path.parent, os.W_OK | os.X_OK):
        why = f"cannot create it: no write permission in {path.parent}"
    elif isinstance(exc, sqlite3.DatabaseError) and "not a database" in why:
        why = "the file is not a SQLite database (move it away or point --data-dir elsewhere)"
    elif isinstance(exc, OSError):
        why = exc.strerror or why
    return StoreError(f"sqlite: cannot open {path}: {why}")


def _connect(path: Path, *, synchronous: str) -> sqlite3.Connection:
    try:
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=BUSY_TIMEOUT_MS / 1000)
    except sqlite3.Error as exc:
        raise _open_failure(path, exc) from exc
    try:
        conn.execute("PRAGMA schema_version")  # reads the header: a file that is no database fails here
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        conn.execute(f"PRAGMA synchronous = {synchronous}")
        conn.execute("PRAGMA foreign_keys = ON")
    except sqlite3.Error as exc:
        conn.close()
        raise _open_failure(path, exc) from exc
    return conn


def _migrations() -> list[tuple[int, str, str]]:
    found = []
    for entry in resources.files("sentinel.store").joinpath("sqlite_migrations").iterdir():
        if entry.name.endswith(".sql"):
            version = int(entry.name.split("_", 1)[0])
            found.append((version, entry.name, entry.read_text(encoding="utf-8")))
    return sorted(found)


def pending_migrations(path: Path) -> list[str]:
    """The migrations ``migrate`` would apply to the database at ``path``, read without writing (and
    without creating it when it does not exist)."""
    current = 0
    if path.exists():
        try:
            conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
            try:
                current = int(conn.execute("PRAGMA user_version").fetchone()[0])
            finally:
                conn.close()
        except sqlite3.Error as exc:
            raise _open_failure(path, exc) from exc
    return [name for version, name, _ in _migrations() if version > current]


def wake_address(path: Path) -> bytes:
    """The abstract-namespace datagram socket the consumer of this database listens on.

    Abstract sockets leave no file behind and have no path-length limit; the name is derived from
    the database path so that two databases on one host never wake each other."""
    digest = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:24]
    return b"\0sentinel-wake-" + digest.encode()


class SqliteStore:
    backend = "sqlite"
    # Run inside every transaction that may change statuses, before it commits (sentinel.alerts.service).
    status_hook: Callable[[sqlite3.Connection], None] | None = None
    baseline_policy = baselines.BaselinePolicy()

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            if exc.errno in (errno.EEXIST, errno.ENOTDIR):
                blocker = next(p for p in (self.path.parent, *self.path.parent.parents) if p.exists())
                why = f"{blocker} is a file, not a directory"
            else:
                why = f"{exc.filename or self.path.parent}: {exc.strerror or exc}"
            raise StoreError(f"sqlite: cannot create the data directory {self.path.parent}: {why}") from exc
        self._local = threading.local()
        self._wake_address = wake_address(self.path)
        self._wake_socket: socket.socket | None = None
        self._all: list[sqlite3.Connection] = []
        self._all_lock = threading.Lock()

    # connections ---------------------------------------------------------------------------
    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            # FULL: a producer's commit must survive power loss before it is acknowledged.
            conn = _connect(self.path, synchronous="FULL")
            self._local.conn = conn
            with self._all_lock:
                self._all.append(conn)
        return conn

    @contextmanager
    def transaction(self, conn: sqlite3.Connection | None = None) -> Iterator[sqlite3.Connection]:
        conn = conn or self._conn()
        try:
            begin_immediate(conn)
        except sqlite3.Error as exc:
            raise StoreError(f"sqlite: cannot start a write transaction: {exc}") from exc
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        try:
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            conn.execute("ROLLBACK")
            raise StoreError(f"sqlite: commit failed: {exc}") from exc

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        try:
            return self._conn().execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise StoreError(f"sqlite: {exc}") from exc

    def pool_stats(self) -> tuple[int, int]:
        """(busy, open) connections of this process. SQLite has no pool: one connection per thread,
        never waited for, so none counts as busy between calls."""
        with self._all_lock:
            return 0, len(self._all)

    def close(self) -> None:
        with self._all_lock:
            for conn in self._all:
                conn.close()
            self._all.clear()
        self._local = threading.local()
        if self._wake_socket is not None:
            self._wake_socket.close()
            self._wake_socket = None

    # schema --------------------------------------------------------------------------------
    def migrate(self) -> list[str]:
        conn = _connect(self.path, synchronous="FULL")
        applied: list[str] = []
        try:
            try:
                conn.execute("PRAGMA journal_mode = WAL")
            except sqlite3.Error as exc:
                raise _open_failure(self.path, exc) from exc
            for version, name, script in _migrations():
                begin_immediate(conn)
                current = conn.execute("PRAGMA user_version").fetchone()[0]
                if current >= version:
                    conn.execute("ROLLBACK")
                    continue
                try:
                    for statement in _statements(script):
                        conn.execute(statement)
                    conn.execute(f"PRAGMA user_version = {version:d}")
                    conn.execute("COMMIT")
                except sqlite3.Error as exc:
                    conn.execute("ROLLBACK")
                    raise StoreError(f"sqlite: migration {name} failed: {exc}") from exc
                applied.append(name)
        finally:
            conn.close()
        return applied

    def schema_version(self) -> int:
        return int(self._read("PRAGMA user_version")[0][0])

    def ping(self) -> None:
        self._read("SELECT 1")

    def integrity_check(self) -> str:
        return str(self._read("PRAGMA integrity_check")[0][0])

    def secret(self, name: str) -> bytes:
        rows = self._read("SELECT value FROM meta WHERE name = ?", (name,))
        if rows:
            return bytes(rows[0][0])
        with self.transaction() as conn:
            conn.execute("INSERT OR IGNORE INTO meta (name, value) VALUES (?, ?)", (name, secrets.token_bytes(32)))
        return bytes(self._read("SELECT value FROM meta WHERE name = ?", (name,))[0][0])

    # producers -----------------------------------------------------------------------------
    def enqueue(self, payloads: Sequence[bytes], priorities: Sequence[int]) -> int:
        if len(payloads) != len(priorities):
            raise ValueError("one priority per payload")
        if not payloads:
            return 0
        stamp = now_us()
        rows = [(priority, stamp, payload) for payload, priority in zip(payloads, priorities, strict=True)]
        try:
            with self.transaction() as conn:
                conn.executemany(ENQUEUE, rows)
        except sqlite3.Error as exc:
            raise StoreError(f"sqlite: enqueue failed: {exc}") from exc
        self.notify()
        return len(rows)

    def notify(self) -> None:
        """Wake the consumer now instead of at its next poll; nobody listening is fine."""
        sock = self._wake_socket
        if sock is None:
            sock = self._wake_socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            sock.setblocking(False)
        try:
            sock.sendto(b"!", self._wake_address)
        except OSError:
            pass

    # consumer side -------------------------------------------------------------------------
    def consumer(self) -> SqliteConsumer:
        return SqliteConsumer(self)

    def mark_stalled(self, idle_before: int, now: int) -> int:
        # updated_at moves too, so a client polling with updated_since sees the change. One write
        # transaction: no message can be queued between the queue test and the update.
        with self.transaction() as conn:
            cursor = conn.execute(MARK_STALLED, {"now": now, "idle_before": idle_before})
            if cursor.rowcount and self.status_hook is not None:
                self.status_hook(conn)
            return cursor.rowcount

    def purge(self, logs_before: int, dedupe_before: int) -> tuple[int, int]:
        # In chunks, so the single writer is never held up behind one long delete.
        logs = self._purge_chunks(
            "DELETE FROM logs WHERE seq IN (SELECT seq FROM logs WHERE ts < ? LIMIT ?)", logs_before
        )
        keys = self._purge_chunks(
            "DELETE FROM dedupe WHERE (tenant_id, event_id) IN "
            "(SELECT tenant_id, event_id FROM dedupe WHERE seen_at < ? LIMIT ?)",
            dedupe_before,
        )
        return logs, keys

    def _purge_chunks(self, sql: str, before: int) -> int:
        total = 0
        while True:
            with self.transaction() as conn:
                count = conn.execute(sql, (before, PURGE_CHUNK)).rowcount
            total += count
            if count < PURGE_CHUNK:
                return total

    def queue_stats(self) -> QueueStats:
        depth, oldest = self._read("SELECT COUNT(*), MIN(enqueued_at) FROM queue")[0]
        return QueueStats(depth=depth, oldest_enqueued_at=oldest)

    def process_counts(self) -> dict[str, int]:
        return dict(self._read("SELECT status, COUNT(*) FROM processes GROUP BY status"))

    # readers -------------------------------------------------------------------------------
    def get_status(self, tenant_id: str, process_id: str) -> ProcessStatus | None:
        try:
            row = self._conn().execute(_GET_STATUS, (tenant_id, process_id)).fetchone()
        except sqlite3.Error as exc:
            raise StoreError(f"sqlite: {exc}") from exc
        if row is None:
            return None
        process, extra = baselines.split_row(row)
        return baselines.apply(status_from_row(process), extra, self.baseline_policy)

    @staticmethod
    def _process_filters(tenant_id: str, query: ProcessQuery, *, with_status: bool) -> tuple[list[str], list[Any]]:
        where = ["tenant_id = ?"]
        params: list[Any] = [tenant_id]
        if with_status and query.statuses:
            where.append(f"status IN ({', '.join('?' * len(query.statuses))})")
            params.extend(query.statuses)
        if query.process_type is not None:
            where.append("process_type = ?")
            params.append(query.process_type)
        if query.package_name is not None:
            where.append("package_name = ?")
            params.append(query.package_name)
        if query.updated_since is not None:
            where.append("updated_at >= ?")
            params.append(query.updated_since)
        if query.search is not None:
            # instr() on lower(): a plain substring, so '%' and '_' in the search are literal.
            where.append("(instr(lower(process_id), ?) > 0 OR instr(lower(coalesce(process_name, '')), ?) > 0)")
            params.extend((query.search.lower(), query.search.lower()))
        return where, params

    def list_processes(self, tenant_id: str, query: ProcessQuery) -> list[ProcessStatus]:
        where, params = self._process_filters(tenant_id, query, with_status=True)
        if query.changed_after is not None:
            # Part 2 of a walk: the processes changed since it began, by their immutable key.
            where.append("updated_at > ? AND process_id > ?")
            params.extend((query.snapshot or 0, query.changed_after))
            order = "process_id"
        else:
            if query.snapshot is not None:
                where.append("updated_at <= ?")
                params.append(query.snapshot)
            if query.after is not None:
                where.append("(last_seen_at < ? OR (last_seen_at = ? AND process_id > ?))")
                params.extend((query.after[0], query.after[0], query.after[1]))
            order = "last_seen_at DESC, process_id"
        params.append(query.limit)
        sql = f"{_SELECT_PROCESS} WHERE {' AND '.join(where)} ORDER BY {order} LIMIT ?"
        sql = baselines.with_baselines(sql, baselines.outer_order(order), "")
        policy = self.baseline_policy
        return [
            baselines.apply(status_from_row(p), x, policy) for p, x in map(baselines.split_row, self._read(sql, params))
        ]

    def count_processes(self, tenant_id: str, query: ProcessQuery) -> dict[str, int]:
        where, params = self._process_filters(tenant_id, query, with_status=False)
        return dict(
            self._read(f"SELECT status, COUNT(*) FROM processes WHERE {' AND '.join(where)} GROUP BY status", params)
        )

    def stack_trace(self, tenant_id: str, process_id: str) -> str | None:
        rows = self._read(
            "SELECT stack_trace FROM processes WHERE tenant_id = ? AND process_id = ?", (tenant_id, process_id)
        )
        return rows[0][0] if rows else None

    def process_snapshot(self, tenant_id: str) -> int:
        rows = self._read("SELECT MAX(updated_at) FROM processes WHERE tenant_id = ?", (tenant_id,))
        return int(rows[0][0] or 0)

    def list_logs(self, tenant_id: str, process_id: str, query: LogQuery) -> list[LogEntry]:
        where = ["tenant_id = ?", "process_id = ?", "level >= ?"]
        params: list[Any] = [tenant_id, process_id, query.min_level]
        if query.since is not None:
            where.append("ts >= ?")
            params.append(query.since)
        if query.after is not None:
            where.append("(ts > ? OR (ts = ? AND seq > ?))")
            params.extend((query.after[0], query.after[0], query.after[1]))
        params.append(query.limit)
        sql = f"{_SELECT_LOG} WHERE {' AND '.join(where)} ORDER BY ts, seq LIMIT ?"
        return [log_from_row(row) for row in self._read(sql, params)]

    def logs_after(self, tenant_id: str, process_id: str, after_seq: int, limit: int) -> list[LogEntry]:
        rows = self._read(
            f"{_SELECT_LOG} WHERE tenant_id = ? AND process_id = ? AND seq > ? ORDER BY seq LIMIT ?",
            (tenant_id, process_id, after_seq, limit),
        )
        return [log_from_row(row) for row in rows]

    def dead_letters(self, after_id: int, limit: int) -> list[DeadLetter]:
        rows = self._read(
            f"SELECT {', '.join(DEAD_LETTER_COLUMNS)} FROM dead_letters WHERE id > ? ORDER BY id LIMIT ?",
            (after_id, limit),
        )
        return [dead_letter_from_row(row) for row in rows]

    def recent_dead_letters(
        self, limit: int, since_us: int | None = None, before_id: int | None = None
    ) -> tuple[int, list[DeadLetter]]:
        since = -(2**63) if since_us is None else since_us
        before = 2**63 - 1 if before_id is None else before_id
        total = self._read("SELECT COUNT(*) FROM dead_letters WHERE dead_at >= ?", (since,))[0][0]
        rows = self._read(
            f"SELECT {', '.join(DEAD_LETTER_COLUMNS)} FROM dead_letters WHERE dead_at >= ? AND id < ?"
            " ORDER BY id DESC LIMIT ?",
            (since, before, limit),
        )
        return int(total), [dead_letter_from_row(row) for row in rows]


def _statements(script: str) -> list[str]:
    """Split a migration on ';' at line ends; the embedded migrations hold no triggers or literals
    that would need a real parser."""
    out, current = [], []
    for line in script.splitlines():
        if line.lstrip().startswith("--"):
            continue
        current.append(line)
        if line.rstrip().endswith(";"):
            statement = "\n".join(current).strip().rstrip(";")
            if statement:
                out.append(statement)
            current = []
    if "\n".join(current).strip():
        out.append("\n".join(current).strip())
    return out


class SqliteConsumer:
    """The one writer of an embedded database (see ``sentinel.store.base.Consumer``).

    ``fetch`` claims messages in memory, without a transaction; ``commit`` deletes them in the same
    transaction as their effects and releases the claim. Claims die with the process, so after a
    crash the uncommitted messages are simply read again. Dedupe is optimistic: the keys are inserted
    with the batch, and only when some already existed is the batch rolled back and rebuilt."""

    def __init__(self, store: SqliteStore) -> None:
        self._store = store
        # NORMAL is enough here: a batch lost to power failure rolls back its dequeue with it.
        self._conn = _connect(store.path, synchronous="NORMAL")
        # Checkpoints off the commit path (the Checkpointer does them) and a page cache that holds the
        # hot part of the dedupe and log indexes.
        self._conn.execute("PRAGMA wal_autocheckpoint = 0")
        self._conn.execute(f"PRAGMA journal_size_limit = {WAL_KEPT_BYTES}")
        self._conn.execute(f"PRAGMA cache_size = -{INGEST_CACHE_KIB}")
        self._checkpointer = Checkpointer(store.path)
        self._claimed: set[int] = set()
        self._listener: socket.socket | None = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._listener.setblocking(False)
        try:
            self._listener.bind(wake_address(store.path))
        except OSError:
            # Another consumer has the address (ingest's lock should prevent it): fall back to polling.
            self._listener.close()
            self._listener = None

    def _drain_wakeups(self) -> None:
        if self._listener is None:
            return
        try:
            while True:
                self._listener.recv(64)
        except OSError:
            pass

    def _wait(self, seconds: float) -> None:
        """Sleep until a producer signals new messages, or ``seconds`` pass."""
        if self._listener is None:
            time.sleep(seconds)
            return
        ready, _, _ = select.select([self._listener], [], [], seconds)
        if ready:
            self._drain_wakeups()

    def fetch(self, limit: int, wait_sec: float) -> list[QueuedMessage]:
        messages = self._fetch(limit)
        if not messages and wait_sec > 0:
            self._wait(wait_sec)
            messages = self._fetch(limit)
        return messages

    def _fetch(self, limit: int) -> list[QueuedMessage]:
        self._drain_wakeups()
        claimed = self._claimed
        try:
            rows = self._conn.execute(
                "SELECT msg_id, payload, enqueued_at FROM queue ORDER BY priority, msg_id LIMIT ?",
                (limit + len(claimed),),
            ).fetchall()
        except sqlite3.Error as exc:
            raise StoreError(f"sqlite: dequeue failed: {exc}") from exc
        make = QueuedMessage._make
        out = [make(row) for row in rows if row[0] not in claimed][:limit] if claimed else list(map(make, rows))
        claimed.update(message.handle for message in out)
        return out

    def claim_keys(self, keys: Sequence[tuple[str, str]]) -> set[tuple[str, str]]:
        return set()  # optimistic: commit() finds repeats while inserting the keys

    def _stored_before(self, rows: Sequence[Sequence[Any]]) -> set[tuple[str, str]]:
        stamp = rows[0][2]
        found = self._conn.execute(
            "SELECT tenant_id, event_id FROM dedupe WHERE seen_at <> ? AND (tenant_id, event_id) IN "
            "(SELECT value ->> 0, value ->> 1 FROM json_each(?))",
            (stamp, msgspec.json.encode([row[:2] for row in rows])),
        ).fetchall()
        return {(tenant, event) for tenant, event in found}

    def commit(
        self, messages: Sequence[QueuedMessage], batch: Batch, dead_letters: Sequence[DeadLetterRow]
    ) -> CommitOutcome:
        ids = [message.handle for message in messages]
        conn = self._conn
        try:
            begin_immediate(conn)
            try:
                conn.execute(DELETE_MESSAGES, (msgspec.json.encode(ids),))
                if batch.dedupe_rows:
                    before = conn.total_changes
                    conn.executemany(INSERT_DEDUPE, batch.dedupe_rows)
                    if conn.total_changes - before != len(batch.dedupe_rows):
                        repeats = self._stored_before(batch.dedupe_rows)
                        conn.execute("ROLLBACK")
                        raise DuplicateKeys(repeats)
                if batch.log_rows:
                    conn.executemany(INSERT_LOGS, batch.log_rows)
                if batch.status_rows:
                    conn.executemany(UPSERT_STATUS, batch.status_rows)
                    if self._store.status_hook is not None:
                        self._store.status_hook(conn)
                if dead_letters:
                    conn.executemany(
                        INSERT_DEAD,
                        [(d.code, d.reason, d.payload, d.enqueued_at, d.dead_at) for d in dead_letters],
                    )
                conn.execute("COMMIT")
            except sqlite3.Error:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise StoreError(f"sqlite: batch commit failed: {exc}") from exc
        self._claimed.difference_update(ids)
        self._checkpointer.committed(conn)
        return CommitOutcome(
            messages=len(ids),
            dead_letters=len(dead_letters),
            logs=len(batch.log_rows),
            statuses=len(batch.status_rows),
        )

    def rollback(self, messages: Sequence[QueuedMessage]) -> None:
        self._claimed.difference_update(message.handle for message in messages)

    def close(self) -> None:
        self._checkpointer.close()
        self._conn.close()
        if self._listener is not None:
            self._listener.close()
            self._listener = None


class Checkpointer:
    """Copies the consumer's WAL back into the database from its own thread and connection.

        With SQLite's automatic checkpoint, the commit that crosses 1000 pages copies them (and syncs the
        file) before it returns, in the consumer's thread. Here the consumer only tells this thread that it
        committed; when the WAL holds ``WAL_SOFT_BYTES`` or more, the thread runs a PASSIVE checkpoint on its
        own connection (the sqlite3 module releases the GIL meanwhile, so it overlaps the next batch). Once
        every frame is copied, the writer's next transaction restarts the WAL from its start, and
        ``journal_size_limit`` truncates the file back to ``WAL_KEPT_BYTES`` (below the soft size, so the file's
    size tells how much was written since).

        Bounded: should the WAL still pass ``WAL_HARD_BYTES`` (a reader holding an old snapshot, a checkpoint
        that cannot keep up), the consumer checkpoints on its own connection between batches, as SQLite would
        have, until it is back under. A crash at any point is SQLite's ordinary WAL recovery: frames are only
        ever copied, never removed, before the database file is synced."""

    def __init__(self, path: Path) -> None:
        self._wal = Path(f"{path}-wal")
        self._conn = _connect(path, synchronous="NORMAL")
        self._conn.execute("PRAGMA wal_autocheckpoint = 0")
        self._wake = threading.Event()
        self._closing = False
        self.checkpoints = 0
        self._thread = threading.Thread(target=self._run, name="sentinel-checkpoint", daemon=True)
        self._thread.start()

    def _wal_size(self) -> int:
        try:
            return self._wal.stat().st_size
        except FileNotFoundError:
            return 0

    def committed(self, conn: sqlite3.Connection) -> None:
        """After each commit, in the consumer's thread: a stat, and a checkpoint only past the hard limit."""
        size = self._wal_size()
        if size >= WAL_HARD_BYTES:
            try:
                conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            except sqlite3.Error:
                pass  # busy or failing: the next commit tries again; the data is safe in the WAL
        elif size >= WAL_SOFT_BYTES:
            self._wake.set()

    def _run(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            if self._closing:
                return
            try:
                self.checkpoint()
            except sqlite3.Error:
                # Busy or failing: the next commit wakes us again; past the hard limit the consumer
                # checkpoints itself.
                time.sleep(0.05)

    def checkpoint(self) -> None:
        """One PASSIVE checkpoint: copies what it can without waiting for readers or the writer."""
        self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        self.checkpoints += 1

    def close(self) -> None:
        self._closing = True
        self._wake.set()
        self._thread.join()
        self._conn.close()
