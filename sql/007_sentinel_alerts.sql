-- Process Sentinel for Oracle 19c+, script 7 of 7: run-time baselines and alerts.
--
-- The same model as the embedded schema (sentinel/store/sqlite_migrations/0003_baselines_alerts.sql):
--   * a row trigger on sentinel_processes logs every status change (and a start that arrives after the
--     end) into sentinel_status_changes; the
--     ingest reads and deletes that log in the same transaction (baselines, alert outbox), so it is
--     empty between transactions;
--   * baselines keep the last SENTINEL_BASELINE_WINDOW durations of completed runs per key in
--     sentinel_baseline_samples and their median / 90th / 99th percentiles (PERCENTILE_CONT, the
--     same interpolation as the embedded store) in sentinel_baselines. Oracle stores '' as NULL, so
--     an absent part of the key is written as a single space;
--   * alert rules, their firing state and quiet periods, and the transactional outbox with its
--     delivery attempts. Times are NUMBER(19) microseconds UTC, as everywhere else.
--
-- `sentinel migrate --oracle` tolerates "already exists" errors, so it can re-run this file; under
-- SQL*Plus run it once.

SET DEFINE OFF
WHENEVER SQLERROR EXIT SQL.SQLCODE

-- Frozen when a run ends: the baseline median it was judged against, and whether it ran slow.
ALTER TABLE sentinel_processes ADD (
    expected_ms NUMBER(19),
    slow_run    NUMBER(1)
);

CREATE TABLE sentinel_status_changes (
    id         NUMBER(19)        GENERATED ALWAYS AS IDENTITY,
    tenant_id  VARCHAR2(50 CHAR)  NOT NULL,
    process_id VARCHAR2(100 CHAR) NOT NULL,
    old_status VARCHAR2(10 CHAR),
    new_status VARCHAR2(10 CHAR)  NOT NULL,
    CONSTRAINT sentinel_status_changes_pk PRIMARY KEY (id)
);

-- A run whose STARTED arrives after its end has its duration known only then: logged as 'LATE_START'.
CREATE OR REPLACE TRIGGER sentinel_processes_status_trg
AFTER INSERT OR UPDATE OF status, started_at ON sentinel_processes
FOR EACH ROW
WHEN (
    (old.status IS NULL AND new.status <> 'RUNNING')
    OR old.status <> new.status
    OR (old.started_at IS NULL AND new.started_at IS NOT NULL AND new.ended_at IS NOT NULL)
)
BEGIN
    INSERT INTO sentinel_status_changes (tenant_id, process_id, old_status, new_status)
    VALUES (
        :new.tenant_id,
        :new.process_id,
        CASE WHEN :old.status = :new.status THEN 'LATE_START' ELSE :old.status END,
        :new.status
    );
END sentinel_processes_status_trg;
/

CREATE TABLE sentinel_baselines (
    tenant_id        VARCHAR2(50 CHAR)  NOT NULL,
    process_type     VARCHAR2(200 CHAR) NOT NULL,
    process_name     VARCHAR2(200 CHAR) NOT NULL,
    package_name     VARCHAR2(200 CHAR) NOT NULL,
    procedure_name   VARCHAR2(200 CHAR) NOT NULL,
    runs             NUMBER(19)         NOT NULL,
    window_size      NUMBER(10)         NOT NULL,
    median_ms        NUMBER(19)         NOT NULL,
    p90_ms           NUMBER(19)         NOT NULL,
    p99_ms           NUMBER(19)         NOT NULL,
    last_duration_ms NUMBER(19)         NOT NULL,
    last_process_id  VARCHAR2(100 CHAR) NOT NULL,
    last_ended_at    NUMBER(19)         NOT NULL,
    updated_at       NUMBER(19)         NOT NULL,
    CONSTRAINT sentinel_baselines_pk
        PRIMARY KEY (tenant_id, process_type, process_name, package_name, procedure_name)
);

CREATE TABLE sentinel_baseline_samples (
    tenant_id      VARCHAR2(50 CHAR)  NOT NULL,
    process_type   VARCHAR2(200 CHAR) NOT NULL,
    process_name   VARCHAR2(200 CHAR) NOT NULL,
    package_name   VARCHAR2(200 CHAR) NOT NULL,
    procedure_name VARCHAR2(200 CHAR) NOT NULL,
    run_no         NUMBER(19)         NOT NULL,
    duration_ms    NUMBER(19)         NOT NULL,
    CONSTRAINT sentinel_baseline_samples_pk
        PRIMARY KEY (tenant_id, process_type, process_name, package_name, procedure_name, run_no)
);

