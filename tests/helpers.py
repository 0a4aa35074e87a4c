"""Shared helpers for the store, ingest and CLI tests: events, the real worker, the real command."""

from __future__ import annotations

import itertools
import os
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec

from sentinel._core import EVENT_TYPES, PRIORITIES
from sentinel.config import Settings, load_settings
from sentinel.ingest.worker import IngestWorker

# Every timestamp of a test is an offset from this moment (whole seconds, UTC), so expected values are exact.
BASE = datetime.now(UTC).replace(microsecond=0)
BASE_US = int(BASE.timestamp()) * 1_000_000

PRIORITY = dict(zip(EVENT_TYPES, PRIORITIES, strict=True))
DEFAULT_PRIORITY = 5

_counter = itertools.count()
_encoder = msgspec.json.Encoder()


def make_settings(data_dir: Path, **extra: str) -> Settings:
    """Settings for a test: small batches, a short flush interval, data in ``data_dir``."""
    env = {
        "SENTINEL_DATA_DIR": str(data_dir),
        "SENTINEL_BATCH_SIZE": "100",
        "SENTINEL_FLUSH_INTERVAL_MS": "10",
        # Long enough that the worker's own housekeeping never marks a test's process STALLED behind its
        # back; stall detection is driven explicitly (mark_stalled) or end-to-end with a 1 s timeout.
        "SENTINEL_HEARTBEAT_TIMEOUT_SEC": "3600",
    }
    env.update(extra)
    return load_settings(env)


def ts(seconds_offset: float = 0.0) -> str:
    """RFC 3339 (UTC, ``Z``) for ``BASE + seconds_offset``."""
    moment = BASE + timedelta(seconds=seconds_offset)
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")


def us(seconds_offset: float = 0.0) -> int:
    """``BASE + seconds_offset`` as integer microseconds since the epoch."""
    return BASE_US + round(seconds_offset * 1_000_000)


def at(seconds_offset: float = 0.0) -> datetime:
    """``BASE + seconds_offset`` as an aware datetime (what the status document holds)."""
    return BASE + timedelta(seconds=seconds_offset)


def new_id(prefix: str = "e") -> str:
    return f"{prefix}-{next(_counter)}-{uuid.uuid4().hex[:12]}"


def event(**overrides: Any) -> dict[str, Any]:
    """A valid event (HEARTBEAT unless told otherwise) with a unique ``event_id``.

    ``offset=<seconds>`` is a shortcut for ``timestamp=ts(offset)``; a field set to ``None`` is left out."""
    offset = overrides.pop("offset", 0.0)
    body: dict[str, Any] = {
        "event_id": new_id(),
        "event_type": "HEARTBEAT",
        "process_id": "proc-1",
        "tenant_id": "acme",
        "timestamp": ts(offset),
    }
    if overrides.get("event_type") == "LOG":
        body.update(level="INFO", message="a log line")
    body.update(overrides)
    return {key: value for key, value in body.items() if value is not None}


def encode(item: Mapping[str, Any] | bytes) -> bytes:
    """A queue payload: dicts as compact JSON, bytes as they are."""
    if isinstance(item, bytes | bytearray):
        return bytes(item)
    return _encoder.encode(item)


def priority_for(item: Mapping[str, Any] | bytes) -> int:
    """The priority a producer gives a message (errors first); unreadable messages get the default."""
    if isinstance(item, Mapping):
        return PRIORITY.get(item.get("event_type"), DEFAULT_PRIORITY)  # type: ignore[arg-type]
    return DEFAULT_PRIORITY


def enqueue(store: Any, items: Iterable[Mapping[str, Any] | bytes], priorities: Iterable[int] | None = None) -> int:
    items = list(items)
    prios = [priority_for(item) for item in items] if priorities is None else list(priorities)
    return int(store.enqueue([encode(item) for item in items], prios))


