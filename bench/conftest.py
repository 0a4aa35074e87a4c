"""Shared bench fixtures and the ratio summary printed after a run.

Benches report ratios measured in one run, so a slow or busy machine slows both sides alike:
compiled core / pure-Python twin, pipeline / raw store limit, Sentinel / baseline server.
"""

from __future__ import annotations

from typing import Any

import pytest

from sentinel.simulate import SimulationConfig, generate

RATIOS: list[tuple[str, float, str]] = []


def record_ratio(name: str, value: float, note: str = "") -> None:
    RATIOS.append((name, value, note))


@pytest.fixture(scope="session")
def payloads() -> list[bytes]:
    """A realistic mix: starts, progress, heartbeats, many logs, completions and failures."""
    cfg = SimulationConfig(processes=1200, seed=20261126, duplicate_rate=0.0, late_rate=0.02, concurrency=200)
    return list(generate(cfg))


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not RATIOS:
        return
    terminalreporter.section("Process Sentinel ratios (measured in this run)")
    for name, value, note in RATIOS:
        terminalreporter.write_line(f"{name:<58} {value:8.2f}x  {note}")