CREATE TABLE sentinel_alert_rules (
    id         VARCHAR2(120 CHAR) NOT NULL,
    tenant_id  VARCHAR2(50 CHAR)  NOT NULL,
    source     VARCHAR2(10 CHAR)  NOT NULL,
    spec       CLOB               NOT NULL,
    secret     VARCHAR2(256 CHAR),
    created_at NUMBER(19)         NOT NULL,
    updated_at NUMBER(19)         NOT NULL,
    CONSTRAINT sentinel_alert_rules_pk PRIMARY KEY (id),
    CONSTRAINT sentinel_alert_rules_source_ck CHECK (source IN ('api', 'config'))
);
CREATE INDEX sentinel_alert_rules_by_tenant ON sentinel_alert_rules (tenant_id, id);

CREATE TABLE sentinel_alert_quiet (
    rule_id       VARCHAR2(120 CHAR) NOT NULL,
    quiet_key     VARCHAR2(500 CHAR) NOT NULL,
    last_fired_at NUMBER(19)         NOT NULL,
    CONSTRAINT sentinel_alert_quiet_pk PRIMARY KEY (rule_id, quiet_key)
);

CREATE TABLE sentinel_alert_state (
    rule_id      VARCHAR2(120 CHAR) NOT NULL,
    cond         VARCHAR2(20 CHAR)  NOT NULL,
    subject      VARCHAR2(300 CHAR) NOT NULL,
    tenant_id    VARCHAR2(50 CHAR)  NOT NULL,
    process_type VARCHAR2(200 CHAR),
    process_name VARCHAR2(200 CHAR),
    notification CLOB               NOT NULL,
    fired_at     NUMBER(19)         NOT NULL,
    last_sent_at NUMBER(19)         NOT NULL,
    CONSTRAINT sentinel_alert_state_pk PRIMARY KEY (rule_id, cond, subject)
);
CREATE INDEX sentinel_alert_state_by_name ON sentinel_alert_state (tenant_id, process_type, process_name);

CREATE TABLE sentinel_alert_outbox (
    id              NUMBER(19)         GENERATED ALWAYS AS IDENTITY,
    tenant_id       VARCHAR2(50 CHAR)  NOT NULL,
    rule_id         VARCHAR2(120 CHAR) NOT NULL,
    subject         VARCHAR2(300 CHAR) NOT NULL,
    idempotency_key VARCHAR2(500 CHAR) NOT NULL,
    kind            VARCHAR2(10 CHAR)  NOT NULL,
    cond            VARCHAR2(20 CHAR)  NOT NULL,
    payload         CLOB               NOT NULL,
    created_at      NUMBER(19)         NOT NULL,
    state           VARCHAR2(10 CHAR)  NOT NULL,
    attempts        NUMBER(10)         DEFAULT 0 NOT NULL,
    next_attempt_at NUMBER(19)         NOT NULL,
    last_error      VARCHAR2(2000 CHAR),
    finished_at     NUMBER(19),
    CONSTRAINT sentinel_alert_outbox_pk PRIMARY KEY (id),
    CONSTRAINT sentinel_alert_outbox_key_uk UNIQUE (idempotency_key),
    CONSTRAINT sentinel_alert_outbox_state_ck CHECK (state IN ('pending', 'delivered', 'failed', 'dropped'))
);
CREATE INDEX sentinel_alert_outbox_due ON sentinel_alert_outbox (state, next_attempt_at);
CREATE INDEX sentinel_alert_outbox_of_alert ON sentinel_alert_outbox (rule_id, cond, subject, state, id);
CREATE INDEX sentinel_alert_outbox_by_tenant ON sentinel_alert_outbox (tenant_id, id);

CREATE TABLE sentinel_alert_attempts (
    outbox_id    NUMBER(19) NOT NULL,
    attempt      NUMBER(10) NOT NULL,
    attempted_at NUMBER(19) NOT NULL,
    status_code  NUMBER(3),
    error        VARCHAR2(2000 CHAR),
    elapsed_ms   NUMBER(10) NOT NULL,
    CONSTRAINT sentinel_alert_attempts_pk PRIMARY KEY (outbox_id, attempt),
    CONSTRAINT sentinel_alert_attempts_outbox_fk FOREIGN KEY (outbox_id)
        REFERENCES sentinel_alert_outbox (id) ON DELETE CASCADE
);
