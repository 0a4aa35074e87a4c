"""Realistic traffic: processes that start, report progress and logs, send heartbeats and end.

Each process runs a few steps; most complete, some fail, a few are cancelled. Events of different
processes interleave, and a small share arrive late, twice, or broken, as they do from real
producers, so a run exercises out-of-order arrival, dedupe and dead letters too.
"""

from __future__ import annotations

import random
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TextIO

import msgspec

from sentinel import _core
from sentinel._core._shared import DEFAULT_PRIORITY
from sentinel.client._ids import event_id as new_event_id

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

PROCESS_TYPES = ("BATCH", "ETL", "REPORT", "SYNC", "BILLING")
PACKAGES = ("PKG_LOADER", "PKG_BILLING", "PKG_REPORTS", "PKG_SYNC")
STEPS = ("extract", "validate", "transform", "load", "reconcile", "publish")
COMPONENTS = ("loader", "validator", "writer", "scheduler")


@dataclass(slots=True)
class SimulationConfig:
    processes: int = 100
    tenants: tuple[str, ...] = ("acme",)
    steps: tuple[int, int] = (3, 6)
    logs_per_step: tuple[int, int] = (1, 4)
    failure_rate: float = 0.15
    cancel_rate: float = 0.05
    duplicate_rate: float = 0.01
    invalid_rate: float = 0.0
    late_rate: float = 0.02
    concurrency: int = 50
    seed: int | None = None
    prefix: str = ""
    profile_runs: int = 0  # runs per procedure of sentinel.simulate_profiles sent first (baselines demo)


def _ts(moment: datetime) -> str:
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")


def _process_events(rnd: random.Random, cfg: SimulationConfig, tenant: str, pid: str) -> Iterator[dict[str, Any]]:
    def event(kind: str, **fields: Any) -> dict[str, Any]:
        # No timestamp yet: ``generate`` stamps each event with the moment it is produced.
        # Time-ordered (UUIDv7, as the Python client makes them): the dedupe index appends instead of
        # scattering its inserts over the whole tree.
        return {"event_id": new_event_id(), "event_type": kind, "process_id": pid, "tenant_id": tenant, **fields}

    package = rnd.choice(PACKAGES)
    yield event(
        "STARTED",
        process_name=f"{package.lower()}_{pid[-4:]}",
        process_type=rnd.choice(PROCESS_TYPES),
        package_name=package,
        procedure_name=rnd.choice(("RUN", "EXECUTE", "PROCESS_ALL")),
        correlation_id=uuid.uuid4().hex[:16],
        metadata={"host": f"db{rnd.randint(1, 4)}", "attempt": 1},
    )
    steps = rnd.randint(*cfg.steps)
    outcome = rnd.random()
    fail_at = rnd.randint(1, steps) if outcome < cfg.failure_rate else None
    cancel_at = rnd.randint(1, steps) if fail_at is None and outcome < cfg.failure_rate + cfg.cancel_rate else None
    for number in range(1, steps + 1):
        step = STEPS[(number - 1) % len(STEPS)]
        yield event("PROGRESS", step=step, percent=round(100 * (number - 1) / steps, 1))
        for _ in range(rnd.randint(*cfg.logs_per_step)):
            yield event(
                "LOG",
                level=rnd.choices(("DEBUG", "INFO", "WARN"), (2, 6, 1))[0],
                message=f"{step}: processed {rnd.randint(10, 50_000)} rows",
                component=rnd.choice(COMPONENTS),
                details={"step": number, "batch": rnd.randint(1, 99)},
                trace_id=uuid.uuid4().hex,
                span_id=uuid.uuid4().hex[:16],
                duration_us=rnd.randint(100, 5_000_000),
            )
        yield event("HEARTBEAT", message=f"alive in {step}")
        if number == fail_at:
            yield event("LOG", level="ERROR", message=f"{step} failed: ORA-01555 snapshot too old", component="writer")
            yield event(
                "ERROR",
                error_code="ORA-01555",
                error_message="snapshot too old",
                stack_trace=f'ORA-06512: at "{package}.RUN", line {rnd.randint(10, 900)}',
            )
            return
        if number == cancel_at:
            yield event("CANCELLED", reason="cancelled by operator")
            return
    yield event("COMPLETED", result={"rows": rnd.randint(1000, 10_000_000), "steps": steps})


