"""Request and response bodies of the HTTP API (SPEC section 4), all msgspec Structs."""

from __future__ import annotations

import msgspec

from sentinel.models import LogEntry, ProcessStatus


class ProcessPage(msgspec.Struct, kw_only=True):
    items: list[ProcessStatus]
    next_cursor: str | None


class LogPage(msgspec.Struct, kw_only=True):
    items: list[LogEntry]
    next_cursor: str | None


class Accepted(msgspec.Struct, kw_only=True):
    accepted: int


class Health(msgspec.Struct, kw_only=True):
    status: str
    version: str
    core: str


class Readiness(msgspec.Struct, kw_only=True):
    status: str
    checks: dict[str, str]


class ItemError(msgspec.Struct, kw_only=True):
    index: int
    code: str
    reason: str


class Problem(msgspec.Struct, kw_only=True, omit_defaults=True):
    """An RFC 9457 problem document."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    code: str  # a short, stable label of the cause (a machine reads this, a person the detail)
    errors: list[ItemError] | None = None
