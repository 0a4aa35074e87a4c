"""Where the processes of one server share their metrics. Kept apart from ``metrics`` on purpose:
importing prometheus-client's metrics in multiprocess mode opens files in the directory at once, so
the supervisor must prepare the directory without importing them."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def prepare_multiprocess_dir(path: Path) -> None:
    """Start every run from an empty directory: files left by dead processes would be summed in."""
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    os.environ[MULTIPROC_ENV] = str(path)
