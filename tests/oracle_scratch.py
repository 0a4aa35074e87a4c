"""Test-only Oracle code that destroys data: a scratch schema for the store contract tests.

Kept out of ``sentinel.store.oracle`` so the shipped adapter has no way to empty a database.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import replace
from typing import Final

from sentinel.config import load_settings
from sentinel.store.oracle import OracleStore

TABLES: Final = (
    "sentinel_processes",
    "sentinel_logs",
    "sentinel_dedupe",
    "sentinel_dead_letters",
    "sentinel_meta",
)
# Empty the queue table (queue and exception queue) and let a rolled-back message come
# back at once (retry_delay 0; the scripts' 5 s keeps a failing batch from spinning in production).
PURGE_QUEUE_TABLE: Final = """
DECLARE
    l_options DBMS_AQADM.AQ$_PURGE_OPTIONS_T;
BEGIN
    DBMS_AQADM.PURGE_QUEUE_TABLE(
        queue_table => :queue_table, purge_condition => NULL, purge_options => l_options
    );
END;"""
NO_RETRY_DELAY: Final = """
BEGIN
    DBMS_AQADM.ALTER_QUEUE(queue_name => :queue_name, retry_delay => 0);
END;"""


def reset(store: OracleStore) -> None:
    """Destroys all data: empty every Sentinel table and the queue, and make a rolled-back message
    come back at once (retry_delay 0) as the store contract tests expect."""
    with store.connections.connection(tenant_context=False) as conn, conn.cursor() as cursor:
        for table in TABLES:
            cursor.execute(f"TRUNCATE TABLE {table}")
        cursor.execute(PURGE_QUEUE_TABLE, {"queue_table": store.queue_table(cursor)})
        cursor.execute(NO_RETRY_DELAY, {"queue_name": store.queue_name})
        conn.commit()


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
    reset(store)
    return store
