"""Schemathesis over the live OpenAPI document: generated requests (valid and invalid) for every operation,
sent to a real dev-mode ``sentinel serve`` with a token from ``sentinel token``. Checks: no answer is a
server error, and every documented answer matches its documented schema. Bounded and derandomized.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from apiserver import ApiServer, event, unique, wait_for
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

pytestmark = pytest.mark.slow

OPERATIONS = [
    ("GET", "/health"),
    ("GET", "/ready"),
    ("GET", "/metrics"),
    ("GET", "/processes"),
    ("GET", "/status/{process_id}"),
    ("GET", "/logs/{process_id}"),
    ("POST", "/events"),
    ("GET", "/baselines"),
    ("GET", "/alert-rules"),
    ("POST", "/alert-rules"),
    ("GET", "/alert-rules/{rule_id}"),
    ("PUT", "/alert-rules/{rule_id}"),
    ("DELETE", "/alert-rules/{rule_id}"),
    ("GET", "/alert-deliveries"),
]
SEEDED = "seeded-process"
EXAMPLES = 30


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    api = ApiServer(tmp_path_factory.mktemp("fuzz") / "data", dev=True)
    api.start()
    try:
        yield api
    except BaseException:
        api.kill()
        raise
    api.stop()


@pytest.fixture(scope="module")
def token(server: ApiServer) -> str:
    """A dev token (tenant with the ingest and alert-admin roles) minted by ``sentinel token``; the tenant has a process
    with logs, so generated requests also meet real documents, not only 404s."""
    token = server.dev_token(unique("fuzz-tenant"), "sentinel-ingest", "sentinel-admin")
    with server.client(token) as http:
        answer = http.post(
            "/events",
            json=[
                event("STARTED", SEEDED, process_type="batch", package_name="PKG", metadata={"k": [1, 2]}),
                event("PROGRESS", SEEDED, step="s", percent=40.5),
                *[
                    event("LOG", SEEDED, level=level, message=f"{level} line", details={"n": i})
                    for i, level in enumerate(["DEBUG", "INFO", "WARN", "ERROR"] * 30)
                ],
            ],
        )
        assert answer.status_code == 202, answer.text
        wait_for(lambda: http.get(f"/status/{SEEDED}").status_code == 200, 10, "the seeded process")
    return token


@pytest.fixture(scope="module")
def schema(server: ApiServer) -> Any:
    return schemathesis.openapi.from_url(server.base_url + "/schema/openapi.json")


def run(operation: Any, server: ApiServer, token: str, mode: GenerationMode, **fixed: Any) -> Counter[int]:
    """``EXAMPLES`` generated cases of one operation; returns how often each status was answered."""
    seen: Counter[int] = Counter()
    headers = {"Authorization": f"Bearer {token}"}

    @given(case=operation.as_strategy(generation_mode=mode, **fixed))
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
    )
    def check(case: Any) -> None:
        response = case.call_and_validate(
            base_url=server.base_url,
            headers=headers,
            timeout=30,
            checks=[not_a_server_error, response_schema_conformance],
        )
        seen[response.status_code] += 1

    check()
    return seen


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=["valid", "invalid"])
@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_generated_requests(
    schema: Any, server: ApiServer, token: str, method: str, path: str, mode: GenerationMode
) -> None:
    seen = run(schema[path][method], server, token, mode)
    assert sum(seen.values()) > 0
    assert all(status < 500 for status in seen), seen


@pytest.mark.parametrize("path", ["/status/{process_id}", "/logs/{process_id}"])
def test_generated_queries_on_an_existing_process(schema: Any, server: ApiServer, token: str, path: str) -> None:
    """The path points at a real process, so the 200 documents themselves are checked against the schema."""
    seen = run(schema[path]["GET"], server, token, GenerationMode.POSITIVE, path_parameters={"process_id": SEEDED})
    assert seen[200] > 0, seen


def test_the_server_survived(server: ApiServer, token: str) -> None:
    with server.client(token) as http:
        assert http.get("/ready").status_code == 200
        assert http.get(f"/status/{SEEDED}").json()["process_id"] == SEEDED
    with httpx.Client(base_url=server.base_url, trust_env=False) as anonymous:
        assert anonymous.get("/health").status_code == 200
