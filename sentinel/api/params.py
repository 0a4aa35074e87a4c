"""Request parsing shared by the read routes: filters, times, and process ids exactly as sent."""

from __future__ import annotations

from urllib.parse import unquote_to_bytes

from sentinel import _core
from sentinel.api.problems import ApiProblem
from sentinel.models import STATUSES

NOT_FOUND = "no such process"
# The largest stored sequence number (a signed 64-bit integer column on both stores).
MAX_SEQ = 2**63 - 1


def is_whole_number(value: str, high: int) -> bool:
    """``value`` is ASCII digits only (no sign, blank, "²" or other Unicode digit that ``str.isdigit``
    takes) and at most ``high``. The length check keeps a huge digit string from being converted."""
    return value.isascii() and value.isdigit() and len(value) <= len(str(high)) and int(value) <= high


def parse_last_event_id(value: str | None) -> int:
    """A stream's ``Last-Event-ID`` (the ``id`` of the last event the client got): the stream resumes after
    it. Absent or empty means from the start. Anything else that is not an id this API sends is a 400, not
    a silent restart from 0, which would replay the whole log to a client that believes it is resuming."""
    resume = (value or "").strip(" \t")
    if not resume:
        return 0
    if not is_whole_number(resume, MAX_SEQ):
        raise ApiProblem(
            400,
            f"Last-Event-ID: expected the id of an event this stream sent (a whole number from 0 to {MAX_SEQ}),"
            f" got {_clip(value or '')}",
            code="bad_last_event_id",
        )
    return int(resume)


def _clip(text: str) -> str:
    quoted = repr(text)
    return quoted if len(quoted) <= 42 else quoted[:39] + "..."


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
