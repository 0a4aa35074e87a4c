"""``GET /status/{process_id}`` as a normal Litestar route, in an app otherwise the same as Sentinel's.

Not a test module: the Granian target ``status_reference_app:create_app`` of
``tests/test_status_fastpath.py``, which compares its answers with those of the fast path
(``sentinel.api.controllers.status``). The route reads the status with the fast path's own ``read_status``;
everything else (parameters, the principal dependency, the response, errors) is Litestar's.
"""

from __future__ import annotations

from typing import Any

from litestar import Litestar, Request, get
from litestar.di import NamedDependency, Provide

from sentinel.api.app import SentinelApp, app_config
from sentinel.api.auth import provide_principal
from sentinel.api.controllers import status
from sentinel.api.params import exact_process_id
from sentinel.api.scope import request_target
from sentinel.config import load_settings
from sentinel.models import ProcessStatus
from sentinel.security import Principal


@get("/status/{process_id:path}", dependencies={"principal": Provide(provide_principal)})
async def status_route(
    request: Request[Any, Any, Any], principal: NamedDependency[Principal], process_id: str
) -> ProcessStatus:
    # The id as sent, as the fast path reads it: the path parameter has had its slashes normalised.
    target = exact_process_id(request_target(request.scope), status.STATUS_PREFIX)
    return await status.read_status(request.app.state.runtime, principal, target)


def create_app() -> Litestar:
    config = app_config(load_settings())
    config.route_handlers = [handler for handler in config.route_handlers if handler is not status.status]
    config.route_handlers.append(status_route)
    return SentinelApp.from_config(config)
