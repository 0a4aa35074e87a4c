"""HTTP conventions on every route of the app, against a real ``sentinel serve``: HEAD is answered like GET
without a body, ``Allow`` names HEAD, and two ``Authorization`` headers are refused on every route.

The routes are not listed by hand: they are enumerated from an app built in this process (Litestar's routes,
plus the OpenAPI document for the ``/status`` mount), so a route added later is covered without editing this
file. A route whose path parameter has no sample value below fails the test, naming it.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from apiserver import ApiServer, assert_problem, event, unique, wait_for
from jwks_server import JwksServer, SigningKey
from litestar.exceptions import LitestarDeprecationWarning
from litestar.routes import ASGIRoute, HTTPRoute
from litestar.testing import TestClient

from sentinel.api.app import create_app
from sentinel.config import load_settings

pytestmark = pytest.mark.slow

INGEST = "sentinel-ingest"
# Headers that legitimately differ between two answers to the same request, or between a body that is sent
# and one that is not (a streamed GET body is chunked; a HEAD answer has no body to chunk).
VOLATILE = {"date", "transfer-encoding"}
# Routes whose body changes with every request: their Content-Length can only be compared for presence.
SELF_COUNTING = {"/metrics"}  # counts the requests made to it


@dataclass(frozen=True)
class Route:
    path: str  # the template, as the app declares it
    methods: frozenset[str]


def app_routes(data_dir: Path) -> list[Route]:
    """Every route of the app, the ``/status`` mount as the GET route its OpenAPI entry documents."""
    # The servers below check tokens from a loopback identity provider (not dev mode, so no dev-only
    # route): the app is built the same way. Building it does no I/O, so the issuer is never asked.
    env = {"SENTINEL_DATA_DIR": str(data_dir), "OAUTH2_ISSUER": "https://idp.invalid/realm", "OAUTH2_AUDIENCE": "x"}
    settings = load_settings(env)
    with warnings.catch_warnings():
        # Litestar >= 2.2x warns while building the app that the handlers' inferred parameter style will
        # stop working in Litestar 3 (reported elsewhere); nothing else may warn.
        warnings.filterwarnings("ignore", category=LitestarDeprecationWarning)
        app = create_app(settings)
    documented = app.openapi_schema.paths or {}
    routes: list[Route] = []
    for route in app.routes:
        if isinstance(route, HTTPRoute):
            routes.append(Route(route.path, frozenset(route.methods) - {"OPTIONS"}))
        elif isinstance(route, ASGIRoute):
            # A mount serves what its OpenAPI entries say; an undocumented mount is a failure to document.
            below = [path for path in documented if path.startswith(route.path.rstrip("/") + "/")]
            assert below, f"the ASGI route {route.path} has no OpenAPI entry: document it"
            for path in below:
                item = documented[path]
                methods = {name.upper() for name in ("get", "post", "put", "patch", "delete") if getattr(item, name)}
                routes.append(Route(path, frozenset(methods)))
        else:
            raise AssertionError(f"a route of an unexpected kind: {route!r}")
    return routes


def concrete(path: str, samples: dict[str, str]) -> str:
    """The template with each ``{name}`` or ``{name:type}`` replaced by its sample value."""
    out, rest = "", path
    while "{" in rest:
        head, _, tail = rest.partition("{")
        parameter, _, rest = tail.partition("}")
        name = parameter.split(":", 1)[0]
        assert name in samples, f"{path}: no sample value for the path parameter {name!r}; add one to the test"
        out += head + samples[name]
    return out + rest


def test_the_app_factory_only_wires(tmp_path: Path) -> None:
    """``create_app`` touches nothing outside the process: the store, its schema and secret and the signing
    keys are opened by the app's lifespan, when the server starts it."""
    data = tmp_path / "data"
    settings = load_settings({"SENTINEL_DATA_DIR": str(data)}, dev_mode=True)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=LitestarDeprecationWarning)  # as in ``app_routes``
        app = create_app(settings)
    assert not data.exists()
    assert getattr(app.state, "runtime", None) is None
    with TestClient(app) as client:
        assert settings.sqlite_path.exists()
        ready = client.get("/ready")
        assert ready.json()["checks"]["store"] == "ok"
        assert ready.json()["checks"]["keys"] == "ok"
        assert_problem(client.get("/status/p-1"), 401)


@dataclass
class Env:
    api: ApiServer
    routes: list[Route]
    token: str
    samples: dict[str, str]


@pytest.fixture(scope="module")
def key() -> SigningKey:
    return SigningKey.ec(kid="http-ec")


