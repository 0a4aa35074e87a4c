"""Request parsing shared by the read routes: filters, times, and process ids exactly as sent."""

from __future__ import annotations

from urllib.parse import unquote_to_bytes

from sentinel import _core
from sentinel.api.problems import ApiProblem
from sentinel.models import STATUSES

NOT_FOUND = "no such process"


def parse_time(name: str, value: str | None) -> int | None:
    if value is None:
        return None
    try:
        # The event timestamp's grammar and words, with the parameter's name.
        return int(_core.parse_timestamp(value, name))
    except _core.EventRejected as exc:
        raise ApiProblem(400, exc.reason, code="bad_request") from None


def parse_statuses(value: str | None) -> tuple[str, ...]:
    if value is None:
        return ()
    wanted = tuple(dict.fromkeys(part.strip().upper() for part in value.split(",") if part.strip()))
    unknown = [s for s in wanted if s not in STATUSES]
    if not wanted or unknown:
        raise ApiProblem(400, f"status: expected a comma list of {', '.join(STATUSES)}", code="bad_request")
    return wanted


def search_term(q: str | None) -> str | None:
    """The ``q`` search as the store takes it: surrounding blanks dropped, an empty search is none."""
    return (q.strip() or None) if q is not None else None


def exact_process_id(target: bytes, prefix: bytes) -> str:
    """The process id exactly as sent (it may hold '/', even 'a//b' or 'job/'), from the request target."""
    tail = target[len(prefix) :] if target.startswith(prefix) else b""
    try:
        return unquote_to_bytes(tail).decode()
    except UnicodeDecodeError:
        return ""  # no process has such an id: answered as absent
