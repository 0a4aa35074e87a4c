"""OpenTelemetry traces, configured only by the standard ``OTEL_*`` variables.

Off unless an exporter is asked for (``OTEL_TRACES_EXPORTER`` = ``otlp`` or ``console``, or an OTLP
endpoint variable is set), and always off with ``OTEL_SDK_DISABLED=true``. Off means off: no provider,
no HTTP middleware, no per-event work; the ingest batch span is the API's no-op span.

What is traced when on: a server span per HTTP request (W3C ``traceparent`` honoured), a span per ingest
batch (size and outcome), spans around database calls, and links from a batch span to the traces named
by the ``trace_id``/``span_id`` its events carry.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, nullcontext
from typing import Any

from opentelemetry import trace

log = logging.getLogger("sentinel.telemetry")

_enabled = False
MAX_LINKS = 64


def tracing_requested(env: dict[str, str] | None = None) -> bool:
    env = dict(os.environ) if env is None else env
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporter = env.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporter:
        return exporter != "none"
    return bool(env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_ENDPOINT"))


def configure_tracing(service: str = "process-sentinel") -> bool:
    """Install the SDK's tracer provider when the environment asks for traces. Idempotent."""
    global _enabled
    if _enabled or not tracing_requested():
        return _enabled
    from opentelemetry.sdk.resources import OTELResourceDetector, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter

    from sentinel import __version__

    resource = Resource.create(
        {"service.name": os.environ.get("OTEL_SERVICE_NAME", service), "service.version": __version__}
    ).merge(OTELResourceDetector().detect())
    provider = TracerProvider(resource=resource)
    exporters: list[SpanExporter] = []
    for requested in (os.environ.get("OTEL_TRACES_EXPORTER") or "otlp").split(","):
        name = requested.strip().lower()
        if name == "console":
            exporters.append(ConsoleSpanExporter())
        elif name in ("otlp", "otlp_proto_http"):
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            exporters.append(OTLPSpanExporter())  # endpoint, headers, timeout: from OTEL_EXPORTER_OTLP_*
        elif name != "none":
            log.warning("OTEL_TRACES_EXPORTER=%s is not supported here (otlp, console); ignored", name)
    for exporter in exporters:
        provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    _enabled = bool(exporters)
    return _enabled


def install_provider(provider: Any) -> None:
    """Use an already built provider (tests read spans from an in-memory exporter)."""
    global _enabled
    trace.set_tracer_provider(provider)
    _enabled = True


def enabled() -> bool:
    return _enabled


def shutdown() -> None:
    provider = trace.get_tracer_provider()
    if _enabled and hasattr(provider, "shutdown"):
        provider.shutdown()


@contextmanager
def _db_span(name: str, system: str) -> Iterator[None]:
    with trace.get_tracer("sentinel.store").start_as_current_span(
        name, kind=trace.SpanKind.CLIENT, attributes={"db.system.name": system, "db.operation.name": name}
    ):
        yield


def db_span(name: str, system: str) -> Any:
    """A client span around one database call, or nothing at all when tracing is off."""
    return _db_span(name, system) if _enabled else nullcontext()


def event_links(events: Iterable[Any]) -> list[trace.Link]:
    """Links from a batch span to the producer traces its events name (at most ``MAX_LINKS``)."""
    links: list[trace.Link] = []
    seen: set[tuple[str, str]] = set()
    for event in events:
        trace_id, span_id = event.trace_id, event.span_id
        if trace_id is None or span_id is None or (trace_id, span_id) in seen:
            continue
        seen.add((trace_id, span_id))
        context = trace.SpanContext(
            int(trace_id, 16), int(span_id, 16), is_remote=True, trace_flags=trace.TraceFlags(trace.TraceFlags.SAMPLED)
        )
        if context.is_valid:
            links.append(trace.Link(context, {"sentinel.event_id": event.event_id}))
        if len(links) >= MAX_LINKS:
            break
    return links
