"""What the OpenAPI document says beyond what Litestar infers from the handlers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgspec
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.plugins import OpenAPIRenderPlugin, SwaggerRenderPlugin
from litestar.openapi.spec import (
    OpenAPIMediaType,
    OpenAPIType,
    Operation,
    RequestBody,
    Schema,
)
from litestar.plugins import OpenAPISchemaPlugin
from litestar.typing import FieldDefinition

from sentinel._core import EVENT_FIELDS, EventField
from sentinel._core._schema import CHOICE, HEX, IDENT, INTEGER, JSON_OBJECT, NUMBER, TIMESTAMP
from sentinel._core._shared import MAX_EVENTS
from sentinel.api.schemas import Problem

SWAGGER_UI_ASSETS = "/ui/static/vendor/swagger-ui"


def docs_render_plugins() -> list[OpenAPIRenderPlugin]:
    """The API docs page at ``/schema`` (and ``/schema/swagger``): Swagger UI from the assets inside the
    package (``sentinel/ui/static/vendor/swagger-ui``, pinned by ``make vendor``), never from a CDN, so
    the page renders in a closed network. Litestar's own default favicon is a CDN link too."""
    return [
        SwaggerRenderPlugin(
            path=["/", "/swagger"],
            js_url=f"{SWAGGER_UI_ASSETS}/swagger-ui-bundle.js",
            css_url=f"{SWAGGER_UI_ASSETS}/swagger-ui.css",
            standalone_preset_js_url=f"{SWAGGER_UI_ASSETS}/swagger-ui-standalone-preset.js",
            favicon=f"<link rel='icon' type='image/png' href='{SWAGGER_UI_ASSETS}/favicon-32x32.png'>",
        )
    ]


class RawJsonObjectPlugin(OpenAPISchemaPlugin):
    """``metadata``, ``result`` and ``details`` travel as ``msgspec.Raw`` (stored JSON, never re-parsed);
    on the wire they are JSON objects, and the document says so."""

    @staticmethod
    def is_plugin_supported_type(value: Any) -> bool:
        return value is msgspec.Raw

    def to_openapi_schema(self, field_definition: FieldDefinition, schema_creator: Any) -> Schema:
        return Schema(type=OpenAPIType.OBJECT, description="a JSON object", additional_properties=True)


PROBLEM_TEXT = {
    400: "malformed request (bad filter, cursor or body)",
    401: "missing or invalid bearer token",
    403: "token lacks the tenant claim or the role, or names another tenant",
    404: "no such process for this tenant",
    413: "body or event count over the limit",
    415: "body is not application/json",
    422: "some events are invalid; nothing was queued",
    429: "this tenant has as many live streams open as allowed; retry after Retry-After seconds",
    503: "not accepting this request right now (overloaded, or no room for another live stream); see Retry-After",
}


def problems(*statuses: int) -> dict[int, ResponseSpec]:
    """The problem+json answers a route can give, for its OpenAPI entry."""
    return {
        status: ResponseSpec(
            Problem, description=PROBLEM_TEXT[status], media_type="application/problem+json", generate_examples=False
        )
        for status in statuses
    }


def _field_schema(field: EventField) -> Schema:
    """One event field's schema, from its declaration (``sentinel._core._schema``)."""
    if field.kind == IDENT:
        return Schema(type=OpenAPIType.STRING, min_length=1, max_length=field.max_length)
    if field.kind == CHOICE:
        return Schema(type=OpenAPIType.STRING, enum=list(field.choices or ()))
    if field.kind == TIMESTAMP:
        return Schema(type=OpenAPIType.STRING, format="date-time")  # type: ignore[arg-type]
    if field.kind == JSON_OBJECT:
        return Schema(type=OpenAPIType.OBJECT, description=f"at most {field.max_length} bytes of JSON")
    if field.kind == HEX:
        return Schema(type=OpenAPIType.STRING, pattern=f"^[0-9a-fA-F]{{{field.digits}}}$")
    if field.kind in (NUMBER, INTEGER):
        kind = OpenAPIType.NUMBER if field.kind == NUMBER else OpenAPIType.INTEGER
        return Schema(type=kind, minimum=field.minimum, maximum=field.maximum)
    return Schema(type=OpenAPIType.STRING, max_length=field.max_length)


def event_schema(fields: tuple[EventField, ...] = EVENT_FIELDS) -> Schema:
    """An event as ``POST /events`` takes it, from the declaration of its fields."""
    return Schema(
        type=OpenAPIType.OBJECT,
        description="One event (SPEC section 2). tenant_id may be omitted: it comes from the token.",
        # Over HTTP the token supplies the tenant: tenant_id is the one required field that may be left out.
        required=[field.name for field in fields if field.required and field.name != "tenant_id"],
        properties={field.name: _field_schema(field) for field in fields},
    )


_EVENT = event_schema()


@dataclass
class PostEventsOperation(Operation):
    """The body of ``POST /events`` is read by the core, not by Litestar, so it is described here."""

    def __post_init__(self) -> None:
        self.request_body = RequestBody(
            required=True,
            description=f"one event, or an array of at most {MAX_EVENTS:,}",
            content={
                "application/json": OpenAPIMediaType(
                    schema=Schema(one_of=[_EVENT, Schema(type=OpenAPIType.ARRAY, items=_EVENT, max_items=MAX_EVENTS)])
                )
            },
        )
