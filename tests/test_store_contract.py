"""The store contract (SPEC sections 2-4), end to end: events are queued, a real ``IngestWorker`` runs
them through the core into the store, and the store's readers are checked. Every test runs against
each adapter through the ``store`` fixture (Oracle only with ``SENTINEL_TEST_ORACLE_DSN``)."""

from __future__ import annotations

import random
import time
from typing import Any

import pytest
from helpers import at, decode_json, encode, event, run_worker_until_idle, ts, us
from helpers import enqueue as enqueue_all

from sentinel._core import LEVELS
from sentinel.config import Settings
from sentinel.models import now_us, to_us
from sentinel.store.base import LogQuery, ProcessQuery, Store
from sentinel.store.sqlite import SqliteStore

TERMINAL_OF = {"COMPLETED": "COMPLETED", "ERROR": "FAILED", "CANCELLED": "CANCELLED"}
TERMINAL_FIELDS: dict[str, dict[str, Any]] = {
    "COMPLETED": {"result": {"rows": 42}},
    "ERROR": {"error_code": "ORA-01555", "error_message": "snapshot too old", "stack_trace": "at line 1"},
    "CANCELLED": {"reason": "cancelled by operator"},
}


def status_of(store: Any, process_id: str = "proc-1", tenant: str = "acme") -> Any:
    doc = store.get_status(tenant, process_id)
    assert doc is not None, f"process {tenant}/{process_id} not found"
    return doc


def terminal(kind: str, offset: float, **extra: Any) -> dict[str, Any]:
    return event(event_type=kind, offset=offset, **{**TERMINAL_FIELDS[kind], **extra})


def assert_terminal(doc: Any, kind: str, offset: float) -> None:
    """The document shows ``kind`` ended at ``offset``: its own fields, none of another terminal event."""
    assert doc.status == TERMINAL_OF[kind]
    assert doc.ended_at == at(offset)
    if kind == "COMPLETED":
        assert decode_json(doc.result) == {"rows": 42}
        assert (doc.error_code, doc.error_message) == (None, None)
    elif kind == "ERROR":
        assert (doc.error_code, doc.error_message) == ("ORA-01555", "snapshot too old")
        assert doc.result is None
    else:
        assert doc.error_message == "cancelled by operator"
        assert doc.error_code is None
        assert doc.result is None


def all_logs(store: Any, process_id: str = "proc-1", tenant: str = "acme", **query: Any) -> list[Any]:
    return list(store.list_logs(tenant, process_id, LogQuery(limit=1000, **query)))


# -- creation and STARTED ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("HEARTBEAT", "RUNNING"),
        ("LOG", "RUNNING"),
        ("PROGRESS", "RUNNING"),
        ("STARTED", "RUNNING"),
        ("COMPLETED", "COMPLETED"),
        ("ERROR", "FAILED"),
        ("CANCELLED", "CANCELLED"),
    ],
)
def test_any_event_creates_an_unknown_process(store: Any, ingest: Any, kind: str, expected: str) -> None:
    assert store.get_status("acme", "proc-1") is None
    ingest([event(event_type=kind, offset=-30)])
    doc = status_of(store)
    assert (doc.tenant_id, doc.process_id, doc.status) == ("acme", "proc-1", expected)
    assert doc.last_seen_at == at(-30)
    assert doc.event_count == 1
    assert doc.log_count == (1 if kind == "LOG" else 0)
    if kind == "STARTED":
        assert doc.started_at == at(-30)
    else:
        assert doc.started_at is None


def test_unknown_process_reads_as_absent(store: Any) -> None:
    assert store.get_status("acme", "nobody") is None
    assert store.list_processes("acme", ProcessQuery()) == []
    assert all_logs(store, "nobody") == []


def test_started_sets_started_at_and_names(store: Any, ingest: Any) -> None:
    ingest([event(event_type="HEARTBEAT", offset=-50)])
    assert status_of(store).started_at is None
    ingest(
        [
            event(
                event_type="STARTED",
                offset=-60,
                process_name="nightly load",
                process_type="ETL",
                package_name="PKG_LOADER",
                procedure_name="RUN",
                correlation_id="corr-1",
                metadata={"host": "db1", "attempt": 1},
            )
        ]
    )
    doc = status_of(store)
    assert doc.started_at == at(-60)
    assert (doc.process_name, doc.process_type, doc.package_name, doc.procedure_name, doc.correlation_id) == (
        "nightly load",
        "ETL",
        "PKG_LOADER",
        "RUN",
        "corr-1",
    )
    assert decode_json(doc.metadata) == {"host": "db1", "attempt": 1}
    assert doc.status == "RUNNING"
    assert doc.last_seen_at == at(-50)
    assert doc.event_count == 2


# -- PROGRESS and last_seen_at -------------------------------------------------------------------------


@pytest.mark.parametrize("newer_first", [True, False])
def test_progress_newer_wins_within_a_batch(store: Any, ingest: Any, newer_first: bool) -> None:
    newer = event(event_type="PROGRESS", offset=20, step="load", percent=60)
    older = event(event_type="PROGRESS", offset=10, step="extract", percent=30)
    ingest([newer, older] if newer_first else [older, newer])
    doc = status_of(store)
    assert (doc.current_step, doc.progress_percent) == ("load", 60.0)
    assert doc.event_count == 2


def test_progress_older_arriving_later_is_ignored(store: Any, ingest: Any) -> None:
    ingest([event(event_type="PROGRESS", offset=20, step="load", percent=60)])
    ingest([event(event_type="PROGRESS", offset=10, step="extract", percent=30)])
    doc = status_of(store)
    assert (doc.current_step, doc.progress_percent) == ("load", 60.0)
    ingest([event(event_type="PROGRESS", offset=30, step="publish", percent=90.5)])
    doc = status_of(store)
    assert (doc.current_step, doc.progress_percent) == ("publish", 90.5)
    assert doc.event_count == 3


