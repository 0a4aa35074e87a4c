"""``client.track(...)``: report one run of a piece of work as a process.

Used as a context manager, a decorator (each call is a new run) or an async context manager. It sends
STARTED, then HEARTBEATs from a background thread (or task) every ``heartbeat_interval`` seconds, and
at the end COMPLETED with ``run.result``, ERROR with the exception's type, message and traceback, or
CANCELLED on KeyboardInterrupt (or task cancellation). A process killed outright stops heartbeating,
so the server marks it STALLED. The exception, if any, is never swallowed.
"""

from __future__ import annotations

import asyncio
import contextvars
import copy
import functools
import inspect
import re
import secrets
import threading
import traceback
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar, cast

from sentinel._core._shared import MAX_NAME, MAX_STACK, MAX_TEXT

if TYPE_CHECKING:
    from sentinel.client._client import BaseClient

F = TypeVar("F", bound=Callable[..., Any])

_current: contextvars.ContextVar[Run | None] = contextvars.ContextVar("sentinel_current_run", default=None)


def current_run() -> Run | None:
    """The run being tracked in this thread or task, if any."""
    return _current.get()


def _clip(text: str, limit: int, keep_end: bool = False) -> str:
    if len(text) <= limit:
        return text
    return "..." + text[-(limit - 3) :] if keep_end else text[: limit - 3] + "..."


