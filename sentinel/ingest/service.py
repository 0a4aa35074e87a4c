"""The ingest process: one consumer per embedded database, stopped cleanly by SIGTERM or SIGINT.

The single-consumer rule is enforced by an exclusive ``flock`` on a file in the data directory, so
it holds across processes and across ``sentinel serve`` instances: a second consumer waits as a
standby and takes over when the first exits or dies (the kernel drops the lock with the process).
"""

from __future__ import annotations

import fcntl
import logging
import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

from sentinel.alerts.service import start_alerts
from sentinel.config import Settings
from sentinel.ingest.worker import IngestWorker
from sentinel.store import Store, open_store
from sentinel.telemetry import metrics, tracing

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


def run_ingest(settings: Settings, store: Store | None = None) -> int:
    """Run the ingest consumer until SIGTERM/SIGINT. Returns the process exit status."""
    store = store or open_store(settings)
    stop = threading.Event()
    worker: list[IngestWorker] = []

    def on_signal(signum: int, frame: FrameType | None) -> None:
        log.info("signal %d: finishing the batch in flight", signum)
        stop.set()
        for w in worker:
            w.stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    metrics.record_build_info()
    tracing.configure_tracing()
    # On SQLite the lock makes this the database's only consumer; on Oracle (any number of replicas
    # consume one AQ queue) it is per pod and only tells /ready that the consumer is alive.
    try:
        with consumer_lock(settings.ingest_lock_path, stop) as acquired:
            if not acquired:
                return 0
            _run(store, settings, stop, worker)
    finally:
        store.close()
        tracing.shutdown()
    return 0


def _run(store: Store, settings: Settings, stop: threading.Event, holder: list[IngestWorker]) -> None:
    worker = IngestWorker(store, settings)
    progress = settings.ingest_progress_path
    worker.on_progress = lambda: record_progress(progress)
    record_progress(progress)  # a consumer that just took over has not stalled yet
    holder.append(worker)
    if stop.is_set():
        return
    sender = start_alerts(store, settings)  # status hook + the one alert sender of this database
    try:
        worker.run()
    finally:
        sender.stop()
