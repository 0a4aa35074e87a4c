"""The sender: delivers the outbox, and evaluates the time-driven conditions.

It runs as a thread of the ingest process (``sentinel.alerts.service.start_alerts``). On SQLite the
ingest holds the database's exclusive consumer lock, so exactly one sender delivers per database; on
Oracle, where every replica runs one, a notification is claimed before each attempt by a conditional
update (``next_attempt_at`` moved past the attempt's timeout), so only the replica whose update
matched delivers it, and a replica that dies mid-attempt leaves it due again after the lease.

Delivery is at least once with an ``Idempotency-Key`` per notification, the same on every attempt: a
crash between a receiver's 2xx and the commit of the attempt is the one case that repeats a delivery.
Failed attempts are retried with exponential backoff (``SENTINEL_ALERT_RETRY_BASE_SEC`` doubling up to
``SENTINEL_ALERT_RETRY_MAX_SEC``, ±10 % jitter); after ``SENTINEL_ALERT_MAX_ATTEMPTS`` the notification
is given up (state ``failed``, counted in ``sentinel_alert_notifications_given_up``). The notifications of
one alert (rule, condition, process) leave in order, a resolution never before its firing; other alerts
do not wait behind one that is backing off.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from typing import Any

import httpx
import msgspec

from sentinel.alerts import metrics, targets
from sentinel.alerts.db import Database
from sentinel.alerts.engine import Evaluator, Notification
from sentinel.alerts.rules import RuleSpec
from sentinel.baselines import BaselinePolicy
from sentinel.config import Settings
from sentinel.models import now_us
from sentinel.store.base import Store, StoreError

log = logging.getLogger("sentinel.alerts")

POLL_SEC = 0.5
EVALUATE_SEC = 1.0
PURGE_SEC = 3600.0
PURGE_CHUNK = 1000
MAX_ERROR = 500


class Sender:
    def __init__(self, store: Store, settings: Settings) -> None:
        self.settings = settings
        self.db = Database(store)
        self.sql = self.db.dialect
        self.evaluator = Evaluator(self.sql, BaselinePolicy.from_settings(settings), settings.alertmanager_repost_sec)
        self.stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._client = httpx.Client(timeout=settings.alert_timeout_sec, follow_redirects=False)

    def start(self) -> None:
        self._thread = threading.Thread(target=self.run, name="alert-sender", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self.stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self._client.close()

    def run(self) -> None:
        next_evaluation = next_purge = 0.0
        while not self.stopping.is_set():
            busy = False
            try:
                now = time.monotonic()
                if now >= next_evaluation:
                    next_evaluation = now + EVALUATE_SEC
                    self.evaluate()
                if now >= next_purge:
                    next_purge = now + PURGE_SEC
                    self.purge()
                busy = self.deliver_due() > 0
            except StoreError as exc:
                log.error("alert sender: %s", exc)
            except Exception:
                log.exception("alert sender: unexpected error")
            self.stopping.wait(0 if busy else POLL_SEC)

    def evaluate(self) -> None:
        """Time-driven conditions and keep-alives, when some rule has them (see ``Evaluator``)."""
        with self.db.read() as db:
            if db.all(self.sql.TIME_DRIVEN)[0][0]:
                self.evaluator.run(db, self.db.write)

    def purge(self) -> int:
        """Finished notifications older than the log retention go, in chunks."""
        before = now_us() - self.settings.log_retention_days * 86_400 * 1_000_000
        total = 0
        while not self.stopping.is_set():
            with self.db.write() as db:
                count = db.run(self.sql.purge_outbox(PURGE_CHUNK), {"before": before})
            total += count
            if count < PURGE_CHUNK:
                break
        return total

    # -- delivery -----------------------------------------------------------------------------------------
    def deliver_due(self) -> int:
        with self.db.read() as db:
            due = db.all(self.sql.due(), {"now": now_us()})
        done = 0
        for row in due:
            if self.stopping.is_set():
                break
            done += self.deliver(*row)
        return done

    def deliver(
        self,
        ident: int,
        tenant: str,
        rule_id: str,
        key: str,
        kind: str,
        cond: str,
        payload: str,
        attempts: int,
        seen: int,
    ) -> int:
        lease = now_us() + int((self.settings.alert_timeout_sec + 30) * 1_000_000)
        with self.db.write() as db:
            if not db.run(self.sql.CLAIM, {"lease": lease, "id": ident, "seen": seen}):
                return 0  # another replica has it
            found = db.all(self.sql.RULE_FOR_DELIVERY, {"id": rule_id, "tenant_id": tenant})
            if not found:
                self._finish(db, ident, attempts, "dropped", None, "the rule was deleted")
                return 1
        spec = msgspec.json.decode(found[0][0], type=RuleSpec)
        secret = found[0][1]
        note = msgspec.json.decode(payload, type=Notification)
        started = time.perf_counter()
        status_code, error = self._attempt(spec, note, secret)
        elapsed = time.perf_counter() - started
        metrics.ALERT_DELIVERY_DURATION.observe(elapsed)
        attempt = attempts + 1
        ok = error is None
        metrics.ALERT_DELIVERIES.labels(spec.target.kind, "ok" if ok else "error").inc()
        with self.db.write() as db:
            db.run(
                self.sql.ATTEMPT_INSERT,
                {
                    "id": ident,
                    "attempt": attempt,
                    "now": now_us(),
                    "status_code": status_code,
                    "error": error,
                    "elapsed_ms": round(elapsed * 1000),
                },
            )
            if ok:
                self._finish(db, ident, attempt, "delivered", None, None)
            elif attempt >= self.settings.alert_max_attempts:
                self._finish(db, ident, attempt, "failed", None, error)
                metrics.ALERTS_GIVEN_UP.labels(spec.target.kind).inc()
                log.warning("alert %s given up after %d attempts: %s", key, attempt, error)
            else:
                self._finish(db, ident, attempt, "pending", now_us() + self.backoff_us(attempt), error)
        return 1

    def backoff_us(self, attempt: int) -> int:
        base, cap = self.settings.alert_retry_base_sec, self.settings.alert_retry_max_sec
        delay = min(cap, base * 2 ** min(attempt - 1, 60))
        return int(delay * random.uniform(0.9, 1.1) * 1_000_000)

    def _finish(self, db: Any, ident: int, attempts: int, state: str, due: int | None, error: str | None) -> None:
        now = now_us()
        db.run(
            self.sql.FINISH,
            {
                "id": ident,
                "attempts": attempts,
                "state": state,
                "next": due if due is not None else now,
                "error": None if error is None else error[:MAX_ERROR],
                "finished": None if state == "pending" else now,
            },
        )

    def _attempt(self, spec: RuleSpec, note: Notification, secret: str | None) -> tuple[int | None, str | None]:
        kind = spec.target.kind
        url = targets.alertmanager_url(spec.target.url) if kind == "alertmanager" else spec.target.url
        try:
            targets.guard(url, allow_private=self.settings.alert_allow_private_targets)
        except targets.TargetRefused as exc:
            return None, str(exc)
        body, headers = targets.render(kind, note, secret, str(int(time.time())))
        try:
            with self._client.stream("POST", url, content=body, headers=headers) as answer:
                code = answer.status_code
        except httpx.HTTPError as exc:
            return None, f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        if 200 <= code < 300:
            return code, None
        return code, f"HTTP {code}"