def _slug(name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return slug[:60].rstrip("-") or "run"


class RunLog:
    """``run.log.info("...", rows=12)``: LOG events of the run; keyword arguments go to ``details``."""

    def __init__(self, run: Run) -> None:
        self._run = run

    def __call__(
        self,
        level: str,
        message: str,
        *,
        component: str | None = None,
        trace_id: str | None = None,
        span_id: str | None = None,
        duration_us: int | None = None,
        **details: Any,
    ) -> None:
        self._run.emit(
            "LOG",
            level=level,
            message=_clip(str(message), MAX_TEXT),
            details=details or None,
            component=component,
            trace_id=trace_id,
            span_id=span_id,
            duration_us=duration_us,
        )

    def trace(self, message: str, **kwargs: Any) -> None:
        self("TRACE", message, **kwargs)

    def debug(self, message: str, **kwargs: Any) -> None:
        self("DEBUG", message, **kwargs)

    def info(self, message: str, **kwargs: Any) -> None:
        self("INFO", message, **kwargs)

    def warn(self, message: str, **kwargs: Any) -> None:
        self("WARN", message, **kwargs)

    warning = warn

    def error(self, message: str, **kwargs: Any) -> None:
        self("ERROR", message, **kwargs)

    def fatal(self, message: str, **kwargs: Any) -> None:
        self("FATAL", message, **kwargs)


class Run:
    """One tracked run: its ``process_id``, ``progress()``, ``heartbeat()``, ``log`` and ``result``."""

    def __init__(self, client: BaseClient, process_id: str) -> None:
        self.client = client
        self.process_id = process_id
        self.result: Any = None
        self.log = RunLog(self)
        self.outcome: str | None = None

    def emit(self, event_type: str, **fields: Any) -> None:
        self.client.emit(event_type, self.process_id, **fields)

    def progress(self, percent: float, step: str | None = None, **metadata: Any) -> None:
        """Report ``percent`` (0-100) done, in ``step``."""
        self.emit("PROGRESS", percent=percent, step=step, metadata=metadata or None)

    def heartbeat(self, message: str | None = None) -> None:
        self.emit("HEARTBEAT", message=message)

    def _result_object(self) -> dict[str, Any] | None:
        if self.result is None:
            return None
        if isinstance(self.result, Mapping):
            return dict(self.result)
        return {"value": self.result}

    def _finish(self, exc: BaseException | None) -> None:
        if exc is None or (isinstance(exc, SystemExit) and exc.code in (0, None)):
            self.outcome = "COMPLETED"
            self.emit("COMPLETED", result=self._result_object())
        elif isinstance(exc, KeyboardInterrupt | asyncio.CancelledError | GeneratorExit):
            self.outcome = "CANCELLED"
            self.emit("CANCELLED", reason=f"{type(exc).__name__}: interrupted")
        else:
            self.outcome = "FAILED"
            kind = type(exc)
            name = kind.__qualname__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"
            self.emit(
                "ERROR",
                error_code=_clip(name, MAX_NAME),
                error_message=_clip(str(exc) or kind.__name__, MAX_TEXT),
                stack_trace=_clip("".join(traceback.format_exception(exc)), MAX_STACK, keep_end=True),
            )


class Tracker:
    """What ``client.track(...)`` returns. Enter it (``with``/``async with``) or decorate with it."""

    def __init__(
        self,
        client: BaseClient,
        name: str,
        *,
        process_type: str | None = None,
        process_id: str | None = None,
        package_name: str | None = None,
        procedure_name: str | None = None,
        correlation_id: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        heartbeat_interval: float = 30.0,
        flush_timeout: float = 10.0,
    ) -> None:
        if heartbeat_interval <= 0:
            raise ValueError("heartbeat_interval must be positive")
        self.client = client
        self.name = name
        self.process_id = process_id
        self.fields: dict[str, Any] = {
            "process_name": _clip(name, MAX_NAME),
            "process_type": process_type,
            "package_name": package_name,
            "procedure_name": procedure_name,
            "correlation_id": correlation_id,
            "metadata": dict(metadata) if metadata else None,
        }
        self.heartbeat_interval = heartbeat_interval
        self.flush_timeout = flush_timeout
        self._stack: list[tuple[Run, contextvars.Token[Run | None], Callable[[], object]]] = []

    def _new_run(self) -> Run:
        process_id = self.process_id or f"{_slug(self.name)}-{secrets.token_hex(6)}"
        run = Run(self.client, process_id)
        run.emit("STARTED", **self.fields)
        return run

    # -- with ----------------------------------------------------------------------------------

    def __enter__(self) -> Run:
        run = self._new_run()
        stop = threading.Event()

        def beat() -> None:
            while not stop.wait(self.heartbeat_interval):
                run.heartbeat()

        thread = threading.Thread(target=beat, name=f"sentinel-heartbeat-{run.process_id}", daemon=True)
        thread.start()

        def halt() -> None:
            stop.set()
            thread.join()

        self._stack.append((run, _current.set(run), halt))
        return run

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        run, token, halt = self._stack.pop()
        halt()
        _current.reset(token)
        run._finish(exc)
        self.client.flush(self.flush_timeout)

    # -- async with ----------------------------------------------------------------------------

    async def __aenter__(self) -> Run:
        run = self._new_run()

        async def beat() -> None:
            while True:
                await asyncio.sleep(self.heartbeat_interval)
                run.heartbeat()

        task = asyncio.get_running_loop().create_task(beat(), name=f"sentinel-heartbeat-{run.process_id}")
        self._stack.append((run, _current.set(run), task.cancel))
        return run

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        run, token, halt = self._stack.pop()
        halt()
        _current.reset(token)
        run._finish(exc)
        await asyncio.to_thread(self.client.flush, self.flush_timeout)

    # -- decorator -----------------------------------------------------------------------------

    def _fresh(self) -> Tracker:
        """A copy with a stack of its own, so calls in several threads or tasks never share one."""
        clone = copy.copy(self)
        clone._stack = []
        return clone

    def __call__(self, func: F) -> F:
        """Track every call of ``func`` as a run of its own; its return value becomes the result."""
        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def run_async(*args: Any, **kwargs: Any) -> Any:
                async with self._fresh() as run:
                    run.result = await func(*args, **kwargs)
                    return run.result

            return cast(F, run_async)

        @functools.wraps(func)
        def run_sync(*args: Any, **kwargs: Any) -> Any:
            with self._fresh() as run:
                run.result = func(*args, **kwargs)
                return run.result

        return cast(F, run_sync)
