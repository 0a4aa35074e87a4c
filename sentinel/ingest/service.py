"""The ingest process: one consumer per embedded database (``sentinel.ingest.lock``), stopped cleanly by
SIGTERM or SIGINT."""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType

from sentinel.alerts.service import start_alerts
from sentinel.config import Settings
from sentinel.ingest.lock import consumer_lock, record_progress
from sentinel.ingest.worker import IngestWorker
from sentinel.store import Store, open_store
from sentinel.telemetry import metrics, tracing

log = logging.getLogger("sentinel.ingest")


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
