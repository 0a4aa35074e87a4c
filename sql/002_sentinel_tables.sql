-- Process Sentinel for Oracle 19c+, script 2 of 7: tables.
--
-- The same model as the embedded schema (sentinel/store/sqlite_migrations/0001_initial.sql):
--   * every time is NUMBER(19): integer microseconds since 1970-01-01 UTC, exactly what the ingest
--     core produces and the API serves, so no time zone conversion ever happens in between (the view
--     sentinel_processes_v at the end shows them as TIMESTAMP WITH TIME ZONE for people);
--   * JSON objects (metadata, result, details) are CLOB with an IS JSON check. That works on 19c and
--     is kept on 21c+ on purpose: Sentinel stores the producer's JSON text and serves it back byte for
--     byte, while the native JSON type (OSON) would re-serialize it. Nothing queries inside these
--     documents; if you want to, add a JSON search index, or on 21c+ a virtual column such as
--     JSON_VALUE(metadata, '$.batch').
--   * Free text that may exceed 4000 bytes (log messages, error messages: up to 4000 characters) is
--     CLOB too, so a multi-byte message is never refused by a VARCHAR2(4000 BYTE) limit.
--   * Oracle stores '' as NULL: an empty string sent by a producer comes back as null.
--
-- `sentinel migrate --oracle` tolerates "already exists" errors, so it can re-run this file; under
-- SQL*Plus run it once.

SET DEFINE OFF
WHENEVER SQLERROR EXIT SQL.SQLCODE

-- Live status of each process, keyed by (tenant_id, process_id) (SPEC section 3).
CREATE TABLE sentinel_processes (
    tenant_id        VARCHAR2(50 CHAR)  NOT NULL,
    process_id       VARCHAR2(100 CHAR) NOT NULL,
    status           VARCHAR2(10 CHAR)  NOT NULL,
    started_at       NUMBER(19),
    process_name     VARCHAR2(200 CHAR),
    process_type     VARCHAR2(200 CHAR),
    package_name     VARCHAR2(200 CHAR),
    procedure_name   VARCHAR2(200 CHAR),
    correlation_id   VARCHAR2(200 CHAR),
    step_at          NUMBER(19),
    current_step     VARCHAR2(200 CHAR),
    percent_at       NUMBER(19),
    progress_percent BINARY_DOUBLE,
    metadata_at      NUMBER(19),
    metadata         CLOB,
    last_seen_at     NUMBER(19)         NOT NULL,
    terminal_rank    NUMBER(1)          DEFAULT 0 NOT NULL,
    ended_at         NUMBER(19),
    error_code       VARCHAR2(200 CHAR),
    error_message    CLOB,
    stack_trace      CLOB,
    result           CLOB,
    event_count      NUMBER(19)         DEFAULT 0 NOT NULL,
    log_count        NUMBER(19)         DEFAULT 0 NOT NULL,
    updated_at       NUMBER(19)         NOT NULL,
    CONSTRAINT sentinel_processes_pk PRIMARY KEY (tenant_id, process_id),
    CONSTRAINT sentinel_processes_status_ck
        CHECK (status IN ('RUNNING', 'STALLED', 'COMPLETED', 'FAILED', 'CANCELLED'))
);

-- sqlfluff's Oracle grammar has no IS JSON predicate, hence the exemption (and the separate ALTER,
-- so the CREATE TABLE above is still checked).
ALTER TABLE sentinel_processes ADD ( -- noqa: PRS
    CONSTRAINT sentinel_processes_metadata_json CHECK (metadata IS JSON),
    CONSTRAINT sentinel_processes_result_json CHECK (result IS JSON)
);

-- GET /processes: newest activity first within a tenant.
CREATE INDEX sentinel_processes_recent ON sentinel_processes (tenant_id, last_seen_at DESC, process_id);

-- The RUNNING -> STALLED sweep.
CREATE INDEX sentinel_processes_idle ON sentinel_processes (status, updated_at);

