"""What the API reads and writes for baselines and alerts, tenant by tenant (every statement names it)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

import msgspec

from sentinel.alerts.db import Database
from sentinel.alerts.rules import MAX_RULES_PER_TENANT, RuleIn, RuleOut, RuleSpec, spec_of
from sentinel.baselines import KEY_COLUMNS, Baseline, baseline_from_row
from sentinel.models import from_us, now_us, raw_json


class RuleConflict(Exception):
    """The rule cannot be changed this way (its message says why)."""


class Attempt(msgspec.Struct, kw_only=True):
    attempt: int
    attempted_at: datetime
    status_code: int | None
    error: str | None
    elapsed_ms: int


class Delivery(msgspec.Struct, kw_only=True):
    """One notification of the outbox and its delivery attempts."""

    id: int
    rule_id: str
    idempotency_key: str
    kind: Literal["firing", "resolved"]
    condition: str
    state: Literal["pending", "delivered", "failed", "dropped"]
    attempts: int
    created_at: datetime
    next_attempt_at: datetime | None
    last_error: str | None
    finished_at: datetime | None
    notification: msgspec.Raw
    attempt_log: list[Attempt]


def rule_out(row: Any) -> RuleOut:
    rule_id, tenant, source, spec_text, secret, created, updated = row
    spec = msgspec.json.decode(spec_text, type=RuleSpec)
    fields = {f: getattr(spec, f) for f in RuleSpec.__struct_fields__}
    return RuleOut(
        **fields,
        id=rule_id,
        tenant_id=tenant,
        source=source,
        secret_set=secret is not None,
        created_at=from_us(created),
        updated_at=from_us(updated),
    )


def _rule_params(tenant: str, rule_id: str, rule: RuleIn) -> dict[str, Any]:
    return {
        "id": rule_id,
        "tenant_id": tenant,
        "source": "api",
        "spec": msgspec.json.encode(spec_of(rule)).decode(),
        "secret": rule.secret,
        "now": now_us(),
    }


class AlertRepo:
    def __init__(self, database: Database) -> None:
        self.db = database
        self.sql = database.dialect

    # -- rules ---------------------------------------------------------------------------------------------
    def list_rules(self, tenant: str, after: str, limit: int) -> list[RuleOut]:
        with self.db.read() as db:
            rows = db.all(self.sql.rules_page(limit), {"tenant_id": tenant, "after": after})
        return [rule_out(row) for row in rows]

    def get_rule(self, tenant: str, rule_id: str) -> RuleOut | None:
        with self.db.read() as db:
            rows = db.all(self.sql.RULE_GET, {"tenant_id": tenant, "id": rule_id})
        return rule_out(rows[0]) if rows else None

    def create_rule(self, tenant: str, rule: RuleIn) -> RuleOut:
        rule_id = uuid.uuid4().hex
        with self.db.write() as db:
            if db.all(self.sql.RULE_COUNT, {"tenant_id": tenant})[0][0] >= MAX_RULES_PER_TENANT:
                raise RuleConflict(f"a tenant has at most {MAX_RULES_PER_TENANT} alert rules")
            db.run(self.sql.RULE_INSERT, _rule_params(tenant, rule_id, rule))
            rows = db.all(self.sql.RULE_GET, {"tenant_id": tenant, "id": rule_id})
        return rule_out(rows[0])

    def update_rule(self, tenant: str, rule_id: str, rule: RuleIn) -> RuleOut | None:
        with self.db.write() as db:
            rows = db.all(self.sql.RULE_GET, {"tenant_id": tenant, "id": rule_id})
            if not rows:
                return None
            if rows[0][2] != "api":
                raise RuleConflict("this rule comes from the operator's rules file; change it there")
            db.run(self.sql.RULE_UPDATE, _rule_params(tenant, rule_id, rule))
            rows = db.all(self.sql.RULE_GET, {"tenant_id": tenant, "id": rule_id})
        return rule_out(rows[0])

    def delete_rule(self, tenant: str, rule_id: str) -> bool:
        """Deletes the rule, its firing state and quiet periods; its undelivered notifications are dropped
        by the sender (recorded as such)."""
        with self.db.write() as db:
            rows = db.all(self.sql.RULE_GET, {"tenant_id": tenant, "id": rule_id})
            if not rows:
                return False
            if rows[0][2] != "api":
                raise RuleConflict("this rule comes from the operator's rules file; remove it there")
            db.run(self.sql.RULE_DELETE, {"tenant_id": tenant, "id": rule_id, "source": "api"})
            db.run(self.sql.DELETE_RULE_STATE, {"id": rule_id})
            db.run(self.sql.DELETE_RULE_QUIET, {"id": rule_id})
        return True

    # -- deliveries -----------------------------------------------------------------------------------------
    def deliveries(
        self, tenant: str, before: int, limit: int, state: str | None, rule_id: str | None
    ) -> list[Delivery]:
        params: dict[str, Any] = {"tenant_id": tenant, "before": before}
        if state is not None:
            params["state"] = state
        if rule_id is not None:
            params["rule_id"] = rule_id
        sql = self.sql.deliveries_page(limit, with_state=state is not None, with_rule=rule_id is not None)
        with self.db.read() as db:
            rows = db.all(sql, params)
            ids = [int(row[0]) for row in rows]
            attempts: dict[int, list[Attempt]] = {ident: [] for ident in ids}
            if ids:
                binds = {f"i{n}": ident for n, ident in enumerate(ids)}
                found = db.all(self.sql.ATTEMPTS_OF.format(ids=", ".join(f":{name}" for name in binds)), binds)
                for outbox_id, attempt, at, code, error, elapsed in found:
                    attempts[int(outbox_id)].append(
                        Attempt(
                            attempt=attempt,
                            attempted_at=from_us(at),
                            status_code=code,
                            error=error,
                            elapsed_ms=elapsed,
                        )
                    )
        out = []
        for ident, rule, key, kind, cond, payload, created, st, count, due, error, finished in rows:
            out.append(
                Delivery(
                    id=int(ident),
                    rule_id=rule,
                    idempotency_key=key,
                    kind=kind,
                    condition=cond,
                    state=st,
                    attempts=count,
                    created_at=from_us(created),
                    next_attempt_at=from_us(due) if st == "pending" else None,
                    last_error=error,
                    finished_at=from_us(finished),
                    notification=raw_json(payload) or msgspec.Raw(b"{}"),
                    attempt_log=attempts[int(ident)],
                )
            )
        return out

    # -- baselines ------------------------------------------------------------------------------------------
    def baselines(
        self,
        tenant: str,
        after: list[str] | None,
        limit: int,
        process_type: str | None,
        process_name: str | None,
    ) -> tuple[list[Baseline], list[list[str]]]:
        """A page of the tenant's baselines in key order, and the key of each row (for cursors)."""
        absent = self.sql.absent
        params: dict[str, Any] = {
            "tenant_id": tenant,
            "process_type": None if process_type is None else process_type or absent,
            "process_name": None if process_name is None else process_name or absent,
            "first": 1 if after is None else 0,
        }
        for column, value in zip(KEY_COLUMNS, after or [absent] * len(KEY_COLUMNS), strict=True):
            params[f"a_{column}"] = value
        with self.db.read() as db:
            rows = db.all(self.sql.baselines_page(limit), params)
        keys = [[str(value) for value in row[: len(KEY_COLUMNS)]] for row in rows]
        return [baseline_from_row(row, absent, self.sql.window_of) for row in rows], keys
