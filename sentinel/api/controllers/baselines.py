"""``GET /baselines``: how long each kind of the tenant's processes normally takes."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, get
from litestar.di import NamedDependency, Provide
from litestar.params import QueryParameter

from sentinel.api.auth import provide_principal
from sentinel.api.controllers.alerts import repo_of
from sentinel.api.openapi import problems
from sentinel.baselines import Baseline
from sentinel.security import Principal


class BaselinePage(msgspec.Struct, kw_only=True):
    items: list[Baseline]
    next_cursor: str | None


class BaselineController(Controller):
    path = "/baselines"
    tags = ["baselines"]
    dependencies = {"principal": Provide(provide_principal)}

    @get(
        "/",
        summary="Run-time baselines of the caller's tenant (median, 90th and 99th percentile of recent runs)",
        responses=problems(400, 401, 403),
    )
    async def baselines(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[Principal],
        process_type: Annotated[str | None, QueryParameter(max_length=200)] = None,
        process_name: Annotated[str | None, QueryParameter(max_length=200)] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=500)] = 100,
        cursor: Annotated[str | None, QueryParameter(description="next_cursor of the previous page")] = None,
    ) -> BaselinePage:
        runtime, repo = repo_of(request)
        binding = ["baselines", process_type, process_name]
        after = None
        if cursor is not None:
            after = runtime.cursors.decode(cursor, principal.tenant, binding, (str, str, str, str))
        items, keys = await runtime.read(repo.baselines, principal.tenant, after, limit + 1, process_type, process_name)
        next_cursor = None
        if len(items) > limit:
            items = items[:limit]
            next_cursor = runtime.cursors.encode(keys[limit - 1], principal.tenant, binding)
        return BaselinePage(items=items, next_cursor=next_cursor)