-- Log lines. seq is the identity key (storage order, the cursor of a live tail).
--
-- With the Partitioning option (Enterprise Edition), rows are partitioned by day of their event
-- timestamp (ts, microseconds: 86,400,000,000 per day), so retention drops whole partitions instead of
-- deleting rows. Every index is LOCAL, so dropping a partition never leaves an index to rebuild. The
-- first partition holds times before 1970 only and stays; the interval partitions from 1970-01-01 on
-- are created on demand and dropped by retention. Oracle allows 1,048,575 partitions per table, which
-- ends on 4840-11-24: Sentinel dead-letters log lines from then on (bad_timestamp).
--
-- Without it (Standard Edition 2 refuses PARTITION BY with ORA-00439) the same table and indexes are
-- created unpartitioned and retention deletes rows in chunks; Sentinel notices by itself (ORA-14501 on
-- its first DROP PARTITION). The block runs unchanged under SQL*Plus and `sentinel migrate --oracle`,
-- and creates only what is missing, so it can be re-run.
DECLARE
    e_no_partitioning EXCEPTION;
    PRAGMA EXCEPTION_INIT(e_no_partitioning, -439);
    c_table CONSTANT VARCHAR2(4000) := q'[CREATE TABLE sentinel_logs (
    seq            NUMBER(19) GENERATED ALWAYS AS IDENTITY (CACHE 1000),
    tenant_id      VARCHAR2(50 CHAR)  NOT NULL,
    process_id     VARCHAR2(100 CHAR) NOT NULL,
    event_id       VARCHAR2(64 CHAR)  NOT NULL,
    ts             NUMBER(19)         NOT NULL,
    log_level      NUMBER(1)          NOT NULL,
    message        CLOB,
    details        CLOB,
    component      VARCHAR2(200 CHAR),
    correlation_id VARCHAR2(200 CHAR),
    trace_id       VARCHAR2(32 CHAR),
    span_id        VARCHAR2(16 CHAR),
    duration_us    NUMBER(19),
    ingested_at    NUMBER(19)         NOT NULL,
    CONSTRAINT sentinel_logs_level_ck CHECK (log_level BETWEEN 0 AND 5),
    CONSTRAINT sentinel_logs_details_json CHECK (details IS JSON),
    CONSTRAINT sentinel_logs_pk PRIMARY KEY (ts, seq)]';
    c_partitions CONSTANT VARCHAR2(200) := q'[ USING INDEX LOCAL)
PARTITION BY RANGE (ts) INTERVAL (86400000000)
(PARTITION sentinel_logs_before_1970 VALUES LESS THAN (0))]';
    l_count PLS_INTEGER;
    l_local VARCHAR2(6) := ' LOCAL';

    PROCEDURE index_once(p_name IN VARCHAR2, p_columns IN VARCHAR2) IS
    BEGIN
        SELECT COUNT(*) INTO l_count FROM user_indexes WHERE index_name = UPPER(p_name);
        IF l_count = 0 THEN
            EXECUTE IMMEDIATE 'CREATE INDEX ' || p_name || ' ON sentinel_logs (' || p_columns || ')' || l_local;
        END IF;
    END index_once;
BEGIN
    SELECT COUNT(*) INTO l_count FROM user_tables WHERE table_name = 'SENTINEL_LOGS';
    IF l_count = 0 THEN
        BEGIN
            EXECUTE IMMEDIATE c_table || c_partitions;
        EXCEPTION
            WHEN e_no_partitioning THEN
                EXECUTE IMMEDIATE c_table || ')';
        END;
    END IF;
    SELECT COUNT(*) INTO l_count FROM user_part_tables WHERE table_name = 'SENTINEL_LOGS';
    IF l_count = 0 THEN
        l_local := NULL;
    END IF;
    -- GET /logs/{id} and the live tail: one process's lines in time order.
    index_once('sentinel_logs_by_process', 'tenant_id, process_id, ts, seq');
    -- Per-tenant reads across processes (recent logs of a tenant).
    index_once('sentinel_logs_by_tenant', 'tenant_id, ts');
END;
/

-- Event ids already ingested, per tenant: a repeated id is a duplicate and changes nothing. The
-- consumer claims ids by inserting them (a unique-key violation means "seen"), which stays correct
-- with any number of replicas. Rows older than the retention window are purged (seen_at).
CREATE TABLE sentinel_dedupe (
    tenant_id VARCHAR2(50 CHAR) NOT NULL,
    event_id  VARCHAR2(64 CHAR) NOT NULL,
    seen_at   NUMBER(19)        NOT NULL,
    CONSTRAINT sentinel_dedupe_pk PRIMARY KEY (tenant_id, event_id)
);

