"""The store protocol: everything ingest and the API need from a backend, and nothing else.

Two adapters implement it: ``sqlite`` (embedded; the queue is a table in the same database) and
``oracle`` (AQ queue, array DML). Every read takes the caller's tenant and filters on it; no method
returns another tenant's rows. Times cross this boundary as integer microseconds since the epoch, UTC.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol, runtime_checkable

from sentinel._core import Batch
from sentinel.models import DeadLetter, LogEntry, ProcessStatus


class StoreError(RuntimeError):
    """The backend failed; the operation did not take effect."""


class DuplicateKeys(Exception):
    """Raised by ``Consumer.commit`` when some events of the batch were already stored.

    A consumer may answer ``seen`` optimistically (nothing seen) and find repeats only when it writes
    the dedupe keys; it then rolls the transaction back, writes nothing, and names the repeats here so
    the worker can rebuild the batch without them and commit again. Repeats are rare (a producer's
    retry, a redelivery), so the common batch pays for no lookup at all."""

    def __init__(self, keys: set[tuple[str, str]]) -> None:
        super().__init__(f"{len(keys)} event(s) already stored")
        self.keys = keys


class QueuedMessage(NamedTuple):
    """One raw queue message. ``handle`` identifies it to the consumer that fetched it. (A named
    tuple: thousands are made per second on the hot path.)"""

    handle: Any
    payload: bytes
    enqueued_at: int | None = None


@dataclass(frozen=True, slots=True)
class DeadLetterRow:
    code: str
    reason: str
    payload: bytes
    enqueued_at: int | None
    dead_at: int


@dataclass(frozen=True, slots=True)
class ProcessQuery:
    """Filters of ``GET /processes`` and the position of a paged walk.

    A walk reads in two parts, so a process whose ``last_seen_at`` moves while the walk goes on (which
    would carry it past the keyset position) is never skipped:

    1. ``snapshot`` set, ``changed_after`` None: the processes not changed since ``snapshot``
       (``updated_at <= snapshot``: their place in the order cannot have moved), newest
       ``last_seen_at`` first, after the keyset position ``after = (last_seen_at, process_id)``;
    2. ``changed_after`` set: the processes changed since ``snapshot`` (``updated_at > snapshot``), by
       ``process_id``, after ``changed_after`` ("" for the first).

    ``snapshot`` None: no bound (newest first over every process)."""

    statuses: tuple[str, ...] = ()
    process_type: str | None = None
    package_name: str | None = None
    updated_since: int | None = None
    # Case-insensitive substring of the process id or name (the dashboard's search box).
    search: str | None = None
    after: tuple[int, str] | None = None
    limit: int = 50
    snapshot: int | None = None
    changed_after: str | None = None


@dataclass(frozen=True, slots=True)
class LogQuery:
    """Filters of ``GET /logs/{id}``; ``after`` is the keyset position ``(timestamp, seq)``."""

    min_level: int = 0
    since: int | None = None
    after: tuple[int, int] | None = None
    limit: int = 100


@dataclass(frozen=True, slots=True)
class QueueStats:
    depth: int
    oldest_enqueued_at: int | None


@dataclass(slots=True)
class CommitOutcome:
    """What a committed batch did, for metrics and logs."""

    messages: int = 0
    dead_letters: int = 0
    logs: int = 0
    statuses: int = 0
    extra: dict[str, int] = field(default_factory=dict)


@runtime_checkable
class Consumer(Protocol):
    """The ingest writer's view of the queue.

    Messages fetched and not yet committed belong to this consumer: SQLite keeps them claimed in
    memory (they leave the table in ``commit``), Oracle AQ holds them in the open transaction that
    ``commit`` ends. Either way a batch's dequeue, log inserts, status merges, dedupe keys and dead
    letters commit together or not at all, and a crash in between loses and duplicates nothing.
    """

    def fetch(self, limit: int, wait_sec: float) -> list[QueuedMessage]:
        """Up to ``limit`` messages, by priority then arrival; waits up to ``wait_sec`` only when
        none are ready."""
        ...

    def claim_keys(self, keys: Sequence[tuple[str, str]]) -> set[tuple[str, str]]:
        """Claim the ``(tenant_id, event_id)`` keys for the open batch; returns those already ingested
        (and so duplicates). A store may claim them only at commit instead (optimistic), see
        ``DuplicateKeys``."""
        ...

    def commit(
        self, messages: Sequence[QueuedMessage], batch: Batch, dead_letters: Sequence[DeadLetterRow]
    ) -> CommitOutcome:
        """Remove the messages from the queue and store the batch in one transaction. Raises
        ``StoreError`` (rolled back) or ``DuplicateKeys`` (rolled back, rebuild and retry)."""
        ...

    def rollback(self, messages: Sequence[QueuedMessage]) -> None:
        """Give the messages back to the queue after a failed batch."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class Store(Protocol):
    backend: str

    def migrate(self) -> list[str]:
        """Create or upgrade the schema; returns the migrations applied now."""
        ...

    def ping(self) -> None:
        """Raise ``StoreError`` unless the database answers."""
        ...

    def close(self) -> None: ...

    def pool_stats(self) -> tuple[int, int]:
        """(busy, open) database connections of this process, for the ``sentinel_db_pool_connections`` gauge."""
        ...

    # producers
    def enqueue(self, payloads: Sequence[bytes], priorities: Sequence[int]) -> int:
        """Durably queue raw messages (committed on return)."""
        ...

    # the ingest consumer and its housekeeping
    def consumer(self) -> Consumer: ...

    def mark_stalled(self, idle_before: int, now: int) -> int:
        """RUNNING processes with no event stored since ``idle_before`` become STALLED (their
        ``updated_at`` becomes ``now``), unless an event for them may still wait in the queue: none is
        marked while the queue holds a message enqueued before ``idle_before`` (ingest lags more than
        the timeout), and none that has a message in the queue. So a restart or a backlog never makes
        a process STALLED whose newer event is waiting (SPEC section 3)."""
        ...

    def purge(self, logs_before: int, dedupe_before: int) -> tuple[int, int]:
        """Delete logs with a timestamp before ``logs_before`` and dedupe keys seen before ``dedupe_before``."""
        ...

    def queue_stats(self) -> QueueStats: ...

    def process_counts(self) -> dict[str, int]:
        """Processes by status across tenants (for metrics, never served to a tenant)."""
        ...

    # readers (tenant-scoped)
    def get_status(self, tenant_id: str, process_id: str) -> ProcessStatus | None: ...

    def list_processes(self, tenant_id: str, query: ProcessQuery) -> list[ProcessStatus]: ...

    def count_processes(self, tenant_id: str, query: ProcessQuery) -> dict[str, int]:
        """The tenant's processes by status under the query's filters other than ``statuses``, ``after``
        and ``limit`` (the dashboard's counts, each of which a click turns into the status filter)."""
        ...

    def stack_trace(self, tenant_id: str, process_id: str) -> str | None:
        """The stored stack trace of a failed process (not part of the status document)."""
        ...

    def process_snapshot(self, tenant_id: str) -> int:
        """The newest ``updated_at`` of the tenant's processes (0 if none): the bound a paged walk of
        ``list_processes`` begins with. Every later change gets a larger ``updated_at``."""
        ...

    def list_logs(self, tenant_id: str, process_id: str, query: LogQuery) -> list[LogEntry]: ...

    def logs_after(self, tenant_id: str, process_id: str, after_seq: int, limit: int) -> list[LogEntry]:
        """Logs stored after ``after_seq``, in storage order (the live tail of an SSE stream)."""
        ...

    def dead_letters(self, after_id: int, limit: int) -> list[DeadLetter]: ...

    def recent_dead_letters(
        self, limit: int, since_us: int | None = None, before_id: int | None = None
    ) -> tuple[int, list[DeadLetter]]:
        """Dead letters newest first: how many were refused at or after ``since_us`` (all when None), and
        the newest ``limit`` of those, with an id below ``before_id`` when given (the next page)."""
        ...

    def secret(self, name: str) -> bytes:
        """A random per-database secret (created on first use) shared by every replica."""
        ...
