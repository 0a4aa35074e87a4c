"""The ingest worker: queue -> compiled core -> store, one committed batch at a time.

With a pipelined consumer (SQLite) a reader thread fetches and decodes the next messages into the
core's ring while the writer commits the previous batch; otherwise (Oracle AQ, whose dequeue belongs
to the writer's transaction) one thread fetches, builds and commits. Between batches the writer does
the housekeeping that must not race it: stall detection and log retention.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from opentelemetry import trace

from sentinel import _core
from sentinel.config import Settings
from sentinel.ingest.batching import BatchRing
from sentinel.store.base import Consumer, DeadLetterRow, QueuedMessage, Store, StoreError
from sentinel.telemetry import metrics

log = logging.getLogger("sentinel.ingest")
tracer = trace.get_tracer("sentinel.ingest")

STATS_INTERVAL = 2.0
SUMMARY_INTERVAL = 5.0
HOUSEKEEPING_INTERVAL = 1.0
PURGE_INTERVAL = 3600.0
MAX_BACKOFF = 5.0


def now_us() -> int:
    return time.time_ns() // 1000


@dataclass(slots=True)
class Decoded:
    """One fetched message after the core: its event, or why it was refused."""

    message: QueuedMessage
    event: Any
    code: str | None = None
    reason: str | None = None


def decode_messages(messages: Sequence[QueuedMessage]) -> list[Decoded]:
    events, rejects = _core.decode_batch([message.payload for message in messages])
    out: list[Decoded] = []
    event_iter = iter(events)
    reject_iter = iter(rejects)
    next_reject = next(reject_iter, None)
    for index, message in enumerate(messages):
        if next_reject is not None and next_reject[0] == index:
            out.append(Decoded(message, None, next_reject[2], next_reject[3]))
            next_reject = next(reject_iter, None)
        else:
            out.append(Decoded(message, next(event_iter)))
    return out


class IngestWorker:
    def __init__(self, store: Store, settings: Settings, *, consumer: Consumer | None = None) -> None:
        self.store = store
        self.settings = settings
        self.consumer = consumer or store.consumer()
        self.builder = _core.BatchBuilder(retain=max(4096, settings.batch_size * 2))
        self.batch_size = settings.batch_size
        self.flush_interval = settings.flush_interval_ms / 1000
        self.ring = BatchRing(capacity=settings.batch_size * 2)
        self._stop = threading.Event()
        self._reader_error: BaseException | None = None
        self._next_housekeeping = 0.0
        self._next_purge = 0.0
        self._next_stats = 0.0
        self._next_summary = time.monotonic() + SUMMARY_INTERVAL
        self._window = [0, 0, 0]  # events stored, dead letters, duplicates since the last summary
        self.batches = 0
        self.healthy = True
        self.last_batch_at = time.monotonic()

    # lifecycle ------------------------------------------------------------------------------
    def stop(self) -> None:
        """Ask the worker to finish: the batch in flight commits (or rolls back), nothing else starts."""
        self._stop.set()
        self.ring.close()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def run(self) -> None:
        """Run until ``stop()``; returns after the last batch has committed or rolled back."""
        log.info("ingest started (core=%s, batch=%d, flush=%.0fms, %s)", _core.IMPLEMENTATION,
                 self.batch_size, self.flush_interval * 1000,
                 "pipelined" if self.consumer.pipelined else "inline")
        try:
            if self.consumer.pipelined:
                reader = threading.Thread(target=self._read_loop, name="sentinel-ingest-reader", daemon=True)
                reader.start()
                try:
                    self._write_loop()
                finally:
                    self.stop()
                    reader.join()
                if self._reader_error is not None:
                    raise self._reader_error
            else:
                self._inline_loop()
        finally:
            self.consumer.close()
            log.info("ingest stopped after %d batches", self.batches)

    # pipelined: reader thread + writer ----------------------------------------------------------
    def _read_loop(self) -> None:
        backoff = 0.1
        while not self._stop.is_set():
            free = self.ring.wait_for_space(self.flush_interval)
            if free == 0:
                continue
            try:
                messages = self.consumer.fetch(min(free, self.batch_size), self.flush_interval)
            except StoreError as exc:
                log.error("dequeue failed, retrying in %.1fs: %s", backoff, exc)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF)
                continue
            except BaseException as exc:
                self._reader_error = exc
                self.stop()
                raise
            backoff = 0.1
            if messages:
                self.ring.put_many(decode_messages(messages))

    def _write_loop(self) -> None:
        backoff = 0.1
        while True:
            items = self.ring.take_batch(self.batch_size, self.flush_interval, timeout=HOUSEKEEPING_INTERVAL)
            if items:
                if self._process([item.message for item in items], items):
                    backoff = 0.1
                else:
                    self._stop.wait(backoff)
                    backoff = min(backoff * 2, MAX_BACKOFF)
            if self._stop.is_set():
                return
            self._housekeeping()

    # inline: fetch, build and commit in one transaction ------------------------------------------
    def _inline_loop(self) -> None:
        backoff = 0.1
        while not self._stop.is_set():
            try:
                messages = self.consumer.fetch(self.batch_size, self.flush_interval)
            except StoreError as exc:
                log.error("dequeue failed, retrying in %.1fs: %s", backoff, exc)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF)
                continue
            if messages and not self._process(messages, decode_messages(messages)):
                self._stop.wait(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF)
                continue
            backoff = 0.1
            self._housekeeping()

    # one batch ------------------------------------------------------------------------------------
    def _process(self, messages: list[QueuedMessage], decoded: list[Decoded]) -> bool:
        started = time.perf_counter()
        stamp = now_us()
        events = [item.event for item in decoded if item.event is not None]
        dead = [
            DeadLetterRow(item.code or "", item.reason or "", item.message.payload, item.message.enqueued_at, stamp)
            for item in decoded
            if item.event is None
        ]
        with tracer.start_as_current_span("ingest.batch") as span:
            span.set_attribute("sentinel.batch.messages", len(messages))
            try:
                seen = self.consumer.seen([(event.tenant_id, event.event_id) for event in events]) if events else set()
                batch = self.builder.build(events, seen, stamp)
                outcome = self.consumer.commit(messages, batch, dead)
            except StoreError as exc:
                self.consumer.rollback(messages)
                metrics.BATCH_FAILURES.inc()
                span.set_attribute("sentinel.batch.outcome", "rolled_back")
                span.record_exception(exc)
                log.error("batch of %d rolled back: %s", len(messages), exc)
                self.healthy = False
                return False
            span.set_attribute("sentinel.batch.outcome", "committed")
            span.set_attribute("sentinel.batch.events", batch.accepted)
            span.set_attribute("sentinel.batch.dead_letters", outcome.dead_letters)
            span.set_attribute("sentinel.batch.duplicates", batch.duplicates)
        self.healthy = True
        self.batches += 1
        self.last_batch_at = time.monotonic()
        elapsed = time.perf_counter() - started
        metrics.BATCH_SIZE.observe(len(messages))
        metrics.BATCH_DURATION.observe(elapsed)
        for kind, count in enumerate(batch.counts):
            if count:
                metrics.EVENTS_INGESTED.labels(_core.EVENT_TYPES[kind]).inc(count)
        self._window[0] += batch.accepted
        self._window[1] += len(dead)
        self._window[2] += batch.duplicates
        if batch.duplicates:
            metrics.EVENTS_DUPLICATE.inc(batch.duplicates)
        if dead:
            metrics.DEAD_LETTERS.inc(outcome.dead_letters)
            for row in dead:
                metrics.EVENTS_REJECTED.labels(row.code).inc()
        return True

    # housekeeping ---------------------------------------------------------------------------------
    def _housekeeping(self) -> None:
        now = time.monotonic()
        try:
            if now >= self._next_housekeeping:
                self._next_housekeeping = now + HOUSEKEEPING_INTERVAL
                idle_before = now_us() - self.settings.heartbeat_timeout_sec * 1_000_000
                stalled = self.store.mark_stalled(idle_before, now_us())
                if stalled:
                    metrics.STALLED_MARKED.inc(stalled)
                    log.info("%d process(es) marked STALLED", stalled)
            if now >= self._next_purge:
                self._next_purge = now + PURGE_INTERVAL
                cutoff = now_us() - self.settings.log_retention_days * 86_400 * 1_000_000
                logs, keys = self.store.purge(cutoff, cutoff)
                if logs:
                    metrics.LOGS_PURGED.inc(logs)
                if logs or keys:
                    log.info("retention: %d log rows and %d dedupe keys purged", logs, keys)
            if now >= self._next_stats:
                self._next_stats = now + STATS_INTERVAL
                self.publish_stats()
        except StoreError as exc:
            log.error("housekeeping failed: %s", exc)

    def publish_stats(self) -> None:
        """Refresh the queue and process gauges; every few seconds of activity, say what happened."""
        stats = self.store.queue_stats()
        metrics.QUEUE_DEPTH.set(stats.depth)
        lag = 0.0 if stats.oldest_enqueued_at is None else max(0.0, (now_us() - stats.oldest_enqueued_at) / 1e6)
        metrics.INGEST_LAG.set(lag)
        counts = self.store.process_counts()
        for status in ("RUNNING", "STALLED", "COMPLETED", "FAILED", "CANCELLED"):
            metrics.PROCESSES.labels(status).set(counts.get(status, 0))
        now = time.monotonic()
        if now >= self._next_summary:
            self._next_summary = now + SUMMARY_INTERVAL
            stored, dead, dupes = self._window
            if stored or dead or dupes:
                self._window = [0, 0, 0]
                log.info(
                    "ingested %d events (%d dead-lettered, %d duplicates); queue %d, lag %.2fs; processes: %s",
                    stored, dead, dupes, stats.depth, lag,
                    ", ".join(f"{n} {s.lower()}" for s, n in sorted(counts.items())) or "none",
                )
