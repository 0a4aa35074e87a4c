"""What wraps every request: HEAD on GET routes, one ``Authorization`` header at most, HTTP metrics per route
template (never the raw path, so process ids cannot explode cardinality) and, when tracing is on, a server
span."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, ReceiveMessage, Scope, Send

from sentinel.api.problems import PROBLEM_JSON, auth_headers, problem_body
from sentinel.api.responses import send_body
from sentinel.api.scope import HEAD_REQUEST, method_label, request_target
from sentinel.security import AuthError
from sentinel.telemetry import metrics

_DISCONNECT: ReceiveMessage = {"type": "http.disconnect"}


def _allow_with_head(value: bytes) -> bytes:
    """An ``Allow`` value with HEAD wherever it lists GET (Litestar's router does not know HEAD is served)."""
    methods = [method.strip() for method in value.split(b",")]
    if b"GET" not in methods or b"HEAD" in methods:
        return value
    methods.insert(methods.index(b"GET") + 1, b"HEAD")
    return b", ".join(methods)


async def serve_head(
    app: Callable[[Scope, Receive, Send], Awaitable[None]],
    scope: Scope,
    receive: Receive,
    send: Send,
    allow: Mapping[str, bytes] | None = None,
) -> None:
    """HEAD on every GET route (RFC 9110 section 9.3.2), for the app's entry point, outside routing, so a
    GET route added later answers HEAD without further ado.

    A HEAD request runs as the GET it stands for (``scope[HEAD_REQUEST]`` remembers it, for metrics and
    traces); its answer keeps the GET's status and headers, ``Content-Length`` included, and loses its
    body. The answer ends with its headers: a streamed body (an SSE stream) is not produced at all, as the
    handler is told that the client has gone once the headers are out. Any other method gets ``HEAD`` added
    to the ``Allow`` header of a 405 or OPTIONS answer that lists GET.

    ``allow`` maps a route's path template to every method it serves: Litestar 2's automatic OPTIONS
    answer names only one handler's methods on a path that has several (litestar-org/litestar#4169, fixed
    in Litestar 3), while its 405 names them all; an OPTIONS answer takes its ``Allow`` from this map.
    """
    if scope["type"] != ScopeType.HTTP or scope["method"] == "GET":
        await app(scope, receive, send)
        return
    if scope["method"] != "HEAD":

        async def send_allowing_head(message: Message) -> None:
            # Allow comes with a 405, or with the answer to OPTIONS (204).
            if message["type"] == "http.response.start" and message["status"] in (204, 405):
                every = allow.get(scope.get("path_template", "")) if allow and message["status"] == 204 else None
                message["headers"] = [
                    (name, _allow_with_head(every or value) if name.lower() == b"allow" else value)
                    for name, value in message.get("headers", ())
                ]
            await send(message)

        await app(scope, receive, send_allowing_head)
        return

    scope["method"] = "GET"
    scope[HEAD_REQUEST] = True  # type: ignore[literal-required]
    answered = asyncio.Event()

    async def send_headers_only(message: Message) -> None:
        if answered.is_set():
            return  # the GET's body
        if message["type"] == "http.response.start":
            await send(message)
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            answered.set()

    async def receive_until_answered() -> ReceiveMessage:
        if answered.is_set():
            return _DISCONNECT
        incoming = asyncio.ensure_future(receive())
        finished = asyncio.ensure_future(answered.wait())
        try:
            await asyncio.wait((incoming, finished), return_when=asyncio.FIRST_COMPLETED)
        finally:
            finished.cancel()
            if not incoming.done():
                incoming.cancel()
        if incoming.done() and not incoming.cancelled():
            return incoming.result()
        return _DISCONNECT

    await app(scope, receive_until_answered, send_headers_only)


# RFC 6750 section 3.1: a request that "uses more than one method for including an access token" is an
# invalid_request, answered 400 (RFC 9110 section 5.3 does not let Authorization be repeated either).
DUPLICATE_AUTHORIZATION = AuthError(
    400, "duplicate_authorization", "request carries more than one Authorization header"
)


def single_authorization(app: ASGIApp) -> ASGIApp:
    """400 for a request with two ``Authorization`` headers, on every route, before either is looked at:
    which one would count is ambiguous (a proxy in front may have checked the other). Innermost of the
    app's middleware, so that metrics and traces see the answer."""
    error = DUPLICATE_AUTHORIZATION
    body = problem_body(error.status, error.detail, code=error.code)
    headers = [(name.lower().encode(), value.encode("latin-1")) for name, value in auth_headers(error).items()]

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == ScopeType.HTTP:
            seen = False
            for name, _ in scope["headers"]:  # header names arrive lower-case (ASGI)
                if name == b"authorization":
                    if seen:
                        await send_body(send, error.status, PROBLEM_JSON.encode(), body, headers)
                        return
                    seen = True
        await app(scope, receive, send)

    return middleware


class _Outcome:
    """What became of one request as the server saw it: the status of the answer it began, or
    ``metrics.CLIENT_CLOSED_REQUEST`` (499, as reverse proxies log it) when the client had hung up before the
    answer began. Nothing reached the client then, whatever status the app went on to try (Litestar answers
    a body cut short with 500)."""

    __slots__ = ("client_gone", "started", "status")

    def __init__(self) -> None:
        self.status = 500  # the app raised before answering: the exception handler outside answers 500
        self.started = False
        self.client_gone = False

    def watch(self, receive: Receive, send: Send) -> tuple[Receive, Send]:
        async def watched_receive() -> ReceiveMessage:
            message = await receive()
            if message["type"] == "http.disconnect" and not self.started:
                self.client_gone = True
            return message

        async def watched_send(message: Message) -> None:
            if message["type"] == "http.response.start" and not self.started:
                self.started = True
                self.status = message["status"]
            await send(message)

        return watched_receive, watched_send

    @property
    def label(self) -> int:
        return metrics.CLIENT_CLOSED_REQUEST if self.client_gone else self.status


def metrics_middleware(app: ASGIApp) -> ASGIApp:
    record = metrics.HTTP.record

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return
        started = time.perf_counter()
        outcome = _Outcome()
        try:
            await app(scope, *outcome.watch(receive, send))
        finally:
            route = scope.get("path_template") or "unmatched"
            record(route, method_label(scope), outcome.label, time.perf_counter() - started)

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
        outcome = _Outcome()

        with tracer.start_as_current_span(
            method,
            context=propagate.extract(carrier),
            kind=SpanKind.SERVER,
            attributes={"http.request.method": method, "url.path": request_target(scope).decode("latin-1")},
        ) as span:
            try:
                await app(scope, *outcome.watch(receive, send))
            finally:
                # Named once the handler has run: the ASGI handler of GET /status sets its route template
                # itself (a mount leaves it empty), after this middleware has started.
                route = scope.get("path_template") or "unmatched"
                span.update_name(f"{method} {route}")
                span.set_attribute("http.route", route)
                span.set_attribute("http.response.status_code", outcome.label)
                # A client that hung up is not the server's error: the span keeps an unset status.
                if outcome.label >= 500:
                    span.set_status(Status(StatusCode.ERROR))

    return middleware
