"""HTTP metrics per route template (never the raw path, so process ids cannot explode cardinality)."""

from __future__ import annotations

import time

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from sentinel.api.scope import method_label, request_target
from sentinel.telemetry import metrics


def metrics_middleware(app: ASGIApp) -> ASGIApp:
    record = metrics.HTTP.record

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await app(scope, receive, send_wrapper)
        finally:
            route = scope.get("path_template") or "unmatched"
            record(route, method_label(scope), status, time.perf_counter() - started)

    return middleware


def tracing_middleware(app: ASGIApp) -> ASGIApp:
    """A server span per request, continuing the caller's trace (W3C ``traceparent``). Installed only
    when tracing is on."""
    from opentelemetry import propagate, trace
    from opentelemetry.trace import SpanKind, Status, StatusCode

    tracer = trace.get_tracer("sentinel.api")

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return
        carrier = {key.decode("latin-1"): value.decode("latin-1") for key, value in scope["headers"]}
        method = method_label(scope)
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        with tracer.start_as_current_span(
            method,
            context=propagate.extract(carrier),
            kind=SpanKind.SERVER,
            attributes={"http.request.method": method, "url.path": request_target(scope).decode("latin-1")},
        ) as span:
            try:
                await app(scope, receive, send_wrapper)
            finally:
                # Named once the handler has run: the ASGI handler of GET /status sets its route template
                # itself (a mount leaves it empty), after this middleware has started.
                route = scope.get("path_template") or "unmatched"
                span.update_name(f"{method} {route}")
                span.set_attribute("http.route", route)
                span.set_attribute("http.response.status_code", status)
                if status >= 500:
                    span.set_status(Status(StatusCode.ERROR))

    return middleware
