"""Pure-Python twin of ``_ring_c``: a bounded FIFO with an enqueue stamp per slot.

Not thread-safe: each user (the ingest worker, the API's event producer) keeps its own, used from one thread."""

from __future__ import annotations

from typing import Any


class Ring:
    __slots__ = ("_head", "_items", "_size", "_stamps", "capacity")

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = capacity
        self._items: list[Any] = [None] * capacity
        self._stamps = [0.0] * capacity
        self._head = 0
        self._size = 0

    def __len__(self) -> int:
        return self._size

    @property
    def free(self) -> int:
        return self.capacity - self._size

    def push(self, item: Any, stamp: float) -> bool:
        """Append ``item``; ``False`` (and nothing stored) when the ring is full."""
        if self._size == self.capacity:
            return False
        slot = (self._head + self._size) % self.capacity
        self._items[slot] = item
        self._stamps[slot] = stamp
        self._size += 1
        return True

    def pop_many(self, limit: int) -> list[Any]:
        """Remove and return up to ``limit`` items, oldest first."""
        count = min(limit, self._size)
        out = []
        for _ in range(count):
            out.append(self._items[self._head])
            self._items[self._head] = None
            self._head = (self._head + 1) % self.capacity
        self._size -= count
        return out

    def oldest_stamp(self) -> float:
        """The stamp of the oldest item, or -1.0 when empty."""
        return self._stamps[self._head] if self._size else -1.0

    def clear(self) -> None:
        self.pop_many(self._size)
