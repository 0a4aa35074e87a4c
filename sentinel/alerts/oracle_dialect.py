"""The Oracle dialect of baselines and alerts (schema: ``sql/007_sentinel_alerts.sql``).

The statements are the common ones (``sentinel.alerts.dialects``) with the ``sentinel_`` table names;
what Oracle says differently is here: ``FETCH FIRST n ROWS ONLY``, ``MERGE`` for the upserts, ' ' for an
absent part of a baseline key ('' is NULL in Oracle), and the baseline window kept as rows of
``sentinel_baseline_samples`` whose percentiles ``PERCENTILE_CONT`` computes, the same interpolation as
the embedded store's. Nothing here ran against an Oracle server (see docs/oracle.md).
"""

from __future__ import annotations

import re
from typing import Any, Final

from sentinel.alerts.db import Db
from sentinel.alerts.dialects import PRIOR, Common
from sentinel.baselines import BASELINE_COLUMNS, KEY_COLUMNS

TABLES: Final = (
    "processes",
    "status_changes",
    "baselines",
    "baseline_samples",
    "alert_rules",
    "alert_quiet",
    "alert_state",
    "alert_outbox",
    "alert_attempts",
)
_TABLE = re.compile(r"\b(" + "|".join(TABLES) + r")\b")
_KEY_MATCH: Final = " AND ".join(f"{column} = :{column}" for column in ("tenant_id", *KEY_COLUMNS))
_KEYS: Final = ", ".join(KEY_COLUMNS)


def oracle_names(sql: str) -> str:
    """The common SQL with Oracle's table names (``processes`` -> ``sentinel_processes`` ...)."""
    return _TABLE.sub(lambda m: "sentinel_" + m.group(1), sql)


class Oracle(Common):
    name = "oracle"
    absent = " "

    STATE_INSERT = (
        "MERGE INTO sentinel_alert_state t USING (SELECT :rule_id AS rule_id, :cond AS cond, :subject AS subject"
        " FROM dual) s ON (t.rule_id = s.rule_id AND t.cond = s.cond AND t.subject = s.subject)"
        " WHEN NOT MATCHED THEN INSERT (rule_id, cond, subject, tenant_id, process_type, process_name,"
        " notification, fired_at, last_sent_at) VALUES (:rule_id, :cond, :subject, :tenant_id, :process_type,"
        " :process_name, :notification, :now, :now)"
    )
    QUIET_PUT = (
        "MERGE INTO sentinel_alert_quiet t USING (SELECT :rule_id AS rule_id, :quiet_key AS quiet_key FROM dual) s"
        " ON (t.rule_id = s.rule_id AND t.quiet_key = s.quiet_key)"
        " WHEN MATCHED THEN UPDATE SET t.last_fired_at = :now"
        " WHEN NOT MATCHED THEN INSERT (rule_id, quiet_key, last_fired_at) VALUES (:rule_id, :quiet_key, :now)"
    )
    # The baseline row is locked first, so two replicas ending runs of one key take turns.
    BASELINE_LOCK = f"SELECT runs, median_ms, p90_ms FROM sentinel_baselines WHERE {_KEY_MATCH} FOR UPDATE"
    SAMPLE_INSERT = (
        f"INSERT INTO sentinel_baseline_samples (tenant_id, {_KEYS}, run_no, duration_ms)"
        " VALUES (:tenant_id, " + ", ".join(f":{c}" for c in KEY_COLUMNS) + ", :run_no, :duration_ms)"
    )
    SAMPLE_TRIM = f"DELETE FROM sentinel_baseline_samples WHERE {_KEY_MATCH} AND run_no <= :oldest"
    SAMPLE_STATS = (
        "SELECT COUNT(*), PERCENTILE_CONT(0.5) WITHIN GROUP (ORDER BY duration_ms),"
        " PERCENTILE_CONT(0.9) WITHIN GROUP (ORDER BY duration_ms),"
        " PERCENTILE_CONT(0.99) WITHIN GROUP (ORDER BY duration_ms)"
        f" FROM sentinel_baseline_samples WHERE {_KEY_MATCH}"
    )
    BASELINE_PUT = (
        "MERGE INTO sentinel_baselines t USING (SELECT :tenant_id AS tenant_id, "
        + ", ".join(f":{c} AS {c}" for c in KEY_COLUMNS)
        + " FROM dual) s ON (t.tenant_id = s.tenant_id AND "
        + " AND ".join(f"t.{c} = s.{c}" for c in KEY_COLUMNS)
        + ") WHEN MATCHED THEN UPDATE SET t.runs = :runs, t.window_size = :window_size, t.median_ms = :median_ms,"
        " t.p90_ms = :p90_ms, t.p99_ms = :p99_ms, t.last_duration_ms = :duration_ms,"
        " t.last_process_id = :process_id, t.last_ended_at = :ended_at, t.updated_at = :now"
        f" WHEN NOT MATCHED THEN INSERT (tenant_id, {_KEYS}, runs, window_size, median_ms, p90_ms, p99_ms,"
        " last_duration_ms, last_process_id, last_ended_at, updated_at) VALUES (:tenant_id, "
        + ", ".join(f":{c}" for c in KEY_COLUMNS)
        + ", :runs, :window_size, :median_ms, :p90_ms, :p99_ms, :duration_ms, :process_id, :ended_at, :now)"
    )

    def __init__(self) -> None:
        # Every common statement, renamed once.
        for name in dir(Common):
            value = getattr(Common, name)
            if name.isupper() and isinstance(value, str) and value and name not in ("STATE_INSERT", "QUIET_PUT"):
                setattr(self, name, oracle_names(value))

    @staticmethod
    def first(sql: str, rows: int) -> str:
        return f"{oracle_names(sql)} FETCH FIRST {int(rows)} ROWS ONLY"

    def purge_outbox(self, rows: int) -> str:
        return oracle_names(super().purge_outbox(rows))

    def slow_running(self) -> str:
        return oracle_names(super().slow_running())

    def baseline_select(self) -> tuple[str, ...]:
        return tuple("window_size" if column == "samples" else column for column in BASELINE_COLUMNS)

    @staticmethod
    def window_of(value: Any) -> int:
        return int(value)

    def add_completed(self, db: Db, key: dict[str, Any], duration_ms: int, window: int) -> PRIOR | None:
        keys = {k: key[k] for k in ("tenant_id", *KEY_COLUMNS)}
        prior: PRIOR | None = None
        found = db.all(self.BASELINE_LOCK, keys)
        runs = 0
        if found:
            runs, median, p90 = (int(v) for v in found[0])
            prior = (runs, median, p90)
        db.run(self.SAMPLE_INSERT, {**keys, "run_no": runs + 1, "duration_ms": duration_ms})
        db.run(self.SAMPLE_TRIM, {**keys, "oldest": runs + 1 - window})
        count, median_f, p90_f, p99_f = db.all(self.SAMPLE_STATS, keys)[0]
        db.run(
            self.BASELINE_PUT,
            {
                **key,
                "runs": runs + 1,
                "window_size": int(count),
                "median_ms": round(float(median_f)),
                "p90_ms": round(float(p90_f)),
                "p99_ms": round(float(p99_f)),
                "duration_ms": duration_ms,
            },
        )
        return prior
