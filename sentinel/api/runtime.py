"""What every request handler shares in one worker process, opened once by the app's lifespan."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from sentinel.api.auth import PrincipalResolver
from sentinel.api.cursors import CursorCodec
from sentinel.api.producer import EventProducer
from sentinel.api.streams import StreamLimiter
from sentinel.config import Settings
from sentinel.store.base import Store
from sentinel.telemetry import tracing

T = TypeVar("T")


@dataclass(slots=True)
class Runtime:
    settings: Settings
    store: Store
    producer: EventProducer
    cursors: CursorCodec
    principals: PrincipalResolver
    # SQLite answers point reads in microseconds from the page cache: a thread hop would cost more
    # than the query. A networked backend's calls leave the event loop.
    inline_reads: bool
    streams: StreamLimiter

    async def read(self, fn: Callable[..., T], *args: Any) -> T:
        if tracing.enabled():
            with tracing.db_span(fn.__name__, self.store.backend):
                return fn(*args) if self.inline_reads else await asyncio.to_thread(fn, *args)
        if self.inline_reads:
            return fn(*args)
        return await asyncio.to_thread(fn, *args)

    @property
    def draining(self) -> bool:
        flag = self.settings.drain_flag_path
        return flag is not None and flag.exists()
