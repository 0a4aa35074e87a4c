"""One serialized-event limit on every path (``MAX_EVENT_BYTES``, an Oracle AQ RAW message): POST /events
refuses an event whose canonical queue payload is larger, naming its index, and queues nothing of the
request (the server takes a batch all or nothing). A real server process, real HTTP, a real JWKS."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from apiserver import ApiServer, assert_problem, event, unique, wait_for
from jwks_server import JwksServer, SigningKey

from sentinel._core._shared import MAX_EVENT_BYTES, MAX_TEXT

pytestmark = pytest.mark.slow

INGEST = "sentinel-ingest"


@pytest.fixture(scope="module")
def key() -> SigningKey:
    return SigningKey.rsa(kid="size-rsa")


@pytest.fixture(scope="module")
def client(key: SigningKey, tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    with (
        JwksServer([key]) as idp,
        ApiServer(tmp_path_factory.mktemp("size") / "data", idp=idp) as server,
    ):
        token = key.sign(idp.claims(tenant_id="acme", roles=[INGEST], ttl=3600))
        with server.client(token) as http:
            yield http


def compact(item: dict[str, Any]) -> int:
    return len(json.dumps({**item, "tenant_id": "acme"}, separators=(",", ":")).encode())


def sized(process_id: str, size: int) -> dict[str, Any]:
    """A LOG event whose serialized form is ``size`` bytes, give or take the key order: the bulk is in
    ``details``, which the core keeps byte for byte."""
    details: dict[str, str] = {}
    item = event("LOG", process_id, level="INFO", message="m", details=details)
    while compact(item) < size:
        key = f"k{len(details):03d}"
        details[key] = ""
        details[key] = "x" * min(MAX_TEXT, max(0, size - compact(item)))
    return item


def status_of(http: httpx.Client, process_id: str) -> int:
    return http.get(f"/status/{process_id}").status_code


def test_an_event_over_the_limit_is_413_naming_it_and_nothing_is_queued(client: httpx.Client) -> None:
    small, big, after = unique("small"), unique("big"), unique("after")
    items = [
        event("STARTED", small),
        sized(big, MAX_EVENT_BYTES + 50),
        event("STARTED", after),
    ]
    answer = client.post("/events", json=items)
    problem = assert_problem(answer, 413, "event_too_large")
    assert [error["index"] for error in problem["errors"]] == [1]
    (error,) = problem["errors"]
    assert error["code"] == "event_too_large"
    assert f"more than {MAX_EVENT_BYTES}" in error["reason"]
    assert "nothing was queued" in problem["detail"]
    # All or nothing: the others were not queued either. A later request is, so wait for that one
    # and then look for the first ones (the queue is consumed in order of priority and arrival).
    barrier = unique("barrier")
    assert client.post("/events", json=[event("STARTED", barrier)]).status_code == 202
    wait_for(lambda: status_of(client, barrier) == 200 or None, 30.0, "the barrier event")
    assert status_of(client, small) == 404
    assert status_of(client, after) == 404


def test_an_event_at_the_limit_is_accepted(client: httpx.Client) -> None:
    process_id = unique("fits")
    item = sized(process_id, MAX_EVENT_BYTES - 100)  # the server's key order may differ by a few bytes
    answer = client.post("/events", json=[item])
    assert answer.status_code == 202, answer.text
    wait_for(lambda: status_of(client, process_id) == 200 or None, 30.0, "the event at the limit")


def test_oversized_and_invalid_events_are_named_together_in_a_422(client: httpx.Client) -> None:
    items = [
        sized(unique("big"), MAX_EVENT_BYTES + 1_000),
        event("EXPLODED", unique("bad")),
        event("STARTED", unique("good")),
        sized(unique("big"), 2 * MAX_EVENT_BYTES),
    ]
    problem = assert_problem(client.post("/events", json=items), 422, "invalid_events")
    assert [(error["index"], error["code"]) for error in problem["errors"]] == [
        (0, "event_too_large"),
        (1, "bad_event_type"),
        (3, "event_too_large"),
    ]
    assert problem["detail"].startswith("3 of 4 events are invalid")


def test_a_single_oversized_object_body_is_413_naming_index_0(client: httpx.Client) -> None:
    problem = assert_problem(client.post("/events", json=sized(unique("one"), MAX_EVENT_BYTES + 10)), 413)
    assert [error["index"] for error in problem["errors"]] == [0]
