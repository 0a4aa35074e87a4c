"""The Litestar application factory (Granian target: ``sentinel.api.app:create_app``).

The factory only wires: it checks the settings and assembles handlers, middleware and the OpenAPI
document. Everything that touches the outside (the store, its migration and secrets, the signing keys)
happens in the lifespan, when the server starts the app, which then builds ``app.state.runtime``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import cached_property

from litestar import Litestar
from litestar.config.app import AppConfig
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme
from litestar.routes import HTTPRoute
from litestar.types import Receive, Scope, Send

from sentinel import __version__
from sentinel.api.auth import PrincipalResolver
from sentinel.api.controllers import status
from sentinel.api.controllers.alerts import AlertDeliveryController, AlertRuleController
from sentinel.api.controllers.baselines import BaselineController
from sentinel.api.controllers.events import EventController
from sentinel.api.controllers.health import HealthController
from sentinel.api.controllers.logs import LogController
from sentinel.api.controllers.processes import ProcessController
from sentinel.api.cursors import CursorCodec
from sentinel.api.deadlines import body_deadline_middleware
from sentinel.api.middleware import metrics_middleware, serve_head, single_authorization, tracing_middleware
from sentinel.api.openapi import RawJsonObjectPlugin, docs_render_plugins
from sentinel.api.problems import EXCEPTION_HANDLERS
from sentinel.api.producer import EventProducer
from sentinel.api.runtime import Runtime
from sentinel.api.streams import StreamLimiter
from sentinel.config import Settings, load_settings, require_identity_provider
from sentinel.security import build_verifier
from sentinel.store import open_store
from sentinel.telemetry import metrics, tracing
from sentinel.ui import DashboardController, ui_route_handlers

log = logging.getLogger("sentinel.api")


class SentinelApp(Litestar):
    """The Litestar app, answering HEAD on every GET route (see ``middleware.serve_head``)."""

    @cached_property
    def allowed_methods(self) -> dict[str, bytes]:
        """Every method each route serves, by its path template (the ``Allow`` of an OPTIONS answer)."""
        allowed: dict[str, bytes] = {}
        for route in self.routes:
            if isinstance(route, HTTPRoute):
                methods = b", ".join(method.encode() for method in sorted(route.methods))
                allowed[route.path] = allowed[route.path_format] = methods
        return allowed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:  # type: ignore[override]
        await serve_head(super().__call__, scope, receive, send, self.allowed_methods)


def open_runtime(settings: Settings) -> Runtime:
    """What the handlers share, opened: the store (migrated when embedded), its secrets, the verifier."""
    store = open_store(settings)
    try:
        if store.backend == "sqlite":
            store.migrate()  # idempotent; the embedded schema must exist before the cursor secret is read
        return Runtime(
            settings=settings,
            store=store,
            producer=EventProducer(store, max_events_per_commit=max(settings.batch_size, 10_000)),
            cursors=CursorCodec(store.secret("cursor-hmac")),
            principals=PrincipalResolver(build_verifier(settings, on_fetch=metrics.record_jwks_fetch)),
            inline_reads=store.backend == "sqlite",
            streams=StreamLimiter(settings.sse_max_streams, settings.sse_max_streams_per_tenant),
        )
    except BaseException:
        store.close()
        raise


def app_config(settings: Settings) -> AppConfig:
    """The app's configuration, built without I/O; ``create_app`` makes the app of it."""
    require_identity_provider(settings)
    traced = tracing.configure_tracing()

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        metrics.record_build_info()
        runtime = open_runtime(settings)
        app.state.runtime = runtime
        verifier = runtime.principals.verifier
        try:
            await verifier.start()
            await runtime.producer.start()
            flusher = asyncio.create_task(metrics.HTTP.flush_periodically(), name="http-metrics-flush")
            try:
                yield
            finally:
                flusher.cancel()
                await asyncio.gather(flusher, return_exceptions=True)
                await runtime.producer.close()
        finally:
            await verifier.close()
            runtime.store.close()
            tracing.shutdown()

    return AppConfig(
        route_handlers=[
            HealthController,
            ProcessController,
            status.status,
            LogController,
            EventController,
            DashboardController,
            *ui_route_handlers(settings),
            BaselineController,
            AlertRuleController,
            AlertDeliveryController,
        ],
        lifespan=[lifespan],
        exception_handlers=EXCEPTION_HANDLERS,
        plugins=[RawJsonObjectPlugin()],
        middleware=[
            *([tracing_middleware] if traced else []),
            metrics_middleware,
            single_authorization,
            body_deadline_middleware(settings.http_body_timeout_sec),
        ],
        request_max_body_size=settings.max_body_bytes,
        openapi_config=OpenAPIConfig(
            title="Process Sentinel",
            version=__version__,
            description="Live status and logs of long-running processes, per tenant.",
            path="/schema",
            render_plugins=docs_render_plugins(),
            components=Components(
                security_schemes={"bearer": SecurityScheme(type="http", scheme="bearer", bearer_format="JWT")}
            ),
            security=[{"bearer": []}],
        ),
        debug=False,
    )


def create_app(settings: Settings | None = None) -> Litestar:
    app = SentinelApp.from_config(app_config(settings or load_settings()))
    status.document(app)
    return app
