"""The SQL of baselines and alerts, per store. Statements both stores run alike live in ``Common``; the
few that differ (upserts, row limits, the baseline window) are overridden by each dialect. Binds are
named and every statement that reads tenant data names its tenant."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Final

import msgspec

from sentinel.alerts.db import Db
from sentinel.baselines import BASELINE_COLUMNS, KEY_COLUMNS, Stats, add_sample, join_baselines

_KEY_MATCH: Final = " AND ".join(f"{column} = :{column}" for column in KEY_COLUMNS)
PRIOR = tuple[int, int, int]  # runs, median_ms, p90_ms of a baseline before a run was added


class Common(ABC):
    name = "common"
    absent = ""

    CHANGES = (
        "SELECT c.id, c.old_status, c.new_status, p.tenant_id, p.process_id, p.process_type, p.process_name,"
        " p.package_name, p.procedure_name, p.started_at, p.ended_at, p.error_code, p.error_message"
        " FROM status_changes c JOIN processes p ON p.tenant_id = c.tenant_id AND p.process_id = c.process_id"
        " ORDER BY c.id"
    )
    DELETE_CHANGES = "DELETE FROM status_changes WHERE id <= :last"
    MARK_RUN = (
        "UPDATE processes SET expected_ms = :expected, slow_run = :slow"
        " WHERE tenant_id = :tenant_id AND process_id = :process_id"
    )
    BASELINE_PRIOR = f"SELECT runs, median_ms, p90_ms FROM baselines WHERE tenant_id = :tenant_id AND {_KEY_MATCH}"
    RULES_OF_TENANT = "SELECT id, spec FROM alert_rules WHERE tenant_id = :tenant_id ORDER BY id"
    ALL_RULES = "SELECT id, tenant_id, spec FROM alert_rules ORDER BY id"
    RULE_FOR_DELIVERY = "SELECT spec, secret FROM alert_rules WHERE id = :id AND tenant_id = :tenant_id"
    QUIET_GET = "SELECT last_fired_at FROM alert_quiet WHERE rule_id = :rule_id AND quiet_key = :quiet_key"
    STATE_GET = "SELECT notification FROM alert_state WHERE rule_id = :rule_id AND cond = :cond AND subject = :subject"
    STATE_DELETE = "DELETE FROM alert_state WHERE rule_id = :rule_id AND cond = :cond AND subject = :subject"
    STATES_OF_NAME = (
        "SELECT rule_id, cond, subject, notification FROM alert_state WHERE tenant_id = :tenant_id"
        " AND cond IN ('FAILED', 'CANCELLED')"
        " AND (process_type = :process_type OR (process_type IS NULL AND :process_type IS NULL))"
        " AND (process_name = :process_name OR (process_name IS NULL AND :process_name IS NULL))"
    )
    STATES_ALL = "SELECT rule_id, cond, subject, tenant_id, notification, last_sent_at FROM alert_state"
    STATE_TOUCH = (
        "UPDATE alert_state SET last_sent_at = :now WHERE rule_id = :rule_id AND cond = :cond AND subject = :subject"
    )
    OUTBOX_INSERT = (
        "INSERT INTO alert_outbox (tenant_id, rule_id, subject, idempotency_key, kind, cond, payload, created_at,"
        " state, attempts, next_attempt_at) VALUES (:tenant_id, :rule_id, :subject, :idempotency_key, :kind, :cond,"
        " :payload, :now, 'pending', 0, :now)"
    )
    CLAIM = (
        "UPDATE alert_outbox SET next_attempt_at = :lease WHERE id = :id AND state = 'pending'"
        " AND next_attempt_at = :seen"
    )
    ATTEMPT_INSERT = (
        "INSERT INTO alert_attempts (outbox_id, attempt, attempted_at, status_code, error, elapsed_ms)"
        " VALUES (:id, :attempt, :now, :status_code, :error, :elapsed_ms)"
    )
    FINISH = (
        "UPDATE alert_outbox SET attempts = :attempts, state = :state, next_attempt_at = :next,"
        " last_error = :error, finished_at = :finished WHERE id = :id"
    )
    DELETE_RULE_STATE = "DELETE FROM alert_state WHERE rule_id = :id"
    DELETE_RULE_QUIET = "DELETE FROM alert_quiet WHERE rule_id = :id"
    RULE_GET = (
        "SELECT id, tenant_id, source, spec, secret, created_at, updated_at FROM alert_rules"
        " WHERE tenant_id = :tenant_id AND id = :id"
    )
    RULE_COUNT = "SELECT COUNT(*) FROM alert_rules WHERE tenant_id = :tenant_id"
    RULE_INSERT = (
        "INSERT INTO alert_rules (id, tenant_id, source, spec, secret, created_at, updated_at)"
        " VALUES (:id, :tenant_id, :source, :spec, :secret, :now, :now)"
    )
    RULE_UPDATE = (
        "UPDATE alert_rules SET spec = :spec, secret = COALESCE(:secret, secret), updated_at = :now"
        " WHERE tenant_id = :tenant_id AND id = :id AND source = :source"
    )
    RULE_DELETE = "DELETE FROM alert_rules WHERE tenant_id = :tenant_id AND id = :id AND source = :source"
    CONFIG_RULE_IDS = "SELECT id FROM alert_rules WHERE source = 'config'"
    CONFIG_RULE_DELETE = "DELETE FROM alert_rules WHERE id = :id AND source = 'config'"
    CONFIG_RULE_UPDATE = (
        "UPDATE alert_rules SET tenant_id = :tenant_id, spec = :spec, secret = :secret, updated_at = :now"
        " WHERE id = :id AND source = 'config'"
    )
    ATTEMPTS_OF = (
        "SELECT outbox_id, attempt, attempted_at, status_code, error, elapsed_ms FROM alert_attempts"
        " WHERE outbox_id IN ({ids}) ORDER BY outbox_id, attempt"
    )

    TIME_DRIVEN = (
        "SELECT COUNT(*) FROM alert_rules WHERE spec LIKE '%\"slow\"%' OR spec LIKE '%\"not_started_by\"%'"
        " OR spec LIKE '%\"alertmanager\"%'"
    )

    # -- statements with a row limit ---------------------------------------------------------------------
    def purge_outbox(self, rows: int) -> str:
        """Finished notifications (and, by cascade, their attempts) created before ``:before``."""
        return (
            "DELETE FROM alert_outbox WHERE id IN ("
            + self.first("SELECT id FROM alert_outbox WHERE state <> 'pending' AND created_at < :before", rows)
            + ")"
        )

    @staticmethod
    def first(sql: str, rows: int) -> str:
        return f"{sql} LIMIT {int(rows)}"

    def due(self) -> str:
        return self.first(
            "SELECT o.id, o.tenant_id, o.rule_id, o.idempotency_key, o.kind, o.cond, o.payload, o.attempts,"
            " o.next_attempt_at FROM alert_outbox o WHERE o.state = 'pending' AND o.next_attempt_at <= :now"
            # one alert's notifications in order (firing before resolved); other alerts do not wait
            " AND NOT EXISTS (SELECT 1 FROM alert_outbox e WHERE e.state = 'pending' AND e.rule_id = o.rule_id"
            " AND e.cond = o.cond AND e.subject = o.subject AND e.id < o.id) ORDER BY o.next_attempt_at, o.id",
            50,
        )

    def started_since(self) -> str:
        return self.first(
            "SELECT process_id FROM processes WHERE tenant_id = :tenant_id AND last_seen_at >= :since"
            " AND started_at >= :since AND process_name = :process_name"
            " AND (:process_type IS NULL OR process_type = :process_type)"
            " AND (:package_name IS NULL OR package_name = :package_name)",
            1,
        )

    def slow_running(self) -> str:
        return (
            "SELECT p.tenant_id, p.process_id, p.process_type, p.process_name, p.package_name, p.procedure_name,"
            " p.started_at, b.runs, b.median_ms, b.p90_ms FROM processes p"
            f"{join_baselines(self.absent)}"
            " WHERE p.status = 'RUNNING' AND p.started_at IS NOT NULL AND b.runs >= :min_runs"
            " AND :now - p.started_at > b.p90_ms * :factor * 1000"
            # already alerted (every matching rule fires in the same pass): not looked at again
            " AND NOT EXISTS (SELECT 1 FROM alert_state s WHERE s.tenant_id = p.tenant_id AND s.cond = 'slow'"
            " AND s.subject = p.process_id)"
        )

    def rules_page(self, limit: int) -> str:
        return self.first(
            "SELECT id, tenant_id, source, spec, secret, created_at, updated_at FROM alert_rules"
            " WHERE tenant_id = :tenant_id AND id > :after ORDER BY id",
            limit,
        )

    def deliveries_page(self, limit: int, *, with_state: bool, with_rule: bool) -> str:
        where = "tenant_id = :tenant_id AND id < :before"
        if with_state:
            where += " AND state = :state"
        if with_rule:
            where += " AND rule_id = :rule_id"
        return self.first(
            "SELECT id, rule_id, idempotency_key, kind, cond, payload, created_at, state, attempts,"
            f" next_attempt_at, last_error, finished_at FROM alert_outbox WHERE {where} ORDER BY id DESC",
            limit,
        )

    def baselines_page(self, limit: int) -> str:
        columns = ", ".join(self.baseline_select())
        after = " OR ".join(
            "("
            + " AND ".join([*(f"{c} = :a_{c}" for c in KEY_COLUMNS[:i]), f"{KEY_COLUMNS[i]} > :a_{KEY_COLUMNS[i]}"])
            + ")"
            for i in range(len(KEY_COLUMNS))
        )
        return self.first(
            f"SELECT {columns} FROM baselines WHERE tenant_id = :tenant_id"
            " AND (:process_type IS NULL OR process_type = :process_type)"
            " AND (:process_name IS NULL OR process_name = :process_name)"
            f" AND (:first = 1 OR {after}) ORDER BY {', '.join(KEY_COLUMNS)}",
            limit,
        )

    def baseline_select(self) -> tuple[str, ...]:
        return BASELINE_COLUMNS

    @staticmethod
    def window_of(value: Any) -> int:
        return len(msgspec.json.decode(value))

    # -- dialect-specific ---------------------------------------------------------------------------------
    STATE_INSERT = ""
    QUIET_PUT = ""

    @abstractmethod
    def add_completed(self, db: Db, key: dict[str, Any], duration_ms: int, window: int) -> PRIOR | None:
        """Add one completed run's duration to its key's window and restate the baseline (each dialect in
        its own SQL); the key's previous statistics, or None for its first run."""


