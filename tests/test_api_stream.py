"""Live logs over Server-Sent Events (SPEC section 4) and graceful shutdown of ``sentinel serve``, against
real servers: the stream's backlog, live lines, its end after a terminal status, resumption with
Last-Event-ID, the level filter; and SIGTERM while a stream is open and requests are flowing.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest
from apiserver import ApiServer, SseEvent, SseReader, assert_problem, event, ts, unique, wait_for
from jwks_server import JwksServer, SigningKey

INGEST = "sentinel-ingest"
VISIBLE = 10.0
KEEPALIVE = 0.5  # seconds between keep-alive comments on a quiet stream (SENTINEL_SSE_KEEPALIVE_SEC)


@pytest.fixture(scope="module")
def key() -> SigningKey:
    return SigningKey.ec(kid="stream-ec")


@pytest.fixture(scope="module")
def idp(key: SigningKey) -> Iterator[JwksServer]:
    with JwksServer([key]) as server:
        yield server


@pytest.fixture(scope="module")
def api(idp: JwksServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    env = {"SENTINEL_SSE_KEEPALIVE_SEC": str(KEEPALIVE)}
    with ApiServer(tmp_path_factory.mktemp("stream") / "data", idp=idp, workers=1, env=env) as server:
        yield server


@pytest.fixture
def token(idp: JwksServer, key: SigningKey) -> str:
    return key.sign(idp.claims(tenant_id=unique("tenant"), roles=[INGEST], ttl=3600))


@pytest.fixture
def http(api: ApiServer, token: str) -> Iterator[httpx.Client]:
    with api.client(token) as client:
        yield client


@pytest.fixture
def stream_client(api: ApiServer, token: str) -> Iterator[httpx.Client]:
    # Reads may wait for the next line as long as the server polls; the bound only catches a hang.
    with api.client(token, timeout=httpx.Timeout(10, read=30)) as client:
        yield client


def post(http: httpx.Client, events: list[dict[str, Any]]) -> None:
    answer = http.post("/events", json=events)
    assert answer.status_code == 202, answer.text


def wait_logs(http: httpx.Client, process_id: str, count: int) -> list[dict[str, Any]]:
    def check() -> list[dict[str, Any]] | None:
        answer = http.get(f"/logs/{process_id}", params={"limit": 1000})
        if answer.status_code != 200:
            return None
        items: list[dict[str, Any]] = answer.json()["items"]
        return items if len(items) >= count else None

    return wait_for(check, VISIBLE, f"{count} logs of {process_id}")


def status_of(http: httpx.Client, process_id: str) -> dict[str, Any]:
    answer = http.get(f"/status/{process_id}")
    return answer.json() if answer.status_code == 200 else {}


def wait_status(http: httpx.Client, process_id: str, status: str) -> None:
    def check() -> bool:
        answer = http.get(f"/status/{process_id}")
        return answer.status_code == 200 and answer.json()["status"] == status

    wait_for(check, VISIBLE, f"{process_id} to be {status}")


def logs_of(events: list[SseEvent]) -> list[dict[str, Any]]:
    return [json.loads(item.data) for item in events if item.event == "log"]


def messages(events: list[SseEvent]) -> list[str]:
    return [item["message"] for item in logs_of(events)]


def assert_well_formed(events: list[SseEvent]) -> None:
    """Every log event carries its seq as the SSE id, and seqs only grow."""
    seqs = []
    for item in events:
        if item.event == "log":
            entry = json.loads(item.data)
            assert item.id == str(entry["seq"]), item
            seqs.append(entry["seq"])
    assert seqs == sorted(seqs)
    assert len(seqs) == len(set(seqs))


@pytest.mark.parametrize("how", ["follow", "accept"])
def test_stream_sends_backlog_then_live_lines_then_ends(
    how: str, http: httpx.Client, stream_client: httpx.Client
) -> None:
    process_id = unique("live")
    post(
        http,
        [event("STARTED", process_id)]
        + [event("LOG", process_id, message=f"before {i}", level="INFO") for i in range(3)],
    )
    wait_logs(http, process_id, 3)
    if how == "follow":
        reader = SseReader(stream_client, f"/logs/{process_id}", params={"follow": "true"})
    else:
        reader = SseReader(stream_client, f"/logs/{process_id}", headers={"Accept": "text/event-stream"})
    reader.start()
    assert reader.content_type is not None
    assert reader.content_type.startswith("text/event-stream")
    reader.wait_for(lambda got: len(logs_of(got)) == 3, VISIBLE, "the backlog")
    assert messages(reader.snapshot()) == ["before 0", "before 1", "before 2"]

    post(http, [event("LOG", process_id, message="live 1", level="WARN")])
    reader.wait_for(lambda got: len(logs_of(got)) == 4, VISIBLE, "the first live line")
    post(http, [event("LOG", process_id, message="live 2", level="ERROR")])
    reader.wait_for(lambda got: len(logs_of(got)) == 5, VISIBLE, "the second live line")
    assert not reader.finished.is_set(), "the stream ended while the process was still running"

    # The terminal event and the last line arrive together; the line is sent before the end.
    post(
        http,
        [
            event("LOG", process_id, message="last words", level="INFO"),
            event("COMPLETED", process_id, result={"ok": True}),
        ],
    )
    events = reader.join(VISIBLE + 20)
    assert_well_formed(events)
    assert messages(events) == ["before 0", "before 1", "before 2", "live 1", "live 2", "last words"]
    assert events[-1].event == "end"
    final = json.loads(events[-1].data)
    assert final["status"] == "COMPLETED"
    assert final["process_id"] == process_id
    assert final["log_count"] == 6
    assert [item.event for item in events].count("end") == 1


def test_keep_alives_on_a_quiet_stream_are_comments_only(http: httpx.Client, stream_client: httpx.Client) -> None:
    # A keep-alive frame with a "data:" line makes a browser's EventSource dispatch an empty message.
    process_id = unique("quiet")
    post(http, [event("STARTED", process_id), event("LOG", process_id, message="only line")])
    wait_logs(http, process_id, 1)
    received = b""
    with stream_client.stream("GET", f"/logs/{process_id}", params={"follow": "true"}) as response:
        assert response.status_code == 200
        for chunk in response.iter_bytes():
            received += chunk
            if received.count(b": keep-alive\r\n\r\n") >= 3:
                break
    frames = received.replace(b"\r\n", b"\n").split(b"\n\n")
    assert frames[-1] == b""
    first, *rest = frames[:-1]
    assert first.startswith(b"id: ")
    assert b"event: log" in first
    assert b"only line" in first
    assert len(rest) >= 3
    assert set(rest) == {b": keep-alive"}, rest


def test_stream_of_a_finished_process_sends_everything_and_ends(
    http: httpx.Client, stream_client: httpx.Client
) -> None:
    process_id = unique("done")
    post(
        http,
        [event("STARTED", process_id)]
        + [event("LOG", process_id, message=f"line {i}") for i in range(5)]
        + [event("ERROR", process_id, error_code="E1", error_message="boom")],
    )
    wait_status(http, process_id, "FAILED")
    reader = SseReader(stream_client, f"/logs/{process_id}", params={"follow": "true"}).start()
    events = reader.join(VISIBLE + 20)
    assert messages(events) == [f"line {i}" for i in range(5)]
    assert events[-1].event == "end"
    assert json.loads(events[-1].data)["status"] == "FAILED"


def test_a_backlog_longer_than_a_page_is_sent_whole(http: httpx.Client, stream_client: httpx.Client) -> None:
    process_id = unique("long")
    count = 1234
    post(
        http,
        [event("STARTED", process_id)]
        + [event("LOG", process_id, message=f"n{i}") for i in range(count)]
        + [event("COMPLETED", process_id)],
    )
    # Everything stored first (see test_stream_sends_lines_accepted_before_the_terminal_event).
    wait_for(lambda: status_of(http, process_id).get("log_count") == count, VISIBLE, "all lines")
    wait_status(http, process_id, "COMPLETED")
    events = SseReader(stream_client, f"/logs/{process_id}", params={"follow": "true"}).start().join(60)
    assert messages(events) == [f"n{i}" for i in range(count)]
    assert events[-1].event == "end"
    assert_well_formed(events)


def test_stream_sends_lines_accepted_before_the_terminal_event(
    idp: JwksServer, key: SigningKey, tmp_path: Path
) -> None:
    """A line accepted (202) before the COMPLETED event is one of the process's logs, so a follower must
    get it before "end". The queue dequeues by priority (terminal events first), so the line may be
    stored after the terminal status: the stream must not end in between. Queued work for other
    processes (also ahead of LOG lines) makes that gap wide enough to see."""
    server = ApiServer(tmp_path / "data", idp=idp, env={"SENTINEL_BATCH_SIZE": "50"})
    token = key.sign(idp.claims(tenant_id=unique("tenant"), roles=[INGEST], ttl=3600))
    process_id = unique("watched")
    server.start()
    try:
        with server.client(token, timeout=60) as http:
            post(http, [event("STARTED", process_id), event("LOG", process_id, message="before")])
            wait_logs(http, process_id, 1)
            reader = SseReader(
                server.client(token, timeout=httpx.Timeout(10, read=60)),
                f"/logs/{process_id}",
                params={"follow": "true"},
            ).start()
            reader.wait_for(lambda got: messages(got) == ["before"], VISIBLE, "the first line")
            for batch in range(2):
                post(
                    http,
                    [
                        {
                            "event_id": f"busy-{batch}-{i}",
                            "event_type": "STARTED",
                            "process_id": f"other-{i}",
                            "timestamp": ts(),
                        }
                        for i in range(8000)
                    ],
                )
            post(http, [event("LOG", process_id, message="accepted before the end")])
            post(http, [event("COMPLETED", process_id)])
            events = reader.join(60)
            reader.client.close()
            wait_for(lambda: status_of(http, process_id).get("log_count") == 2, 30, "the line stored")
            assert [item["message"] for item in http.get(f"/logs/{process_id}").json()["items"]] == [
                "before",
                "accepted before the end",
            ]
    except BaseException:
        server.kill()
        raise
    server.stop()
    assert events[-1].event == "end"
    assert messages(events) == ["before", "accepted before the end"], "the stream ended before sending a line"


def test_last_event_id_resumes_after_that_seq(http: httpx.Client, stream_client: httpx.Client) -> None:
    process_id = unique("resume")
    post(
        http,
        [event("STARTED", process_id)]
        + [event("LOG", process_id, message=f"line {i}", timestamp=ts(i - 100)) for i in range(6)]
        + [event("CANCELLED", process_id, reason="test")],
    )
    logs = wait_logs(http, process_id, 6)
    wait_status(http, process_id, "CANCELLED")
    third = logs[2]["seq"]

    resumed = SseReader(
        stream_client, f"/logs/{process_id}", params={"follow": "true"}, headers={"Last-Event-ID": str(third)}
    ).start()
    events = resumed.join(VISIBLE + 20)
    assert messages(events) == ["line 3", "line 4", "line 5"]
    assert all(int(item.id or 0) > third for item in events if item.event == "log")
    assert events[-1].event == "end"

    # A live client that reconnects with the last id it saw gets only what it missed.
    everything = SseReader(stream_client, f"/logs/{process_id}", params={"follow": "true"}).start()
    first_pass = everything.join(VISIBLE + 20)
    last_seen = [item.id for item in first_pass if item.event == "log"][3]
    again = SseReader(
        stream_client, f"/logs/{process_id}", headers={"Accept": "text/event-stream", "Last-Event-ID": str(last_seen)}
    ).start()
    assert messages(again.join(VISIBLE + 20)) == ["line 4", "line 5"]
    # A resume point past the end: nothing but the end.
    beyond = SseReader(
        stream_client, f"/logs/{process_id}", params={"follow": "true"}, headers={"Last-Event-ID": str(logs[-1]["seq"])}
    ).start()
    tail = beyond.join(VISIBLE + 20)
    assert [item.event for item in tail] == ["end"]


# Values a client (or an attacker) may send as Last-Event-ID: never a 500, never a stream that dies,
# never a silent restart from the beginning.
HOSTILE_IDS: list[bytes] = [
    "²".encode(),  # str.isdigit() says yes, int() says no
    "١٢".encode(),  # Arabic-Indic digits: int() would take them
    "\uff11\uff12".encode(),  # full-width digits
    b"9223372036854775808",  # 2**63: past the seq column
    b"99999999999999999999999999999999999999999999",
    b"-1",
    b"+5",
    b"1e3",
    b"0x10",
    b"1.5",
    b"1 2",
    b"abc",
    b"NaN",
    b"\xff\xfe",
]


def test_a_last_event_id_that_is_not_an_id_is_a_precise_400(http: httpx.Client, stream_client: httpx.Client) -> None:
    process_id = unique("hostile")
    post(http, [event("STARTED", process_id), event("LOG", process_id, message="only"), event("CANCELLED", process_id)])
    wait_logs(http, process_id, 1)
    wait_status(http, process_id, "CANCELLED")
    for value in HOSTILE_IDS:
        for request in (
            {"params": {"follow": "true"}},
            {"headers": {"Accept": "text/event-stream"}},
        ):
            headers = {**request.get("headers", {}), "Last-Event-ID": value}
            answer = stream_client.get(f"/logs/{process_id}", params=request.get("params"), headers=headers)
            problem = assert_problem(answer, 400, "bad_last_event_id")
            assert problem["detail"].startswith("Last-Event-ID: expected the id of an event this stream sent"), problem
    # The edges that are ids: the largest one resumes past everything, an empty one starts at the beginning.
    largest = {"Last-Event-ID": str(2**63 - 1)}
    beyond = SseReader(stream_client, f"/logs/{process_id}", params={"follow": "true"}, headers=largest).start()
    assert [item.event for item in beyond.join(VISIBLE + 20)] == ["end"]
    fresh = SseReader(stream_client, f"/logs/{process_id}", params={"follow": "true"}, headers={"Last-Event-ID": ""})
    assert messages(fresh.start().join(VISIBLE + 20)) == ["only"]


def test_dead_letter_page_marks_outside_the_id_range_are_400(api: ApiServer, idp: JwksServer, key: SigningKey) -> None:
    token = key.sign(idp.claims(tenant_id=unique("tenant"), roles=["sentinel-admin"], ttl=3600))
    with api.client(token) as admin:
        assert admin.get("/ui/api/dead-letters", params={"before": "9223372036854775807"}).status_code == 200
        # (msgspec reads an integral "1e3" as 1000: the same number, so it is not among these)
        for value in ("9223372036854775808", "²", "١٢", "0", "-1", "0x10", "1.5", "", " 5"):
            assert_problem(admin.get("/ui/api/dead-letters", params={"before": value}), 400, "bad_request")
        for value in ("²", "9223372036854775808", "0", "501", "5.5"):
            assert_problem(admin.get("/ui/api/dead-letters", params={"limit": value}), 400, "bad_request")


def test_level_filter_applies_to_the_stream(http: httpx.Client, stream_client: httpx.Client) -> None:
    process_id = unique("levels")
    levels = ["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL", "INFO", "ERROR"]
    post(
        http,
        [event("STARTED", process_id)]
        + [event("LOG", process_id, level=level, message=f"{i}:{level}") for i, level in enumerate(levels)],
    )
    wait_logs(http, process_id, len(levels))
    params = {"follow": "true", "level": "warn"}
    reader = SseReader(stream_client, f"/logs/{process_id}", params=params).start()
    reader.wait_for(lambda got: len(logs_of(got)) == 4, VISIBLE, "the WARN+ backlog")
    post(
        http,
        [
            event("LOG", process_id, level="DEBUG", message="quiet"),
            event("LOG", process_id, level="FATAL", message="loud"),
        ],
    )
    post(http, [event("COMPLETED", process_id)])
    events = reader.join(VISIBLE + 20)
    assert messages(events) == ["3:WARN", "4:ERROR", "5:FATAL", "7:ERROR", "loud"]
    assert {entry["level"] for entry in logs_of(events)} == {"WARN", "ERROR", "FATAL"}
    assert events[-1].event == "end"
    assert_well_formed(events)


def test_since_filter_applies_to_the_stream(http: httpx.Client, stream_client: httpx.Client) -> None:
    process_id = unique("since")
    now = datetime.now(UTC)
    lines = [event("LOG", process_id, message=f"t{i}", timestamp=ts(i - 50, base=now)) for i in range(6)]
    post(http, [event("STARTED", process_id, timestamp=ts(-60, base=now)), *lines])
    wait_logs(http, process_id, 6)
    reader = SseReader(
        stream_client, f"/logs/{process_id}", params={"follow": "true", "since": lines[3]["timestamp"]}
    ).start()
    reader.wait_for(lambda got: len(logs_of(got)) == 3, VISIBLE, "the lines since t3")
    post(
        http,
        [
            event("LOG", process_id, message="older, late", timestamp=ts(-55, base=now)),
            event("LOG", process_id, message="newer", timestamp=ts(-1, base=now)),
            event("COMPLETED", process_id, timestamp=ts(0, base=now)),
        ],
    )
    events = reader.join(VISIBLE + 20)
    assert messages(events) == ["t3", "t4", "t5", "newer"]
    assert events[-1].event == "end"


def test_stream_filters_are_checked_and_other_tenants_get_404(
    api: ApiServer, http: httpx.Client, idp: JwksServer, key: SigningKey
) -> None:
    process_id = unique("guarded")
    post(http, [event("LOG", process_id)])
    wait_logs(http, process_id, 1)
    assert_problem(http.get(f"/logs/{process_id}", params={"follow": "true", "level": "LOUD"}), 400)
    assert_problem(http.get(f"/logs/{process_id}", params={"follow": "true", "since": "soon"}), 400)
    assert_problem(http.get(f"/logs/{unique('nothing')}", params={"follow": "true"}), 404)
    stranger = key.sign(idp.claims(tenant_id=unique("tenant")))
    with api.client(stranger) as other:
        assert_problem(other.get(f"/logs/{process_id}", params={"follow": "true"}), 404)
        assert_problem(other.get(f"/logs/{process_id}", headers={"Accept": "text/event-stream"}), 404)
    with api.client() as anonymous:
        assert_problem(anonymous.get(f"/logs/{process_id}", params={"follow": "true"}), 401)


# -- graceful shutdown ------------------------------------------------------------------------------


class Poster:
    """Posts LOG events in a loop (one connection per request), recording what was accepted."""

    def __init__(self, server: ApiServer, token: str, process_ids: list[str]) -> None:
        self.server = server
        self.token = token
        self.process_ids = process_ids
        self.accepted: list[str] = []
        self.refused: list[tuple[int, str]] = []
        self.transport_errors: list[str] = []
        self.accepted_while_draining = 0
        self.draining = threading.Event()
        self.stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="poster", daemon=True)

    def start(self) -> Poster:
        self._thread.start()
        return self

    def _run(self) -> None:
        number = 0
        while not self.stop.is_set():
            number += 1
            targets = [self.process_ids[(number + i) % len(self.process_ids)] for i in range(3)]
            batch = [event("LOG", target, message=f"m-{number}-{i}") for i, target in enumerate(targets)]
            try:
                with self.server.client(self.token, timeout=30) as http:
                    answer = http.post("/events", json=batch)
            except httpx.TransportError as exc:
                self.transport_errors.append(repr(exc))
                if isinstance(exc, httpx.ConnectError):
                    return  # the listener is gone: the server has stopped taking requests
                continue
            if answer.status_code == 202:
                assert answer.json() == {"accepted": 3}
                self.accepted.extend(item["message"] for item in batch)
                if self.draining.is_set():
                    self.accepted_while_draining += 1
            else:
                self.refused.append((answer.status_code, answer.text))

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "the poster is stuck"


def test_sigterm_drains_then_stops_without_losing_accepted_events(
    idp: JwksServer, key: SigningKey, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    server = ApiServer(data_dir, idp=idp, env={"SENTINEL_DRAIN_SECONDS": "2"})
    tenant = unique("tenant")
    token = key.sign(idp.claims(tenant_id=tenant, roles=[INGEST], ttl=3600))
    flows = [unique("flow") for _ in range(4)]
    watched = unique("watched")
    server.start()
    try:
        with server.client(token) as http:
            post(http, [event("STARTED", watched), event("LOG", watched, message="hello")])
            wait_logs(http, watched, 1)
        stream = SseReader(
            server.client(token, timeout=httpx.Timeout(10, read=30)), f"/logs/{watched}", params={"follow": "true"}
        ).start()
        stream.wait_for(lambda got: messages(got) == ["hello"], VISIBLE, "the stream's backlog")
        poster = Poster(server, token, flows).start()
        wait_for(lambda: len(poster.accepted) >= 30, VISIBLE, "events to flow")

        server.terminate()
        readiness: list[tuple[int, dict[str, Any]]] = []
        health_while_draining: list[int] = []
        with httpx.Client(base_url=server.base_url, trust_env=False, timeout=10) as probe:
            while True:
                try:
                    ready = probe.get("/ready", headers={"Connection": "close"})
                except httpx.TransportError:
                    break  # the listener closed
                readiness.append((ready.status_code, ready.json()))
                time.sleep(0.05)
                if ready.status_code == 503:
                    poster.draining.set()
                    try:
                        health_while_draining.append(probe.get("/health", headers={"Connection": "close"}).status_code)
                    except httpx.TransportError:
                        break
        code = server.wait()
        poster.stop.set()
        poster.join(30)
        stream_events = stream.join(30)
        stream.client.close()
    except BaseException:
        server.kill()
        raise

    assert code == 0, server.output()
    # /ready turned 503 (saying why) before the server stopped answering, and never went back to 200.
    statuses = [status for status, _ in readiness]
    assert 503 in statuses, readiness
    first_unready = statuses.index(503)
    assert all(status == 503 for status in statuses[first_unready:]), statuses
    assert readiness[first_unready][1]["checks"]["server"] == "draining"
    assert health_while_draining
    assert set(health_while_draining) == {200}
    # The open stream said goodbye and closed cleanly.
    assert messages(stream_events) == ["hello"]
    assert stream_events[-1].event == "close", stream_events
    # Requests kept being served while draining; any refusal was a clean one.
    assert poster.accepted_while_draining > 0
    assert all(status == 503 for status, _ in poster.refused), poster.refused
    # In-flight requests were answered: the poster only ever met a listener that was gone (allowing one
    # connection caught in the listen backlog at the very moment it closed).
    assert poster.transport_errors
    assert poster.transport_errors[-1].startswith("ConnectError"), poster.transport_errors
    assert len(poster.transport_errors) <= 2, poster.transport_errors
    accepted = set(poster.accepted)
    assert len(accepted) == len(poster.accepted)

    # Nothing accepted is lost: after a restart on the same data directory, every line is there.
    again = ApiServer(data_dir, idp=idp)
    again.start()
    try:
        with again.client(token) as http:

            def stored() -> set[str]:
                found: set[str] = set()
                for process_id in flows:
                    cursor = None
                    while True:
                        params: dict[str, Any] = {"limit": 1000}
                        if cursor:
                            params["cursor"] = cursor
                        answer = http.get(f"/logs/{process_id}", params=params)
                        if answer.status_code == 404:
                            break
                        page = answer.json()
                        found.update(item["message"] for item in page["items"])
                        cursor = page["next_cursor"]
                        if cursor is None:
                            break
                return found

            def complete() -> bool:
                return accepted <= stored()

            wait_for(complete, 30, f"all {len(accepted)} accepted events after the restart", interval=0.2)
            assert http.get(f"/status/{watched}").json()["status"] == "RUNNING"
    except BaseException:
        again.kill()
        raise
    again.stop()


def _first(predicate: Callable[[Any], bool], items: list[Any]) -> Any:
    return next(item for item in items if predicate(item))


def test_stream_reports_times_in_utc(http: httpx.Client, stream_client: httpx.Client) -> None:
    process_id = unique("utc")
    moment = (datetime.now(UTC) - timedelta(hours=1)).replace(microsecond=123456)
    local = moment.astimezone(timezone(timedelta(hours=2))).isoformat()
    assert local.endswith("+02:00")
    post(http, [event("LOG", process_id, message="stamped", timestamp=local), event("COMPLETED", process_id)])
    wait_logs(http, process_id, 1)
    wait_status(http, process_id, "COMPLETED")
    events = SseReader(stream_client, f"/logs/{process_id}", params={"follow": "true"}).start().join(30)
    entry = _first(lambda item: item["message"] == "stamped", logs_of(events))
    assert entry["timestamp"] == moment.isoformat().replace("+00:00", "Z")
