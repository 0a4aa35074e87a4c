"""The Python client of Process Sentinel (SPEC section 7).

Report a piece of work as a process in two lines, and read processes and logs back::

    from sentinel.client import SentinelClient

    with SentinelClient() as client, client.track("Daily contract load", process_type="BATCH") as run:
        run.progress(40, "load")
        run.log.info("loaded", rows=1200)
        run.result = {"rows": 1200}

``SENTINEL_URL`` and ``SENTINEL_TOKEN`` configure it when no arguments are given.
"""

from sentinel.client._auth import ClientCredentials, StaticToken, TokenSource
from sentinel.client._client import AsyncSentinelClient, SentinelClient
from sentinel.client._errors import (
    ApiError,
    ConfigurationError,
    ConnectionFailed,
    Forbidden,
    NotFound,
    SentinelError,
    TokenError,
    Unauthorized,
)
from sentinel.client._ids import event_id
from sentinel.client._logging import SentinelHandler
from sentinel.client._models import EtaBand, Health, ItemError, LogLine, Problem, Process, Rejected
from sentinel.client._sender import SenderStats
from sentinel.client._track import Run, Tracker, current_run

__all__ = [
    "ApiError",
    "AsyncSentinelClient",
    "ClientCredentials",
    "ConfigurationError",
    "ConnectionFailed",
    "EtaBand",
    "Forbidden",
    "Health",
    "ItemError",
    "LogLine",
    "NotFound",
    "Problem",
    "Process",
    "Rejected",
    "Run",
    "SenderStats",
    "SentinelClient",
    "SentinelError",
    "SentinelHandler",
    "StaticToken",
    "TokenError",
    "TokenSource",
    "Tracker",
    "Unauthorized",
    "current_run",
    "event_id",
]
