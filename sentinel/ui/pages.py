"""The dashboard's page, its static files and (dev mode only) its dev sign-in.

Every view (``/ui``, ``/ui/processes/{id}``, ``/ui/dead-letters``) is the same page: a shell that holds
no tenant data, rendered once per worker from the settings. The page signs in and fetches its data with a
bearer token kept in memory (see the README's "Dashboard" section for the OAuth pattern).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jinja2
import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.datastructures import CacheControlHeader
from litestar.response import Redirect
from litestar.router import Router
from litestar.static_files import create_static_files_router
from litestar.status_codes import HTTP_302_FOUND

from sentinel import __version__
from sentinel._core._shared import MAX_TENANT_ID
from sentinel.api.problems import ApiProblem
from sentinel.config import Settings
from sentinel.models import STATUSES
from sentinel.security import DevAuthority

HERE = Path(__file__).parent
STATIC = HERE / "static"
DEV_TOKEN_SEC = 900  # short, so the page's refresh before expiry is exercised in dev mode too
VIEW_PATHS = ["/ui", "/ui/processes/{process_id:path}", "/ui/dead-letters", "/ui/callback"]


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def security_headers(settings: Settings) -> dict[str, str]:
    """Scripts and styles from this server only; data from this server and, with OIDC, the identity
    provider (discovery and the token endpoint). No framing, no referrer, no inline script."""
    connect = "'self'"
    if not settings.dev_mode and settings.oauth2_issuer:
        connect += f" {_origin(settings.oauth2_issuer)}"
    return {
        "content-security-policy": (
            f"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            f"connect-src {connect}; font-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
        ),
        "cache-control": "no-store",
        "referrer-policy": "no-referrer",
        "x-content-type-options": "nosniff",
        "x-frame-options": "DENY",
    }


def render_shell(settings: Settings) -> bytes:
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True, undefined=jinja2.StrictUndefined
    )
    config = {
        "dev": settings.dev_mode,
        "issuer": None if settings.dev_mode else settings.oauth2_issuer,
        "clientId": settings.ui_client_id,
        "scopes": settings.ui_scopes,
        "adminRole": settings.admin_role,
        "ingestRole": settings.ingest_role,
        "tenantClaim": settings.tenant_claim,
        "statuses": list(STATUSES),
        "version": __version__,
    }
    page = environment.get_template("shell.html").render(
        config=msgspec.json.encode(config).decode(), version=__version__, dev=settings.dev_mode
    )
    return page.encode()


class DevSignIn(msgspec.Struct, forbid_unknown_fields=True):
    tenant: str
    admin: bool = False


class DevToken(msgspec.Struct):
    access_token: str
    expires_in: int
    token_type: str = "Bearer"  # noqa: S105 - the OAuth token type, not a secret


def ui_route_handlers(settings: Settings) -> list[Any]:
    """The dashboard's routes for the app factory; the dev sign-in exists only in dev mode."""
    shell = render_shell(settings)
    headers = security_headers(settings)

    class DashboardPages(Controller):
        include_in_schema = False

        @get("/", sync_to_thread=False)
        def root(self) -> Redirect:
            return Redirect("/ui", status_code=HTTP_302_FOUND)

        @get(VIEW_PATHS, sync_to_thread=False, media_type="text/html")
        def page(self) -> Response[bytes]:
            return Response(shell, media_type="text/html", headers=headers)

    handlers: list[Any] = [
        DashboardPages,
        create_static_files_router(
            path="/ui/static",
            directories=[STATIC],
            cache_control=CacheControlHeader(no_cache=True),
            include_in_schema=False,
            name="ui-static",
        ),
    ]
    if settings.dev_mode:
        handlers.append(_dev_sign_in(settings))
    return handlers


def _dev_sign_in(settings: Settings) -> Router:
    # Made at the first sign-in, not here: the app factory only wires (the key lives in the data directory).
    authorities: list[DevAuthority] = []

    def authority() -> DevAuthority:
        if not authorities:
            authorities.append(DevAuthority(settings.data_dir, tenant_claim=settings.tenant_claim))
        return authorities[0]

    @post("/ui/dev/token", summary="Dev mode only: a short-lived token for a tenant", tags=["dashboard"])
    async def dev_token(request: Request[Any, Any, Any]) -> DevToken:
        try:
            wanted = msgspec.json.decode(await request.body(), type=DevSignIn)
        except msgspec.ValidationError as exc:
            raise ApiProblem(400, f"body: {exc}", code="bad_request") from None
        except msgspec.DecodeError:
            raise ApiProblem(400, "body: expected a JSON object with 'tenant'", code="bad_request") from None
        tenant = wanted.tenant.strip()
        if not 0 < len(tenant) <= MAX_TENANT_ID or not tenant.isprintable():
            raise ApiProblem(400, f"tenant: expected 1-{MAX_TENANT_ID} printable characters", code="bad_request")
        roles = [settings.admin_role] if wanted.admin else []
        token = authority().mint(tenant, roles, ttl_seconds=DEV_TOKEN_SEC, subject=f"dev-ui@{tenant}")
        return DevToken(access_token=token, expires_in=DEV_TOKEN_SEC)

    return Router(path="/", route_handlers=[dev_token])
