"""Run-time baselines: how long each kind of process normally takes, and whether this run is out of line.

A baseline is kept per ``(tenant, process_type, process_name, package_name, procedure_name)`` from the
durations of its COMPLETED runs (``ended_at - started_at`` of the event timestamps). It holds the last
``SENTINEL_BASELINE_WINDOW`` durations (a bounded ring, oldest first) and the median, 90th and 99th
percentiles of that window, recomputed from the ring each time a run ends.

**The approximation** is the window alone: the statistics describe the last N completed runs, not all of
them (older runs fall out of the ring, so a process that got faster or slower is judged by its recent
runs). Within the window the quantiles are exact, by linear interpolation between closest ranks (the
"inclusive" method of ``statistics.quantiles``, NumPy's default, Oracle's ``PERCENTILE_CONT``), so both
stores give the same numbers. A run is counted once, when it first enters COMPLETED; a later terminal
event that turns it into FAILED or CANCELLED does not take it back out.

The update runs inside the transaction that stores the terminal status (see ``sentinel.alerts.engine``):
one primary-key read and one write per completed run, never a scan.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import msgspec

from sentinel.config import Settings
from sentinel.models import EtaBand, ProcessStatus, from_us, to_us

KEY_COLUMNS: Final = ("process_type", "process_name", "package_name", "procedure_name")


def quantile(ordered: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0..1) of ascending ``ordered`` by linear interpolation between closest ranks."""
    if not ordered:
        raise ValueError("no values")
    position = q * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


@dataclass(frozen=True, slots=True)
class BaselinePolicy:
    window: int = 100
    slow_factor: float = 1.5
    min_runs: int = 5

    @classmethod
    def from_settings(cls, settings: Settings) -> BaselinePolicy:
        return cls(settings.baseline_window, settings.slow_factor, settings.slow_min_runs)

    def slow_threshold_ms(self, runs: int | None, p90_ms: int | None) -> float | None:
        """Above this many milliseconds a run is slow; None while the baseline has too few runs."""
        if runs is None or p90_ms is None or runs < self.min_runs:
            return None
        return p90_ms * self.slow_factor


@dataclass(frozen=True, slots=True)
class Stats:
    runs: int
    samples: list[int]
    median_ms: int
    p90_ms: int
    p99_ms: int


def add_sample(samples: list[int], runs: int, duration_ms: int, window: int) -> Stats:
    """The baseline after one more completed run: the ring trimmed to ``window``, quantiles recomputed."""
    samples = [*samples, duration_ms][-window:]
    ordered = sorted(samples)
    return Stats(
        runs=runs + 1,
        samples=samples,
        median_ms=round(quantile(ordered, 0.5)),
        p90_ms=round(quantile(ordered, 0.9)),
        p99_ms=round(quantile(ordered, 0.99)),
    )


def baseline_key(
    process_type: str | None, name: str | None, package: str | None, procedure: str | None
) -> tuple[str, ...] | None:
    """The key columns ('' for absent), or None when the process names nothing to compare it with."""
    if not (process_type or name or package or procedure):
        return None
    return (process_type or "", name or "", package or "", procedure or "")


# -- reads: the status document -----------------------------------------------------------------------

# Appended to the process columns by the stores' status reads (see ``with_baselines``): the frozen verdict
# of an ended run and the current baseline of its key.
EXTRA_COLUMNS: Final = ("x.expected_ms", "x.slow_run", "b.runs", "b.median_ms", "b.p90_ms")
EXTRA_COUNT: Final = len(EXTRA_COLUMNS)


def with_baselines(select: str, order: str | None, absent: str) -> str:
    """A status read (``select``: process columns only, any filters, order and limit) wrapped so that each
    row also carries ``EXTRA_COLUMNS``: two primary-key lookups per row (its process row again, for the
    frozen verdict, and its baseline). ``order`` repeats the inner order over the aliases ``p``."""
    return (
        f"SELECT p.*, {', '.join(EXTRA_COLUMNS)} FROM ({select}) p"
        " JOIN processes x ON x.tenant_id = p.tenant_id AND x.process_id = p.process_id"
        f"{join_baselines(absent)}" + (f" ORDER BY {order}" if order else "")
    )


