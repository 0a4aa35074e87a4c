"""Backoff shared by the sender and the log follower: exponential, capped, with full jitter, and the
server's ``Retry-After`` honoured when it gives one."""

from __future__ import annotations

import random
import time
from email.utils import parsedate_to_datetime

import httpx

RETRY_STATUSES = frozenset({429, 502, 503, 504})


def backoff(attempt: int, base: float = 0.2, cap: float = 30.0) -> float:
    """Seconds to wait before retry number ``attempt`` (0-based): up to ``base * 2**attempt``, capped."""
    ceiling = min(cap, base * (2 ** min(attempt, 30)))
    return random.uniform(ceiling / 2, ceiling)


def retry_after(response: httpx.Response, limit: float = 300.0) -> float | None:
    """The server's ``Retry-After`` in seconds (delta-seconds or an HTTP date), at most ``limit``."""
    raw = response.headers.get("retry-after")
    if raw is None:
        return None
    raw = raw.strip()
    if raw.isdigit():
        return min(float(raw), limit)
    try:
        moment = parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    return max(0.0, min(moment.timestamp() - time.time(), limit))