def run_worker_until_idle(
    store: Any, settings: Settings, timeout: float = 60.0, no_progress: float = 5.0, settle: float = 0.01
) -> IngestWorker:
    """Run a real ``IngestWorker`` in a thread until the queue is empty (a batch leaves the queue in the
    commit that stores its effects, so an empty queue means everything fetched has been committed),
    then stop it and join. Raises if the worker fails, if the queue depth does not move for
    ``no_progress`` seconds, or if it is not empty within ``timeout``."""
    worker = IngestWorker(store, settings)
    failure: list[BaseException] = []

    def target() -> None:
        try:
            worker.run()
        except BaseException as exc:  # re-raised in the test thread
            failure.append(exc)

    thread = threading.Thread(target=target, name="test-ingest-worker", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    last_depth, last_change = -1, time.monotonic()
    try:
        while True:
            if failure:
                raise AssertionError(f"ingest worker failed: {failure[0]!r}") from failure[0]
            if not thread.is_alive():
                raise AssertionError("ingest worker stopped on its own before the queue was empty")
            depth = store.queue_stats().depth
            if depth == 0:
                break
            now = time.monotonic()
            if depth != last_depth:
                last_depth, last_change = depth, now
            elif now - last_change > no_progress:
                raise TimeoutError(f"ingest stuck: queue depth stayed at {depth} for {no_progress}s")
            if now > deadline:
                raise TimeoutError(f"queue not drained within {timeout}s (depth {depth})")
            time.sleep(0.005)
        time.sleep(settle)
    finally:
        worker.stop()
        thread.join(timeout)
    if thread.is_alive():
        raise TimeoutError(f"ingest worker did not stop within {timeout}s")
    if failure:
        raise AssertionError(f"ingest worker failed: {failure[0]!r}") from failure[0]
    return worker


def base_env(data_dir: Path, **extra: str) -> dict[str, str]:
    """The environment for a ``sentinel`` subprocess: no inherited SENTINEL_/ORACLE_/OAUTH2_ settings."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("SENTINEL_", "ORACLE_", "OAUTH2_", "POOL_", "OTEL_"))
    }
    # Keep the core selection of the test run (compiled or the pure-Python twin).
    if os.environ.get("SENTINEL_NO_EXTENSIONS"):
        env["SENTINEL_NO_EXTENSIONS"] = os.environ["SENTINEL_NO_EXTENSIONS"]
    env["SENTINEL_DATA_DIR"] = str(data_dir)
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def sentinel_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "sentinel", *args]


def sentinel_cmd(
    *args: str, env: Mapping[str, str], input: bytes | None = None, timeout: float = 60.0
) -> subprocess.CompletedProcess[bytes]:
    """Run ``python -m sentinel ARGS`` to completion and capture its output. ``env`` must name
    ``SENTINEL_DATA_DIR`` (see :func:`base_env`)."""
    assert "SENTINEL_DATA_DIR" in env, "sentinel_cmd needs SENTINEL_DATA_DIR in env"
    return subprocess.run(
        sentinel_argv(*args), env=dict(env), input=input, capture_output=True, timeout=timeout, check=False
    )


def sentinel_popen(*args: str, env: Mapping[str, str], stderr_path: Path) -> subprocess.Popen[bytes]:
    """Start ``python -m sentinel ARGS`` in the background, stderr to a file the test reads while it runs."""
    with open(stderr_path, "ab") as err:
        return subprocess.Popen(
            sentinel_argv(*args),
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )


def read_only(db_path: Path) -> sqlite3.Connection:
    """A read-only connection to an embedded database another process writes."""
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=10.0, isolation_level=None)
    conn.execute("PRAGMA busy_timeout = 10000")
    return conn


def scalar(db_path: Path, sql: str, params: tuple[Any, ...] = ()) -> Any:
    conn = read_only(db_path)
    try:
        return conn.execute(sql, params).fetchone()[0]
    finally:
        conn.close()


def queue_depth(db_path: Path) -> int:
    return int(scalar(db_path, "SELECT COUNT(*) FROM queue"))


def wait_for(predicate: Any, timeout: float, what: str, interval: float = 0.01) -> Any:
    """Poll ``predicate`` until it returns something truthy; raise ``TimeoutError`` naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def decode_json(raw: Any) -> Any:
    """A ``msgspec.Raw`` (or None) from a status document or log entry, as Python data."""
    return None if raw is None else msgspec.json.decode(bytes(raw))
