"""The Oracle store: AQ queue, array DML, optional VPD (``sql/`` holds the schema).

Split as python-oracledb splits its thin layer, one concern a module:

- ``errors``: the driver floor, the ORA- codes acted on, and reading ``oracledb.Error``;
- ``pool``: connection parameters, the pool, the consumer's dedicated connection, the tenant context;
- ``migrations``: the ``sql/`` scripts, the dry-run plan and ``migrate``;
- ``store``: ``OracleStore`` (producers, readers, housekeeping);
- ``consumer``: ``OracleConsumer``, one batch's dequeue, dedupe claims and writes in one transaction;
- ``sql``: the SQL texts.

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

from sentinel.store.oracle.consumer import RETRY_ATTEMPTS, OracleConsumer
from sentinel.store.oracle.errors import DRIVER_FLOOR, DriverTooOld, check_driver, driver_release
from sentinel.store.oracle.migrations import load_scripts, plan_migration, render_plan
from sentinel.store.oracle.pool import connect_params, init_session, pool_params
from sentinel.store.oracle.store import GET_STATUS_WITH_BASELINES, OracleStore

__all__ = [
    "DRIVER_FLOOR",
    "GET_STATUS_WITH_BASELINES",
    "RETRY_ATTEMPTS",
    "DriverTooOld",
    "OracleConsumer",
    "OracleStore",
    "check_driver",
    "connect_params",
    "driver_release",
    "init_session",
    "load_scripts",
    "plan_migration",
    "pool_params",
    "render_plan",
]