@pytest.mark.parametrize("left_out", ["step", "percent"])
def test_a_batch_applies_progress_as_event_by_event_would(store: Any, ingest: Any, left_out: str) -> None:
    """Out-of-order PROGRESS in one batch on top of stored progress: an older event (ignored, SPEC section 3)
    must not leak its step or percent through a newer event that leaves that field out."""

    def fleet(pid: str) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        stored = event(event_type="PROGRESS", offset=20, step="load", percent=60, process_id=pid)
        older = event(event_type="PROGRESS", offset=10, step="extract", percent=30, process_id=pid)
        newer = event(event_type="PROGRESS", offset=30, step="publish", percent=70, process_id=pid)
        del newer[left_out]
        return stored, older, newer

    stored_b, older_b, newer_b = fleet("batched")
    stored_s, older_s, newer_s = fleet("one-by-one")
    ingest([stored_b, stored_s])
    ingest([older_b, newer_b], [5, 5])  # one batch, the older one first
    ingest([older_s])
    ingest([newer_s])
    batched, single = status_of(store, "batched"), status_of(store, "one-by-one")
    assert single.current_step != "extract"
    assert single.progress_percent != 30.0
    assert (batched.current_step, batched.progress_percent) == (single.current_step, single.progress_percent)
    assert batched.current_step != "extract"
    assert batched.progress_percent != 30.0


def test_last_seen_at_never_moves_back(store: Any, ingest: Any) -> None:
    ingest([event(offset=50), event(offset=10), event(event_type="LOG", offset=5)])
    assert status_of(store).last_seen_at == at(50)
    ingest([event(offset=20), event(event_type="PROGRESS", offset=30, percent=10)])
    assert status_of(store).last_seen_at == at(50)
    ingest([event(event_type="LOG", offset=70)])
    doc = status_of(store)
    assert doc.last_seen_at == at(70)
    assert doc.event_count == 6


# -- terminal statuses ---------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["COMPLETED", "ERROR", "CANCELLED"])
def test_terminal_is_not_replaced_by_later_events_across_batches(store: Any, ingest: Any, kind: str) -> None:
    ingest([event(event_type="STARTED", offset=0), terminal(kind, offset=30)])
    assert_terminal(status_of(store), kind, 30)
    # late arrivals: older ones and newer ones, of every non-terminal type
    ingest([event(event_type="PROGRESS", offset=20, percent=50)])
    ingest([event(event_type="HEARTBEAT", offset=40)])
    ingest([event(event_type="LOG", offset=45), event(event_type="PROGRESS", offset=50, percent=70)])
    ingest([event(event_type="STARTED", offset=60)])
    doc = status_of(store)
    assert_terminal(doc, kind, 30)
    assert doc.last_seen_at == at(60)
    assert doc.event_count == 7


@pytest.mark.parametrize("kind", ["COMPLETED", "ERROR", "CANCELLED"])
@pytest.mark.parametrize("terminal_first", [True, False])
def test_terminal_is_not_replaced_within_a_batch(store: Any, ingest: Any, kind: str, terminal_first: bool) -> None:
    others = [
        event(event_type="HEARTBEAT", offset=40),
        event(event_type="PROGRESS", offset=35, percent=80),
        event(event_type="LOG", offset=36),
        event(event_type="STARTED", offset=1),
    ]
    end = terminal(kind, offset=30)
    items = [end, *others] if terminal_first else [*others, end]
    # equal priorities: the arrival order within the batch is exactly the list order
    ingest(items, [5] * len(items))
    doc = status_of(store)
    assert_terminal(doc, kind, 30)
    assert doc.last_seen_at == at(40)
    assert doc.started_at == at(1)


def test_error_before_an_earlier_progress(store: Any, ingest: Any) -> None:
    # The queue hands out ERROR (priority 1) before PROGRESS (priority 4): same batch ...
    ingest(
        [
            event(event_type="STARTED", offset=0, process_id="p-same"),
            event(event_type="PROGRESS", offset=20, percent=40, step="load", process_id="p-same"),
            event(event_type="ERROR", offset=30, error_code="E1", error_message="boom", process_id="p-same"),
        ]
    )
    # ... and across batches.
    ingest([event(event_type="ERROR", offset=30, error_code="E1", error_message="boom", process_id="p-across")])
    ingest(
        [
            event(event_type="STARTED", offset=0, process_id="p-across"),
            event(event_type="PROGRESS", offset=20, percent=40, step="load", process_id="p-across"),
        ]
    )
    for pid in ("p-same", "p-across"):
        doc = status_of(store, pid)
        assert doc.status == "FAILED"
        assert (doc.error_code, doc.error_message) == ("E1", "boom")
        assert doc.ended_at == at(30)
        assert doc.last_seen_at == at(30)
        assert (doc.current_step, doc.progress_percent) == ("load", 40.0)
        assert doc.duration_ms == 30_000
        assert doc.estimated_completion is None
        assert doc.event_count == 3


def test_completed_then_a_late_heartbeat(store: Any, ingest: Any) -> None:
    ingest([event(event_type="STARTED", offset=0), event(event_type="COMPLETED", offset=10, result={"ok": True})])
    ingest([event(event_type="HEARTBEAT", offset=15)])
    doc = status_of(store)
    assert doc.status == "COMPLETED"
    assert doc.ended_at == at(10)
    assert doc.last_seen_at == at(15)
    assert decode_json(doc.result) == {"ok": True}


@pytest.mark.parametrize(
    "pair",
    [("COMPLETED", "ERROR"), ("ERROR", "CANCELLED"), ("CANCELLED", "COMPLETED"), ("ERROR", "COMPLETED")],
    ids="-over-".join,
)
@pytest.mark.parametrize("later_arrives_first", [True, False])
@pytest.mark.parametrize("same_batch", [True, False])
def test_between_two_terminal_events_the_later_timestamp_wins(
    store: Any, ingest: Any, pair: tuple[str, str], later_arrives_first: bool, same_batch: bool
) -> None:
    later, earlier = pair
    late_event = terminal(later, offset=50)
    early_event = terminal(earlier, offset=40)
    first, second = (late_event, early_event) if later_arrives_first else (early_event, late_event)
    if same_batch:
        ingest([first, second], [5, 5])
    else:
        ingest([first])
        ingest([second])
    doc = status_of(store)
    assert_terminal(doc, later, 50)
    assert doc.event_count == 2


