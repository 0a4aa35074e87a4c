"""What happens when a status changes, inside the transaction that changed it.

Both stores log every status change into ``status_changes`` by a trigger on ``processes`` (the ingest
batch's upsert and the stall marking alike), and a start that arrives after the run's end (``LATE_START``:
the duration is known only then). Before that transaction commits, :meth:`StatusHook.run`
reads the log and, for each change:

- a run entering COMPLETED is added to its baseline (``sentinel.baselines``); any run that ends is
  judged against the baseline as it was before it (``expected_ms``, ``slow_run`` on its row);
- alert rules of the process's tenant that match it fire (FAILED, CANCELLED, STALLED, and slow for a
  run that ended slow) or resolve (STALLED when the process is heard from again, slow when it ends,
  FAILED and CANCELLED of a type and name when a later run of it completes): each notification is
  written to ``alert_outbox`` in this same transaction (a transactional outbox), so a status change
  and its notification commit together or not at all.

Time-driven conditions (slow while running, not started by a time of day) and Alertmanager's keep-alive
are evaluated by :class:`Evaluator`, run by the sender (``sentinel.alerts.sender``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any, Final

import msgspec

from sentinel.alerts import metrics
from sentinel.alerts.db import Db
from sentinel.alerts.dialects import Common
from sentinel.alerts.rules import RuleSpec
from sentinel.baselines import KEY_COLUMNS, BaselinePolicy, baseline_key
from sentinel.models import TERMINAL, from_us, now_us

log = logging.getLogger("sentinel.alerts")

LATE_START: Final = "LATE_START"  # status_changes.old_status of a run whose STARTED came after its end
ALERT_NAMES: Final = {
    "FAILED": "SentinelProcessFailed",
    "CANCELLED": "SentinelProcessCancelled",
    "STALLED": "SentinelProcessStalled",
    "slow": "SentinelProcessSlow",
    "not_started_by": "SentinelProcessNotStarted",
}


def iso(us: int | None) -> str | None:
    moment = from_us(us)
    return None if moment is None else moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Process(msgspec.Struct, kw_only=True):
    process_id: str
    process_name: str | None = None
    process_type: str | None = None
    package_name: str | None = None
    procedure_name: str | None = None
    status: str | None = None
    started_at: str | None = None
    ended_at: str | None = None
    duration_ms: int | None = None
    error_code: str | None = None
    error_message: str | None = None


def process_of(columns: Sequence[Any], status: str) -> Process:
    """The process part of a notification from ``(process_id, process_type, process_name, package_name,
    procedure_name, started_at, ended_at)``."""
    pid, ptype, name, package, procedure, started, ended = columns
    duration = (ended - started) // 1000 if ended is not None and started is not None else None
    return Process(
        process_id=pid,
        process_name=name,
        process_type=ptype,
        package_name=package,
        procedure_name=procedure,
        status=status,
        started_at=iso(started),
        ended_at=iso(ended),
        duration_ms=duration if duration is not None and duration >= 0 else None,
    )


class BaselineRef(msgspec.Struct, kw_only=True):
    runs: int
    median_ms: int
    p90_ms: int
    slow_above_ms: int


class RuleRef(msgspec.Struct, kw_only=True):
    id: str
    name: str


class Notification(msgspec.Struct, kw_only=True):
    """What every target is told (the generic webhook's body, as is)."""

    id: str  # the idempotency key
    status: str  # firing | resolved
    condition: str
    tenant_id: str
    rule: RuleRef
    summary: str
    labels: dict[str, str]
    fired_at: str
    resolved_at: str | None = None
    process: Process | None = None
    baseline: BaselineRef | None = None
    expected_by: str | None = None


@dataclass(slots=True)
class Rule:
    id: str
    tenant_id: str
    spec: RuleSpec


def parse_rules(rows: Sequence[Sequence[Any]], tenant_id: str | None = None) -> list[Rule]:
    out = []
    for row in rows:
        rule_id, tenant, text = (row[0], tenant_id, row[1]) if tenant_id is not None else row
        try:
            spec = msgspec.json.decode(text, type=RuleSpec)
        except msgspec.MsgspecError:
            log.error("alert rule %s is unreadable; skipped", rule_id)
            continue
        if spec.enabled:
            out.append(Rule(rule_id, tenant, spec))
    return out


def labels_for(rule: Rule, cond: str, process: Process | None, name: str | None, ptype: str | None) -> dict[str, str]:
    labels = {
        "alertname": ALERT_NAMES[cond],
        "tenant_id": rule.tenant_id,
        "rule": rule.spec.name,
        "condition": cond,
        "process_type": ptype,
        "process_name": name,
    }
    if process is not None:
        labels.update(process_id=process.process_id, package_name=process.package_name)
    return {k: v for k, v in labels.items() if v}


class Alerts:
    """Firing and resolving inside a transaction: the alert state, the quiet period and the outbox."""

    def __init__(self, dialect: Common) -> None:
        self.sql = dialect

    def fire(
        self,
        db: Db,
        rule: Rule,
        cond: str,
        subject: str,
        now: int,
        *,
        summary: str,
        process: Process | None = None,
        baseline: BaselineRef | None = None,
        expected_by: str | None = None,
        name: str | None = None,
        ptype: str | None = None,
    ) -> bool:
        if cond not in rule.spec.conditions:
            return False
        quiet_key = f"{cond}\x1f{ptype or ''}\x1f{name or ''}"
        if rule.spec.quiet_period_sec:
            last = db.all(self.sql.QUIET_GET, {"rule_id": rule.id, "quiet_key": quiet_key})
            if last and now - last[0][0] < rule.spec.quiet_period_sec * 1_000_000:
                if not db.all(self.sql.STATE_GET, {"rule_id": rule.id, "cond": cond, "subject": subject}):
                    metrics.ALERTS_SUPPRESSED.labels(cond).inc()
                return False
        key = f"{rule.id}:{cond}:{subject}:firing:{now}"
        note = Notification(
            id=key,
            status="firing",
            condition=cond,
            tenant_id=rule.tenant_id,
            rule=RuleRef(id=rule.id, name=rule.spec.name),
            summary=summary,
            labels=labels_for(rule, cond, process, name, ptype),
            fired_at=iso(now) or "",
            process=process,
            baseline=baseline,
            expected_by=expected_by,
        )
        payload = msgspec.json.encode(note).decode()
        inserted = db.run(
            self.sql.STATE_INSERT,
            {
                "rule_id": rule.id,
                "cond": cond,
                "subject": subject,
                "tenant_id": rule.tenant_id,
                "process_type": ptype,
                "process_name": name,
                "notification": payload,
                "now": now,
            },
        )
        if not inserted:
            return False  # already firing: never doubled
        db.run(self.sql.QUIET_PUT, {"rule_id": rule.id, "quiet_key": quiet_key, "now": now})
        self._outbox(db, note, rule.id, subject, payload, now)
        metrics.ALERTS_FIRED.labels(cond).inc()
        return True

    def resolve(self, db: Db, rule_id: str, cond: str, subject: str, now: int, process: Process | None = None) -> bool:
        found = db.all(self.sql.STATE_GET, {"rule_id": rule_id, "cond": cond, "subject": subject})
        if not found:
            return False
        db.run(self.sql.STATE_DELETE, {"rule_id": rule_id, "cond": cond, "subject": subject})
        note = msgspec.json.decode(found[0][0], type=Notification)
        note.id = f"{rule_id}:{cond}:{subject}:resolved:{now}"
        note.status = "resolved"
        note.resolved_at = iso(now)
        if process is not None:
            note.process = process
        self._outbox(db, note, rule_id, subject, msgspec.json.encode(note).decode(), now)
        return True

    def repost(self, db: Db, rule_id: str, cond: str, subject: str, text: str, now: int) -> None:
        """Alertmanager keep-alive: the firing notification again, under a new key."""
        note = msgspec.json.decode(text, type=Notification)
        note.id = f"{rule_id}:{cond}:{subject}:repost:{now}"
        self._outbox(db, note, rule_id, subject, msgspec.json.encode(note).decode(), now)
        db.run(self.sql.STATE_TOUCH, {"rule_id": rule_id, "cond": cond, "subject": subject, "now": now})

    def _outbox(self, db: Db, note: Notification, rule_id: str, subject: str, payload: str, now: int) -> None:
        db.run(
            self.sql.OUTBOX_INSERT,
            {
                "tenant_id": note.tenant_id,
                "rule_id": rule_id,
                "subject": subject,
                "idempotency_key": note.id,
                "kind": note.status,
                "cond": note.condition,
                "payload": payload,
                "now": now,
            },
        )


class StatusHook:
    """Run by the store inside every transaction that may change statuses, just before it commits."""

    def __init__(self, dialect: Common, policy: BaselinePolicy) -> None:
        self.sql = dialect
        self.policy = policy
        self.alerts = Alerts(dialect)

    def run(self, db: Db, now: int | None = None) -> int:
        changes = db.all(self.sql.CHANGES)
        if not changes:
            return 0
        now = now_us() if now is None else now
        db.run(self.sql.DELETE_CHANGES, {"last": max(row[0] for row in changes)})
        rules: dict[str, list[Rule]] = {}
        for row in changes:
            tenant = row[3]
            if tenant not in rules:
                rules[tenant] = parse_rules(db.all(self.sql.RULES_OF_TENANT, {"tenant_id": tenant}), tenant)
            self._one(db, row, rules[tenant], now)
        return len(changes)

    def _one(self, db: Db, row: Sequence[Any], rules: list[Rule], now: int) -> None:
        (_, old, new, tenant, pid, ptype, name, package, procedure, _started, ended, error_code, error_message) = row
        late_start = old == LATE_START  # an ended run whose start arrived only now: judged now, alerted already
        ends = new in TERMINAL and (old not in TERMINAL or late_start)
        process = process_of(row[4:11], new)
        process.error_code, process.error_message = error_code, error_message
        judged: BaselineRef | None = None
        if ends and process.duration_ms is not None:
            judged = self._judge(
                db, tenant, pid, (ptype, name, package, procedure), new, process.duration_ms, ended, now
            )
        matching = [rule for rule in rules if rule.spec.matches(ptype, name, package)]
        what = f"{name or ptype or pid} ({pid})"
        for rule in matching:
            if new in ("FAILED", "CANCELLED", "STALLED") and new != old and not late_start:
                reason = f": {error_message}" if error_message else ""
                self.alerts.fire(
                    db, rule, new, pid, now, summary=f"{what} is {new}{reason}", process=process, name=name, ptype=ptype
                )
            if judged is not None:
                self.alerts.fire(
                    db,
                    rule,
                    "slow",
                    pid,
                    now,
                    summary=f"{what} ran {process.duration_ms} ms, slow for its baseline "
                    f"(90th percentile {judged.p90_ms} ms)",
                    process=process,
                    baseline=judged,
                    name=name,
                    ptype=ptype,
                )
        # Resolutions apply to every rule (a rule edited since may no longer match, its alert must still end).
        if old == "STALLED" and new != "STALLED":
            for rule in rules:
                self.alerts.resolve(db, rule.id, "STALLED", pid, now, process)
        if ends:
            for rule in rules:
                self.alerts.resolve(db, rule.id, "slow", pid, now, process)
        if new == "COMPLETED":
            params = {"tenant_id": tenant, "process_type": ptype, "process_name": name}
            for rule_id, cond, subject, _ in db.all(self.sql.STATES_OF_NAME, params):
                self.alerts.resolve(db, rule_id, cond, subject, now, process)

    def _judge(
        self,
        db: Db,
        tenant: str,
        pid: str,
        parts: tuple[Any, ...],
        status: str,
        duration: int,
        ended: int,
        now: int,
    ) -> BaselineRef | None:
        """Freeze the run's verdict against its baseline as it was; a COMPLETED run then joins it.
        Returns the baseline when the run was slow."""
        key_parts = baseline_key(*parts)
        if key_parts is None:
            return None
        absent = self.sql.absent
        key = {"tenant_id": tenant, **{c: v or absent for c, v in zip(KEY_COLUMNS, key_parts, strict=True)}}
        if status == "COMPLETED":
            prior = self.sql.add_completed(
                db, {**key, "process_id": pid, "ended_at": ended, "now": now}, duration, self.policy.window
            )
        else:
            found = db.all(self.sql.BASELINE_PRIOR, key)
            prior = (found[0][0], found[0][1], found[0][2]) if found else None
        if prior is None:
            return None
        runs, median, p90 = prior
        threshold = self.policy.slow_threshold_ms(runs, p90)
        slow = threshold is not None and duration > threshold
        db.run(self.sql.MARK_RUN, {"expected": median, "slow": int(slow), "tenant_id": tenant, "process_id": pid})
        if not slow or threshold is None:
            return None
        return BaselineRef(runs=runs, median_ms=median, p90_ms=p90, slow_above_ms=round(threshold))


# -- time-driven conditions ---------------------------------------------------------------------------


def day_window(rule: RuleSpec, now: int) -> tuple[int, int, str]:
    """(local midnight, today's deadline, local date) of a not_started_by rule, in microseconds UTC."""
    assert rule.not_started_by is not None
    zone = rule.zone()
    local = datetime.fromtimestamp(now / 1e6, zone)
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    hour, minute = map(int, rule.not_started_by.split(":"))
    deadline = midnight + timedelta(hours=hour, minutes=minute)  # wall-clock arithmetic on aware datetimes
    return int(midnight.timestamp() * 1e6), int(deadline.timestamp() * 1e6), local.date().isoformat()


class Evaluator:
    """Conditions that hold by the passing of time, and Alertmanager's keep-alive; one pass per call.

    Everything is looked up outside a transaction; a write transaction opens only when something is to
    fire, resolve or be re-posted (on SQLite it takes the lock the ingest commits under). Each action
    checks again inside it: a firing is recorded once (the state's key), a resolution only if still
    firing."""

    def __init__(self, dialect: Common, policy: BaselinePolicy, repost_sec: float) -> None:
        self.sql = dialect
        self.policy = policy
        self.repost_us = int(repost_sec * 1_000_000)
        self.alerts = Alerts(dialect)

    def run(self, db: Db, write: Callable[[], AbstractContextManager[Db]], now: int | None = None) -> int:
        """One pass: ``db`` reads, ``write()`` gives a write transaction. Returns the actions taken."""
        now = now_us() if now is None else now
        rules = parse_rules(db.all(self.sql.ALL_RULES))
        by_id = {rule.id: rule for rule in rules}
        states = {(row[0], row[1], row[2]): row for row in db.all(self.sql.STATES_ALL)}
        actions: list[Callable[[Db], object]] = []
        actions += self._slow(db, rules, now)
        actions += self._not_started(db, rules, states, now)
        for (rule_id, cond, subject), (_, _, _, _, text, last_sent) in states.items():
            rule = by_id.get(rule_id)
            if rule is None:
                continue
            if cond == "not_started_by" and not subject.endswith("@" + day_window(rule.spec, now)[2]):
                # a new day: judged afresh after its deadline
                actions.append(partial(self.alerts.resolve, rule_id=rule_id, cond=cond, subject=subject, now=now))
            elif rule.spec.target.kind == "alertmanager" and now - last_sent >= self.repost_us:
                actions.append(
                    partial(self.alerts.repost, rule_id=rule_id, cond=cond, subject=subject, text=text, now=now)
                )
        if actions:
            with write() as tx:
                for action in actions:
                    action(tx)
        return len(actions)

    def _slow(self, db: Db, rules: list[Rule], now: int) -> list[Callable[[Db], object]]:
        slow_rules = [rule for rule in rules if "slow" in rule.spec.conditions]
        if not slow_rules:
            return []
        found = db.all(
            self.sql.slow_running(), {"now": now, "min_runs": self.policy.min_runs, "factor": self.policy.slow_factor}
        )
        actions: list[Callable[[Db], object]] = []
        for tenant, pid, ptype, name, package, procedure, started, runs, median, p90 in found:
            process = process_of((pid, ptype, name, package, procedure, started, None), "RUNNING")
            threshold = p90 * self.policy.slow_factor
            ref = BaselineRef(runs=runs, median_ms=median, p90_ms=p90, slow_above_ms=round(threshold))
            summary = (
                f"{name or ptype or pid} ({pid}) has run {(now - started) // 1000} ms, slow for its baseline "
                f"(90th percentile {p90} ms)"
            )
            for rule in slow_rules:
                if rule.tenant_id == tenant and rule.spec.matches(ptype, name, package):
                    actions.append(
                        partial(
                            self.alerts.fire,
                            rule=rule,
                            cond="slow",
                            subject=pid,
                            now=now,
                            summary=summary,
                            process=process,
                            baseline=ref,
                            name=name,
                            ptype=ptype,
                        )
                    )
        return actions

    def _not_started(
        self, db: Db, rules: list[Rule], states: dict[tuple[str, str, str], Any], now: int
    ) -> list[Callable[[Db], object]]:
        actions: list[Callable[[Db], object]] = []
        for rule in rules:
            spec = rule.spec
            if "not_started_by" not in spec.conditions or spec.process_name is None:
                continue
            midnight, deadline, day = day_window(spec, now)
            subject = f"{spec.process_name}@{day}"
            firing = (rule.id, "not_started_by", subject) in states
            if now < deadline and not firing:
                continue  # nothing to say before the deadline
            started = db.all(
                self.sql.started_since(),
                {
                    "tenant_id": rule.tenant_id,
                    "since": midnight,
                    "process_name": spec.process_name,
                    "process_type": spec.process_type,
                    "package_name": spec.package_name,
                },
            )
            if started and firing:
                actions.append(
                    partial(self.alerts.resolve, rule_id=rule.id, cond="not_started_by", subject=subject, now=now)
                )
            elif not started and not firing:
                actions.append(
                    partial(
                        self.alerts.fire,
                        rule=rule,
                        cond="not_started_by",
                        subject=subject,
                        now=now,
                        summary=f"{spec.process_name} had not started by {spec.not_started_by} {spec.timezone} "
                        f"on {day}",
                        expected_by=iso(deadline),
                        name=spec.process_name,
                        ptype=spec.process_type,
                    )
                )
        return actions
