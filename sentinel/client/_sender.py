"""The background sender: a bounded buffer of encoded events, posted to ``POST /events`` in batches.

- A batch leaves when ``max_batch`` events wait, when the oldest has waited ``flush_interval`` seconds,
  on ``flush()``, and on ``close()`` (which the client also runs at interpreter exit).
- Connection errors and 429/502/503/504 are retried with exponential backoff and jitter, honouring
  ``Retry-After``. An event's id was made once, when it was emitted, so a retry can never double it.
- The server takes a batch all or nothing. When it refuses some events (422, or 403 for another
  tenant's, listing their indexes), those events are reported once and never retried, and the others
  are sent again at once. A 413 splits the batch; any other 4xx rejects the batch as it is.
- Full buffer: ``"block"`` (default) makes ``emit`` wait for room (up to ``block_timeout`` seconds, then
  the event is dropped); ``"drop"`` drops the new event at once. Either way ``stats().dropped`` counts it
  and the first drop is logged.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Literal

import httpx
import msgspec

from sentinel.client._errors import api_error
from sentinel.client._models import Rejected
from sentinel.client._retry import RETRY_STATUSES, backoff, retry_after

log = logging.getLogger("sentinel.client")

FullPolicy = Literal["block", "drop"]
Post = Callable[[bytes], httpx.Response]
OnReject = Callable[[Rejected], None]

MAX_SERVER_ERROR_ATTEMPTS = 5


class SenderStats(msgspec.Struct, kw_only=True, frozen=True):
    """What the sender has done so far."""

    sent: int  # accepted by the server (202)
    pending: int  # buffered or in flight
    dropped: int  # refused by a full buffer (or left unsent at close)
    rejected: int  # refused by the server (4xx), reported, never retried
    retries: int  # requests repeated after a connection error, 429 or 5xx
    batches: int  # requests accepted


class Sender:
    def __init__(
        self,
        post: Post,
        *,
        max_buffer: int = 10_000,
        max_batch: int = 500,
        flush_interval: float = 0.5,
        full_policy: FullPolicy = "block",
        block_timeout: float | None = None,
        max_retry_delay: float = 30.0,
        on_reject: OnReject | None = None,
    ) -> None:
        if max_buffer < 1 or max_batch < 1:
            raise ValueError("max_buffer and max_batch must be at least 1")
        if full_policy not in ("block", "drop"):
            raise ValueError("full_policy must be 'block' or 'drop'")
        self._post = post
        self.max_buffer = max_buffer
        self.max_batch = min(max_batch, max_buffer)
        self.flush_interval = flush_interval
        self.full_policy = full_policy
        self.block_timeout = block_timeout
        self.max_retry_delay = max_retry_delay
        self.on_reject = on_reject
        self.rejections: collections.deque[Rejected] = collections.deque(maxlen=100)
        self._buffer: collections.deque[tuple[float, bytes]] = collections.deque()
        self._in_flight = 0
        self._cond = threading.Condition()
        self._flush_wanted = 0
        self._closing = False
        self._deadline: float | None = None
        self._thread: threading.Thread | None = None
        self._sent = self._dropped = self._rejected = self._retries = self._batches = 0
        self._given_up = 0  # events abandoned because close's deadline came first

    # -- producer side ---------------------------------------------------------------------------

    def put(self, payload: bytes) -> bool:
        """Buffer one encoded event; False if it was dropped (full buffer, or the sender is closed)."""
        with self._cond:
            if self._closing:
                self._drop("the client is closed")
                return False
            if len(self._buffer) + self._in_flight >= self.max_buffer:
                if self.full_policy == "drop":
                    self._drop("the buffer is full")
                    return False
                ends = None if self.block_timeout is None else time.monotonic() + self.block_timeout
                while len(self._buffer) + self._in_flight >= self.max_buffer and not self._closing:
                    left = None if ends is None else ends - time.monotonic()
                    if left is not None and left <= 0:
                        self._drop("the buffer stayed full")
                        return False
                    self._cond.wait(left)
                if self._closed():
                    self._drop("the client is closed")
                    return False
            self._buffer.append((time.monotonic(), payload))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="sentinel-sender", daemon=True)
                self._thread.start()
            if len(self._buffer) == 1 or len(self._buffer) >= self.max_batch:
                self._cond.notify_all()  # the first event starts the age clock; a full batch leaves now
            return True

    def _closed(self) -> bool:
        return self._closing

    def _drop(self, why: str) -> None:
        if self._dropped == 0:
            log.warning("sentinel client: dropping events: %s (counted in stats().dropped)", why)
        self._dropped += 1

    def flush(self, timeout: float | None = None) -> bool:
        """Send everything buffered now; True once it has all been answered, False on timeout."""
        ends = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            self._flush_wanted += 1
            self._cond.notify_all()
            try:
                while self._buffer or self._in_flight:
                    left = None if ends is None else ends - time.monotonic()
                    if left is not None and left <= 0:
                        return False
                    self._cond.wait(left)
                return True
            finally:
                self._flush_wanted -= 1

    def close(self, timeout: float | None = 10.0) -> bool:
        """Send what is buffered, retrying until ``timeout``; what is still unsent then is dropped
        (and counted). True if everything was delivered."""
        with self._cond:
            if self._closing and self._thread is None:
                return not self._buffer
            self._closing = True
            self._deadline = None if timeout is None else time.monotonic() + timeout
            self._cond.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(None if timeout is None else timeout + 1.0)
        with self._cond:
            left = len(self._buffer) + self._in_flight
            if left:
                log.warning("sentinel client: %d event(s) not delivered before close", left)
                self._dropped += len(self._buffer)
                self._buffer.clear()
            self._thread = None
            return left == 0 and self._given_up == 0

    def stats(self) -> SenderStats:
        with self._cond:
            return SenderStats(
                sent=self._sent,
                pending=len(self._buffer) + self._in_flight,
                dropped=self._dropped,
                rejected=self._rejected,
                retries=self._retries,
                batches=self._batches,
            )

    # -- the sending thread ----------------------------------------------------------------------

    def _due(self) -> bool:
        if not self._buffer:
            return False
        if self._closing or self._flush_wanted or len(self._buffer) >= self.max_batch:
            return True
        return time.monotonic() - self._buffer[0][0] >= self.flush_interval

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._due():
                    if self._closing and not self._buffer:
                        return
                    wait = None if not self._buffer else self.flush_interval - (time.monotonic() - self._buffer[0][0])
                    self._cond.wait(None if wait is None else max(wait, 0.001))
                batch = [self._buffer.popleft()[1] for _ in range(min(self.max_batch, len(self._buffer)))]
                self._in_flight = len(batch)
            try:
                self._deliver(batch)
            except Exception:  # never let the thread die with events in hand
                log.exception("sentinel client: sending failed; %d event(s) dropped", len(batch))
                with self._cond:
                    self._dropped += len(batch)
            with self._cond:
                self._in_flight = 0
                self._cond.notify_all()
            if self._expired():
                return

    def _expired(self) -> bool:
        return self._deadline is not None and time.monotonic() >= self._deadline

    def _wait(self, seconds: float) -> bool:
        """Sleep before a retry; False when closing's deadline comes first (give up)."""
        with self._cond:
            ends = time.monotonic() + seconds
            if self._deadline is not None:
                if self._deadline <= time.monotonic():
                    return False
                ends = min(ends, self._deadline)
            while time.monotonic() < ends:
                self._cond.wait(ends - time.monotonic())
            return not self._expired()

    def _deliver(self, batch: list[bytes]) -> None:
        attempt = 0
        server_errors = 0
        while batch:
            body = b"[" + b",".join(batch) + b"]"
            try:
                response = self._post(body)
            except httpx.TransportError as exc:
                if attempt == 0:
                    log.info("sentinel client: server unreachable (%s); retrying", exc)
                delay = backoff(attempt, cap=self.max_retry_delay)
            else:
                status = response.status_code
                if status < 300:
                    with self._cond:
                        self._sent += len(batch)
                        self._batches += 1
                    return
                if status in RETRY_STATUSES or (status >= 500 and server_errors < MAX_SERVER_ERROR_ATTEMPTS):
                    server_errors += status >= 500 and status not in RETRY_STATUSES
                    hinted = retry_after(response)
                    delay = hinted if hinted is not None else backoff(attempt, cap=self.max_retry_delay)
                else:
                    batch = self._refused(batch, response)
                    attempt = 0
                    with self._cond:
                        self._in_flight = len(batch)
                    continue
            with self._cond:
                self._retries += 1
            attempt += 1
            if not self._wait(delay):
                with self._cond:
                    self._dropped += len(batch)
                    self._given_up += len(batch)
                log.warning("sentinel client: gave up on %d event(s) at close", len(batch))
                return

    def _refused(self, batch: list[bytes], response: httpx.Response) -> list[bytes]:
        """What remains to send after a 4xx (or a 5xx retried too often)."""
        error = api_error(response)
        problem = error.problem
        if response.status_code == 413 and len(batch) > 1:
            half = len(batch) // 2
            self._deliver(batch[:half])
            return batch[half:]
        items = problem.errors or []
        bad = {item.index: item for item in items if 0 <= item.index < len(batch)}
        if response.status_code in (403, 422) and bad:
            for index, item in sorted(bad.items()):
                self._reject(batch[index], response.status_code, item.code, item.reason)
            return [payload for index, payload in enumerate(batch) if index not in bad]
        # The whole request was refused (a token, a role, a body): one warning for the batch.
        log.warning("sentinel client: %d event(s) refused by the server: %s", len(batch), error)
        for payload in batch:
            self._reject(payload, response.status_code, problem.code or "refused", str(error), warn=False)
        return []

    def _reject(self, payload: bytes, status: int, code: str, reason: str, *, warn: bool = True) -> None:
        try:
            event: dict[str, Any] = msgspec.json.decode(payload)
        except msgspec.DecodeError:
            event = {}
        rejected = Rejected(event=event, status=status, code=code, reason=reason)
        with self._cond:
            self._rejected += 1
            self.rejections.append(rejected)
        if warn:
            log.warning(
                "sentinel client: event %s (%s) refused by the server: %s: %s",
                event.get("event_id"),
                event.get("event_type"),
                code,
                reason,
            )
        if self.on_reject is not None:
            try:
                self.on_reject(rejected)
            except Exception:
                log.exception("sentinel client: on_reject callback failed")
