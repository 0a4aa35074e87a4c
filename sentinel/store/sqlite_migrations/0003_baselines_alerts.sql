-- Process Sentinel, embedded schema v3: run-time baselines and alerts (transactional outbox).
-- Times are integer microseconds since the epoch, UTC. Trigger bodies stay on one line: migrations
-- are split on ';' at line ends.

-- Frozen when a run ends: the baseline median it was judged against, and whether it ran slow.
ALTER TABLE processes ADD COLUMN expected_ms INTEGER;
ALTER TABLE processes ADD COLUMN slow_run INTEGER;

-- Every status change, written by the triggers below in the transaction that made it, and consumed
-- (baselines, alerts) before that transaction commits; normally empty between transactions.
CREATE TABLE status_changes (
    id         INTEGER PRIMARY KEY,
    tenant_id  TEXT NOT NULL,
    process_id TEXT NOT NULL,
    old_status TEXT,
    new_status TEXT NOT NULL
);
CREATE TRIGGER processes_status_insert AFTER INSERT ON processes WHEN NEW.status <> 'RUNNING' BEGIN INSERT INTO status_changes (tenant_id, process_id, old_status, new_status) VALUES (NEW.tenant_id, NEW.process_id, NULL, NEW.status); END;
CREATE TRIGGER processes_status_update AFTER UPDATE OF status ON processes WHEN OLD.status IS NOT NEW.status BEGIN INSERT INTO status_changes (tenant_id, process_id, old_status, new_status) VALUES (NEW.tenant_id, NEW.process_id, OLD.status, NEW.status); END;
-- A run whose STARTED arrives after its end (queue priorities, producers' retries): its duration is known
-- only now, so it is judged (and joins its baseline) now; logged with old_status 'LATE_START'.
CREATE TRIGGER processes_started_late AFTER UPDATE OF started_at ON processes WHEN OLD.started_at IS NULL AND NEW.started_at IS NOT NULL AND NEW.ended_at IS NOT NULL AND OLD.status IS NEW.status BEGIN INSERT INTO status_changes (tenant_id, process_id, old_status, new_status) VALUES (NEW.tenant_id, NEW.process_id, 'LATE_START', NEW.status); END;

-- Durations of completed runs per (tenant, type, name, package, procedure); '' stands for absent.
-- samples: JSON array of the last SENTINEL_BASELINE_WINDOW durations (ms), oldest first.
CREATE TABLE baselines (
    tenant_id        TEXT    NOT NULL,
    process_type     TEXT    NOT NULL,
    process_name     TEXT    NOT NULL,
    package_name     TEXT    NOT NULL,
    procedure_name   TEXT    NOT NULL,
    runs             INTEGER NOT NULL,
    samples          TEXT    NOT NULL,
    median_ms        INTEGER NOT NULL,
    p90_ms           INTEGER NOT NULL,
    p99_ms           INTEGER NOT NULL,
    last_duration_ms INTEGER NOT NULL,
    last_process_id  TEXT    NOT NULL,
    last_ended_at    INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, process_type, process_name, package_name, procedure_name)
) WITHOUT ROWID;

-- Alert rules; spec is the rule as JSON (sentinel.alerts.rules.RuleSpec), secret is kept apart from it.
CREATE TABLE alert_rules (
    id         TEXT    PRIMARY KEY,
    tenant_id  TEXT    NOT NULL,
    source     TEXT    NOT NULL,
    spec       TEXT    NOT NULL,
    secret     TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX alert_rules_by_tenant ON alert_rules (tenant_id, id);

-- When a rule last fired for a (condition, process type, process name): the quiet period.
CREATE TABLE alert_quiet (
    rule_id       TEXT    NOT NULL,
    quiet_key     TEXT    NOT NULL,
    last_fired_at INTEGER NOT NULL,
    PRIMARY KEY (rule_id, quiet_key)
) WITHOUT ROWID;

-- Conditions firing now, to resolve them (same labels) and keep Alertmanager alerts alive.
CREATE TABLE alert_state (
    rule_id      TEXT    NOT NULL,
    cond         TEXT    NOT NULL,
    subject      TEXT    NOT NULL,
    tenant_id    TEXT    NOT NULL,
    process_type TEXT,
    process_name TEXT,
    notification TEXT    NOT NULL,
    fired_at     INTEGER NOT NULL,
    last_sent_at INTEGER NOT NULL,
    PRIMARY KEY (rule_id, cond, subject)
) WITHOUT ROWID;
CREATE INDEX alert_state_by_name ON alert_state (tenant_id, process_type, process_name);

-- The transactional outbox: written with the change that caused it, delivered by one sender.
CREATE TABLE alert_outbox (
    id              INTEGER PRIMARY KEY,
    tenant_id       TEXT    NOT NULL,
    rule_id         TEXT    NOT NULL,
    subject         TEXT    NOT NULL,
    idempotency_key TEXT    NOT NULL UNIQUE,
    kind            TEXT    NOT NULL,
    cond            TEXT    NOT NULL,
    payload         TEXT    NOT NULL,
    created_at      INTEGER NOT NULL,
    state           TEXT    NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    last_error      TEXT,
    finished_at     INTEGER
);
CREATE INDEX alert_outbox_due ON alert_outbox (next_attempt_at) WHERE state = 'pending';
CREATE INDEX alert_outbox_of_alert ON alert_outbox (rule_id, cond, subject, id) WHERE state = 'pending';
CREATE INDEX alert_outbox_by_tenant ON alert_outbox (tenant_id, id);

CREATE TABLE alert_attempts (
    outbox_id    INTEGER NOT NULL REFERENCES alert_outbox (id) ON DELETE CASCADE,
    attempt      INTEGER NOT NULL,
    attempted_at INTEGER NOT NULL,
    status_code  INTEGER,
    error        TEXT,
    elapsed_ms   INTEGER NOT NULL,
    PRIMARY KEY (outbox_id, attempt)
) WITHOUT ROWID;