@pytest.mark.parametrize(("one", "other"), [("COMPLETED", "ERROR"), ("COMPLETED", "CANCELLED"), ("ERROR", "CANCELLED")])
def test_two_terminal_events_with_the_same_timestamp_do_not_depend_on_order(
    store: Any, ingest: Any, one: str, other: str
) -> None:
    ingest([terminal(one, 10, process_id="a"), terminal(other, 10, process_id="a")], [5, 5])
    ingest([terminal(other, 10, process_id="b"), terminal(one, 10, process_id="b")], [5, 5])
    ingest([terminal(one, 10, process_id="c")])
    ingest([terminal(other, 10, process_id="c")])
    ingest([terminal(other, 10, process_id="d")])
    ingest([terminal(one, 10, process_id="d")])
    docs = [status_of(store, pid) for pid in "abcd"]
    outcomes = {(d.status, d.ended_at, d.error_code, d.error_message, d.result) for d in docs}
    assert len(outcomes) == 1, outcomes
    assert docs[0].status in (TERMINAL_OF[one], TERMINAL_OF[other])


# -- derived fields ------------------------------------------------------------------------------------


def test_estimated_completion(store: Any, ingest: Any) -> None:
    ingest(
        [
            event(event_type="STARTED", offset=0, process_id="quarter"),
            event(event_type="PROGRESS", offset=10, percent=25, process_id="quarter"),
            event(event_type="STARTED", offset=0, process_id="zero"),
            event(event_type="PROGRESS", offset=10, percent=0, process_id="zero"),
            event(event_type="STARTED", offset=0, process_id="full"),
            event(event_type="PROGRESS", offset=10, percent=100, process_id="full"),
            event(event_type="STARTED", offset=0, process_id="fresh"),
            event(event_type="PROGRESS", offset=10, percent=50, process_id="unstarted"),
            event(event_type="STARTED", offset=0, process_id="ended"),
            event(event_type="PROGRESS", offset=10, percent=50, process_id="ended"),
            event(event_type="COMPLETED", offset=20, process_id="ended"),
            # progress reported before the (newest) start: no elapsed time, so no estimate
            event(event_type="PROGRESS", offset=-10, percent=50, process_id="restarted"),
            event(event_type="STARTED", offset=0, process_id="restarted"),
        ]
    )
    quarter = status_of(store, "quarter")
    # started_at + elapsed x 100 / progress = 0 + 10 s x 100 / 25
    assert quarter.estimated_completion == at(40)
    for pid in ("zero", "full", "fresh", "unstarted", "ended", "restarted"):
        assert status_of(store, pid).estimated_completion is None, pid


def test_a_tiny_progress_does_not_break_reads(store: Any, ingest: Any) -> None:
    """``percent`` may be any number from 0 to 100. A tiny one puts ``started_at + elapsed x 100 / progress``
    beyond any representable time; the document (and every listing holding it) must still be served."""
    ingest(
        [
            event(event_type="STARTED", offset=-86_400, process_id="slow"),
            event(event_type="PROGRESS", offset=0, percent=0.000001, process_id="slow"),
            event(event_type="STARTED", offset=0, process_id="other"),
        ]
    )
    doc = store.get_status("acme", "slow")
    assert doc is not None
    assert doc.progress_percent == 0.000001
    assert doc.estimated_completion is None or doc.estimated_completion > at(0)
    listed = store.list_processes("acme", ProcessQuery())
    assert {d.process_id for d in listed} == {"slow", "other"}


def test_duration_ms(store: Any, ingest: Any) -> None:
    ingest(
        [
            event(event_type="STARTED", offset=0, process_id="done"),
            event(event_type="COMPLETED", offset=12.5, process_id="done"),
            event(event_type="STARTED", offset=0, process_id="running"),
            event(event_type="HEARTBEAT", offset=5, process_id="running"),
            event(event_type="COMPLETED", offset=3, process_id="no-start"),
        ]
    )
    assert status_of(store, "done").duration_ms == 12_500
    assert status_of(store, "done").ended_at == at(12.5)
    assert status_of(store, "running").duration_ms is None
    assert status_of(store, "running").ended_at is None
    assert status_of(store, "no-start").duration_ms is None


@pytest.mark.parametrize(
    ("events", "started", "ended"),
    [
        # The end stamped before the start (two producer clocks): the process starts at its end.
        ([("STARTED", 0), ("COMPLETED", -60)], -60, -60),
        # A late STARTED after the end does not move the start past it.
        ([("STARTED", 0), ("COMPLETED", 300), ("STARTED", 420)], 300, 300),
        # A later terminal event moves the end, and the newest start is still known.
        ([("STARTED", 0), ("COMPLETED", 300), ("STARTED", 420), ("CANCELLED", 480)], 420, 480),
        ([("STARTED", 0), ("ERROR", 30)], 0, 30),
    ],
)
def test_started_never_after_ended_in_any_order_or_batch_split(
    store: Any, settings: Settings, events: list[tuple[str, float]], started: float, ended: float
) -> None:
    """SPEC section 3: started_at <= ended_at always and duration_ms >= 0, whatever the arrival order and
    however the events are split into batches; every order gives the same document."""
    rng = random.Random(7)
    seen = set()
    for trial in range(12):
        process_id = f"order-{trial}"
        order = [
            terminal(kind, t, process_id=process_id)
            if kind in TERMINAL_OF
            else event(event_type=kind, offset=t, process_id=process_id)
            for kind, t in events
        ]
        rng.shuffle(order)
        cut = rng.randrange(len(order) + 1)
        for part in (order[:cut], order[cut:]):
            if part:
                enqueue_all(store, part)
                run_worker_until_idle(store, settings)
        doc = status_of(store, process_id)
        assert doc.started_at is not None
        assert doc.ended_at is not None
        assert doc.started_at <= doc.ended_at
        assert doc.duration_ms is not None
        assert doc.duration_ms >= 0
        seen.add((doc.started_at, doc.ended_at, doc.duration_ms, doc.status))
    assert seen == {(at(started), at(ended), round((ended - started) * 1000), doc.status)}


def test_error_and_cancel_details(store: Any, ingest: Any) -> None:
    ingest(
        [
            event(
                event_type="ERROR",
                process_id="failed",
                error_code="ORA-00060",
                error_message="deadlock detected while waiting for resource",
                stack_trace="ORA-06512: line 7",
            ),
            event(event_type="CANCELLED", process_id="cancelled", reason="operator pressed stop"),
        ]
    )
    failed = status_of(store, "failed")
    assert failed.status == "FAILED"
    assert failed.error_code == "ORA-00060"
    assert failed.error_message == "deadlock detected while waiting for resource"
    cancelled = status_of(store, "cancelled")
    assert cancelled.status == "CANCELLED"
    assert cancelled.error_message == "operator pressed stop"
    assert cancelled.error_code is None


