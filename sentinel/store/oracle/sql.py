"""SQL text of the Oracle adapter (the ``sentinel.store.oracle`` package), kept apart so it reads as SQL.

Bind variables only: every value travels as a bind (``:1`` .. for the core's positional row lists,
``:name`` elsewhere); the only formatted parts are column lists and the day number of a log partition
to drop (DDL takes no binds; the number is computed here, not received).
Tables and columns are those of ``sql/002_sentinel_tables.sql``; times are NUMBER(19) microseconds UTC.
"""

from __future__ import annotations

from typing import Final

from sentinel._core import LOG_COLUMNS, STATUS_COLUMNS
from sentinel.store import status_rules
from sentinel.store.rows import DEAD_LETTER_COLUMNS, LOG_ENTRY_COLUMNS, PROCESS_COLUMNS

DAY_US: Final = 86_400_000_000  # the interval of the sentinel_logs partitions
# Oracle caps a table at 1,048,575 partitions (ORA-14300 past it), and an interval partition's number
# follows from its distance to the transition point (ts = 0): the one range partition below it plus
# day d's partition (d + 1) must stay within the cap. So a log row's ts must be below this, which is
# 4840-11-24T00:00:00Z; later ones are dead-lettered (the core accepts times up to 9999-12-31).
MAX_PARTITIONS: Final = 1_048_575
LOG_TS_LIMIT_US: Final = (MAX_PARTITIONS - 1) * DAY_US


def _column(name: str) -> str:
    """LEVEL is reserved in Oracle: the column is ``log_level``."""
    return "log_level" if name == "level" else name


def _binds(count: int) -> str:
    return ", ".join(f":{i}" for i in range(1, count + 1))


# -- ingest -------------------------------------------------------------------------------------
# Binds follow sentinel._core.LOG_COLUMNS / STATUS_COLUMNS / DEDUPE_COLUMNS: the core's rows go in
# as they are.
INSERT_LOGS: Final = (
    f"INSERT INTO sentinel_logs ({', '.join(map(_column, LOG_COLUMNS))}) VALUES ({_binds(len(LOG_COLUMNS))})"
)
INSERT_STATUS_STAGE: Final = (
    f"INSERT INTO sentinel_status_stage ({', '.join(STATUS_COLUMNS)}) VALUES ({_binds(len(STATUS_COLUMNS))})"
)
INSERT_DEDUPE: Final = "INSERT INTO sentinel_dedupe (tenant_id, event_id, seen_at) VALUES (:1, :2, :3)"
INSERT_DEAD_LETTER: Final = (
    "INSERT INTO sentinel_dead_letters (code, reason, payload, enqueued_at, dead_at) VALUES (:1, :2, :3, :4, :5)"
)

# SPEC section 3 as a MERGE, rendered from sentinel.store.status_rules (the same table as SQLite's
# upsert): s = the batch's folded row, staged under STATUS_COLUMNS' names; t = the stored one.
_MERGE_DIALECT: Final = status_rules.Dialect(
    inserted=lambda column: f"s.{column}",
    incoming=lambda column: f"s.{column}",
    stored=lambda column: f"t.{status_rules.stored_name(column)}",
    greatest="GREATEST",
)
MERGE_STATUS: Final = f"""
MERGE INTO sentinel_processes t
USING sentinel_status_stage s
ON ({" AND ".join(f"t.{key} = s.{key}" for key in status_rules.KEY_COLUMNS)})
WHEN MATCHED THEN UPDATE SET
    {status_rules.update_set(_MERGE_DIALECT)}
WHEN NOT MATCHED THEN INSERT ({", ".join(status_rules.INSERT_COLUMNS)})
VALUES ({status_rules.insert_values(_MERGE_DIALECT)})
"""

# -- readers (tenant bound on every query) -------------------------------------------------------
SELECT_PROCESS: Final = f"SELECT {', '.join(PROCESS_COLUMNS)} FROM sentinel_processes"
SELECT_LOG: Final = f"SELECT {', '.join(map(_column, LOG_ENTRY_COLUMNS))} FROM sentinel_logs"
GET_STATUS: Final = f"{SELECT_PROCESS} WHERE tenant_id = :tenant_id AND process_id = :process_id"
# The bound a paged walk of GET /processes begins with (see sentinel.store.base.ProcessQuery).
PROCESS_SNAPSHOT: Final = "SELECT MAX(updated_at) FROM sentinel_processes WHERE tenant_id = :tenant_id"
LOGS_AFTER: Final = (
    f"{SELECT_LOG} WHERE tenant_id = :tenant_id AND process_id = :process_id AND seq > :after_seq"
    " ORDER BY seq FETCH FIRST :limit ROWS ONLY"
)
DEAD_LETTERS: Final = (
    f"SELECT {', '.join(DEAD_LETTER_COLUMNS)} FROM sentinel_dead_letters WHERE id > :after_id"
    " ORDER BY id FETCH FIRST :limit ROWS ONLY"
)
RECENT_DEAD_LETTERS: Final = (
    f"SELECT {', '.join(DEAD_LETTER_COLUMNS)} FROM sentinel_dead_letters WHERE dead_at >= :since"
    " AND id < :before_id ORDER BY id DESC FETCH FIRST :limit ROWS ONLY"
)
COUNT_DEAD_LETTERS: Final = "SELECT COUNT(*) FROM sentinel_dead_letters WHERE dead_at >= :since"
STACK_TRACE: Final = (
    "SELECT stack_trace FROM sentinel_processes WHERE tenant_id = :tenant_id AND process_id = :process_id"
)

