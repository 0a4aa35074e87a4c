"""Thread-safe batching around the core's ring: producers block when it is full (backpressure), the
consumer takes a batch once it holds ``batch_size`` items or its oldest item is ``flush_interval`` old."""

from __future__ import annotations

import threading
import time
from typing import Any

from sentinel import _core


class BatchRing:
    def __init__(self, capacity: int) -> None:
        self._ring = _core.Ring(capacity)
        self._cond = threading.Condition()
        self._closed = False

    @property
    def capacity(self) -> int:
        return int(self._ring.capacity)

    def __len__(self) -> int:
        return len(self._ring)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed

    def wait_for_space(self, timeout: float) -> int:
        """Block until there is room (or ``timeout`` passes, or the ring closes); returns free slots."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._ring.free == 0 and not self._closed:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
            return int(self._ring.free)

    def put_many(self, items: list[Any]) -> None:
        """Append every item, waiting for room as needed. After a close the rest are dropped: they were
        never committed, so they are still in the source queue."""
        index = 0
        with self._cond:
            while index < len(items):
                while self._ring.free == 0 and not self._closed:
                    self._cond.wait(0.1)
                if self._closed:
                    return
                now = time.monotonic()
                while index < len(items) and self._ring.push(items[index], now):
                    index += 1
                self._cond.notify_all()

    def take_batch(self, batch_size: int, flush_interval: float, timeout: float) -> list[Any]:
        """Wait for a full batch or a ripe partial one; an empty list after ``timeout`` or a close
        (what is left in a closed ring was never committed and stays in the source queue)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                size = len(self._ring)
                now = time.monotonic()
                if not self._closed and (size >= batch_size or (size and now - self._ring.oldest_stamp() >= flush_interval)):
                    items: list[Any] = self._ring.pop_many(batch_size)
                    self._cond.notify_all()
                    return items
                if self._closed or now >= deadline:
                    return []
                wait = deadline - now
                if size:
                    wait = min(wait, flush_interval - (now - self._ring.oldest_stamp()))
                self._cond.wait(max(wait, 0.0005))
