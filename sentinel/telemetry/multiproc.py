"""Where the processes of one server share their metrics. Kept apart from ``metrics`` on purpose:
importing prometheus-client's metrics in multiprocess mode opens files in the directory at once, so
the supervisor must prepare the directory without importing them."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import cast

from prometheus_client import multiprocess

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# The files of live-mode gauges (livesum, liveall, ...), which prometheus-client's mark_process_dead removes.
_LIVE_GAUGE_FILE = re.compile(r"^gauge_live[a-z]+_(\d+)\.db$")


def prepare_multiprocess_dir(path: Path) -> None:
    """Start every run from an empty directory: files left by dead processes would be summed in."""
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    os.environ[MULTIPROC_ENV] = str(path)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def retire_dead_processes(path: Path, alive: Callable[[int], bool] = pid_alive) -> list[int]:
    """Retire the live gauges (``livesum`` and the other ``live*`` modes) of every process that wrote to
    ``path`` and has exited, so sums over live processes stay right; returns the pids newly retired.
    Counters and histograms of dead processes stay: their counts happened."""
    found = {int(m.group(1)) for name in os.listdir(path) if (m := _LIVE_GAUGE_FILE.match(name))}
    retired = [pid for pid in sorted(found) if not alive(pid)]
    for pid in retired:
        # prometheus_client ships py.typed but leaves this function unannotated: cast to its signature.
        cast("Callable[[int, str], None]", multiprocess.mark_process_dead)(pid, str(path))
    return retired