# -- housekeeping ----------------------------------------------------------------------------------
# The same rule as sentinel.store.sqlite.MARK_STALLED, against the AQ queue table's view ({view},
# formatted like QUEUE_STATS): no sweep while a READY/WAITING message is older than the cutoff, and no
# process with a message of its own waiting (its RAW payload read as JSON; JSON_VALUE's defaults,
# VARCHAR2(4000) and NULL ON ERROR, make an unreadable payload match no process).
# A message this consumer dequeued but has not committed is still READY to this session's snapshot.
MARK_STALLED: Final = """
UPDATE sentinel_processes p SET p.status = 'STALLED', p.updated_at = :now
WHERE p.status = 'RUNNING' AND p.updated_at < :idle_before
    AND NOT EXISTS (
        SELECT 1 FROM {view} q
        WHERE q.queue = :queue AND q.msg_state IN ('READY', 'WAITING') AND q.enq_timestamp < :idle_before_ts
    )
    AND NOT EXISTS (
        SELECT 1 FROM {view} q
        WHERE q.queue = :queue AND q.msg_state IN ('READY', 'WAITING')
            AND JSON_VALUE(TO_BLOB(q.user_data) FORMAT JSON, '$.tenant_id') = p.tenant_id
            AND JSON_VALUE(TO_BLOB(q.user_data) FORMAT JSON, '$.process_id') = p.process_id
    )"""
PROCESS_COUNTS: Final = "SELECT status, COUNT(*) FROM sentinel_processes GROUP BY status"
OLDEST_LOG: Final = "SELECT MIN(ts) FROM sentinel_logs"
COUNT_LOGS_BETWEEN: Final = "SELECT COUNT(*) FROM sentinel_logs WHERE ts >= :low AND ts < :high"
DROP_LOG_PARTITION: Final = "ALTER TABLE sentinel_logs DROP PARTITION FOR ({day_start:d}) UPDATE INDEXES"
PURGE_LOGS: Final = "DELETE FROM sentinel_logs WHERE ts < :before AND ROWNUM <= :chunk"
PURGE_DEDUPE: Final = "DELETE FROM sentinel_dedupe WHERE seen_at < :before AND ROWNUM <= :chunk"
GET_SECRET: Final = "SELECT secret_value FROM sentinel_meta WHERE name = :name"  # noqa: S105
PUT_SECRET: Final = "INSERT INTO sentinel_meta (name, secret_value) VALUES (:name, :secret_value)"  # noqa: S105

# The queue: its table (for the AQ$ view) and its backlog. The view name comes from the dictionary.
# An unqualified queue name is in the current schema, as AQ itself resolves it.
FIND_QUEUE: Final = (
    "SELECT owner, queue_table FROM all_queues"
    " WHERE name = :name AND owner = NVL(:owner, SYS_CONTEXT('USERENV', 'CURRENT_SCHEMA'))"
)
# The backlog: messages ready now and those delayed (every rolled-back message spends retry_delay in
# WAIT, which is how the AQ$ view spells that state), not the processed or expired ones.
QUEUE_STATS: Final = (
    "SELECT COUNT(*), MIN(enq_timestamp) FROM {view} WHERE queue = :queue AND msg_state IN ('READY', 'WAIT')"
)
# -- sessions ---------------------------------------------------------------------------------------
# Every session works in UTC, so the few TIMESTAMP values read (AQ enqueue times) are UTC.
SESSION_UTC: Final = "ALTER SESSION SET TIME_ZONE = 'UTC'"
VPD_INSTALLED: Final = (
    "SELECT COUNT(*) FROM all_policies WHERE policy_name = 'SENTINEL_TENANT_POLICY'"
    " AND object_name = 'SENTINEL_PROCESSES'"
)
SET_TENANT: Final = "sentinel_ctx_pkg.set_tenant"
# The PL/SQL names are installed in the database (sql/005_sentinel_vpd.sql) and stay as they are.
SET_SERVICE_CONTEXT: Final = "sentinel_ctx_pkg.set_service_scope"
CLEAR_CONTEXT: Final = "sentinel_ctx_pkg.clear_context"

# -- migrations ----------------------------------------------------------------------------------
CREATE_MIGRATIONS: Final = """
CREATE TABLE sentinel_schema_migrations (
    filename   VARCHAR2(200 CHAR) NOT NULL,
    checksum   VARCHAR2(64 CHAR)  NOT NULL,
    applied_at TIMESTAMP WITH TIME ZONE DEFAULT SYSTIMESTAMP NOT NULL,
    CONSTRAINT sentinel_schema_migrations_pk PRIMARY KEY (filename)
)"""
APPLIED_MIGRATIONS: Final = "SELECT filename, checksum FROM sentinel_schema_migrations"
RECORD_MIGRATION: Final = """
MERGE INTO sentinel_schema_migrations m
USING (SELECT :filename AS filename, :checksum AS checksum FROM dual) s
ON (m.filename = s.filename)
WHEN MATCHED THEN UPDATE SET m.checksum = s.checksum, m.applied_at = SYSTIMESTAMP
WHEN NOT MATCHED THEN INSERT (filename, checksum) VALUES (s.filename, s.checksum)"""
COMPILE_ERRORS: Final = (
    "SELECT name, type, line, position, text FROM user_errors"
    " WHERE attribute = 'ERROR' AND name LIKE 'SENTINEL%' ORDER BY name, type, sequence"
)
