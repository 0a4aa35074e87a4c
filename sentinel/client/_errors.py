"""The client's errors: each ``str()`` is one line a command line can print as it is."""

from __future__ import annotations

import httpx
import msgspec

from sentinel.client._models import Problem


class SentinelError(Exception):
    """Base of every error the client raises."""


class ConfigurationError(SentinelError):
    """The client was given no URL, a malformed one, or no way to get a token."""


class ConnectionFailed(SentinelError):
    """The server could not be reached (refused, timed out, name not resolved)."""


class ApiError(SentinelError):
    """The server answered with an error; ``problem`` is its RFC 9457 document."""

    def __init__(self, status: int, problem: Problem, url: str) -> None:
        self.status = status
        self.problem = problem
        self.url = url
        reason = problem.detail or problem.title or "error"
        super().__init__(f"{status} {problem.title or 'error'}: {reason} ({url})")


class Unauthorized(ApiError):
    """401: the token is missing, expired or not trusted by the server."""


class Forbidden(ApiError):
    """403: the token lacks the role or the tenant for this request."""


class NotFound(ApiError):
    """404: no such process for the caller's tenant."""


class TokenError(SentinelError):
    """The token endpoint refused or could not be reached."""


_BY_STATUS: dict[int, type[ApiError]] = {401: Unauthorized, 403: Forbidden, 404: NotFound}


def api_error(response: httpx.Response) -> ApiError:
    """The error an answer >= 400 stands for, with the server's own reasons."""
    status = response.status_code
    try:
        problem = msgspec.json.decode(response.content, type=Problem)
    except (msgspec.DecodeError, msgspec.ValidationError):
        text = " ".join(response.text.split())[:200]
        problem = Problem(title=response.reason_phrase or "error", status=status, detail=text or None)
    url = str(response.request.url.copy_with(query=None)) if response.request else ""
    return _BY_STATUS.get(status, ApiError)(status, problem, url)


def connection_failed(base_url: str, exc: httpx.TransportError) -> ConnectionFailed:
    detail = str(exc) or type(exc).__name__
    return ConnectionFailed(f"cannot reach Sentinel at {base_url}: {detail}")
