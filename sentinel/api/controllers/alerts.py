"""``/alert-rules`` (CRUD) and ``GET /alert-deliveries``: a tenant's alerting, for its admins only
(the role named by ``SENTINEL_ALERT_ADMIN_ROLE``, default ``sentinel-admin``)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Annotated, Any, Literal, TypeVar

import msgspec
from litestar import Controller, Request, delete, get, post, put
from litestar.di import NamedDependency, Provide
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import QueryParameter

from sentinel.alerts.db import Database
from sentinel.alerts.repo import AlertRepo, Delivery, RuleConflict
from sentinel.alerts.rules import RuleError, RuleIn, RuleOut, validate
from sentinel.api.auth import provide_principal
from sentinel.api.openapi import problems
from sentinel.api.problems import ApiProblem
from sentinel.api.runtime import Runtime
from sentinel.api.schemas import Problem
from sentinel.security import AuthError, Principal

RULE_NOT_FOUND = "no such alert rule"
T = TypeVar("T")


class RulePage(msgspec.Struct, kw_only=True):
    items: list[RuleOut]
    next_cursor: str | None


class DeliveryPage(msgspec.Struct, kw_only=True):
    items: list[Delivery]
    next_cursor: str | None


def _problem(status: int, text: str) -> ResponseSpec:
    return ResponseSpec(Problem, description=text, media_type="application/problem+json", generate_examples=False)


NOT_FOUND = {404: _problem(404, "no such alert rule for this tenant")}
CONFLICT = {409: _problem(409, "the rule comes from the operator's file, or the tenant has too many rules")}


def repo_of(request: Request[Any, Any, Any]) -> tuple[Runtime, AlertRepo]:
    runtime: Runtime = request.app.state.runtime
    repo = getattr(request.app.state, "alert_repo", None)
    if repo is None:
        repo = request.app.state.alert_repo = AlertRepo(Database(runtime.store))
    return runtime, repo


def require_admin(principal: Principal, runtime: Runtime) -> None:
    role = runtime.settings.alert_admin_role
    if not principal.has_role(role):
        raise AuthError(403, "missing_role", f"alert rules and deliveries need the '{role}' role")


def checked(rule: RuleIn, runtime: Runtime, *, had_secret: bool) -> RuleIn:
    try:
        validate(rule, rule.secret, had_secret=had_secret, allow_private=runtime.settings.alert_allow_private_targets)
    except RuleError as exc:
        raise ApiProblem(400, str(exc), code="bad_rule") from None
    return rule


async def change(fn: Callable[..., T], *args: Any) -> T:
    """A write of the rules table, off the event loop (it may wait for the SQLite write lock); a conflict
    becomes 409."""
    try:
        return await asyncio.to_thread(fn, *args)
    except RuleConflict as exc:
        raise ApiProblem(409, str(exc), code="conflict") from None


class AlertRuleController(Controller):
    path = "/alert-rules"
    tags = ["alerts"]
    dependencies = {"principal": Provide(provide_principal)}

    @get("/", summary="The tenant's alert rules (secrets are never shown)", responses=problems(400, 401, 403))
    async def list_rules(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[Principal],
        limit: Annotated[int, QueryParameter(ge=1, le=200)] = 50,
        cursor: Annotated[str | None, QueryParameter(description="next_cursor of the previous page")] = None,
    ) -> RulePage:
        runtime, repo = repo_of(request)
        require_admin(principal, runtime)
        after = ""
        if cursor is not None:
            (after,) = runtime.cursors.decode(cursor, principal.tenant, ["alert-rules"], (str,))
        items = await runtime.read(repo.list_rules, principal.tenant, after, limit + 1)
        next_cursor = None
        if len(items) > limit:
            items = items[:limit]
            next_cursor = runtime.cursors.encode([items[-1].id], principal.tenant, ["alert-rules"])
        return RulePage(items=items, next_cursor=next_cursor)

    @post("/", summary="Create an alert rule", responses={**problems(400, 401, 403), **CONFLICT})
    async def create_rule(
        self, request: Request[Any, Any, Any], principal: NamedDependency[Principal], data: RuleIn
    ) -> RuleOut:
        runtime, repo = repo_of(request)
        require_admin(principal, runtime)
        checked(data, runtime, had_secret=False)
        return await change(repo.create_rule, principal.tenant, data)

    @get("/{rule_id:str}", summary="One alert rule", responses={**problems(401, 403), **NOT_FOUND})
    async def get_rule(
        self, request: Request[Any, Any, Any], principal: NamedDependency[Principal], rule_id: str
    ) -> RuleOut:
        runtime, repo = repo_of(request)
        require_admin(principal, runtime)
        found = await runtime.read(repo.get_rule, principal.tenant, rule_id)
        if found is None:
            raise ApiProblem(404, RULE_NOT_FOUND, code="not_found")
        return found

    @put(
        "/{rule_id:str}",
        summary="Replace an alert rule (without a secret, the stored one is kept)",
        responses={**problems(400, 401, 403), **NOT_FOUND, **CONFLICT},
    )
    async def replace_rule(
        self, request: Request[Any, Any, Any], principal: NamedDependency[Principal], rule_id: str, data: RuleIn
    ) -> RuleOut:
        runtime, repo = repo_of(request)
        require_admin(principal, runtime)
        current = await runtime.read(repo.get_rule, principal.tenant, rule_id)
        if current is None:
            raise ApiProblem(404, RULE_NOT_FOUND, code="not_found")
        checked(data, runtime, had_secret=current.secret_set)
        found = await change(repo.update_rule, principal.tenant, rule_id, data)
        if found is None:  # deleted meanwhile
            raise ApiProblem(404, RULE_NOT_FOUND, code="not_found")
        return found

    @delete("/{rule_id:str}", summary="Delete an alert rule", responses={**problems(401, 403), **NOT_FOUND, **CONFLICT})
    async def delete_rule(
        self, request: Request[Any, Any, Any], principal: NamedDependency[Principal], rule_id: str
    ) -> None:
        runtime, repo = repo_of(request)
        require_admin(principal, runtime)
        if not await change(repo.delete_rule, principal.tenant, rule_id):
            raise ApiProblem(404, RULE_NOT_FOUND, code="not_found")


class AlertDeliveryController(Controller):
    path = "/alert-deliveries"
    tags = ["alerts"]
    dependencies = {"principal": Provide(provide_principal)}

    @get(
        "/",
        summary="Notifications of the tenant's rules and their delivery attempts, newest first",
        responses=problems(400, 401, 403),
    )
    async def deliveries(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[Principal],
        delivery_state: Annotated[
            Literal["pending", "delivered", "failed", "dropped"] | None, QueryParameter(name="state")
        ] = None,
        rule_id: Annotated[str | None, QueryParameter(max_length=200)] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=200)] = 50,
        cursor: Annotated[str | None, QueryParameter(description="next_cursor of the previous page")] = None,
    ) -> DeliveryPage:
        runtime, repo = repo_of(request)
        require_admin(principal, runtime)
        binding = ["alert-deliveries", delivery_state, rule_id]
        before = 2**62
        if cursor is not None:
            (before,) = runtime.cursors.decode(cursor, principal.tenant, binding, (int,))
        items = await runtime.read(repo.deliveries, principal.tenant, before, limit + 1, delivery_state, rule_id)
        next_cursor = None
        if len(items) > limit:
            items = items[:limit]
            next_cursor = runtime.cursors.encode([items[-1].id], principal.tenant, binding)
        return DeliveryPage(items=items, next_cursor=next_cursor)
