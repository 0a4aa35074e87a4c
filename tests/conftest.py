"""Fixtures shared by the store, ingest and CLI tests.

``store`` runs a test against every adapter: the embedded SQLite store always, Oracle only when
``SENTINEL_TEST_ORACLE_DSN`` names a test database (``oracle_scratch.open_test_store`` must return
a migrated store with an empty queue and empty tables). ``ingest`` drives events through the real
pipeline: enqueue -> ``IngestWorker`` (compiled core or its twin) -> store.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from helpers import enqueue, make_settings, run_worker_until_idle

from sentinel.config import Settings
from sentinel.ingest.worker import IngestWorker
from sentinel.store.sqlite import SqliteStore

ORACLE_DSN_VAR = "SENTINEL_TEST_ORACLE_DSN"

Ingest = Callable[..., IngestWorker]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


@pytest.fixture
def sqlite_store(settings: Settings) -> Iterator[SqliteStore]:
    store = SqliteStore(settings.sqlite_path)
    store.migrate()
    try:
        yield store
    finally:
        store.close()


@pytest.fixture(params=["sqlite", "oracle"])
def store(request: pytest.FixtureRequest, settings: Settings) -> Iterator[Any]:
    if request.param == "sqlite":
        sqlite = SqliteStore(settings.sqlite_path)
        sqlite.migrate()
        try:
            yield sqlite
        finally:
            sqlite.close()
        return
    dsn = os.environ.get(ORACLE_DSN_VAR)
    if not dsn:
        pytest.skip(f"{ORACLE_DSN_VAR} is not set")
    from oracle_scratch import open_test_store

    oracle = open_test_store(dsn)
    try:
        yield oracle
    finally:
        oracle.close()


@pytest.fixture
def ingest(store: Any, settings: Settings) -> Ingest:
    """``ingest(items, priorities=None)``: queue the items (event dicts or raw bytes; priorities as a
    producer gives them unless told) and run a real worker until the queue is empty."""

    def feed(items: Iterable[Mapping[str, Any] | bytes], priorities: Iterable[int] | None = None) -> IngestWorker:
        enqueue(store, items, priorities)
        return run_worker_until_idle(store, settings)

    return feed
