"""Procedures with stable duration profiles for ``sentinel simulate --profile-runs N`` and the demo.

Each profile is a procedure that always takes about the same time (a normal spread of a few percent
around its mean). A wave sends, per tenant and profile, N completed runs one after another in the recent
past (so the procedure has a baseline at once), then one run that takes 2.5 times as long (flagged slow,
and an alert for a rule on slow runs) and one that fails. ``write_demo_rules`` gives ``sentinel serve
--demo`` rules on those procedures, so its alert deliveries have something to show.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec

SLOW_FACTOR = 2.5
SPREAD = 0.04  # standard deviation, as a share of the mean
DEMO_TARGET = "http://127.0.0.1:9/sentinel-demo"  # the discard port: deliveries fail and are retried, visibly


@dataclass(frozen=True, slots=True)
class Profile:
    process_type: str
    process_name: str
    package_name: str
    procedure_name: str
    mean_ms: int


PROFILES: tuple[Profile, ...] = (
    Profile("BILLING", "close_day", "PKG_BILLING", "CLOSE_DAY", 1_200),
    Profile("ETL", "load_orders", "PKG_LOADER", "LOAD_ORDERS", 3_000),
    Profile("REPORT", "daily_sales", "PKG_REPORTS", "DAILY_SALES", 800),
)


def _ts(moment: datetime) -> str:
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")


def _run(
    tenant: str, pid: str, profile: Profile, start: datetime, duration_ms: float, outcome: str
) -> Iterator[dict[str, Any]]:
    def event(kind: str, at: datetime, **fields: Any) -> dict[str, Any]:
        return {
            "event_id": uuid.uuid4().hex,
            "event_type": kind,
            "process_id": pid,
            "tenant_id": tenant,
            "timestamp": _ts(at),
            **fields,
        }

    yield event(
        "STARTED",
        start,
        process_type=profile.process_type,
        process_name=profile.process_name,
        package_name=profile.package_name,
        procedure_name=profile.procedure_name,
    )
    end = start + timedelta(milliseconds=duration_ms)
    yield event("PROGRESS", start + (end - start) / 2, step="main", percent=50.0)
    if outcome == "FAILED":
        yield event("ERROR", end, error_code="ORA-00060", error_message="deadlock detected while waiting for resource")
    else:
        yield event("COMPLETED", end, result={"profile": profile.procedure_name})


def profile_events(
    tenants: Sequence[str], runs: int, rnd: random.Random, prefix: str, now: datetime | None = None
) -> Iterator[dict[str, Any]]:
    """Per tenant and profile: ``runs`` normal runs, one slow run and one failed run, all ended by ``now``."""
    now = now or datetime.now(UTC)
    for tenant in tenants:
        for profile in PROFILES:
            gap = timedelta(milliseconds=profile.mean_ms * 3)
            clock = now - gap * (runs + 3)
            for number in range(runs + 2):
                duration = max(1.0, rnd.gauss(profile.mean_ms, profile.mean_ms * SPREAD))
                outcome = "COMPLETED"
                if number == runs:
                    duration = profile.mean_ms * SLOW_FACTOR
                elif number == runs + 1:
                    outcome = "FAILED"
                pid = f"{prefix}-{profile.procedure_name.lower()}-{number:04d}"
                yield from _run(tenant, pid, profile, clock, duration, outcome)
                clock += gap


def encoded_profile_events(tenants: Sequence[str], runs: int, rnd: random.Random, prefix: str) -> Iterator[bytes]:
    encode = msgspec.json.encode
    for item in profile_events(tenants, runs, rnd, prefix):
        yield encode(item)


def write_demo_rules(directory: Path, tenants: Sequence[str]) -> Path:
    """A rules file (``SENTINEL_ALERT_RULES_FILE``) watching the profiles of every demo tenant."""
    rules = [
        {
            "id": f"demo-{tenant}",
            "tenant_id": tenant,
            "name": "demo: profiled procedures failed or ran slow",
            "conditions": ["FAILED", "slow"],
            "package_name": profile.package_name,
            "quiet_period_sec": 600,
            "target": {"kind": "slack", "url": DEMO_TARGET},
        }
        for tenant in tenants
        for profile in PROFILES[:1]
    ]
    path = directory / "demo-alert-rules.json"
    path.write_bytes(msgspec.json.encode({"rules": rules}))
    return path
