"""``SentinelHandler``: standard ``logging`` records as LOG events of the run being tracked.

Levels map to the SPEC's (CRITICAL -> FATAL, WARNING -> WARN, below DEBUG -> TRACE); fields given with
``extra=`` go to ``details``, with the exception text when there is one; the logger's name is the
``component``; ``trace_id``/``span_id`` come from the current OpenTelemetry span when one is recording.
Records logged outside a tracked run go to ``process_id`` if one was given, else nowhere.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any

from sentinel._core._shared import MAX_NAME, MAX_TEXT
from sentinel.client._track import current_run

if TYPE_CHECKING:
    from sentinel.client._client import BaseClient

# Attributes every LogRecord has; anything else on a record came from ``extra=``.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime", "taskName"}

_FORMATTER = logging.Formatter()


def level_name(levelno: int) -> str:
    if levelno >= logging.CRITICAL:
        return "FATAL"
    if levelno >= logging.ERROR:
        return "ERROR"
    if levelno >= logging.WARNING:
        return "WARN"
    if levelno >= logging.INFO:
        return "INFO"
    if levelno >= logging.DEBUG:
        return "DEBUG"
    return "TRACE"


def otel_ids() -> tuple[str | None, str | None]:
    """(trace_id, span_id) of the current OpenTelemetry span, as hex, or (None, None)."""
    try:
        from opentelemetry import trace
    except ImportError:  # pragma: no cover - opentelemetry-api is a dependency
        return None, None
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None, None
    return f"{context.trace_id:032x}", f"{context.span_id:016x}"


class SentinelHandler(logging.Handler):
    def __init__(self, client: BaseClient, level: int = logging.NOTSET, *, process_id: str | None = None) -> None:
        super().__init__(level)
        self.client = client
        self.process_id = process_id
        self._inside = threading.local()

    def emit(self, record: logging.LogRecord) -> None:
        # The client's own records never loop back into it: its loggers, and anything logged on its own
        # threads (httpx logs every request the sender makes).
        if record.name.startswith("sentinel.client") or getattr(self._inside, "busy", False):
            return
        if record.threadName is not None and record.threadName.startswith(("sentinel-sender", "sentinel-heartbeat")):
            return
        run = current_run()
        process_id = run.process_id if run is not None else self.process_id
        if process_id is None:
            return
        self._inside.busy = True
        try:
            details: dict[str, Any] = {
                key: value for key, value in vars(record).items() if key not in _STANDARD and not key.startswith("_")
            }
            if record.exc_info and record.exc_info[0] is not None:
                details["exception"] = _FORMATTER.formatException(record.exc_info)
            elif record.exc_text:
                details["exception"] = record.exc_text
            if record.stack_info:
                details["stack"] = record.stack_info
            details.setdefault("logger", record.name)
            details.setdefault("source", f"{record.pathname}:{record.lineno}")
            trace_id, span_id = otel_ids()
            message = record.getMessage()
            self.client.emit(
                "LOG",
                process_id,
                level=level_name(record.levelno),
                message=message if len(message) <= MAX_TEXT else message[: MAX_TEXT - 3] + "...",
                details=details,
                component=record.name[:MAX_NAME],
                trace_id=trace_id,
                span_id=span_id,
            )
        except Exception:
            self.handleError(record)
        finally:
            self._inside.busy = False
