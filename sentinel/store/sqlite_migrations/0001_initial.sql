-- Process Sentinel, embedded schema v1. Times are integer microseconds since the epoch, UTC.

CREATE TABLE meta (
    name  TEXT PRIMARY KEY,
    value BLOB NOT NULL
) WITHOUT ROWID;

-- The stand-in for the AQ queue: dequeued by priority, then arrival. AUTOINCREMENT keeps ids
-- rising even after the newest message is deleted, so "newer" is always "larger".
CREATE TABLE queue (
    msg_id      INTEGER PRIMARY KEY AUTOINCREMENT,
    priority    INTEGER NOT NULL,
    enqueued_at INTEGER NOT NULL,
    payload     BLOB    NOT NULL
);
CREATE INDEX queue_order ON queue (priority, msg_id);

CREATE TABLE processes (
    tenant_id        TEXT    NOT NULL,
    process_id       TEXT    NOT NULL,
    status           TEXT    NOT NULL,
    started_at       INTEGER,
    process_name     TEXT,
    process_type     TEXT,
    package_name     TEXT,
    procedure_name   TEXT,
    correlation_id   TEXT,
    step_at          INTEGER,
    current_step     TEXT,
    percent_at       INTEGER,
    progress_percent REAL,
    metadata_at      INTEGER,
    metadata         TEXT,
    last_seen_at     INTEGER NOT NULL,
    terminal_rank    INTEGER NOT NULL DEFAULT 0,
    ended_at         INTEGER,
    error_code       TEXT,
    error_message    TEXT,
    stack_trace      TEXT,
    result           TEXT,
    event_count      INTEGER NOT NULL DEFAULT 0,
    log_count        INTEGER NOT NULL DEFAULT 0,
    updated_at       INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, process_id)
) WITHOUT ROWID;
CREATE INDEX processes_recent ON processes (tenant_id, last_seen_at DESC, process_id);
CREATE INDEX processes_idle ON processes (updated_at) WHERE status = 'RUNNING';

CREATE TABLE logs (
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused, even after retention: SSE resumes by seq
    tenant_id      TEXT    NOT NULL,
    process_id     TEXT    NOT NULL,
    event_id       TEXT    NOT NULL,
    ts             INTEGER NOT NULL,
    level          INTEGER NOT NULL,
    message        TEXT    NOT NULL,
    details        TEXT,
    component      TEXT,
    correlation_id TEXT,
    trace_id       TEXT,
    span_id        TEXT,
    duration_us    INTEGER,
    ingested_at    INTEGER NOT NULL
);
CREATE INDEX logs_by_process ON logs (tenant_id, process_id, ts, seq);
CREATE INDEX logs_by_time ON logs (ts);

CREATE TABLE dedupe (
    tenant_id TEXT    NOT NULL,
    event_id  TEXT    NOT NULL,
    seen_at   INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, event_id)
) WITHOUT ROWID;
CREATE INDEX dedupe_by_age ON dedupe (seen_at);

CREATE TABLE dead_letters (
    id          INTEGER PRIMARY KEY,
    code        TEXT    NOT NULL,
    reason      TEXT    NOT NULL,
    payload     BLOB    NOT NULL,
    enqueued_at INTEGER,
    dead_at     INTEGER NOT NULL
);
