"""Storage: one protocol (``base``), an embedded SQLite adapter and an Oracle adapter."""

from __future__ import annotations

from sentinel.config import Settings
from sentinel.store.base import (
    CommitOutcome,
    Consumer,
    DeadLetterRow,
    LogQuery,
    ProcessQuery,
    QueuedMessage,
    QueueStats,
    Store,
    StoreError,
)


def open_store(settings: Settings) -> Store:
    """The configured backend's store. Oracle is imported only when asked for."""
    if settings.backend == "oracle":
        from sentinel.store.oracle import OracleStore

        return OracleStore.from_settings(settings)
    from sentinel.store.sqlite import SqliteStore

    return SqliteStore(settings.sqlite_path)


__all__ = [
    "CommitOutcome",
    "Consumer",
    "DeadLetterRow",
    "LogQuery",
    "ProcessQuery",
    "QueueStats",
    "QueuedMessage",
    "Store",
    "StoreError",
    "open_store",
]