def test_result_and_metadata_round_trip_as_json_objects(store: Any, ingest: Any) -> None:
    metadata = {"host": "db1", "tags": ["a", "ü", "日本"], "nested": {"n": 1.5, "none": None, "t": True}}
    result = {"rows": 10_000_000, "files": [{"name": "x.csv", "bytes": 12}], "empty": {}}
    ingest(
        [
            event(event_type="STARTED", offset=0, metadata=metadata),
            event(event_type="COMPLETED", offset=5, result=result),
        ]
    )
    doc = status_of(store)
    assert decode_json(doc.metadata) == metadata
    assert decode_json(doc.result) == result
    # absent objects are null, not empty objects
    ingest([event(event_type="STARTED", process_id="bare"), event(event_type="COMPLETED", process_id="bare")])
    bare = status_of(store, "bare")
    assert bare.metadata is None
    assert bare.result is None


def test_event_and_log_counts(store: Any, ingest: Any) -> None:
    ingest(
        [
            event(event_type="STARTED", offset=0),
            event(event_type="LOG", offset=1),
            event(event_type="LOG", offset=2, level="WARN"),
            event(event_type="HEARTBEAT", offset=3),
            event(event_type="PROGRESS", offset=4, percent=10),
        ]
    )
    doc = status_of(store)
    assert (doc.event_count, doc.log_count) == (5, 2)
    ingest([event(event_type="LOG", offset=5), event(event_type="HEARTBEAT", offset=6)])
    doc = status_of(store)
    assert (doc.event_count, doc.log_count) == (7, 3)
    assert len(all_logs(store)) == 3


# -- idempotency and tenants ---------------------------------------------------------------------------


def test_same_event_id_twice_in_one_batch_is_stored_once(store: Any, ingest: Any) -> None:
    log = event(event_type="LOG", message="once")
    progress = event(event_type="PROGRESS", percent=10, offset=1)
    ingest([log, log, progress, {**progress, "percent": 90, "timestamp": ts(2)}])
    doc = status_of(store)
    assert (doc.event_count, doc.log_count) == (2, 1)
    assert doc.progress_percent == 10.0
    assert [entry.message for entry in all_logs(store)] == ["once"]


def test_same_event_id_across_batches_is_stored_once(store: Any, ingest: Any) -> None:
    log = event(event_type="LOG", message="once")
    progress = event(event_type="PROGRESS", percent=10, offset=1)
    ingest([log, progress])
    ingest([log, {**progress, "percent": 90, "timestamp": ts(2)}])
    ingest([log])
    doc = status_of(store)
    assert (doc.event_count, doc.log_count) == (2, 1)
    assert doc.progress_percent == 10.0
    assert doc.last_seen_at == at(1)
    assert [entry.message for entry in all_logs(store)] == ["once"]


@pytest.mark.parametrize("same_batch", [True, False])
def test_same_event_id_in_two_tenants_is_not_a_duplicate(store: Any, ingest: Any, same_batch: bool) -> None:
    first = event(event_type="LOG", tenant_id="acme", message="acme line")
    second = {**first, "tenant_id": "globex", "message": "globex line"}
    if same_batch:
        ingest([first, second])
    else:
        ingest([first])
        ingest([second])
    for tenant, message in (("acme", "acme line"), ("globex", "globex line")):
        doc = status_of(store, tenant=tenant)
        assert (doc.event_count, doc.log_count) == (1, 1)
        assert [entry.message for entry in all_logs(store, tenant=tenant)] == [message]


def test_two_tenants_with_the_same_process_id_are_independent(store: Any, ingest: Any) -> None:
    ingest(
        [
            event(event_type="STARTED", tenant_id="acme", offset=0, process_name="acme job"),
            event(event_type="COMPLETED", tenant_id="acme", offset=10),
            event(event_type="STARTED", tenant_id="globex", offset=5, process_name="globex job"),
            event(event_type="PROGRESS", tenant_id="globex", offset=6, percent=20),
            event(event_type="LOG", tenant_id="globex", offset=7),
        ]
    )
    acme, globex = status_of(store, tenant="acme"), status_of(store, tenant="globex")
    assert (acme.status, acme.process_name, acme.event_count, acme.log_count) == (
        "COMPLETED",
        "acme job",
        2,
        0,
    )
    assert acme.progress_percent is None
    assert (globex.status, globex.process_name, globex.event_count, globex.log_count) == (
        "RUNNING",
        "globex job",
        3,
        1,
    )
    assert globex.started_at == at(5)
    assert globex.ended_at is None


def test_reads_are_tenant_scoped(store: Any, ingest: Any) -> None:
    ingest(
        [
            event(event_type="STARTED", tenant_id="acme", process_id="acme-only"),
            event(event_type="LOG", tenant_id="acme", process_id="acme-only", message="secret"),
            event(event_type="LOG", tenant_id="acme", process_id="shared", message="acme shared"),
            event(event_type="LOG", tenant_id="globex", process_id="shared", message="globex shared"),
        ]
    )
    assert store.get_status("globex", "acme-only") is None
    assert store.get_status("acme", "acme-only") is not None
    assert all_logs(store, "acme-only", tenant="globex") == []
    assert store.logs_after("globex", "acme-only", 0, 100) == []
    assert [e.message for e in all_logs(store, "shared", tenant="globex")] == ["globex shared"]
    assert [e.message for e in store.logs_after("globex", "shared", 0, 100)] == ["globex shared"]
    globex = store.list_processes("globex", ProcessQuery(limit=500))
    assert [(d.tenant_id, d.process_id) for d in globex] == [("globex", "shared")]
    acme = store.list_processes("acme", ProcessQuery(limit=500))
    assert {(d.tenant_id, d.process_id) for d in acme} == {("acme", "acme-only"), ("acme", "shared")}
    assert store.list_processes("initech", ProcessQuery(limit=500)) == []


# -- the queue -----------------------------------------------------------------------------------------