class Sqlite(Common):
    name = "sqlite"
    absent = ""

    STATE_INSERT = (
        "INSERT INTO alert_state (rule_id, cond, subject, tenant_id, process_type, process_name, notification,"
        " fired_at, last_sent_at) VALUES (:rule_id, :cond, :subject, :tenant_id, :process_type, :process_name,"
        " :notification, :now, :now) ON CONFLICT DO NOTHING"
    )
    QUIET_PUT = (
        "INSERT INTO alert_quiet (rule_id, quiet_key, last_fired_at) VALUES (:rule_id, :quiet_key, :now)"
        " ON CONFLICT (rule_id, quiet_key) DO UPDATE SET last_fired_at = excluded.last_fired_at"
    )
    BASELINE_GET = (
        f"SELECT runs, samples, median_ms, p90_ms FROM baselines WHERE tenant_id = :tenant_id AND {_KEY_MATCH}"
    )
    BASELINE_PUT = (
        f"INSERT INTO baselines (tenant_id, {', '.join(KEY_COLUMNS)}, runs, samples, median_ms, p90_ms, p99_ms,"
        " last_duration_ms, last_process_id, last_ended_at, updated_at) VALUES (:tenant_id, "
        + ", ".join(f":{c}" for c in KEY_COLUMNS)
        + ", :runs, :samples, :median_ms, :p90_ms, :p99_ms, :duration_ms, :process_id, :ended_at, :now)"
        f" ON CONFLICT (tenant_id, {', '.join(KEY_COLUMNS)}) DO UPDATE SET runs = excluded.runs,"
        " samples = excluded.samples, median_ms = excluded.median_ms, p90_ms = excluded.p90_ms,"
        " p99_ms = excluded.p99_ms, last_duration_ms = excluded.last_duration_ms,"
        " last_process_id = excluded.last_process_id, last_ended_at = excluded.last_ended_at,"
        " updated_at = excluded.updated_at"
    )

    def add_completed(self, db: Db, key: dict[str, Any], duration_ms: int, window: int) -> PRIOR | None:
        """Add one completed run to its baseline; returns the baseline as it was before (None if new)."""
        found = db.all(self.BASELINE_GET, {k: key[k] for k in ("tenant_id", *KEY_COLUMNS)})
        prior: PRIOR | None = None
        samples: list[int] = []
        runs = 0
        if found:
            runs, text, median, p90 = found[0]
            samples = msgspec.json.decode(text, type=list[int])
            prior = (runs, median, p90)
        stats: Stats = add_sample(samples, runs, duration_ms, window)
        db.run(
            self.BASELINE_PUT,
            {
                **key,
                "runs": stats.runs,
                "samples": msgspec.json.encode(stats.samples).decode(),
                "median_ms": stats.median_ms,
                "p90_ms": stats.p90_ms,
                "p99_ms": stats.p99_ms,
                "duration_ms": duration_ms,
            },
        )
        return prior


DIALECTS: Final[dict[str, Common]] = {"sqlite": Sqlite()}


def for_backend(backend: str) -> Common:
    if backend not in DIALECTS:
        from sentinel.alerts.oracle_dialect import Oracle

        DIALECTS["oracle"] = Oracle()
    return DIALECTS[backend]
