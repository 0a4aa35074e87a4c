"""The ingest consumer's lock and progress mark: how a consumer claims its database, and how the API's
``/ready`` tells, from outside, that one runs and progresses (without importing the consumer).

The single-consumer rule is enforced by an exclusive ``flock`` on a file in the data directory, so
it holds across processes and across ``sentinel serve`` instances: a second consumer waits as a
standby and takes over when the first exits or dies (the kernel drops the lock with the process).
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

log = logging.getLogger("sentinel.ingest")


def record_progress(path: Path) -> None:
    """Mark the consumer as progressing now (the file's modification time is the mark)."""
    path.touch()


def progress_age(path: Path, now: float) -> float | None:
    """Seconds since the consumer last progressed (``now`` from ``time.time()``); None if never recorded."""
    try:
        return max(0.0, now - path.stat().st_mtime)
    except FileNotFoundError:
        return None


def consumer_is_running(path: Path) -> bool:
    """True while some process holds the consumer lock (a shared lock cannot be had then)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


@contextmanager
def consumer_lock(path: Path, stop: threading.Event, poll: float = 0.5) -> Iterator[bool]:
    """Hold the consumer lock; yields False if ``stop`` was set before it could be taken."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        announced = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not announced:
                    log.info("another ingest consumer holds %s; waiting as standby", path)
                    announced = True
                if stop.wait(poll):
                    yield False
                    return
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield True
    finally:
        os.close(fd)