def generate(cfg: SimulationConfig, ended: Callable[[], None] | None = None) -> Iterator[bytes]:
    """The raw messages of one run, interleaved across ``cfg.concurrency`` live processes; ``ended`` is
    called as each process has yielded its last event.

    Every event is stamped with the time it is produced (strictly increasing, so the events of a
    process keep their order); a late event keeps its stamp and is only sent later."""
    rnd = random.Random(cfg.seed)
    encode = msgspec.json.encode
    last_us = 0

    def stamp() -> str:
        nonlocal last_us
        last_us = max(time.time_ns() // 1000, last_us + 1)
        return _ts(_EPOCH + timedelta(microseconds=last_us))

    pending = iter(range(cfg.processes))
    live: list[Iterator[dict[str, Any]]] = []
    late: list[bytes] = []
    prefix = cfg.prefix or uuid.uuid4().hex[:6]

    def admit() -> bool:
        number = next(pending, None)
        if number is None:
            return False
        tenant = cfg.tenants[number % len(cfg.tenants)]
        live.append(_process_events(rnd, cfg, tenant, f"{prefix}-{number:06d}"))
        return True

    if cfg.profile_runs:
        from sentinel.simulate_profiles import encoded_profile_events

        yield from encoded_profile_events(cfg.tenants, cfg.profile_runs, rnd, prefix)
    while len(live) < cfg.concurrency and admit():
        pass
    while live:
        index = rnd.randrange(len(live))
        item = next(live[index], None)
        if item is None:
            live.pop(index)
            if ended is not None:
                ended()
            admit()
            continue
        item["timestamp"] = stamp()
        payload = encode(item)
        if rnd.random() < cfg.invalid_rate:
            yield rnd.choice(
                (
                    payload[: len(payload) // 2],
                    encode({**item, "timestamp": "yesterday"}),
                    encode({**item, "event_type": "FINISHED"}),
                )
            )
            continue
        if rnd.random() < cfg.late_rate:
            late.append(payload)
        else:
            yield payload
        if rnd.random() < cfg.duplicate_rate:
            yield payload
        if late and rnd.random() < 0.1:
            yield late.pop(rnd.randrange(len(late)))
    yield from late


def judge(payloads: Sequence[bytes]) -> tuple[list[int], list[tuple[int, str, str]]]:
    """What the ingest will make of these queue messages, judged by the same core: the queue priority
    of each (sentinel_pkg's rule, errors first; the default for a message the ingest will refuse) and
    ``(index, code, reason)`` of every message it will dead-letter."""
    events, rejects = _core.decode_batch(payloads)
    priorities = [DEFAULT_PRIORITY] * len(payloads)
    refused = {index for index, _, _, _ in rejects}
    valid = iter(events)
    for index in range(len(payloads)):
        if index not in refused:
            priorities[index] = next(valid).priority
    return priorities, [(index, code, reason) for index, _, code, reason in rejects]


def priority_of(payload: bytes) -> int:
    """The queue priority of one message (see :func:`judge`)."""
    return judge([payload])[0][0]


class ProgressBar:
    """A one-line progress bar on a terminal (or plain periodic lines elsewhere).

    The fraction is of processes ended, a total known exactly from the start (how many events a run
    sends is only known once it is over), so the bar never passes 100%; the events sent are counted
    beside it."""

    def __init__(self, processes: int, stream: TextIO = sys.stderr, label: str = "events") -> None:
        self.processes = processes
        self.ended = 0
        self.stream = stream
        self.label = label
        self.count = 0
        self.started = time.monotonic()
        self._last = 0.0
        self._tty = stream.isatty()

    def process_ended(self) -> None:
        self.ended = min(self.ended + 1, self.processes)

    def update(self, count: int) -> None:
        self.count += count
        now = time.monotonic()
        if now - self._last >= (0.1 if self._tty else 2.0):
            self._last = now
            self._draw(now)

    def _draw(self, now: float, end: str = "") -> None:
        rate = self.count / max(now - self.started, 1e-9)
        done = self.ended / self.processes if self.processes else 1.0
        bar = "#" * int(done * 30)
        line = (
            f"[{bar:<30}] {done:6.1%} {self.ended:,}/{self.processes:,} processes, "
            f"{self.count:,} {self.label} {rate:,.0f}/s"
        )
        if self._tty:
            self.stream.write("\r" + line + end)
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def close(self, finished: bool = True) -> None:
        """Draw the last state (every process ended when the run finished)."""
        if finished:
            self.ended = self.processes
        self._draw(time.monotonic(), end="\n" if self._tty else "")


def run(
    cfg: SimulationConfig,
    send: Callable[[list[bytes]], None],
    *,
    chunk: int = 500,
    rate: float = 0.0,
    progress: ProgressBar | None = None,
) -> int:
    """Send a run through ``send`` in chunks, at most ``rate`` messages per second (0: unlimited)."""
    sent = 0
    started = time.monotonic()
    buffer: list[bytes] = []
    for payload in generate(cfg, progress.process_ended if progress else None):
        buffer.append(payload)
        if len(buffer) >= chunk:
            send(buffer)
            sent += len(buffer)
            if progress:
                progress.update(len(buffer))
            buffer = []
            if rate > 0:
                ahead = sent / rate - (time.monotonic() - started)
                if ahead > 0:
                    time.sleep(ahead)
    if buffer:
        send(buffer)
        sent += len(buffer)
        if progress:
            progress.update(len(buffer))
    return sent
