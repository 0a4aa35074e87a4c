"""``GET /processes``: the tenant's processes, filtered and paged (``GET /status`` is in ``status.py``)."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated, Any

from litestar import Controller, Request, get
from litestar.di import NamedDependency, Provide
from litestar.params import QueryParameter

from sentinel._core._shared import MAX_NAME
from sentinel.api.auth import provide_principal
from sentinel.api.openapi import problems
from sentinel.api.params import parse_statuses, parse_time, search_term
from sentinel.api.problems import ApiProblem
from sentinel.api.runtime import Runtime
from sentinel.api.schemas import ProcessPage
from sentinel.models import ProcessStatus, to_us
from sentinel.security import Principal
from sentinel.store.base import ProcessQuery


class ProcessController(Controller):
    tags = ["processes"]
    dependencies = {"principal": Provide(provide_principal)}

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
        binding = ["processes", list(statuses), process_type, package_name, since, search]
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
            snapshot, part, seen_at, process_id = runtime.cursors.decode(cursor, tenant, binding, (int, int, int, str))
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
                return ProcessPage(items=items[:limit], next_cursor=runtime.cursors.encode(position, tenant, binding))
            process_id = ""  # part 1 is done: the changed processes fill the rest of the page
        room = limit - len(items)
        query = replace(filters, snapshot=snapshot, changed_after=process_id, limit=room + 1)
        changed = await runtime.read(runtime.store.list_processes, tenant, query)
        next_cursor = None
        if len(changed) > room:
            position = [snapshot, 2, 0, changed[room - 1].process_id if room else ""]
            next_cursor = runtime.cursors.encode(position, tenant, binding)
        return ProcessPage(items=items + changed[:room], next_cursor=next_cursor)
