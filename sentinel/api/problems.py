"""Every error as ``application/problem+json`` (RFC 9457), with the same shape for every cause."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException

from sentinel.api.schemas import ItemError, Problem
from sentinel.security import AuthError

log = logging.getLogger("sentinel.api")
PROBLEM_JSON = "application/problem+json"


class ApiProblem(Exception):
    """Raised by handlers: becomes a problem document with this status."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        code: str,
        errors: list[ItemError] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.code = code
        self.errors = errors
        self.headers = headers or {}


def problem_body(status: int, detail: str | None, *, code: str, errors: list[ItemError] | None = None) -> bytes:
    body = Problem(title=HTTPStatus(status).phrase, status=status, detail=detail, code=code, errors=errors)
    return msgspec.json.encode(body)


def problem_response(
    status: int,
    detail: str | None,
    *,
    code: str,
    errors: list[ItemError] | None = None,
    headers: dict[str, str] | None = None,
) -> Response[bytes]:
    body = problem_body(status, detail, code=code, errors=errors)
    return Response(body, status_code=status, media_type=PROBLEM_JSON, headers=headers or {})


def auth_headers(exc: AuthError) -> dict[str, str]:
    return {"WWW-Authenticate": exc.www_authenticate} if exc.www_authenticate else {}


def _api_problem(_: Request[Any, Any, Any], exc: ApiProblem) -> Response[bytes]:
    return problem_response(exc.status, exc.detail, code=exc.code, errors=exc.errors, headers=exc.headers)


def _auth(_: Request[Any, Any, Any], exc: AuthError) -> Response[bytes]:
    return problem_response(exc.status, exc.detail, code=exc.code, headers=auth_headers(exc))


def _validation(_: Request[Any, Any, Any], exc: ValidationException) -> Response[bytes]:
    details = []
    for item in exc.extra if isinstance(exc.extra, list) else []:
        if isinstance(item, dict):
            key = item.get("key") or item.get("source") or "request"
            details.append(f"{key}: {item.get('message', 'invalid value')}")
    return problem_response(400, "; ".join(details) or str(exc.detail), code="bad_request")


# The codes of the answers the framework gives itself (no route, wrong method, body too large, ...),
# where ours differ from the status's name; every other status's code is its name in snake case.
_HTTP_CODES: dict[int, str] = {413: "too_large", 500: "internal_error"}


def http_code(status: int) -> str:
    """The ``code`` of a problem the framework raised: every problem document carries one."""
    try:
        return _HTTP_CODES.get(status) or HTTPStatus(status).name.lower()
    except ValueError:
        return f"http_{status}"


def _http(_: Request[Any, Any, Any], exc: HTTPException) -> Response[bytes]:
    status = exc.status_code
    headers = dict(exc.headers or {})
    detail = exc.detail if status < 500 else HTTPStatus(status).phrase
    if status == 413:
        detail = "request body is larger than allowed"
        headers.setdefault("Connection", "close")
    return problem_response(status, detail, code=http_code(status), headers=headers)


def _unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    log.exception("unhandled error on %s %s", request.method, request.scope.get("path_template", "?"))
    return problem_response(500, "internal error", code="internal_error")


EXCEPTION_HANDLERS: dict[Any, Any] = {
    ApiProblem: _api_problem,
    AuthError: _auth,
    ValidationException: _validation,
    HTTPException: _http,
    Exception: _unexpected,
}
