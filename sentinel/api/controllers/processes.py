"""``GET /status/{process_id}`` and ``GET /processes``: tenant-scoped status reads."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated, Any
from urllib.parse import unquote_to_bytes

from litestar import Controller, Litestar, Request, asgi, get
from litestar.di import NamedDependency, Provide
from litestar.exceptions import MethodNotAllowedException, NotFoundException
from litestar.params import QueryParameter
from litestar.types import HTTPScope, Receive, Send

from sentinel import _core
from sentinel._core._shared import MAX_NAME
from sentinel.api.auth import provide_principal
from sentinel.api.openapi import problems
from sentinel.api.problems import ApiProblem
from sentinel.api.responses import send_empty, send_json
from sentinel.api.runtime import Runtime
from sentinel.api.schemas import ProcessPage
from sentinel.api.scope import request_target
from sentinel.models import STATUSES, ProcessStatus, to_us
from sentinel.security import Principal
from sentinel.store.base import ProcessQuery

NOT_FOUND = "no such process"
STATUS_ROUTE = "/status/{process_id}"
STATUS_PREFIX = b"/status/"


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


class ProcessController(Controller):
    tags = ["processes"]
    dependencies = {"principal": Provide(provide_principal)}

    @asgi("/status", is_mount=True, copy_scope=False)
    async def status(self, scope: HTTPScope, receive: Receive, send: Send) -> None:
        """``GET /status/{process_id}``, the hottest read of the API, as an ASGI handler: Litestar still
        routes it and handles its errors, but builds no request object, parameter model or response for
        it. The OpenAPI document gets its entry from ``document_status_route``."""
        # A mount also matches '/statusx' and every method: answer those as a Litestar route would.
        target = request_target(scope)
        if not target.startswith(STATUS_PREFIX):
            raise NotFoundException()
        scope["path_template"] = STATUS_ROUTE  # a mount leaves it empty; metrics and traces label by it
        if scope["method"] != "GET":
            if scope["method"] == "OPTIONS":
                await send_empty(send, 204, [(b"allow", b"GET, OPTIONS")])
                return
            raise MethodNotAllowedException(headers={"Allow": "GET, OPTIONS"})
        runtime: Runtime = Litestar.from_scope(scope).state.runtime
        principal = await runtime.principals.of(scope)
        found = await runtime.read(runtime.store.get_status, principal.tenant, exact_process_id(target, STATUS_PREFIX))
        if found is None:
            # The same answer for "never existed" and "another tenant's": nothing leaks either way.
            raise ApiProblem(404, NOT_FOUND, code="not_found")
        await send_json(send, found)

    @get(
        "/processes",
        summary="Processes of the caller's tenant, newest activity first",
        description=(
            "Newest `last_seen_at` first, `limit` at a time; follow `next_cursor` for the next page. "
            "A walk returns every process that existed when it began, even one whose activity moves it "
            "up the order while the walk goes on: processes that change during the walk are listed "
            "(again, if already returned) after the others, by `process_id`. So a process may appear "
            "twice in one walk; none is missed."
        ),
        responses=problems(400, 401, 403),
    )
    async def processes(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[Principal],
        status: Annotated[str | None, QueryParameter(description="comma list of statuses")] = None,
        process_type: Annotated[str | None, QueryParameter(max_length=MAX_NAME)] = None,
        package_name: Annotated[str | None, QueryParameter(max_length=MAX_NAME)] = None,
        updated_since: Annotated[str | None, QueryParameter(description="RFC 3339 date-time")] = None,
        q: Annotated[
            str | None, QueryParameter(max_length=200, description="substring of the process id or name, any case")
        ] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=500)] = 50,
        cursor: Annotated[str | None, QueryParameter(description="next_cursor of the previous page")] = None,
    ) -> ProcessPage:
        runtime: Runtime = request.app.state.runtime
        tenant = principal.tenant
        statuses = parse_statuses(status)
        since = parse_time("updated_since", updated_since)
        search = search_term(q)
        scope = ["processes", list(statuses), process_type, package_name, since, search]
        filters = ProcessQuery(
            statuses=statuses,
            process_type=process_type,
            package_name=package_name,
            updated_since=since,
            search=search,
        )
        if cursor is None:
            # The walk's snapshot bound: every later change has a larger updated_at (see ProcessQuery).
            snapshot = await runtime.read(runtime.store.process_snapshot, tenant)
            part, seen_at, process_id = 1, 0, ""
        else:
            snapshot, part, seen_at, process_id = runtime.cursors.decode(cursor, tenant, scope, (int, int, int, str))
            if part not in (1, 2):
                raise ApiProblem(400, "cursor: not a cursor issued by this API", code="bad_cursor")
        items: list[ProcessStatus] = []
        if part == 1:
            after = None if cursor is None else (seen_at, process_id)
            query = replace(filters, snapshot=snapshot, after=after, limit=limit + 1)
            items = await runtime.read(runtime.store.list_processes, tenant, query)
            if len(items) > limit:
                last = items[limit - 1]
                assert last.last_seen_at is not None
                position = [snapshot, 1, to_us(last.last_seen_at), last.process_id]
                return ProcessPage(items=items[:limit], next_cursor=runtime.cursors.encode(position, tenant, scope))
            process_id = ""  # part 1 is done: the changed processes fill the rest of the page
        room = limit - len(items)
        query = replace(filters, snapshot=snapshot, changed_after=process_id, limit=room + 1)
        changed = await runtime.read(runtime.store.list_processes, tenant, query)
        next_cursor = None
        if len(changed) > room:
            position = [snapshot, 2, 0, changed[room - 1].process_id if room else ""]
            next_cursor = runtime.cursors.encode(position, tenant, scope)
        return ProcessPage(items=items + changed[:room], next_cursor=next_cursor)