def outer_order(order: str) -> str:
    """An inner ``ORDER BY`` list (``last_seen_at DESC, process_id``) over the wrapping query's alias ``p``."""
    return ", ".join(f"p.{term.strip()}" for term in order.split(","))


def split_row(row: Sequence[Any]) -> tuple[Sequence[Any], Sequence[Any]]:
    return row[:-EXTRA_COUNT], row[-EXTRA_COUNT:]


def join_baselines(absent: str) -> str:
    """``LEFT JOIN`` of a process (alias ``p``) to its baseline (alias ``b``); ``absent`` is how the
    store writes a missing key part (SQLite '', Oracle ' ', as Oracle's '' is NULL)."""
    on = " AND ".join(f"b.{column} = COALESCE(p.{column}, '{absent}')" for column in KEY_COLUMNS)
    return f" LEFT JOIN baselines b ON b.tenant_id = p.tenant_id AND {on}"


def eta_band(started_us: int, median_ms: int, p90_ms: int, estimate: datetime | None, percent: float | None) -> EtaBand:
    """``started + median`` .. ``started + p90``, each moved toward the progress estimate by the share of
    the work reported done: at 0 % the baseline alone, near 100 % the progress estimate alone."""
    earliest = started_us + median_ms * 1000
    latest = started_us + p90_ms * 1000
    if estimate is not None and percent is not None:
        weight = min(max(percent / 100.0, 0.0), 1.0)
        guess = to_us(estimate)
        earliest = round(earliest + (guess - earliest) * weight)
        latest = round(latest + (guess - latest) * weight)
        earliest, latest = min(earliest, latest), max(earliest, latest)
    return EtaBand(earliest=from_us(earliest), latest=from_us(latest))


def apply(
    status: ProcessStatus, extra: Sequence[Any], policy: BaselinePolicy, now_us: int | None = None
) -> ProcessStatus:
    """Fill the baseline fields of a status document from the ``EXTRA_COLUMNS`` of its row."""
    expected_ms, slow_run, runs, median_ms, p90_ms = extra
    if status.ended_at is not None:
        status.expected_duration_ms = expected_ms
        status.slow = bool(slow_run)
        return status
    if median_ms is None:
        return status
    status.expected_duration_ms = median_ms
    started = status.started_at
    if started is None:
        return status
    started_us = to_us(started)
    status.eta_band = eta_band(started_us, median_ms, p90_ms, status.estimated_completion, status.progress_percent)
    threshold = policy.slow_threshold_ms(runs, p90_ms)
    if threshold is not None:
        now = time.time_ns() // 1000 if now_us is None else now_us
        status.slow = (now - started_us) / 1000 > threshold
    return status


# -- GET /baselines --------------------------------------------------------------------------------------


class Baseline(msgspec.Struct, kw_only=True):
    """Running statistics of one kind of process (see ``sentinel.baselines``)."""

    process_type: str | None
    process_name: str | None
    package_name: str | None
    procedure_name: str | None
    runs: int
    window: int
    median_ms: int
    p90_ms: int
    p99_ms: int
    last_duration_ms: int
    last_process_id: str
    last_ended_at: datetime
    updated_at: datetime


BASELINE_COLUMNS: Final = (
    *KEY_COLUMNS,
    "runs",
    "samples",
    "median_ms",
    "p90_ms",
    "p99_ms",
    "last_duration_ms",
    "last_process_id",
    "last_ended_at",
    "updated_at",
)


def baseline_from_row(row: Sequence[Any], absent: str, window_of: Any) -> Baseline:
    ptype, name, package, procedure, runs, samples, median, p90, p99, last, last_id, last_end, updated = row

    def part(value: str) -> str | None:
        return None if value in (absent, None) else value

    return Baseline(
        process_type=part(ptype),
        process_name=part(name),
        package_name=part(package),
        procedure_name=part(procedure),
        runs=runs,
        window=window_of(samples),
        median_ms=median,
        p90_ms=p90,
        p99_ms=p99,
        last_duration_ms=last,
        last_process_id=last_id,
        last_ended_at=from_us(last_end),
        updated_at=from_us(updated),
    )
