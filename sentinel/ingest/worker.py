"""The ingest worker: queue -> compiled core -> store, one committed batch at a time.

Fetched messages are decoded at once and wait in the core's ring until a batch is cut: when it holds
``SENTINEL_BATCH_SIZE`` messages or its oldest is ``SENTINEL_FLUSH_INTERVAL_MS`` old. The ring is
bounded (what it holds is fetched but uncommitted), so a slow store holds the reader back instead of
growing memory. One thread does it all: decoding and batching hold the GIL, so a second thread would
only trade places with this one (measured: slower), while the store's I/O already releases it.
Between batches the worker does the housekeeping that must not race it: stalls and retention.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

from opentelemetry import trace

from sentinel import _core
from sentinel.config import Settings
from sentinel.models import now_us
from sentinel.store.base import Consumer, DeadLetterRow, DuplicateKeys, QueuedMessage, Store, StoreError
from sentinel.telemetry import metrics, tracing

log = logging.getLogger("sentinel.ingest")
tracer = trace.get_tracer("sentinel.ingest")

STATS_INTERVAL = 2.0
SUMMARY_INTERVAL = 5.0
HOUSEKEEPING_INTERVAL = 1.0
PURGE_INTERVAL = 3600.0
MAX_BACKOFF = 5.0
MAX_REBUILDS = 3
PROGRESS_INTERVAL = 1.0


class Chunk(NamedTuple):
    """Messages from one fetch, decoded together: their valid events and the rejects
    ``(index, raw, code, reason)``. The ring holds chunks, so the hot path makes no object per message."""

    messages: list[QueuedMessage]
    events: list[Any]
    rejects: list[tuple[int, bytes, str, str]]


def decode_chunk(messages: list[QueuedMessage]) -> Chunk:
    events, rejects = _core.decode_batch([message[1] for message in messages])
    return Chunk(messages, events, rejects)


@dataclass
class _Window:
    """What the periodic summary line reports: counts since the previous one."""

    stored: int = 0  # events stored
    dead: int = 0  # dead-lettered
    duplicates: int = 0


class IngestWorker:
    def __init__(self, store: Store, settings: Settings, *, consumer: Consumer | None = None) -> None:
        self.store = store
        self.settings = settings
        self.consumer = consumer or store.consumer()
        self.builder = _core.BatchBuilder(retain=max(4096, settings.batch_size * 2))
        self.batch_size = settings.batch_size
        self.flush_interval = settings.flush_interval_ms / 1000
        # Chunks, never more than a batch's worth of messages (``pending`` counts those).
        self.ring = _core.Ring(settings.batch_size)
        self.pending = 0
        self._stopping = False
        self._last_stamp = 0
        self._next_housekeeping = 0.0
        self._next_purge = 0.0
        self._next_stats = 0.0
        self._next_summary = time.monotonic() + SUMMARY_INTERVAL
        self._window = _Window()  # since the last summary
        self.batches = 0
        self.messages_done = 0
        self.healthy = True
        self.last_batch_at = time.monotonic()
        # Told (at most every PROGRESS_INTERVAL) that the worker committed a batch or found nothing to
        # fetch; ``sentinel ingest`` records it where /ready can judge a frozen or stuck consumer.
        self.on_progress: Callable[[], None] | None = None
        self._next_progress = 0.0

    # lifecycle ------------------------------------------------------------------------------
    def stop(self) -> None:
        """Ask the worker to finish: the batch in flight commits (or rolls back), nothing else starts.
        Safe from a signal handler or another thread."""
        self._stopping = True

    @property
    def stopping(self) -> bool:
        return self._stopping

    def run(self) -> None:
        """Run until ``stop()``; returns after the last batch has committed or rolled back."""
        log.info(
            "ingest started (core=%s, batch=%d, flush=%.0fms)",
            _core.IMPLEMENTATION,
            self.batch_size,
            self.flush_interval * 1000,
        )
        try:
            self._loop()
        finally:
            leftover = self.ring.pop_many(len(self.ring))
            if leftover:
                # Never committed: still in the source queue, handed back for the next consumer.
                self.consumer.rollback([m for chunk in leftover for m in chunk.messages])
            self.consumer.close()
            log.info("ingest stopped after %d batches", self.batches)

    def _loop(self) -> None:
        ring = self.ring
        backoff = 0.1
        while not self._stopping:
            room = self.batch_size - self.pending
            if room > 0:
                age = time.monotonic() - ring.oldest_stamp() if len(ring) else 0.0
                try:
                    messages = self.consumer.fetch(room, max(0.0, self.flush_interval - age))
                except StoreError as exc:
                    log.error("dequeue failed, retrying in %.1fs: %s", backoff, exc)
                    time.sleep(backoff)
                    backoff = min(backoff * 2, MAX_BACKOFF)
                    continue
                if messages:
                    ring.push(decode_chunk(messages), time.monotonic())
                    self.pending += len(messages)
                elif not self.pending:
                    self._progress()  # caught up: nothing waits for this consumer
            if self.pending and (
                self.pending >= self.batch_size or time.monotonic() - ring.oldest_stamp() >= self.flush_interval
            ):
                chunks: list[Chunk] = ring.pop_many(len(ring))
                self.pending = 0
                if self._process(chunks):
                    backoff = 0.1
                    self._progress()
                else:
                    time.sleep(backoff)
                    backoff = min(backoff * 2, MAX_BACKOFF)
            self._housekeeping()

    # one batch ------------------------------------------------------------------------------------
    def _stamp(self) -> int:
        """Ingest time of a batch, strictly increasing so a batch's dedupe keys are told apart from
        every earlier batch's (see ``DuplicateKeys``)."""
        self._last_stamp = max(now_us(), self._last_stamp + 1)
        return self._last_stamp

    def _process(self, chunks: list[Chunk]) -> bool:
        started = time.perf_counter()
        stamp = self._stamp()
        if len(chunks) == 1:
            messages, events = chunks[0].messages, chunks[0].events
        else:
            messages = [m for chunk in chunks for m in chunk.messages]
            events = [e for chunk in chunks for e in chunk.events]
        dead = [
            DeadLetterRow(code, reason, raw, chunk.messages[index].enqueued_at, stamp)
            for chunk in chunks
            for index, raw, code, reason in chunk.rejects
        ]
        links = tracing.event_links(events) if tracing.enabled() else None
        with tracer.start_as_current_span("ingest.batch", links=links) as span:
            span.set_attribute("sentinel.batch.messages", len(messages))
            try:
                seen = (
                    self.consumer.claim_keys([(event.tenant_id, event.event_id) for event in events])
                    if events
                    else set()
                )
                for attempt in range(MAX_REBUILDS + 1):
                    batch = self.builder.build(events, seen, stamp)
                    try:
                        with tracing.db_span("commit_batch", self.store.backend):
                            outcome = self.consumer.commit(messages, batch, dead)
                        break
                    except DuplicateKeys as repeats:
                        if attempt == MAX_REBUILDS:
                            raise StoreError("dedupe keys kept changing under the batch") from repeats
                        seen = set(seen) | repeats.keys
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
        self.messages_done += len(messages)
        self.last_batch_at = time.monotonic()
        elapsed = time.perf_counter() - started
        metrics.BATCH_SIZE.observe(len(messages))
        metrics.BATCH_DURATION.observe(elapsed)
        for kind, count in enumerate(batch.counts):
            if count:
                metrics.EVENTS_INGESTED.labels(_core.EVENT_TYPES[kind]).inc(count)
        self._window.stored += batch.accepted
        self._window.dead += len(dead)
        self._window.duplicates += batch.duplicates
        if batch.duplicates:
            metrics.EVENTS_DUPLICATE.inc(batch.duplicates)
        if dead:
            metrics.DEAD_LETTERS.inc(outcome.dead_letters)
            for row in dead:
                metrics.EVENTS_REJECTED.labels(row.code).inc()
        return True

    def _progress(self) -> None:
        now = time.monotonic()
        if self.on_progress is not None and now >= self._next_progress:
            self._next_progress = now + PROGRESS_INTERVAL
            try:
                self.on_progress()
            except OSError as exc:
                log.error("could not record ingest progress: %s", exc)

    # housekeeping ---------------------------------------------------------------------------------
    def _housekeeping(self) -> None:
        now = time.monotonic()
        try:
            # Not while fetched messages wait in the ring: their processes are not stored yet. The
            # store's sweep also leaves alone every process whose message waits in the queue.
            if now >= self._next_housekeeping and not self.pending:
                self._next_housekeeping = now + HOUSEKEEPING_INTERVAL
                idle_before = now_us() - self.settings.heartbeat_timeout_sec * 1_000_000
                stalled = self.store.mark_stalled(idle_before, self._stamp())
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
        lag = metrics.record_queue(stats.depth, stats.oldest_enqueued_at, now_us())
        counts = self.store.process_counts()
        for status in ("RUNNING", "STALLED", "COMPLETED", "FAILED", "CANCELLED"):
            metrics.PROCESSES.labels(status).set(counts.get(status, 0))
        now = time.monotonic()
        if now >= self._next_summary:
            self._next_summary = now + SUMMARY_INTERVAL
            window = self._window
            if window.stored or window.dead or window.duplicates:
                self._window = _Window()
                log.info(
                    "ingested %d events (%d dead-lettered, %d duplicates); queue %d, lag %.2fs; processes: %s",
                    window.stored,
                    window.dead,
                    window.duplicates,
                    stats.depth,
                    lag,
                    ", ".join(f"{n} {s.lower()}" for s, n in sorted(counts.items())) or "none",
                )
