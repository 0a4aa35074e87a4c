"""``GET /processes``: the tenant's processes, filtered and paged (``GET /status`` is in ``status.py``)."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, get
from litestar.di import NamedDependency, Provide
from litestar.params import QueryParameter

from sentinel.api.auth import provide_principal
from sentinel.api.openapi import problems
from sentinel.api.params import parse_statuses, parse_time
from sentinel.api.runtime import Runtime
from sentinel.api.schemas import ProcessPage
from sentinel.models import to_us
from sentinel.security import Principal
from sentinel.store.base import ProcessQuery


class ProcessController(Controller):
    tags = ["processes"]
    dependencies = {"principal": Provide(provide_principal)}

    @get(
        "/processes",
        summary="Processes of the caller's tenant, newest activity first",
        responses=problems(400, 401, 403),
    )
    async def processes(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[Principal],
        status: Annotated[str | None, QueryParameter(description="comma list of statuses")] = None,
        process_type: Annotated[str | None, QueryParameter(max_length=200)] = None,
        package_name: Annotated[str | None, QueryParameter(max_length=200)] = None,
        updated_since: Annotated[str | None, QueryParameter(description="RFC 3339 date-time")] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=500)] = 50,
        cursor: Annotated[str | None, QueryParameter(description="next_cursor of the previous page")] = None,
    ) -> ProcessPage:
        runtime: Runtime = request.app.state.runtime
        statuses = parse_statuses(status)
        since = parse_time("updated_since", updated_since)
        scope = ["processes", list(statuses), process_type, package_name, since]
        after = None
        if cursor is not None:
            seen_at, process_id = runtime.cursors.decode(cursor, principal.tenant, scope, (int, str))
            after = (seen_at, process_id)
        query = ProcessQuery(
            statuses=statuses,
            process_type=process_type,
            package_name=package_name,
            updated_since=since,
            after=after,
            limit=limit + 1,
        )
        items = await runtime.read(runtime.store.list_processes, principal.tenant, query)
        next_cursor = None
        if len(items) > limit:
            items = items[:limit]
            last = items[-1]
            assert last.last_seen_at is not None
            next_cursor = runtime.cursors.encode([to_us(last.last_seen_at), last.process_id], principal.tenant, scope)
        return ProcessPage(items=items, next_cursor=next_cursor)
