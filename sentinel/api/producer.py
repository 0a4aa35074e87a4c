"""HTTP ingest -> queue with group commit.

Concurrent ``POST /events`` requests park their validated payloads in the core's ring; one writer task
commits everything waiting in a single queue transaction while the next requests gather, so commits
(and their fsyncs) scale with time, not with requests. A request returns only once its transaction has
committed: "accepted" always means durably queued. A full ring makes new requests wait (backpressure)
and, past ``submit_timeout``, refuses them with ``Overloaded`` rather than queueing without bound.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence

from sentinel import _core
from sentinel.store.base import Store

log = logging.getLogger("sentinel.ingest")


class Overloaded(RuntimeError):
    """The producer could not take the request in time."""


class EventProducer:
    def __init__(
        self,
        store: Store,
        *,
        capacity: int = 4096,
        max_events_per_commit: int = 20_000,
        submit_timeout: float = 5.0,
    ) -> None:
        self._store = store
        self._ring = _core.Ring(capacity)
        self._max_events = max_events_per_commit
        self._submit_timeout = submit_timeout
        self._wakeup = asyncio.Event()
        self._space = asyncio.Event()
        self._space.set()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self.commits = 0

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="sentinel-event-producer")

    async def close(self) -> None:
        """Commit what is waiting, then stop."""
        self._closing = True
        self._wakeup.set()
        if self._task is not None:
            await self._task
            self._task = None

    async def submit(self, payloads: Sequence[bytes], priorities: Sequence[int]) -> None:
        if self._closing:
            raise Overloaded("shutting down")
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        deadline = time.monotonic() + self._submit_timeout
        while not self._ring.push((payloads, priorities, done), time.monotonic()):
            self._space.clear()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise Overloaded("the queue writer is saturated")
            try:
                await asyncio.wait_for(self._space.wait(), remaining)
            except TimeoutError:
                raise Overloaded("the queue writer is saturated") from None
        self._wakeup.set()
        await done

    async def _run(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while len(self._ring):
                await self._commit_waiting()
            if self._closing and not len(self._ring):
                return

    async def _commit_waiting(self) -> None:
        taken: list[tuple[Sequence[bytes], Sequence[int], asyncio.Future[None]]] = []
        payloads: list[bytes] = []
        priorities: list[int] = []
        while len(self._ring) and len(payloads) < self._max_events:
            item = self._ring.pop_many(1)[0]
            taken.append(item)
            payloads.extend(item[0])
            priorities.extend(item[1])
        self._space.set()
        try:
            await asyncio.to_thread(self._store.enqueue, payloads, priorities)
        except Exception as exc:  # every waiting request learns of it; nothing is half-queued
            log.error("enqueue of %d events failed: %s", len(payloads), exc)
            for _, _, done in taken:
                if not done.done():
                    done.set_exception(exc)
            return
        self.commits += 1
        for _, _, done in taken:
            if not done.done():
                done.set_result(None)
