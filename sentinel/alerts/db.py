"""One small interface over both stores for baselines and alerts: named binds (``:name``, which sqlite3
and python-oracledb both take), a dialect for the few statements that differ, and transactions.

The ingest's status hook is handed the connection of the transaction it runs in; the sender and the API
open their own through :class:`Database`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any, Protocol

from sentinel.store.base import Store, StoreError

Params = Mapping[str, Any]


class Db(Protocol):
    """A connection inside a transaction (or, for reads, outside one)."""

    def all(self, sql: str, params: Params | None = None) -> list[Sequence[Any]]: ...

    def run(self, sql: str, params: Params | None = None) -> int:
        """Execute; returns the row count."""
        ...


class SqliteDb:
    def __init__(self, conn: Any) -> None:
        self.conn = conn

    def all(self, sql: str, params: Params | None = None) -> list[Sequence[Any]]:
        rows: list[Sequence[Any]] = self.conn.execute(sql, params or {}).fetchall()
        return rows

    def run(self, sql: str, params: Params | None = None) -> int:
        return int(self.conn.execute(sql, params or {}).rowcount)


class OracleDb:
    def __init__(self, conn: Any) -> None:
        self.conn = conn

    def all(self, sql: str, params: Params | None = None) -> list[Sequence[Any]]:
        with self.conn.cursor() as cursor:
            cursor.execute(sql, dict(params or {}), fetch_lobs=False)  # CLOBs (rules, payloads) as str
            rows: list[Sequence[Any]] = cursor.fetchall()
            return rows

    def run(self, sql: str, params: Params | None = None) -> int:
        with self.conn.cursor() as cursor:
            cursor.execute(sql, dict(params or {}))
            return int(cursor.rowcount)


class Database:
    """Reads and write transactions on the configured store, with its dialect."""

    def __init__(self, store: Store) -> None:
        from sentinel.alerts import dialects

        self.store = store
        self.dialect = dialects.for_backend(store.backend)

    def write(self) -> AbstractContextManager[Db]:
        return self._oracle(commit=True) if self.store.backend == "oracle" else self._sqlite(write=True)

    def read(self) -> AbstractContextManager[Db]:
        return self._oracle(commit=False) if self.store.backend == "oracle" else self._sqlite(write=False)

    @contextmanager
    def _sqlite(self, *, write: bool) -> Iterator[Db]:
        import sqlite3

        from sentinel.store.sqlite import SqliteStore

        store = self.store
        assert isinstance(store, SqliteStore)
        try:
            if write:
                with store.transaction() as conn:
                    yield SqliteDb(conn)
            else:
                yield SqliteDb(store._conn())  # the per-thread reader connection
        except sqlite3.Error as exc:
            raise StoreError(f"sqlite: {exc}") from exc

    @contextmanager
    def _oracle(self, *, commit: bool) -> Iterator[Db]:
        from sentinel.store.oracle import OracleStore

        store = self.store
        assert isinstance(store, OracleStore)
        # Service scope: rules, outbox and baselines carry their tenant in every statement.
        with store.connection(None) as conn:
            try:
                yield OracleDb(conn)
                if commit:
                    conn.commit()
            except BaseException:
                conn.rollback()  # driver errors become StoreError in store.connection
                raise