def test_queue_hands_out_by_priority_then_arrival(store: Any) -> None:
    priorities = [5, 1, 5, 2, 1, 3, 5, 2]
    payloads = [f'{{"n":{index}}}'.encode() for index in range(len(priorities))]
    assert store.enqueue(payloads, priorities) == len(payloads)
    assert store.queue_stats().depth == len(payloads)
    expected = [p for _, _, p in sorted(zip(priorities, range(len(payloads)), payloads, strict=True))]
    consumer = store.consumer()
    try:
        head = consumer.fetch(3, 0.0)
        rest = consumer.fetch(100, 0.0)
        assert [bytes(m.payload) for m in head] == expected[:3]
        # fetched and not yet committed: not handed out twice
        assert [bytes(m.payload) for m in rest] == expected[3:]
        assert consumer.fetch(100, 0.0) == []
        consumer.rollback([*head, *rest])
        # given back: handed out again, in the same order
        fetched = consumer.fetch(100, 0.0)
        assert [bytes(m.payload) for m in fetched] == expected
        assert all(m.enqueued_at is None or isinstance(m.enqueued_at, int) for m in fetched)
        consumer.rollback(fetched)
    finally:
        consumer.close()
    # fetching and giving back removes nothing
    assert store.queue_stats().depth == len(payloads)


def test_queue_stats(store: Any, settings: Settings) -> None:
    empty = store.queue_stats()
    assert (empty.depth, empty.oldest_enqueued_at) == (0, None)
    before = now_us()
    store.enqueue([b"{}", b"[]"], [5, 5])
    stats = store.queue_stats()
    assert stats.depth == 2
    assert stats.oldest_enqueued_at is not None
    assert before - 5_000_000 <= stats.oldest_enqueued_at <= now_us() + 5_000_000
    run_worker_until_idle(store, settings)
    assert store.queue_stats().depth == 0


# -- list_processes ------------------------------------------------------------------------------------


def _fleet() -> list[dict[str, Any]]:
    return [
        event(event_type="STARTED", offset=-100, process_id="run-etl", process_type="ETL", package_name="PKG_A"),
        event(event_type="STARTED", offset=-99, process_id="done-batch", process_type="BATCH", package_name="PKG_B"),
        event(event_type="COMPLETED", offset=-95, process_id="done-batch"),
        event(event_type="STARTED", offset=-98, process_id="fail-etl", process_type="ETL", package_name="PKG_B"),
        event(event_type="ERROR", offset=-94, process_id="fail-etl"),
        event(
            event_type="STARTED", offset=-97, process_id="cancel-report", process_type="REPORT", package_name="PKG_A"
        ),
        event(event_type="CANCELLED", offset=-93, process_id="cancel-report"),
    ]


def _ids(docs: list[Any]) -> list[str]:
    return [d.process_id for d in docs]


def test_list_processes_newest_first_and_filters(store: Any, ingest: Any) -> None:
    ingest(_fleet())
    assert _ids(store.list_processes("acme", ProcessQuery())) == [
        "cancel-report",
        "fail-etl",
        "done-batch",
        "run-etl",
    ]
    q = store.list_processes
    assert _ids(q("acme", ProcessQuery(statuses=("COMPLETED", "FAILED")))) == ["fail-etl", "done-batch"]
    assert _ids(q("acme", ProcessQuery(statuses=("RUNNING",)))) == ["run-etl"]
    assert _ids(q("acme", ProcessQuery(statuses=("STALLED",)))) == []
    assert _ids(q("acme", ProcessQuery(process_type="ETL"))) == ["fail-etl", "run-etl"]
    assert _ids(q("acme", ProcessQuery(package_name="PKG_A"))) == ["cancel-report", "run-etl"]
    assert _ids(q("acme", ProcessQuery(process_type="ETL", statuses=("FAILED",)))) == ["fail-etl"]
    assert _ids(q("acme", ProcessQuery(process_type="ETL", package_name="PKG_A"))) == ["run-etl"]
    assert _ids(q("acme", ProcessQuery(process_type="NOPE"))) == []
    assert _ids(q("acme", ProcessQuery(limit=2))) == ["cancel-report", "fail-etl"]


def test_list_processes_search_on_id_and_name(store: Any, ingest: Any) -> None:
    ingest(
        [
            *_fleet(),
            event(event_type="STARTED", offset=-90, process_id="x-1", process_name="Nightly ETL_Load 100%"),
            event(event_type="STARTED", offset=-90, process_id="other", process_name="run-etl", tenant_id="globex"),
        ]
    )
    q = store.list_processes
    assert _ids(q("acme", ProcessQuery(search="ETL"))) == ["x-1", "fail-etl", "run-etl"]  # id or name, any case
    assert _ids(q("acme", ProcessQuery(search="etl_load"))) == ["x-1"]
    # '%' and '_' are plain characters, not patterns.
    assert _ids(q("acme", ProcessQuery(search="100%"))) == ["x-1"]
    assert _ids(q("acme", ProcessQuery(search="%"))) == ["x-1"]
    assert _ids(q("acme", ProcessQuery(search="n_e"))) == []
    assert _ids(q("acme", ProcessQuery(search="etl", statuses=("FAILED",)))) == ["fail-etl"]
    assert _ids(q("acme", ProcessQuery(search="nope"))) == []
    assert _ids(q("globex", ProcessQuery(search="etl"))) == ["other"]  # never another tenant's


def test_count_processes_by_status(store: Any, ingest: Any) -> None:
    ingest([*_fleet(), event(event_type="STARTED", process_id="g-1", tenant_id="globex", process_type="ETL")])
    assert store.count_processes("acme", ProcessQuery()) == {"RUNNING": 1, "COMPLETED": 1, "FAILED": 1, "CANCELLED": 1}
    assert store.count_processes("acme", ProcessQuery(process_type="ETL")) == {"RUNNING": 1, "FAILED": 1}
    assert store.count_processes("acme", ProcessQuery(package_name="PKG_B", search="done")) == {"COMPLETED": 1}
    # The status filter is what a count becomes when clicked: counts ignore it, and the cursor and limit.
    assert store.count_processes("acme", ProcessQuery(statuses=("FAILED",), limit=1)) == store.count_processes(
        "acme", ProcessQuery()
    )
    assert store.count_processes("globex", ProcessQuery()) == {"RUNNING": 1}
    assert store.count_processes("nobody", ProcessQuery()) == {}


def test_stack_trace_is_read_per_tenant(store: Any, ingest: Any) -> None:
    ingest([terminal("ERROR", 0), event(process_id="quiet")])
    assert store.stack_trace("acme", "proc-1") == "at line 1"
    assert store.stack_trace("acme", "quiet") is None
    assert store.stack_trace("globex", "proc-1") is None
    assert store.stack_trace("acme", "absent") is None


