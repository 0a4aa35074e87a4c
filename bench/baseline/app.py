"""The baseline for ``bench/http_load.py``: the same three endpoints written the usual way.

FastAPI on uvicorn, pydantic models, a sqlite3 connection per request from a dependency, PyJWT verifying
the bearer token on every request. It reads and writes the same SQLite schema as Sentinel. Configured by
``BASELINE_DB`` (the database file) and ``BASELINE_PUBLIC_KEY`` (PEM of the token signing key).
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from fastapi import Depends, FastAPI, Header, HTTPException, Request
from pydantic import BaseModel

DB = os.environ.get("BASELINE_DB", "sentinel-data/sentinel.db")
PUBLIC_KEY = open(os.environ.get("BASELINE_PUBLIC_KEY", "public.pem")).read()  # noqa: SIM115
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
PRIORITY = {"ERROR": 1, "COMPLETED": 2, "CANCELLED": 2, "STARTED": 3, "PROGRESS": 4, "LOG": 5, "HEARTBEAT": 6}

app = FastAPI(title="baseline")


def db() -> Iterator[sqlite3.Connection]:
    # FastAPI runs sync dependencies and endpoints on different pool threads.
    conn = sqlite3.connect(DB, timeout=10, check_same_thread=False)
    try:
        yield conn
    finally:
        conn.close()


def tenant(authorization: str = Header(...)) -> str:
    try:
        claims = jwt.decode(
            authorization.removeprefix("Bearer "),
            PUBLIC_KEY,
            algorithms=["ES256"],
            audience="sentinel",
            issuer="sentinel-dev",
            leeway=30,
        )
    except jwt.PyJWTError:
        raise HTTPException(401, "invalid token") from None
    return str(claims["tenant_id"])


def ts(us: int | None) -> datetime | None:
    return None if us is None else EPOCH + timedelta(microseconds=us)


class Status(BaseModel):
    process_id: str
    tenant_id: str
    status: str
    process_name: str | None
    process_type: str | None
    package_name: str | None
    procedure_name: str | None
    correlation_id: str | None
    current_step: str | None
    progress_percent: float | None
    started_at: datetime | None
    last_seen_at: datetime | None
    ended_at: datetime | None
    error_code: str | None
    error_message: str | None
    result: dict[str, Any] | None
    metadata: dict[str, Any] | None
    event_count: int
    log_count: int


class Page(BaseModel):
    items: list[Status]
    next_cursor: str | None


class Event(BaseModel):
    event_id: str
    event_type: str
    process_id: str
    timestamp: datetime
    tenant_id: str | None = None
    model_config = {"extra": "allow"}


COLUMNS = (
    "process_id, tenant_id, status, process_name, process_type, package_name, procedure_name, "
    "correlation_id, current_step, progress_percent, started_at, last_seen_at, ended_at, error_code, "
    "error_message, result, metadata, event_count, log_count"
)


def to_status(row: tuple[Any, ...]) -> Status:
    fields = [c.strip() for c in COLUMNS.split(",")]
    data = dict(zip(fields, row, strict=True))
    for name in ("started_at", "last_seen_at", "ended_at"):
        data[name] = ts(data[name])
    for name in ("result", "metadata"):
        data[name] = json.loads(data[name]) if data[name] else None
    return Status(**data)


@app.get("/status/{process_id}")
def status(process_id: str, tenant_id: str = Depends(tenant), conn: sqlite3.Connection = Depends(db)) -> Status:
    row = conn.execute(
        f"SELECT {COLUMNS} FROM processes WHERE tenant_id = ? AND process_id = ?", (tenant_id, process_id)
    ).fetchone()
    if row is None:
        raise HTTPException(404, "no such process")
    return to_status(row)


@app.get("/processes")
def processes(limit: int = 50, tenant_id: str = Depends(tenant), conn: sqlite3.Connection = Depends(db)) -> Page:
    rows = conn.execute(
        f"SELECT {COLUMNS} FROM processes WHERE tenant_id = ? ORDER BY last_seen_at DESC, process_id LIMIT ?",
        (tenant_id, limit),
    ).fetchall()
    return Page(items=[to_status(r) for r in rows], next_cursor=None)


@app.post("/events", status_code=202)
async def events(request: Request, tenant_id: str = Depends(tenant)) -> dict[str, int]:
    body = await request.json()
    items = [Event(**item) for item in (body if isinstance(body, list) else [body])]
    now = time.time_ns() // 1000
    rows = []
    for item in items:
        if item.tenant_id not in (None, tenant_id):
            raise HTTPException(403, "foreign tenant")
        payload = item.model_dump(mode="json")
        payload["tenant_id"] = tenant_id
        rows.append((PRIORITY.get(item.event_type, 5), now, json.dumps(payload).encode()))
    conn = sqlite3.connect(DB, timeout=10)
    try:
        with conn:
            conn.executemany("INSERT INTO queue (priority, enqueued_at, payload) VALUES (?, ?, ?)", rows)
    finally:
        conn.close()
    return {"accepted": len(rows)}
