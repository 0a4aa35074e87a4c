"""``SentinelClient`` (sync) and ``AsyncSentinelClient``: report processes and read them back.

Both take the base URL and token from their arguments or from ``SENTINEL_URL``/``SENTINEL_TOKEN``
(default URL ``http://localhost:8080``), keep one connection pool, and send events through a
background :class:`~sentinel.client._sender.Sender`. Reads raise :class:`ApiError` subclasses carrying
the server's problem document, and :class:`ConnectionFailed` when the server cannot be reached.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import os
import time
import weakref
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
import msgspec

from sentinel import __version__
from sentinel.client._auth import StaticToken, TokenSource
from sentinel.client._errors import (
    ApiError,
    ConfigurationError,
    ConnectionFailed,
    NotFound,
    TokenError,
    api_error,
    connection_failed,
)
from sentinel.client._ids import event_id
from sentinel.client._logging import SentinelHandler
from sentinel.client._models import Health, LogLine, LogPage, Process, ProcessPage
from sentinel.client._retry import RETRY_STATUSES, backoff, retry_after
from sentinel.client._sender import FullPolicy, OnReject, Sender, SenderStats
from sentinel.client._sse import SseParser
from sentinel.client._track import Tracker

log = logging.getLogger("sentinel.client")

DEFAULT_URL = "http://localhost:8080"
# logs(follow=True) of a process the server does not know yet: how long to wait for it, how often to ask.
APPEAR_WITHIN = 30.0
APPEAR_POLL = 0.2
T = TypeVar("T")

_live: weakref.WeakSet[BaseClient] = weakref.WeakSet()


@atexit.register
def _close_all() -> None:
    """Deliver what every open client still holds when the interpreter exits."""
    for client in list(_live):
        client._sender.close(client.close_timeout)


def _enc_hook(value: Any) -> Any:
    return str(value)  # anything msgspec cannot write (Decimal, Path, ...) travels as its text


_encode = msgspec.json.Encoder(enc_hook=_enc_hook).encode


def now_rfc3339() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _time_param(value: datetime | str | None) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if value.tzinfo is None:
        raise ValueError("times must be timezone-aware")
    return value.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _base_url(url: str | None) -> str:
    raw = (url or os.environ.get("SENTINEL_URL") or DEFAULT_URL).strip()
    try:
        parsed = httpx.URL(raw)
    except (httpx.InvalidURL, TypeError):
        parsed = None
    if parsed is None or parsed.scheme not in ("http", "https") or not parsed.host:
        raise ConfigurationError(f"url: expected http(s)://host[:port], got {raw!r}")
    return raw.rstrip("/")


def _token_source(token: str | TokenSource | None) -> TokenSource | None:
    if token is None:
        token = os.environ.get("SENTINEL_TOKEN") or None
    if token is None:
        return None
    return StaticToken(token) if isinstance(token, str) else token


def process_params(
    status: str | Iterable[str] | None,
    process_type: str | None,
    package_name: str | None,
    updated_since: datetime | str | None,
    page_size: int,
) -> dict[str, Any]:
    if not 1 <= page_size <= 500:
        raise ValueError("page_size: expected 1 to 500")
    params: dict[str, Any] = {"limit": page_size}
    if status is not None:
        params["status"] = status if isinstance(status, str) else ",".join(status)
    if process_type is not None:
        params["process_type"] = process_type
    if package_name is not None:
        params["package_name"] = package_name
    if (since := _time_param(updated_since)) is not None:
        params["updated_since"] = since
    return params


def log_params(level: str | None, since: datetime | str | None, page_size: int) -> dict[str, Any]:
    if not 1 <= page_size <= 1000:
        raise ValueError("page_size: expected 1 to 1000")
    params: dict[str, Any] = {"limit": page_size}
    if level is not None:
        params["level"] = level
    if (moment := _time_param(since)) is not None:
        params["since"] = moment
    return params


class _Follow:
    """The state of one ``logs(follow=True)`` walk: the last line handed out, and the reconnect budget."""

    def __init__(self, reconnect_for: float, appear_within: float) -> None:
        if appear_within < 0:
            raise ValueError("appear_within: expected 0 or more seconds")
        self.last_seq = 0
        self.reconnect_for = reconnect_for
        self.appear_within = appear_within
        self.appear_by = time.monotonic() + appear_within
        self.found = False
        self.failing_since: float | None = None
        self.attempt = 0
        self.done = False

    def headers(self) -> dict[str, str]:
        headers = {"Accept": "text/event-stream"}
        if self.last_seq:
            headers["Last-Event-ID"] = str(self.last_seq)
        return headers

    def missing(self, error: ApiError) -> float:
        """Seconds to wait before asking again for a process the server does not know yet, or raises
        ``error``: events it accepted (202) are stored moments later, so a 404 before the stream ever
        opened is waited out until ``appear_within`` has passed."""
        if self.found:
            raise error
        if time.monotonic() >= self.appear_by:
            if self.appear_within:
                error.args = (f"{error}; waited {self.appear_within:g}s for it to appear",)
            raise error
        return min(APPEAR_POLL, max(0.0, self.appear_by - time.monotonic()))

    def connected(self) -> None:
        self.found = True
        self.failing_since = None
        self.attempt = 0

    def line(self, event: str, data: str) -> LogLine | None:
        """A line to hand out, or None (a repeat, or a control event); sets ``done`` at the end."""
        if event == "end":
            self.done = True
            return None
        if event != "log":
            return None
        entry = msgspec.json.decode(data, type=LogLine)
        if entry.seq <= self.last_seq:
            return None  # never hand out a line twice, whatever the server resends
        self.last_seq = entry.seq
        return entry

    def finished(self) -> bool:
        return self.done

    def pause(self, failure: Exception | None) -> float:
        """Seconds to wait before reconnecting; raises ``failure`` (or a ConnectionFailed) past the budget."""
        now = time.monotonic()
        if self.failing_since is None:
            self.failing_since = now
        elif now - self.failing_since > self.reconnect_for:
            if isinstance(failure, ApiError | ConnectionFailed):
                raise failure
            why = failure or "the server kept closing the stream"
            raise ConnectionFailed(f"log stream lost for more than {self.reconnect_for:.0f}s: {why}")
        delay = backoff(self.attempt, base=0.25, cap=5.0)
        self.attempt += 1
        return delay


class BaseClient:
    """What both clients share: configuration, sending, tracking and the logging handler."""

    def __init__(
        self,
        url: str | None = None,
        token: str | TokenSource | None = None,
        *,
        timeout: float = 10.0,
        max_buffer: int = 10_000,
        max_batch: int = 500,
        flush_interval: float = 0.5,
        full_policy: FullPolicy = "block",
        block_timeout: float | None = None,
        max_retry_delay: float = 30.0,
        close_timeout: float = 10.0,
        on_reject: OnReject | None = None,
        verify: bool | str = True,
    ) -> None:
        self.url = _base_url(url)
        self.auth = _token_source(token)
        self.timeout = timeout
        self.close_timeout = close_timeout
        self._verify = verify
        self._sender = Sender(
            self._post_events,
            max_buffer=max_buffer,
            max_batch=max_batch,
            flush_interval=flush_interval,
            full_policy=full_policy,
            block_timeout=block_timeout,
            max_retry_delay=max_retry_delay,
            on_reject=on_reject,
        )
        self._sync_http: httpx.Client | None = None
        _live.add(self)

    def _new_sync_http(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.url,
            timeout=self.timeout,
            verify=self._verify,
            headers={"User-Agent": f"sentinel-client/{__version__}"},
        )

    def _sender_http(self) -> httpx.Client:
        if self._sync_http is None:
            self._sync_http = self._new_sync_http()
        return self._sync_http

    def _auth_headers(self, token: str | None) -> dict[str, str]:
        return {} if token is None else {"Authorization": f"Bearer {token}"}

    def _post_events(self, body: bytes) -> httpx.Response:
        http = self._sender_http()
        response: httpx.Response | None = None
        for _ in range(2):
            try:
                token = self.auth.token() if self.auth is not None else None
            except TokenError as exc:
                raise httpx.ConnectError(str(exc)) from None  # retried like an unreachable server
            headers = {"Content-Type": "application/json", **self._auth_headers(token)}
            response = http.post("/events", content=body, headers=headers)
            if response.status_code != 401 or token is None or self.auth is None:
                return response
            self.auth.invalidate(token)
        assert response is not None
        return response

    # -- sending -------------------------------------------------------------------------------

    def emit(
        self,
        event_type: str,
        process_id: str,
        *,
        timestamp: datetime | str | None = None,
        event_id: str | None = None,
        **fields: Any,
    ) -> str:
        """Queue one event for sending and return its id. Fields set to None are left out; the
        tenant comes from the token. Never blocks on the network (see the buffer's full policy)."""
        body: dict[str, Any] = {
            "event_id": event_id or _new_id(),
            "event_type": event_type,
            "process_id": process_id,
            "timestamp": _time_param(timestamp) or now_rfc3339(),
        }
        body.update((key, value) for key, value in fields.items() if value is not None)
        self._sender.put(_encode(body))
        return str(body["event_id"])

    def send(self, event: Mapping[str, Any]) -> str:
        """Queue a ready-made event (a dict as SPEC section 2 describes); ``event_id`` and ``timestamp``
        are filled in when missing."""
        fields = dict(event)
        return self.emit(
            str(fields.pop("event_type", "")),
            str(fields.pop("process_id", "")),
            timestamp=fields.pop("timestamp", None),
            event_id=fields.pop("event_id", None),
            **fields,
        )

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until everything emitted so far was answered by the server (True) or ``timeout`` passed."""
        return self._sender.flush(timeout)

    def stats(self) -> SenderStats:
        return self._sender.stats()

    @property
    def rejections(self) -> list[Any]:
        """The last (up to 100) events the server refused, with its reasons."""
        return list(self._sender.rejections)

    # -- tracking and logging ------------------------------------------------------------------

    def track(self, name: str, **options: Any) -> Tracker:
        """Report a run as a process: ``with client.track("Daily load", process_type="BATCH") as run:``.
        Options: process_type, process_id, package_name, procedure_name, correlation_id, metadata,
        heartbeat_interval (seconds, default 30), flush_timeout (seconds, default 10)."""
        return Tracker(self, name, **options)

    def handler(self, level: int = logging.NOTSET, *, process_id: str | None = None) -> SentinelHandler:
        """A ``logging.Handler`` shipping records as LOG events of the current tracked run."""
        return SentinelHandler(self, level, process_id=process_id)


def _new_id() -> str:
    return event_id()


def _path(resource: str, process_id: str) -> str:
    """``/status/<id>`` or ``/logs/<id>``, the id quoted whole: it may hold '/', '?', '#', '%', spaces or
    any Unicode, and an id of only dots ('.', '..') is spelt with %2E so that no URL normalisation (httpx's
    or a proxy's) drops it as a dot segment."""
    if not process_id:
        raise ValueError("process_id: required")
    segment = quote(process_id, safe="")
    if segment.strip(".") == "":
        segment = "%2E" * len(segment)
    return f"/{resource}/{segment}"


class SentinelClient(BaseClient):
    """The synchronous client (httpx.Client). Use it as a context manager, or call ``close()``."""

    def __init__(self, url: str | None = None, token: str | TokenSource | None = None, **options: Any) -> None:
        super().__init__(url, token, **options)
        self._http = self._sender_http()

    def __enter__(self) -> SentinelClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self, timeout: float | None = None) -> bool:
        """Deliver what is buffered (retrying up to ``timeout``, default ``close_timeout``) and close."""
        delivered = self._sender.close(self.close_timeout if timeout is None else timeout)
        self._http.close()
        _live.discard(self)
        return delivered

    def _request(self, path: str, params: Mapping[str, Any] | None = None) -> httpx.Response:
        for _ in range(2):
            token = self.auth.token() if self.auth is not None else None
            try:
                response = self._http.get(path, params=params, headers=self._auth_headers(token))
            except httpx.TransportError as exc:
                raise connection_failed(self.url, exc) from None
            if response.status_code == 401 and token is not None and self.auth is not None:
                self.auth.invalidate(token)
                if self.auth.token() != token:
                    continue
            if response.status_code >= 400:
                raise api_error(response)
            return response
        raise api_error(response)

    def _get(self, path: str, kind: type[T], params: Mapping[str, Any] | None = None) -> T:
        return msgspec.json.decode(self._request(path, params).content, type=kind)

    def health(self) -> Health:
        return self._get("/health", Health)

    def status(self, process_id: str) -> Process:
        """The status document of one process; :class:`NotFound` if there is none for this tenant."""
        return self._get(_path("status", process_id), Process)

    def processes(
        self,
        *,
        status: str | Iterable[str] | None = None,
        process_type: str | None = None,
        package_name: str | None = None,
        updated_since: datetime | str | None = None,
        page_size: int = 100,
    ) -> Iterator[Process]:
        """Every matching process, newest activity first, following the cursors page after page."""
        params = process_params(status, process_type, package_name, updated_since, page_size)
        while True:
            page = self._get("/processes", ProcessPage, params)
            yield from page.items
            if page.next_cursor is None:
                return
            params = {**params, "cursor": page.next_cursor}

    def logs(
        self,
        process_id: str,
        *,
        level: str | None = None,
        since: datetime | str | None = None,
        follow: bool = False,
        page_size: int = 500,
        reconnect_for: float = 300.0,
        appear_within: float = APPEAR_WITHIN,
    ) -> Iterator[LogLine]:
        """Log lines, oldest first. With ``follow=True``, the live stream: it reconnects after a
        dropped connection with ``Last-Event-ID`` (no line lost or repeated) and ends once the process
        has ended and its lines are out; it gives up after ``reconnect_for`` seconds without a connection.
        A process the server does not know yet is waited for up to ``appear_within`` seconds (default 30)
        before :class:`NotFound`: events it accepted with 202 are stored moments later."""
        params = log_params(level, since, page_size)
        path = _path("logs", process_id)
        if follow:
            yield from self._follow(path, params, _Follow(reconnect_for, appear_within))
            return
        while True:
            page = self._get(path, LogPage, params)
            yield from page.items
            if page.next_cursor is None:
                return
            params = {**params, "cursor": page.next_cursor}

    def _follow(self, path: str, params: dict[str, Any], state: _Follow) -> Iterator[LogLine]:
        stream_params = {key: value for key, value in params.items() if key != "limit"}
        timeout = httpx.Timeout(self.timeout, read=60.0)  # keep-alives come every 15 s
        while not state.done:
            failure: Exception | None = None
            try:
                token = self.auth.token() if self.auth is not None else None
                headers = {**state.headers(), **self._auth_headers(token)}
                with self._http.stream("GET", path, params=stream_params, headers=headers, timeout=timeout) as answer:
                    if answer.status_code != 200:
                        answer.read()
                        error = api_error(answer)
                        if isinstance(error, NotFound):
                            time.sleep(state.missing(error))
                            continue
                        if answer.status_code not in RETRY_STATUSES:
                            raise error
                        failure = error
                        hinted = retry_after(answer)
                    else:
                        state.connected()
                        parser = SseParser()
                        for text in answer.iter_lines():
                            event = parser.feed(text)
                            if event is None:
                                continue
                            entry = state.line(event.event, event.data)
                            if entry is not None:
                                yield entry
                            if state.finished():
                                return
                        hinted = None
            except httpx.TransportError as exc:
                failure, hinted = connection_failed(self.url, exc), None
            delay = state.pause(failure)
            time.sleep(hinted if hinted is not None else delay)


class AsyncSentinelClient(BaseClient):
    """The asyncio client (httpx.AsyncClient for reads). ``emit`` and tracking work as in the sync
    client: events leave through the same background sender thread, so the event loop never waits
    on the network for them. Use ``async with``, or ``await aclose()``."""

    def __init__(self, url: str | None = None, token: str | TokenSource | None = None, **options: Any) -> None:
        super().__init__(url, token, **options)
        self._http = httpx.AsyncClient(
            base_url=self.url,
            timeout=self.timeout,
            verify=self._verify,
            headers={"User-Agent": f"sentinel-client/{__version__}"},
        )

    async def __aenter__(self) -> AsyncSentinelClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aflush(self, timeout: float | None = None) -> bool:
        return await asyncio.to_thread(self._sender.flush, timeout)

    async def aclose(self, timeout: float | None = None) -> bool:
        delivered = await asyncio.to_thread(self._sender.close, self.close_timeout if timeout is None else timeout)
        await self._http.aclose()
        if self._sync_http is not None:
            self._sync_http.close()
        _live.discard(self)
        return delivered

    async def _request(self, path: str, params: Mapping[str, Any] | None = None) -> httpx.Response:
        for _ in range(2):
            token = await self.auth.atoken() if self.auth is not None else None
            try:
                response = await self._http.get(path, params=params, headers=self._auth_headers(token))
            except httpx.TransportError as exc:
                raise connection_failed(self.url, exc) from None
            if response.status_code == 401 and token is not None and self.auth is not None:
                self.auth.invalidate(token)
                if await self.auth.atoken() != token:
                    continue
            if response.status_code >= 400:
                raise api_error(response)
            return response
        raise api_error(response)

    async def _get(self, path: str, kind: type[T], params: Mapping[str, Any] | None = None) -> T:
        return msgspec.json.decode((await self._request(path, params)).content, type=kind)

    async def health(self) -> Health:
        return await self._get("/health", Health)

    async def status(self, process_id: str) -> Process:
        return await self._get(_path("status", process_id), Process)

    async def processes(
        self,
        *,
        status: str | Iterable[str] | None = None,
        process_type: str | None = None,
        package_name: str | None = None,
        updated_since: datetime | str | None = None,
        page_size: int = 100,
    ) -> AsyncIterator[Process]:
        params = process_params(status, process_type, package_name, updated_since, page_size)
        while True:
            page = await self._get("/processes", ProcessPage, params)
            for item in page.items:
                yield item
            if page.next_cursor is None:
                return
            params = {**params, "cursor": page.next_cursor}

    async def logs(
        self,
        process_id: str,
        *,
        level: str | None = None,
        since: datetime | str | None = None,
        follow: bool = False,
        page_size: int = 500,
        reconnect_for: float = 300.0,
        appear_within: float = APPEAR_WITHIN,
    ) -> AsyncIterator[LogLine]:
        params = log_params(level, since, page_size)
        path = _path("logs", process_id)
        if follow:
            async for entry in self._follow(path, params, _Follow(reconnect_for, appear_within)):
                yield entry
            return
        while True:
            page = await self._get(path, LogPage, params)
            for item in page.items:
                yield item
            if page.next_cursor is None:
                return
            params = {**params, "cursor": page.next_cursor}

    async def _follow(self, path: str, params: dict[str, Any], state: _Follow) -> AsyncIterator[LogLine]:
        stream_params = {key: value for key, value in params.items() if key != "limit"}
        timeout = httpx.Timeout(self.timeout, read=60.0)
        while not state.done:
            failure: Exception | None = None
            hinted: float | None = None
            try:
                token = await self.auth.atoken() if self.auth is not None else None
                headers = {**state.headers(), **self._auth_headers(token)}
                async with self._http.stream(
                    "GET", path, params=stream_params, headers=headers, timeout=timeout
                ) as answer:
                    if answer.status_code != 200:
                        await answer.aread()
                        error = api_error(answer)
                        if isinstance(error, NotFound):
                            await asyncio.sleep(state.missing(error))
                            continue
                        if answer.status_code not in RETRY_STATUSES:
                            raise error
                        failure, hinted = error, retry_after(answer)
                    else:
                        state.connected()
                        parser = SseParser()
                        async for text in answer.aiter_lines():
                            event = parser.feed(text)
                            if event is None:
                                continue
                            entry = state.line(event.event, event.data)
                            if entry is not None:
                                yield entry
                            if state.finished():
                                return
            except httpx.TransportError as exc:
                failure = connection_failed(self.url, exc)
            delay = state.pause(failure)
            await asyncio.sleep(hinted if hinted is not None else delay)