def test_list_processes_updated_since(store: Any, ingest: Any) -> None:
    ingest(_fleet())
    time.sleep(0.002)
    mark = now_us()
    time.sleep(0.002)
    ingest(
        [
            event(event_type="HEARTBEAT", offset=3600, process_id="run-etl"),
            event(event_type="STARTED", offset=3601, process_id="late"),
        ]
    )
    assert _ids(store.list_processes("acme", ProcessQuery(updated_since=mark))) == ["late", "run-etl"]
    assert len(store.list_processes("acme", ProcessQuery(updated_since=0))) == 5


def test_list_processes_keyset_pagination(store: Any, ingest: Any) -> None:
    rnd = random.Random(7)
    # 300 processes over 100 distinct last_seen_at values: ties at page boundaries are the hard part.
    pids = [f"p{index:03d}" for index in range(300)]
    rnd.shuffle(pids)
    events = [event(process_id=pid, offset=-(index // 3)) for index, pid in enumerate(pids)]
    rnd.shuffle(events)
    ingest(events)
    expected = sorted(((us(-(index // 3)), pid) for index, pid in enumerate(pids)), key=lambda key: (-key[0], key[1]))
    seen: list[tuple[int, str]] = []
    after = None
    pages = 0
    while True:
        page = store.list_processes("acme", ProcessQuery(after=after, limit=37))
        assert len(page) <= 37
        if not page:
            break
        pages += 1
        keys = [(to_us(d.last_seen_at), d.process_id) for d in page]
        seen.extend(keys)
        after = keys[-1]
        assert pages <= 20, "pagination does not end"
    assert len(seen) == len(set(seen)) == 300
    assert seen == expected
    assert pages == 9  # 8 full pages of 37 and one of 4


def test_a_walk_misses_no_process_whose_activity_moves_it(store: Any, ingest: Any) -> None:
    """Six processes A..F; a walk reads F, E; then B gets a heartbeat (moving it to the top). The part of
    the walk over unchanged processes returns D, C, A; the changed ones (B) follow, by process_id."""
    ingest([event(process_id=name, offset=index) for index, name in enumerate("ABCDEF")])
    ingest([event(process_id="other", offset=99, tenant_id="globex")])
    snapshot = store.process_snapshot("acme")
    assert snapshot > 0
    assert store.process_snapshot("nobody") == 0
    first = store.list_processes("acme", ProcessQuery(snapshot=snapshot, limit=2))
    assert _ids(first) == ["F", "E"]
    ingest([event(event_type="HEARTBEAT", process_id="B", offset=50)])
    ingest([event(event_type="HEARTBEAT", process_id="other", offset=100, tenant_id="globex")])
    assert store.process_snapshot("acme") > snapshot
    after = (to_us(first[-1].last_seen_at), first[-1].process_id)
    rest = store.list_processes("acme", ProcessQuery(snapshot=snapshot, after=after, limit=10))
    assert _ids(rest) == ["D", "C", "A"]
    changed = store.list_processes("acme", ProcessQuery(snapshot=snapshot, changed_after="", limit=10))
    assert _ids(changed) == ["B"]
    assert store.list_processes("acme", ProcessQuery(snapshot=snapshot, changed_after="B", limit=10)) == []
    # A stall is a change too: the stalled process leaves part 1 for part 2.
    time.sleep(0.002)
    assert store.mark_stalled(now_us(), now_us() + 1) == 7  # A..F and globex's
    assert store.list_processes("acme", ProcessQuery(snapshot=snapshot, limit=10)) == []
    changed = store.list_processes("acme", ProcessQuery(snapshot=snapshot, changed_after="", limit=10))
    assert _ids(changed) == list("ABCDEF")


def test_random_walks_with_changes_in_between_miss_nothing(store: Any, ingest: Any) -> None:
    """Between the pages of a walk, random processes get newer (or older) events and new processes
    appear; every process that existed when the walk began is returned, none more than twice."""
    rnd = random.Random(11)
    pids = [f"w{index:03d}" for index in range(60)]
    ingest([event(process_id=pid, offset=-(index // 4)) for index, pid in enumerate(pids)])
    for trial in range(4):
        snapshot = store.process_snapshot("acme")
        existing = {d.process_id for d in store.list_processes("acme", ProcessQuery(limit=1000))}
        returned: list[str] = []
        after: tuple[int, str] | None = None
        changed_after: str | None = None
        for _ in range(200):
            limit = rnd.randint(1, 9)
            if changed_after is None:
                page = store.list_processes("acme", ProcessQuery(snapshot=snapshot, after=after, limit=limit))
                if len(page) < limit:
                    changed_after = ""
                if page:
                    after = (to_us(page[-1].last_seen_at), page[-1].process_id)
            else:
                page = store.list_processes(
                    "acme", ProcessQuery(snapshot=snapshot, changed_after=changed_after, limit=limit)
                )
                if not page:
                    break
                changed_after = page[-1].process_id
            returned += _ids(page)
            moved = rnd.sample(pids, 3)
            ingest(
                [event(process_id=pid, event_type="HEARTBEAT", offset=rnd.randint(-30, 300)) for pid in moved]
                + [event(process_id=f"new-{trial}-{len(returned)}", offset=rnd.randint(-30, 300))]
            )
        assert existing <= set(returned), existing - set(returned)
        assert max(returned.count(pid) for pid in existing) <= 2


# -- logs ----------------------------------------------------------------------------------------------


def _log_stream() -> list[dict[str, Any]]:
    rnd = random.Random(3)
    events = [
        event(event_type="LOG", offset=index // 2, level=LEVELS[index % len(LEVELS)], message=f"line {index:02d}")
        for index in range(30)
    ]
    rnd.shuffle(events)
    return events


def test_list_logs_oldest_first_with_filters(store: Any, ingest: Any) -> None:
    events = _log_stream()
    ingest(events)
    logs = all_logs(store)
    assert len(logs) == 30
    keys = [(entry.timestamp, entry.seq) for entry in logs]
    assert keys == sorted(keys)
    assert len({entry.seq for entry in logs}) == 30
    assert {entry.message for entry in logs} == {e["message"] for e in events}
    by_message = {e["message"]: e for e in events}
    for entry in logs:
        assert entry.timestamp == at(int(entry.message[5:]) // 2)
        assert entry.level == by_message[entry.message]["level"]

    warn = LEVELS.index("WARN")
    filtered = all_logs(store, min_level=warn)
    assert {e.message for e in filtered} == {e["message"] for e in events if LEVELS.index(e["level"]) >= warn}
    assert all(e.level in ("WARN", "ERROR", "FATAL") for e in filtered)
    assert [(e.timestamp, e.seq) for e in filtered] == sorted((e.timestamp, e.seq) for e in filtered)

    since = all_logs(store, since=us(10))
    assert {e.message for e in since} == {f"line {index:02d}" for index in range(20, 30)}
    both = all_logs(store, since=us(10), min_level=LEVELS.index("ERROR"))
    assert {e.message for e in both} == {
        f"line {index:02d}" for index in range(20, 30) if index % len(LEVELS) >= LEVELS.index("ERROR")
    }


def test_list_logs_keyset_pagination(store: Any, ingest: Any) -> None:
    ingest(_log_stream())
    full = all_logs(store)
    pages: list[list[Any]] = []
    after = None
    while len(pages) < 20:
        page = list(store.list_logs("acme", "proc-1", LogQuery(after=after, limit=7)))
        if not page:
            break
        assert len(page) <= 7
        pages.append(page)
        after = (to_us(page[-1].timestamp), page[-1].seq)
    flat = [entry.seq for page in pages for entry in page]
    assert flat == [entry.seq for entry in full]
    assert [len(page) for page in pages] == [7, 7, 7, 7, 2]


def test_log_entry_fields(store: Any, ingest: Any) -> None:
    ingest(
        [
            event(
                event_type="LOG",
                offset=1,
                level="ERROR",
                message="disk full",
                details={"free": 0, "dev": "sda"},
                component="writer",
                correlation_id="corr-9",
                trace_id="0123456789ABCDEF0123456789abcdef",
                span_id="00f067aa0ba902b7",
                duration_us=1234,
            ),
            event(event_type="LOG", offset=2, level="TRACE", message="bare"),
        ]
    )
    full, bare = all_logs(store)
    assert (full.timestamp, full.level, full.message) == (at(1), "ERROR", "disk full")
    assert decode_json(full.details) == {"free": 0, "dev": "sda"}
    assert (full.component, full.correlation_id, full.duration_us) == ("writer", "corr-9", 1234)
    assert full.trace_id is not None
    assert full.trace_id.lower() == "0123456789abcdef0123456789abcdef"
    assert full.span_id == "00f067aa0ba902b7"
    assert (bare.level, bare.message, bare.details, bare.component, bare.trace_id, bare.duration_us) == (
        "TRACE",
        "bare",
        None,
        None,
        None,
        None,
    )


def test_logs_after_seq(store: Any, ingest: Any) -> None:
    ingest(_log_stream())
    stored = store.logs_after("acme", "proc-1", 0, 1000)
    seqs = [entry.seq for entry in stored]
    assert len(seqs) == 30
    assert seqs == sorted(seqs)
    assert set(seqs) == {entry.seq for entry in all_logs(store)}
    assert [e.seq for e in store.logs_after("acme", "proc-1", seqs[9], 5)] == seqs[10:15]
    assert store.logs_after("acme", "proc-1", seqs[-1], 1000) == []
    ingest(
        [
            event(event_type="LOG", offset=-500, message="new but old"),
            event(event_type="LOG", offset=500, message="new and late"),
        ]
    )
    tail = store.logs_after("acme", "proc-1", seqs[-1], 1000)
    assert {entry.message for entry in tail} == {"new but old", "new and late"}
    assert all(entry.seq > seqs[-1] for entry in tail)


def test_logs_after_a_purged_seq_still_sees_newer_logs(store: Any, ingest: Any) -> None:
    """A live tail remembers the last seq it sent. If retention deletes that very row, a log stored
    afterwards is still "stored after" it and must be returned (seqs must not be handed out twice)."""
    ingest([event(event_type="LOG", offset=0, message="recent")])
    ingest([event(event_type="LOG", offset=-10_000, message="late and old")])
    tail = store.logs_after("acme", "proc-1", 0, 100)
    assert [entry.message for entry in tail] == ["recent", "late and old"]
    last_sent = tail[-1].seq
    assert store.purge(us(-5_000), 0) == (1, 0)
    ingest([event(event_type="LOG", offset=1, message="newest")])
    assert [entry.message for entry in store.logs_after("acme", "proc-1", last_sent, 100)] == ["newest"]
    assert all(entry.seq != last_sent for entry in all_logs(store))


# -- housekeeping --------------------------------------------------------------------------------------


def test_mark_stalled(store: Any, ingest: Any) -> None:
    before = now_us()
    ingest(
        [
            event(event_type="STARTED", offset=-100, process_id="busy"),
            event(event_type="PROGRESS", offset=-50, process_id="busy", percent=50),
            event(event_type="STARTED", offset=-100, process_id="done"),
            event(event_type="COMPLETED", offset=-90, process_id="done"),
            event(event_type="ERROR", offset=-90, process_id="failed"),
            event(event_type="CANCELLED", offset=-90, process_id="cancelled"),
        ]
    )
    # everything was received after ``before``: nothing is idle since then
    assert store.mark_stalled(before, now_us()) == 0
    assert status_of(store, "busy").status == "RUNNING"
    time.sleep(0.002)
    assert store.mark_stalled(now_us(), now_us()) == 1
    assert status_of(store, "busy").status == "STALLED"
    assert store.process_counts() == {"STALLED": 1, "COMPLETED": 1, "FAILED": 1, "CANCELLED": 1}
    for pid, status in (("done", "COMPLETED"), ("failed", "FAILED"), ("cancelled", "CANCELLED")):
        assert status_of(store, pid).status == status
    stalled = store.list_processes("acme", ProcessQuery(statuses=("STALLED",)))
    assert [d.process_id for d in stalled] == ["busy"]
    # already stalled: not counted again
    assert store.mark_stalled(now_us(), now_us()) == 0

    # its next event makes it RUNNING again, even an old one
    ingest([event(event_type="HEARTBEAT", offset=-200, process_id="busy")])
    busy = status_of(store, "busy")
    assert busy.status == "RUNNING"
    assert busy.event_count == 3
    assert busy.last_seen_at == at(-50)
    assert (busy.current_step, busy.progress_percent) == (None, 50.0)

    # and a stalled process that then ends is terminal
    time.sleep(0.002)
    assert store.mark_stalled(now_us(), now_us()) == 1
    ingest([event(event_type="COMPLETED", offset=-10, process_id="busy")])
    assert status_of(store, "busy").status == "COMPLETED"
    assert store.mark_stalled(now_us() + 10_000_000, now_us()) == 0


def test_a_process_whose_event_waits_in_the_queue_is_not_marked_stalled(store: Any, ingest: Any) -> None:
    """SPEC section 3: "no event" counts from when the newest event entered the queue; an event still
    waiting (a restart, a backlog) never lets its process be marked STALLED."""
    ingest([event(event_type="STARTED", process_id="waiting"), event(event_type="STARTED", process_id="idle")])
    time.sleep(0.002)
    cutoff = now_us()
    time.sleep(0.002)
    enqueue_all(store, [event(event_type="HEARTBEAT", offset=5, process_id="waiting")])
    store.enqueue([b"not json", b'{"process_id": 5}'], [5, 5])  # unreadable messages hide nobody
    assert store.mark_stalled(cutoff, now_us()) == 1
    assert status_of(store, "waiting").status == "RUNNING"
    assert status_of(store, "idle").status == "STALLED"
    ingest([])
    assert status_of(store, "waiting").event_count == 2

    # While the queue holds a message older than the cutoff, ingest lags more than the timeout: no
    # process is judged until it has caught up.
    enqueue_all(store, [event(event_type="HEARTBEAT", offset=6, process_id="elsewhere")])
    time.sleep(0.002)
    assert store.mark_stalled(now_us(), now_us()) == 0
    assert status_of(store, "waiting").status == "RUNNING"
    ingest([])
    time.sleep(0.002)
    assert store.mark_stalled(now_us(), now_us()) == 2  # caught up: waiting and elsewhere are idle now


def test_purge(store: Any, ingest: Any) -> None:
    first = [
        event(event_type="LOG", offset=-1000, message="old 1"),
        event(event_type="LOG", offset=-900, message="old 2"),
        event(event_type="LOG", offset=0, message="new 1"),
        event(event_type="HEARTBEAT", offset=0, process_id="other"),
    ]
    ingest(first)
    time.sleep(0.002)
    mark = now_us()
    time.sleep(0.002)
    second = [
        event(event_type="LOG", offset=-2000, message="old 3"),
        event(event_type="LOG", offset=5, message="new 2"),
    ]
    ingest(second)
    assert store.purge(us(-500), mark) == (3, len(first))
    assert [entry.message for entry in all_logs(store)] == ["new 1", "new 2"]
    # nothing older than the cutoffs is left
    assert store.purge(us(-500), mark) == (0, 0)
    # statuses are not touched by a purge
    assert status_of(store).event_count == 5
    # The keys of the first batch are gone, so its events count as new again; the second batch's
    # keys are kept, so its events are still duplicates.
    ingest([first[0], second[1]])
    assert [entry.message for entry in all_logs(store)] == ["old 1", "new 1", "new 2"]
    assert status_of(store).event_count == 6


def test_dead_letters_listing(store: Any, ingest: Any) -> None:
    bad_json = b'{"event_id": "x", '
    bad_type = event(event_type="FINISHED")
    ingest([event(offset=1, message="before"), bad_json, bad_type, event(offset=2)], [5, 5, 5, 5])
    letters = store.dead_letters(0, 100)
    assert [(d.code, d.payload) for d in letters] == [
        ("invalid_json", bad_json.decode()),
        ("bad_event_type", encode(bad_type).decode()),
    ]
    assert letters[0].reason.startswith("invalid JSON")
    assert letters[1].reason.startswith("event_type:")
    assert letters[0].id < letters[1].id
    assert all(d.dead_at is not None for d in letters)
    assert [d.id for d in store.dead_letters(letters[0].id, 100)] == [letters[1].id]
    assert [d.id for d in store.dead_letters(0, 1)] == [letters[0].id]
    assert store.dead_letters(letters[1].id, 100) == []
    # Newest first, for the dashboard.
    assert [d.id for d in store.recent_dead_letters(100)[1]] == [letters[1].id, letters[0].id]
    assert [d.id for d in store.recent_dead_letters(1)[1]] == [letters[1].id]
    assert [d.id for d in store.recent_dead_letters(100, before_id=letters[1].id)[1]] == [letters[0].id]
    assert store.recent_dead_letters(100, before_id=letters[0].id) == (2, [])
    assert store.recent_dead_letters(100)[1][0] == letters[1]
    assert status_of(store).event_count == 2

    # newest first, with the total, optionally since a moment
    total, newest = store.recent_dead_letters(1)
    assert (total, [d.id for d in newest]) == (2, [letters[1].id])
    total, both = store.recent_dead_letters(100)
    assert (total, [d.id for d in both]) == (2, [letters[1].id, letters[0].id])
    later = to_us(letters[1].dead_at) + 1
    assert store.recent_dead_letters(100, later) == (0, [])
    assert store.recent_dead_letters(100, to_us(letters[0].dead_at))[0] == 2


def test_secret_is_stable(store: Any) -> None:
    one = store.secret("hmac")
    assert isinstance(one, bytes)
    assert len(one) >= 16
    assert store.secret("hmac") == one
    other = store.secret("cursor")
    assert other != one
    assert store.secret("cursor") == other


def test_secret_survives_reopening_the_database(settings: Settings, sqlite_store: SqliteStore) -> None:
    first = sqlite_store.secret("hmac")
    again = SqliteStore(settings.sqlite_path)
    try:
        assert again.secret("hmac") == first
    finally:
        again.close()
    elsewhere = SqliteStore(settings.sqlite_path.with_name("other.db"))
    elsewhere.migrate()
    try:
        assert elsewhere.secret("hmac") != first
    finally:
        elsewhere.close()


def test_the_store_meets_the_protocol(store: Any) -> None:
    """Every backend implements all of ``Store``, ``pool_stats`` included (``/metrics`` calls it as is)."""
    assert isinstance(store, Store)
    store.ping()
    busy, opened = store.pool_stats()
    assert type(busy) is int
    assert type(opened) is int
    assert 0 <= busy <= opened
    assert opened >= 1  # the connection that answered the ping
