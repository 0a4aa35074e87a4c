"""Wiring baselines and alerts into the ingest process: the status hook on the store, the operator's rules
loaded into the rules table, and the sender thread."""

from __future__ import annotations

import logging
from typing import Any

import msgspec

from sentinel.alerts.db import Database, OracleDb, SqliteDb
from sentinel.alerts.engine import StatusHook
from sentinel.alerts.rules import CONFIG_PREFIX, load_config_rules, spec_of
from sentinel.alerts.sender import Sender
from sentinel.baselines import BaselinePolicy
from sentinel.config import Settings
from sentinel.models import now_us
from sentinel.store.base import Store

log = logging.getLogger("sentinel.alerts")


def install_status_hook(store: Store, settings: Settings) -> StatusHook:
    """From now on, every transaction of ``store`` that changes statuses runs the hook before it commits."""
    database = Database(store)
    hook = StatusHook(database.dialect, BaselinePolicy.from_settings(settings))
    if store.backend == "oracle":
        import oracledb

        wrap: Any = OracleDb
        database_error: type[Exception] = oracledb.DatabaseError
    else:
        import sqlite3

        wrap, database_error = SqliteDb, sqlite3.DatabaseError

    def run(conn: Any) -> None:
        try:
            hook.run(wrap(conn))
        except database_error:
            raise
        except Exception as exc:
            # As a driver error, so that the store's commit path rolls the whole transaction back.
            log.exception("status hook failed")
            raise database_error(f"status hook: {exc}") from exc

    store.status_hook = run  # type: ignore[attr-defined]
    return hook


def sync_config_rules(store: Store, settings: Settings) -> int:
    """Make the ``config:`` rules of the table those of ``SENTINEL_ALERT_RULES_FILE`` (none without it)."""
    database = Database(store)
    sql = database.dialect
    rules = (
        load_config_rules(settings.alert_rules_file, allow_private=settings.alert_allow_private_targets)
        if settings.alert_rules_file is not None
        else []
    )
    wanted = {CONFIG_PREFIX + rule.id: (rule, secret) for rule, secret in rules}
    now = now_us()
    with database.write() as db:
        for (rule_id,) in db.all(sql.CONFIG_RULE_IDS):
            if rule_id not in wanted:
                db.run(sql.CONFIG_RULE_DELETE, {"id": rule_id})
                db.run(sql.DELETE_RULE_STATE, {"id": rule_id})
                db.run(sql.DELETE_RULE_QUIET, {"id": rule_id})
        for rule_id, (rule, secret) in wanted.items():
            params = {
                "id": rule_id,
                "tenant_id": rule.tenant_id,
                "spec": msgspec.json.encode(spec_of(rule)).decode(),
                "secret": secret,
                "now": now,
            }
            if not db.run(sql.CONFIG_RULE_UPDATE, params):
                db.run(sql.RULE_INSERT, {**params, "source": "config"})
    if wanted:
        log.info("alert rules: %d from %s", len(wanted), settings.alert_rules_file)
    return len(wanted)


def start_alerts(store: Store, settings: Settings) -> Sender:
    install_status_hook(store, settings)
    sync_config_rules(store, settings)
    sender = Sender(store, settings)
    sender.start()
    return sender
