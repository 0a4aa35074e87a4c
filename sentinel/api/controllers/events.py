"""``POST /events``: all or nothing, durably queued before the 202."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, post
from litestar.di import NamedDependency, Provide
from litestar.status_codes import HTTP_202_ACCEPTED

from sentinel import _core
from sentinel._core._shared import EVENT_TOO_LARGE, MAX_EVENT_BYTES, MAX_EVENTS, event_too_large
from sentinel.api.auth import provide_principal
from sentinel.api.openapi import PostEventsOperation, problems
from sentinel.api.params import is_whole_number
from sentinel.api.problems import ApiProblem
from sentinel.api.producer import Overloaded
from sentinel.api.runtime import Runtime
from sentinel.api.schemas import Accepted, ItemError
from sentinel.security import Principal, require_role
from sentinel.telemetry import metrics


def _oversized(payloads: list[bytes], errors: list[tuple[int, str, str]]) -> list[tuple[int, str, str]]:
    """``(index, code, reason)`` of every valid event whose serialized form (the queue payload) is
    over ``MAX_EVENT_BYTES``, the one event limit of every path (an Oracle AQ RAW message)."""
    if all(len(payload) <= MAX_EVENT_BYTES for payload in payloads):
        return []
    bad = {index for index, _, _ in errors}
    indexes = [index for index in range(len(payloads) + len(errors)) if index not in bad]  # of payloads
    return [
        (index, (refused := event_too_large(len(payload))).code, refused.reason)
        for index, payload in zip(indexes, payloads, strict=True)
        if len(payload) > MAX_EVENT_BYTES
    ]


def _is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


class EventController(Controller):
    tags = ["events"]
    dependencies = {"principal": Provide(provide_principal)}

    @post(
        "/events",
        status_code=HTTP_202_ACCEPTED,
        summary="Queue one event or an array of events for the caller's tenant",
        description=(
            "All or nothing: an invalid item refuses the whole request (422, naming each bad index) and "
            "nothing is queued. 202 means the events are durably queued. Requires the ingest role."
        ),
        operation_class=PostEventsOperation,  # documents the body, which the core reads itself
        responses=problems(400, 401, 403, 413, 415, 422, 503),
    )
    async def post_events(self, request: Request[Any, Any, Any], principal: NamedDependency[Principal]) -> Accepted:
        runtime: Runtime = request.app.state.runtime
        require_role(principal, runtime.settings.ingest_role, "posting events")
        if not _is_json(request.headers.get("content-type", "")):
            raise ApiProblem(415, "body must be application/json", code="unsupported_media_type")
        declared = (request.headers.get("content-length") or "").strip(" \t")
        if declared and not (declared.isascii() and declared.isdigit()):
            # The server in front normally refuses this first; never let int() judge it ("²" is a digit).
            raise ApiProblem(400, "Content-Length: expected ASCII digits", code="bad_request")
        if declared and not is_whole_number(declared, runtime.settings.max_body_bytes):
            # The body is left unread, so the connection cannot be reused: say so.
            raise ApiProblem(
                413,
                f"body is larger than {runtime.settings.max_body_bytes} bytes",
                code="too_large",
                headers={"Connection": "close"},
            )
        body = await request.body()
        try:
            payloads, priorities, errors = _core.prepare_http(body, principal.tenant, MAX_EVENTS)
        except _core.BodyRejected as exc:
            raise ApiProblem(400, str(exc), code="bad_body") from None
        except OverflowError:
            raise ApiProblem(413, f"more than {MAX_EVENTS} events in one request", code="too_many_events") from None
        total = len(payloads) + len(errors)
        too_large = _oversized(payloads, errors)
        if too_large:
            errors = sorted([*errors, *too_large])
        if errors:
            for _, code, _ in errors:
                metrics.EVENTS_REJECTED.labels(code).inc()
            items = [ItemError(index=i, code=c, reason=r) for i, c, r in errors]
            if any(item.code == "foreign_tenant" for item in items):
                raise ApiProblem(
                    403,
                    "events may only be posted for the token's own tenant; nothing was queued",
                    code="foreign_tenant",
                    errors=items,
                )
            if len(too_large) == len(errors):
                raise ApiProblem(
                    413,
                    f"{len(errors)} of {total} events are larger than {MAX_EVENT_BYTES} bytes serialized;"
                    " nothing was queued",
                    code=EVENT_TOO_LARGE,
                    errors=items,
                )
            raise ApiProblem(
                422,
                f"{len(errors)} of {total} events are invalid; nothing was queued",
                code="invalid_events",
                errors=items,
            )
        if not payloads:
            raise ApiProblem(400, "no events in the body", code="bad_body")
        try:
            await runtime.producer.submit(payloads, priorities)
        except Overloaded as exc:
            raise ApiProblem(
                503, f"not accepting events right now: {exc}", code="overloaded", headers={"Retry-After": "1"}
            ) from None
        metrics.EVENTS_ACCEPTED.inc(len(payloads))
        return Accepted(accepted=len(payloads))