@pytest.fixture(scope="module")
def env(key: SigningKey, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    root = tmp_path_factory.mktemp("http")
    routes = app_routes(root / "enumerate")
    with JwksServer([key]) as idp, ApiServer(root / "data", idp=idp, workers=1) as api:
        token = key.sign(idp.claims(tenant_id=unique("http"), roles=[INGEST], ttl=3600))
        process_id = unique("head")
        with api.client(token) as http:
            started = [event("STARTED", process_id), event("LOG", process_id)]
            assert http.post("/events", json=started).status_code == 202
            wait_for(lambda: http.get(f"/status/{process_id}").status_code == 200, 20, "the process")
            wait_for(lambda: http.get(f"/logs/{process_id}").json()["items"], 20, "its log line")
        yield Env(
            api,
            routes,
            token,
            {"process_id": process_id, "path": "openapi.yaml", "file_path": "app.css", "rule_id": "no-such-rule"},
        )


def get_routes(env: Env) -> list[Route]:
    found = [route for route in env.routes if "GET" in route.methods]
    # Not vacuous: the routes the product documents are among them.
    paths = {route.path.split("{")[0] for route in found}
    assert {"/health", "/ready", "/metrics", "/processes", "/status/", "/logs/", "/schema"} <= paths, paths
    return found


def comparable(response: httpx.Response) -> dict[str, str]:
    return {name: value for name, value in response.headers.items() if name not in VOLATILE}


def test_every_get_route_answers_head_like_get_without_a_body(env: Env) -> None:
    checked = []
    for route in get_routes(env):
        url = concrete(route.path, env.samples)
        variants: list[tuple[str, dict[str, str], dict[str, str]]] = [("anonymous", {}, {})]
        variants.append(("token", {"Authorization": f"Bearer {env.token}"}, {}))
        if route.path.startswith("/logs/"):
            variants.append(("stream", {"Authorization": f"Bearer {env.token}"}, {"follow": "true"}))
        for name, headers, params in variants:
            with env.api.client(timeout=15) as http:
                head = http.head(url, headers=headers, params=params)
                with http.stream("GET", url, headers=headers, params=params) as get:
                    get_headers, get_status = comparable(get), get.status_code
                    # A live stream (the log follow, the dashboard's feed) is compared by its headers only.
                    if not get.headers.get("content-type", "").startswith("text/event-stream"):
                        assert get.read() or get_status in (204, 302), (route, name)
            where = f"HEAD {url} ({name})"
            assert head.status_code != 405, where
            assert head.status_code == get_status, (where, head.status_code, get_status)
            assert head.content == b"", where
            head_headers = comparable(head)
            if route.path in SELF_COUNTING:
                assert ("content-length" in head_headers) == ("content-length" in get_headers), where
                head_headers.pop("content-length", None)
                get_headers.pop("content-length", None)
            assert head_headers == get_headers, where
            checked.append((route.path, name, head.status_code))
    statuses = {status for _, _, status in checked}
    assert {200, 401} <= statuses, checked  # both answered and refused requests were compared


def test_head_of_a_live_stream_ends_with_its_headers(env: Env) -> None:
    """HEAD of an SSE follow stream is not a stream: the answer ends after the headers, the connection
    is reusable, and the server is not left streaming to nobody (it serves the next request at once)."""
    url = concrete("/logs/{process_id}", env.samples)
    with env.api.client(env.token, timeout=15) as http:
        for _ in range(3):
            head = http.head(url, params={"follow": "true"})
            assert head.status_code == 200
            assert head.headers["content-type"].startswith("text/event-stream")
            assert head.content == b""
        assert http.get("/health").status_code == 200


def test_allow_names_head_wherever_it_names_get(env: Env) -> None:
    with env.api.client(env.token) as http:
        for route in env.routes:
            url = concrete(route.path, env.samples)
            allowed = http.options(url)
            assert allowed.status_code == 204, (url, allowed.status_code, allowed.text)
            methods = {method.strip() for method in allowed.headers["allow"].split(",")}
            assert ("HEAD" in methods) == ("GET" in methods), (url, methods)
            refused = http.request("PATCH", url)
            assert refused.status_code == 405, (url, refused.status_code)
            assert {method.strip() for method in refused.headers["allow"].split(",")} == methods, url


def test_two_authorization_headers_are_400_on_every_route(env: Env) -> None:
    """Every route and method refuses a request with two Authorization headers with 400, whether it reads a
    token or not, whatever the two are (the same token twice included), HEAD and live streams included."""
    refused = []
    for route in env.routes:
        url = concrete(route.path, env.samples)
        for method in sorted(route.methods | ({"HEAD"} if "GET" in route.methods else set())):
            body = {"json": [event("STARTED", unique("dup"))]} if method == "POST" else {}
            for second in (f"Bearer {env.token}", "Bearer garbage", "Basic dXNlcjpwYXNz"):
                headers = [("Authorization", f"Bearer {env.token}"), ("Authorization", second), ("Connection", "close")]
                with env.api.client(timeout=15) as http:
                    answer = http.request(method, url, headers=headers, **body)
                    if method == "HEAD":
                        assert answer.status_code == 400, (method, url, answer.status_code)
                        assert answer.headers["content-type"] == "application/problem+json", answer.headers
                    else:
                        problem = assert_problem(answer, 400, "duplicate_authorization")
                        assert "Authorization" in problem["detail"]
                    assert answer.headers["www-authenticate"].startswith('Bearer error="invalid_request"')
                    if method == "GET" and route.path.startswith("/logs/"):
                        stream = http.get(url, params={"follow": "true"}, headers=headers)
                        assert_problem(stream, 400, "duplicate_authorization")
            refused.append((method, route.path))
    assert {("GET", "/health"), ("GET", "/processes"), ("POST", "/events"), ("HEAD", "/metrics")} <= set(refused)
