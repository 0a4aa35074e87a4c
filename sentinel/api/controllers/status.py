"""``GET /status/{process_id}``, the hottest read of the API, served past most of Litestar.

Everything the fast path does differently from a normal Litestar route is here. It is a raw ASGI handler
mounted at ``/status``, so Litestar still routes the request, runs the app's middleware (HEAD, the single
``Authorization`` rule, metrics, traces) and turns its exceptions into problem documents, but builds no
``Request``, resolves no dependencies or parameter model, and builds no ``Response``, header multidict or
encoder lookup: these cost more than reading the status row from SQLite's page cache. Together with the
batched HTTP metrics below, it took a status read from 484,718 to 241,025 instructions (``make bench-cost``,
measured when it was introduced; see the README). What a normal route gets from Litestar is restated here:

- a mount matches ``/statusx`` and every method: such requests get the 404, 405 (with ``Allow``) and
  ``OPTIONS`` answers of a normal ``GET`` route;
- a mount leaves ``path_template`` empty: it is set here, as metrics and traces label by it;
- the principal comes from the same ``PrincipalResolver.of`` that every other route's ``principal``
  dependency uses (it reads the header from the ASGI scope, not from Litestar's header mapping);
- ids a path parameter cannot hold ('' and '/': Litestar's router drops trailing slashes) are read too,
  and answered as any id the tenant has no process for;
- the answer is encoded and sent here (``send_json``);
- Litestar leaves ASGI handlers out of the OpenAPI document: ``document`` writes the route's entry.

Two cost-driven pieces are shared with every route, not part of this path: ``PrincipalResolver``'s
token cache and ``metrics.HttpRecorder``'s batched request counts. ``tests/test_status_fastpath.py`` serves
the same read as a normal Litestar route and checks both give the same answers, headers included.
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Litestar, asgi
from litestar.enums import ParamType
from litestar.exceptions import MethodNotAllowedException, NotFoundException
from litestar.openapi.spec import (
    OpenAPIMediaType,
    OpenAPIResponse,
    OpenAPIType,
    Operation,
    Parameter,
    PathItem,
    Reference,
    Schema,
)
from litestar.types import HTTPScope, Receive, Send

from sentinel._core._shared import MAX_PROCESS_ID
from sentinel.api.openapi import PROBLEM_TEXT
from sentinel.api.params import NOT_FOUND, exact_process_id
from sentinel.api.problems import ApiProblem
from sentinel.api.responses import send_body
from sentinel.api.runtime import Runtime
from sentinel.api.scope import request_target
from sentinel.models import ProcessStatus
from sentinel.security import Principal

STATUS_ROUTE = "/status/{process_id}"
STATUS_PREFIX = b"/status/"
ALLOW = "GET, OPTIONS"  # HEAD is added by ``middleware.serve_head``, as for every GET route

_encode = msgspec.json.Encoder().encode


async def read_status(runtime: Runtime, principal: Principal, process_id: str) -> ProcessStatus:
    """The caller's process, or the 404 problem."""
    found = await runtime.read(runtime.store.get_status, principal.tenant, process_id)
    if found is None:
        # The same answer for "never existed" and "another tenant's": nothing leaks either way.
        raise ApiProblem(404, NOT_FOUND, code="not_found")
    return found


async def send_json(send: Send, document: Any, status: int = 200) -> None:
    """Encodes ``document`` (a msgspec Struct) and sends it as the whole answer."""
    await send_body(send, status, b"application/json", _encode(document))


async def send_empty(send: Send, status: int, headers: list[tuple[bytes, bytes]]) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b"", "more_body": False})


@asgi("/status", is_mount=True, copy_scope=False)
async def status(scope: HTTPScope, receive: Receive, send: Send) -> None:
    """``GET /status/{process_id}``: the status document of one process of the caller's tenant."""
    # A mount also matches '/statusx' and every method: answer those as a Litestar route would.
    target = request_target(scope)
    if not target.startswith(STATUS_PREFIX):
        raise NotFoundException()
    scope["path_template"] = STATUS_ROUTE  # a mount leaves it empty; metrics and traces label by it
    if scope["method"] != "GET":
        if scope["method"] == "OPTIONS":
            await send_empty(send, 204, [(b"allow", ALLOW.encode())])
            return
        raise MethodNotAllowedException(headers={"Allow": ALLOW})
    runtime: Runtime = Litestar.from_scope(scope).state.runtime
    principal = await runtime.principals.of(scope)
    await send_json(send, await read_status(runtime, principal, exact_process_id(target, STATUS_PREFIX)))


def document(app: Litestar) -> None:
    """Adds ``GET /status/{process_id}`` to the app's OpenAPI document, which leaves ASGI handlers out;
    its body is the ``ProcessStatus`` schema that ``GET /processes`` already puts in the components."""
    openapi = app.openapi_schema
    schemas = openapi.components.schemas or {}
    missing = {"ProcessStatus", "Problem"} - set(schemas)
    if missing:
        raise RuntimeError(f"OpenAPI components lack {sorted(missing)}: GET /status cannot be documented")

    def answer(description: str, media_type: str, schema: str) -> OpenAPIResponse:
        return OpenAPIResponse(
            description=description,
            content={media_type: OpenAPIMediaType(schema=Reference(f"#/components/schemas/{schema}"))},
        )

    openapi.paths = {
        **(openapi.paths or {}),
        STATUS_ROUTE: PathItem(
            get=Operation(
                tags=["processes"],
                summary="The status document of one process",
                description="A process id may hold '/' (send it as is or as %2F).",
                operation_id="StatusProcessIdStatus",
                parameters=[
                    Parameter(
                        name="process_id",
                        param_in=ParamType.PATH,
                        required=True,
                        schema=Schema(type=OpenAPIType.STRING, min_length=1, max_length=MAX_PROCESS_ID),
                    )
                ],
                responses={
                    "200": answer("the status document", "application/json", "ProcessStatus"),
                    **{
                        str(code): answer(PROBLEM_TEXT[code], "application/problem+json", "Problem")
                        for code in (401, 403, 404)
                    },
                },
            )
        ),
    }