CREATE INDEX sentinel_dedupe_by_age ON sentinel_dedupe (seen_at);

-- Messages that broke a rule (SPEC section 2) or that the database refused: never silently dropped.
-- payload is nullable because Oracle stores an empty BLOB value as NULL (an empty message).
CREATE TABLE sentinel_dead_letters (
    id          NUMBER(19) GENERATED ALWAYS AS IDENTITY,
    code        VARCHAR2(40 CHAR) NOT NULL,
    reason      VARCHAR2(4000)    NOT NULL,
    payload     BLOB,
    enqueued_at NUMBER(19),
    dead_at     NUMBER(19)        NOT NULL,
    CONSTRAINT sentinel_dead_letters_pk PRIMARY KEY (id)
);

-- Random per-database secrets shared by every replica (e.g. the cursor signing key).
CREATE TABLE sentinel_meta (
    name         VARCHAR2(100 CHAR) NOT NULL,
    secret_value RAW(64)            NOT NULL,
    CONSTRAINT sentinel_meta_pk PRIMARY KEY (name)
);

-- The ingest consumer's staging area for one batch of status rows (columns in the order of
-- sentinel._core.STATUS_COLUMNS): the rows go in with one array insert, then one MERGE applies
-- them to sentinel_processes. Private to the session, emptied by its commit or rollback.
CREATE GLOBAL TEMPORARY TABLE sentinel_status_stage (
    tenant_id        VARCHAR2(50 CHAR)  NOT NULL,
    process_id       VARCHAR2(100 CHAR) NOT NULL,
    started_at       NUMBER(19),
    process_name     VARCHAR2(200 CHAR),
    process_type     VARCHAR2(200 CHAR),
    package_name     VARCHAR2(200 CHAR),
    procedure_name   VARCHAR2(200 CHAR),
    correlation_id   VARCHAR2(200 CHAR),
    step_at          NUMBER(19),
    current_step     VARCHAR2(200 CHAR),
    percent_at       NUMBER(19),
    progress_percent BINARY_DOUBLE,
    metadata_at      NUMBER(19),
    metadata         CLOB,
    last_seen_at     NUMBER(19)         NOT NULL,
    terminal_status  VARCHAR2(10 CHAR),
    terminal_rank    NUMBER(1)          NOT NULL,
    ended_at         NUMBER(19),
    error_code       VARCHAR2(200 CHAR),
    error_message    CLOB,
    stack_trace      CLOB,
    result           CLOB,
    event_count      NUMBER(19)         NOT NULL,
    log_count        NUMBER(19)         NOT NULL,
    updated_at       NUMBER(19)         NOT NULL
) ON COMMIT DELETE ROWS;

-- The same JSON checks as the target, so a bad row fails in the array insert (one row, dead-lettered)
-- rather than in the MERGE (the whole batch).
ALTER TABLE sentinel_status_stage ADD ( -- noqa: PRS
    CONSTRAINT sentinel_status_stage_metadata_json CHECK (metadata IS JSON),
    CONSTRAINT sentinel_status_stage_result_json CHECK (result IS JSON)
);

-- For people: the status table with readable times. started_at as the API serves it: never after
-- ended_at (see sentinel.store.rows.effective_start).
CREATE OR REPLACE VIEW sentinel_processes_v AS
SELECT
    p.tenant_id,
    p.process_id,
    p.status,
    p.process_name,
    p.process_type,
    p.package_name,
    p.procedure_name,
    p.correlation_id,
    p.current_step,
    p.progress_percent,
    FROM_TZ(TIMESTAMP '1970-01-01 00:00:00', 'UTC')
    + NUMTODSINTERVAL(LEAST(p.started_at, NVL(p.ended_at, p.started_at)) / 1000000, 'SECOND') AS started_at,
    FROM_TZ(TIMESTAMP '1970-01-01 00:00:00', 'UTC') + NUMTODSINTERVAL(p.last_seen_at / 1000000, 'SECOND')
        AS last_seen_at,
    FROM_TZ(TIMESTAMP '1970-01-01 00:00:00', 'UTC') + NUMTODSINTERVAL(p.ended_at / 1000000, 'SECOND')
        AS ended_at,
    p.error_code,
    p.event_count,
    p.log_count
FROM sentinel_processes p;
