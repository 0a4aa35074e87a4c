"""Alerts against a real ``sentinel serve --dev`` and receivers on loopback: rules through the API and the
operator's file, every condition firing once for the right tenant, the quiet period, signed webhooks,
Alertmanager keep-alive and resolution, a receiver that is away, and a server killed before delivery."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
from apiserver import ApiServer, assert_problem, event, free_port, ts, unique
from helpers import make_settings, wait_for
from receivers import Received, Receiver, port_for_later

from sentinel.alerts import metrics as alert_metrics
from sentinel.alerts import targets
from sentinel.alerts.dialects import for_backend
from sentinel.alerts.engine import Notification, RuleRef, day_window
from sentinel.alerts.rules import RuleError, RuleSpec, Target, check_url
from sentinel.alerts.sender import Sender
from sentinel.alerts.service import install_status_hook
from sentinel.config import SettingsError, load_settings
from sentinel.store.sqlite import SqliteStore

SECRET = "s3cret-for-tenant-a-0123456789"
OTHER_SECRET = "s3cret-for-tenant-b-9876543210"
ADMIN = "sentinel-admin"

SERVER_ENV = {
    "SENTINEL_ALERT_ALLOW_PRIVATE_TARGETS": "1",
    "SENTINEL_HEARTBEAT_TIMEOUT_SEC": "2",
    "SENTINEL_ALERT_RETRY_BASE_SEC": "0.5",
    "SENTINEL_ALERT_RETRY_MAX_SEC": "1",
    "SENTINEL_ALERT_MAX_ATTEMPTS": "1000",
    "SENTINEL_ALERTMANAGER_REPOST_SEC": "1",
}


# -- fixtures -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def hook() -> Iterator[Receiver]:
    with Receiver() as receiver:
        yield receiver


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory, hook: Receiver) -> Iterator[ApiServer]:
    root = tmp_path_factory.mktemp("alerts")
    rules_file = root / "rules.json"
    rules_file.write_text(
        json.dumps(
            {
                "rules": [
                    {
                        "id": "ops-failures",
                        "tenant_id": "ops",
                        "name": "operator rule",
                        "conditions": ["FAILED"],
                        "process_type": "OPS",
                        "quiet_period_sec": 0,
                        "target": {"kind": "webhook", "url": f"{hook.url}/ops"},
                        "secret_env": "OPS_HOOK_SECRET",
                    }
                ]
            }
        )
    )
    env = {**SERVER_ENV, "SENTINEL_ALERT_RULES_FILE": str(rules_file), "OPS_HOOK_SECRET": SECRET}
    with ApiServer(root / "data", dev=True, env=env) as server:
        yield server


@pytest.fixture(scope="module")
def tokens(api: ApiServer) -> dict[str, str]:
    return {
        "a": api.dev_token("tenant-a", "sentinel-ingest", ADMIN),
        "b": api.dev_token("tenant-b", "sentinel-ingest", ADMIN),
        "ops": api.dev_token("ops", "sentinel-ingest", ADMIN),
        "plain": api.dev_token("tenant-a", "sentinel-ingest"),
    }


def rule(url: str, conditions: list[str], **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": unique("rule"),
        "conditions": conditions,
        "target": {"kind": extra.pop("kind", "webhook"), "url": url},
        "quiet_period_sec": extra.pop("quiet_period_sec", 0),
        **extra,
    }
    if body["target"]["kind"] == "webhook":
        body.setdefault("secret", SECRET)
    return body


def create(http: httpx.Client, body: dict[str, Any]) -> dict[str, Any]:
    answer = http.post("/alert-rules", json=body)
    assert answer.status_code == 201, answer.text
    created: dict[str, Any] = answer.json()
    return created


def post(http: httpx.Client, events: list[dict[str, Any]]) -> None:
    answer = http.post("/events", json=events)
    assert answer.status_code == 202, answer.text


def with_baseline(http: httpx.Client, kind: str, *, runs: int, seconds: float) -> datetime:
    """``runs`` completed runs of ``seconds`` each of the process (kind, "job"), an hour ago; waits until the
    baseline shows. Returns the time they started from."""
    base = datetime.now(UTC) - timedelta(hours=1)
    events = []
    for n in range(runs):
        start = base + timedelta(minutes=n)
        events += [
            event("STARTED", f"{kind}-base-{n}", timestamp=ts(base=start), process_type=kind, process_name="job"),
            event("COMPLETED", f"{kind}-base-{n}", timestamp=ts(seconds, base=start)),
        ]
    post(http, events)
    wait_for(lambda: http.get("/baselines", params={"process_type": kind}).json()["items"], 60, "the baseline")
    return base


def firing(received: list[Received], condition: str | None = None) -> list[dict[str, Any]]:
    out = []
    for item in received:
        body = item.json()
        if body["status"] == "firing" and (condition is None or body["condition"] == condition):
            out.append(body)
    return out


def deliveries(http: httpx.Client, rule_id: str) -> list[dict[str, Any]]:
    answer = http.get("/alert-deliveries", params={"rule_id": rule_id, "limit": 200})
    assert answer.status_code == 200, answer.text
    items: list[dict[str, Any]] = answer.json()["items"]
    return items


def settle(seconds: float) -> None:
    """Give the sender time to (wrongly) send more; the assertions after it check nothing more came."""
    time.sleep(seconds)


# -- rules through the API ------------------------------------------------------------------------------


@pytest.mark.slow
def test_rules_crud_needs_the_admin_role_and_never_shows_the_secret(
    api: ApiServer, tokens: dict[str, str], hook: Receiver
) -> None:
    with api.client(tokens["a"]) as a, api.client(tokens["b"]) as b, api.client(tokens["plain"]) as plain:
        assert_problem(plain.get("/alert-rules"), 403, "missing_role")
        assert_problem(plain.post("/alert-rules", json=rule(hook.url, ["FAILED"])), 403, "missing_role")
        with api.client() as anonymous:
            assert_problem(anonymous.get("/alert-rules"), 401)
            assert_problem(anonymous.get("/alert-deliveries"), 401)

        created = create(a, rule(f"{hook.url}/crud", ["FAILED", "STALLED"], process_type="T"))
        assert created["secret_set"] is True
        assert "secret" not in created
        assert created["source"] == "api"
        assert created["tenant_id"] == "tenant-a"
        for answer in (a.get(f"/alert-rules/{created['id']}"), a.get("/alert-rules")):
            assert answer.status_code == 200
            assert SECRET not in answer.text
        assert_problem(b.get(f"/alert-rules/{created['id']}"), 404, "not_found")
        assert created["id"] not in b.get("/alert-rules").text

        # PUT without a secret keeps the stored one; with another tenant's token it is not found.
        replaced = {**rule(f"{hook.url}/crud", ["CANCELLED"]), "name": "renamed"}
        del replaced["secret"]
        answer = a.put(f"/alert-rules/{created['id']}", json=replaced)
        assert answer.status_code == 200, answer.text
        assert answer.json()["name"] == "renamed"
        assert answer.json()["secret_set"] is True
        assert_problem(b.put(f"/alert-rules/{created['id']}", json=replaced), 404)

        bad = [
            {**rule(hook.url, ["FAILED"]), "secret": None},  # a webhook needs its secret
            rule(hook.url, ["not_started_by"], not_started_by="07:00"),  # ... and a process name
            rule(hook.url, ["not_started_by"], process_name="x", not_started_by="25:00"),
            rule(hook.url, ["FAILED"], timezone="Mars/Olympus"),
            rule("ftp://example.com/x", ["FAILED"]),
            rule(hook.url, ["FAILED", "FAILED"]),
            rule(hook.url, ["EXPLODED"]),
            {**rule(hook.url, ["FAILED"]), "unknown": 1},
            {**rule(hook.url, ["FAILED"]), "secret": "short"},
        ]
        for body in bad:
            assert_problem(a.post("/alert-rules", json=body), 400)

        assert a.delete(f"/alert-rules/{created['id']}").status_code == 204
        assert_problem(a.get(f"/alert-rules/{created['id']}"), 404)
        assert_problem(a.delete(f"/alert-rules/{created['id']}"), 404)


@pytest.mark.slow
def test_operator_rules_come_from_the_file_and_cannot_be_changed_through_the_api(
    api: ApiServer, tokens: dict[str, str], hook: Receiver
) -> None:
    with api.client(tokens["ops"]) as ops:
        rules = ops.get("/alert-rules").json()["items"]
        assert [(r["id"], r["source"], r["secret_set"]) for r in rules] == [("config:ops-failures", "config", True)]
        assert SECRET not in ops.get("/alert-rules").text
        assert_problem(ops.delete("/alert-rules/config:ops-failures"), 409, "conflict")
        body = rule(hook.url, ["FAILED"])
        assert_problem(ops.put("/alert-rules/config:ops-failures", json=body), 409, "conflict")
        pid = unique("ops")
        post(ops, [event("STARTED", pid, process_type="OPS"), event("ERROR", pid, error_message="disk full")])
        got = hook.wait(lambda r: len(firing(r)) == 1, 60, "the operator rule's alert", path="/ops")
        assert firing(got)[0]["process"]["process_id"] == pid
        assert firing(got)[0]["rule"]["id"] == "config:ops-failures"


def test_a_bad_rules_file_stops_with_one_line(tmp_path: Path) -> None:
    path = tmp_path / "rules.json"
    path.write_text(
        '{"rules": [{"id": "x", "tenant_id": "t", "name": "n", "conditions": ["FAILED"],'
        ' "target": {"kind": "webhook", "url": "http://10.0.0.1/"}, "secret": "0123456789abcdefgh"}]}'
    )
    with pytest.raises(SettingsError) as caught:
        load_settings({"SENTINEL_ALERT_RULES_FILE": str(path)})
    message = str(caught.value)
    assert message.startswith("SENTINEL_ALERT_RULES_FILE:")
    assert "\n" not in message
    assert "private" in message
    # The same file is fine where private targets are allowed; a missing file is named too.
    load_settings({"SENTINEL_ALERT_RULES_FILE": str(path), "SENTINEL_ALERT_ALLOW_PRIVATE_TARGETS": "1"})
    with pytest.raises(SettingsError, match="SENTINEL_ALERT_RULES_FILE: expected an existing file"):
        load_settings({"SENTINEL_ALERT_RULES_FILE": str(tmp_path / "missing.json")})
    path.write_text("{not json")
    with pytest.raises(SettingsError, match="not JSON"):
        load_settings({"SENTINEL_ALERT_RULES_FILE": str(path)})


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/x",
        "http://localhost:9093/",
        "http://10.1.2.3/",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/",
        "http://[fd00::1]/",
        "http://0.0.0.0/",
        "http://user:pw@example.com/",
        "file:///etc/passwd",
        "http:///nohost",
    ],
)
def test_private_and_malformed_targets_are_refused(url: str) -> None:
    with pytest.raises(RuleError):
        check_url(url, allow_private=False)


def test_names_resolving_to_private_addresses_are_refused_at_send_time() -> None:
    with pytest.raises(targets.TargetRefused, match="non-public"):
        targets.guard("http://localhost:1/hook", allow_private=False)
    targets.guard("http://localhost:1/hook", allow_private=True)
    check_url("https://hooks.example.com/x", allow_private=False)


# -- conditions --------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_each_condition_fires_once_for_its_tenant_and_never_for_another(
    api: ApiServer, tokens: dict[str, str], hook: Receiver
) -> None:
    kind = unique("T")
    path_a, path_b = f"/{unique('a')}", f"/{unique('b')}"
    every = ["FAILED", "STALLED", "CANCELLED", "slow"]
    with api.client(tokens["a"]) as a, api.client(tokens["b"]) as b:
        rule_a = create(a, rule(hook.url + path_a, every, process_type=kind))
        create(b, rule(hook.url + path_b, every, process_type=kind, secret=OTHER_SECRET))
        base = with_baseline(a, kind, runs=6, seconds=0.1)
        start = base + timedelta(minutes=30)
        post(
            a,
            [
                event("STARTED", f"{kind}-fail", process_type=kind, process_name="job"),
                event("ERROR", f"{kind}-fail", error_code="ORA-01555", error_message="snapshot too old"),
                event("STARTED", f"{kind}-cancel", process_type=kind, process_name="job"),
                event("CANCELLED", f"{kind}-cancel", reason="operator"),
                # no baseline for this name: it would otherwise be slow too, 150 ms after it started
                event("STARTED", f"{kind}-stall", process_type=kind, process_name="stall-job"),
                event("STARTED", f"{kind}-slow", timestamp=ts(base=start), process_type=kind, process_name="job"),
                event("COMPLETED", f"{kind}-slow", timestamp=ts(1.0, base=start)),
            ],
        )
        expected = {
            "FAILED": f"{kind}-fail",
            "CANCELLED": f"{kind}-cancel",
            "STALLED": f"{kind}-stall",
            "slow": f"{kind}-slow",
        }
        got = hook.wait(lambda r: len(firing(r)) >= 4, 60, "four conditions", path=path_a)
        settle(3.0)  # stalls are marked every second, the sender polls every half second: nothing more may come
        notes = firing(hook.snapshot(path_a))
        assert sorted(n["condition"] for n in notes) == sorted(expected)
        for note in notes:
            assert note["tenant_id"] == "tenant-a"
            assert note["process"]["process_id"] == expected[note["condition"]]
            assert note["rule"]["id"] == rule_a["id"]
        by_condition = {n["condition"]: n for n in notes}
        assert by_condition["FAILED"]["process"]["error_code"] == "ORA-01555"
        assert "snapshot too old" in by_condition["FAILED"]["summary"]
        assert by_condition["slow"]["baseline"]["median_ms"] == 100
        assert by_condition["slow"]["process"]["duration_ms"] == 1000
        assert hook.snapshot(path_b) == []  # tenant B's rule matches the same type, but none is B's
        assert got

        # The deliveries are visible to tenant A's admin, with their attempts; not to B.
        listed = deliveries(a, rule_a["id"])
        assert {d["state"] for d in listed} == {"delivered"}
        assert all(d["attempt_log"] and d["attempt_log"][-1]["status_code"] == 200 for d in listed)
        assert deliveries(b, rule_a["id"]) == []


@pytest.mark.slow
def test_signatures_verify_with_the_rules_secret_only(api: ApiServer, tokens: dict[str, str], hook: Receiver) -> None:
    path = f"/{unique('sig')}"
    kind = unique("S")
    with api.client(tokens["a"]) as a:
        create(a, rule(hook.url + path, ["FAILED"], process_type=kind))
        pid = unique("p")
        post(a, [event("STARTED", pid, process_type=kind), event("ERROR", pid, error_message="boom")])
        (received,) = hook.wait(lambda r: len(r) == 1, 60, "a signed webhook", path=path)
    stamp = received.headers["x-sentinel-timestamp"]
    signature = received.headers["x-sentinel-signature"]
    assert abs(int(stamp) - time.time()) < 600
    direct = "v1=" + hmac.new(SECRET.encode(), stamp.encode() + b"." + received.body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(signature, direct)
    assert targets.verify(SECRET, stamp, received.body, signature)
    assert not targets.verify(OTHER_SECRET, stamp, received.body, signature)
    assert not targets.verify(SECRET, str(int(stamp) + 1), received.body, signature)
    assert not targets.verify(SECRET, stamp, received.body + b" ", signature)
    assert received.headers["idempotency-key"] == received.json()["id"]


@pytest.mark.slow
def test_quiet_period_holds_for_a_flapping_process(api: ApiServer, tokens: dict[str, str], hook: Receiver) -> None:
    path = f"/{unique('quiet')}"
    kind = unique("Q")
    with api.client(tokens["a"]) as a:
        create(a, rule(hook.url + path, ["FAILED"], process_type=kind, quiet_period_sec=3600))
        for n in range(5):  # the same process name fails five times
            pid = f"{kind}-flap-{n}"
            post(a, [event("STARTED", pid, process_type=kind, process_name="flappy"), event("ERROR", pid)])
            hook.wait(lambda r: len(r) >= 1, 60, "the first failure", path=path)
        pid = f"{kind}-other"
        post(a, [event("STARTED", pid, process_type=kind, process_name="other"), event("ERROR", pid)])
        hook.wait(lambda r: len(firing(r)) >= 2, 60, "the other process's failure", path=path)
        settle(2.0)
    notes = firing(hook.snapshot(path))
    assert [n["process"]["process_name"] for n in notes] == ["flappy", "other"]


@pytest.mark.slow
def test_not_started_by_fires_once_and_only_for_a_process_that_did_not_start(
    api: ApiServer, tokens: dict[str, str], hook: Receiver
) -> None:
    path = f"/{unique('nsb')}"
    missing, present = unique("never"), unique("daily")
    with api.client(tokens["a"]) as a, api.client(tokens["b"]) as b:
        post(a, [event("STARTED", unique("run"), process_name=present)])
        wait_for(lambda: a.get("/processes").text.count(present) > 0, 60, "the present run")
        # Deadline at midnight of the rule's zone: passed already, whatever the time of the test run.
        for name in (missing, present):
            create(
                a,
                rule(
                    hook.url + path,
                    ["not_started_by"],
                    process_name=name,
                    not_started_by="00:00",
                    timezone="Europe/Paris",
                ),
            )
        # Tenant B runs a process of the missing name: it does not count for tenant A.
        post(b, [event("STARTED", unique("run"), process_name=missing)])
        hook.wait(lambda r: len(r) >= 1, 60, "the not-started alert", path=path)
        settle(3.0)  # evaluated every second: still one
        notes = firing(hook.snapshot(path))
        assert len(notes) == 1
        assert notes[0]["condition"] == "not_started_by"
        assert notes[0]["labels"]["process_name"] == missing
        assert notes[0]["expected_by"] is not None
        # Late, but it starts: the alert resolves, with the same labels.
        post(a, [event("STARTED", unique("run"), process_name=missing)])
        got = hook.wait(lambda r: len(r) >= 2, 60, "the resolution", path=path)
    resolved = got[1].json()
    assert resolved["status"] == "resolved"
    assert resolved["labels"] == notes[0]["labels"]


def test_the_not_started_deadline_is_a_wall_clock_time_in_the_rules_zone() -> None:
    spec = RuleSpec(
        name="n",
        conditions=["not_started_by"],
        target=Target(kind="slack", url="https://hooks.example.com/x"),
        process_name="p",
        not_started_by="07:30",
        timezone="Europe/Paris",
    )
    summer = int(datetime(2026, 7, 1, 12, 0, tzinfo=UTC).timestamp() * 1e6)
    winter = int(datetime(2026, 1, 15, 3, 0, tzinfo=UTC).timestamp() * 1e6)
    midnight, deadline, day = day_window(spec, summer)
    assert day == "2026-07-01"
    assert deadline == int(datetime(2026, 7, 1, 5, 30, tzinfo=UTC).timestamp() * 1e6)  # UTC+2
    assert midnight == int(datetime(2026, 6, 30, 22, 0, tzinfo=UTC).timestamp() * 1e6)
    _, deadline, day = day_window(spec, winter)
    assert (day, deadline) == ("2026-01-15", int(datetime(2026, 1, 15, 6, 30, tzinfo=UTC).timestamp() * 1e6))


@pytest.mark.slow
def test_slow_while_running_fires_then_resolves_when_the_run_ends(
    api: ApiServer, tokens: dict[str, str], hook: Receiver
) -> None:
    path = f"/{unique('slowrun')}"
    kind = unique("R")
    with api.client(tokens["a"]) as a:
        create(a, rule(hook.url + path, ["slow"], process_type=kind))
        with_baseline(a, kind, runs=5, seconds=0.2)
        pid = f"{kind}-long"
        post(a, [event("STARTED", pid, timestamp=ts(-30), process_type=kind, process_name="job")])

        def fired() -> bool:
            post(a, [event("HEARTBEAT", pid)])  # heartbeats keep it RUNNING (stalls come after 2 s here)
            return bool(firing(hook.snapshot(path), "slow"))

        wait_for(fired, 60, "slow while running", interval=0.5)
        post(a, [event("COMPLETED", pid)])
        got = hook.wait(lambda r: any(x.json()["status"] == "resolved" for x in r), 60, "the resolution", path=path)
    notes = [x.json() for x in got]
    assert [n["status"] for n in notes] == ["firing", "resolved"]
    assert notes[1]["labels"] == notes[0]["labels"]
    assert notes[1]["process"]["status"] == "COMPLETED"


@pytest.mark.slow
def test_alertmanager_alerts_are_kept_alive_then_resolved_with_the_same_labels(
    api: ApiServer, tokens: dict[str, str]
) -> None:
    kind = unique("AM")
    with Receiver() as alertmanager, api.client(tokens["a"]) as a:
        create(a, rule(alertmanager.url, ["STALLED"], kind="alertmanager", process_type=kind))
        pid = unique("stalling")
        post(a, [event("STARTED", pid, process_type=kind, process_name="am-job")])
        posts = alertmanager.wait(lambda r: len(r) >= 3, 60, "a firing alert posted three times")
        assert {p.path for p in posts} == {"/api/v2/alerts"}
        alerts = [p.json()[0] for p in posts]
        assert all("endsAt" not in alert for alert in alerts)
        assert all(alert["labels"] == alerts[0]["labels"] for alert in alerts)
        assert alerts[0]["labels"]["alertname"] == "SentinelProcessStalled"
        assert alerts[0]["labels"]["process_id"] == pid
        assert alerts[0]["labels"]["tenant_id"] == "tenant-a"
        assert len({alert["startsAt"] for alert in alerts}) == 1
        post(a, [event("HEARTBEAT", pid)])  # heard from again: no longer stalled
        done = alertmanager.wait(lambda r: any("endsAt" in p.json()[0] for p in r), 60, "the resolution")
        resolved = [p.json()[0] for p in done if "endsAt" in p.json()[0]]
        assert len(resolved) == 1
        assert resolved[0]["labels"] == alerts[0]["labels"]
        count = len(alertmanager.snapshot())
        settle(2.5)  # re-posted every second while firing; never after the resolution
        late = alertmanager.snapshot()[count:]
        assert all("endsAt" in p.json()[0] or p.json()[0]["startsAt"] != alerts[0]["startsAt"] for p in late)


# -- delivery -----------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_receiver_down_for_ten_seconds_gets_the_alert_once_when_back(api: ApiServer, tokens: dict[str, str]) -> None:
    away = Receiver(port_for_later())  # not listening yet
    kind = unique("D")
    with api.client(tokens["a"]) as a:
        created = create(a, rule(f"{away.url}/hook", ["FAILED"], process_type=kind))
        pid = unique("p")
        post(a, [event("STARTED", pid, process_type=kind), event("ERROR", pid)])
        down_since = time.monotonic()
        wait_for(lambda: (d := deliveries(a, created["id"])) and d[0]["attempts"] >= 2, 60, "failed attempts")
        time.sleep(max(0.0, 10.0 - (time.monotonic() - down_since)))
        (pending,) = deliveries(a, created["id"])
        assert pending["state"] == "pending"
        assert pending["last_error"]
        assert all(attempt["status_code"] is None for attempt in pending["attempt_log"])
        with away:
            away.wait(lambda r: len(r) == 1, 60, "the delivery after the receiver came back")
            wait_for(lambda: deliveries(a, created["id"])[0]["state"] == "delivered", 30, "delivered")
            settle(3.0)
            assert len(away.snapshot()) == 1
        (done,) = deliveries(a, created["id"])
        assert done["attempt_log"][-1]["status_code"] == 200
        assert done["attempts"] == len(done["attempt_log"]) >= 3


@pytest.mark.slow
def test_a_server_killed_before_delivery_delivers_once_after_restart(tmp_path: Path) -> None:
    away = Receiver(port_for_later())
    server = ApiServer(tmp_path / "data", dev=True, env=SERVER_ENV)
    server.start()
    try:
        token = server.dev_token("tenant-k", "sentinel-ingest", ADMIN)
        with server.client(token) as http:
            created = create(http, rule(f"{away.url}/k", ["FAILED"]))
            pid = unique("p")
            post(http, [event("STARTED", pid), event("ERROR", pid)])
            wait_for(lambda: (d := deliveries(http, created["id"])) and d[0]["attempts"] >= 1, 60, "a failed attempt")
        server.kill()  # SIGKILL to the whole process group: the status is committed, the alert not delivered
        with away:
            server.start()
            away.wait(lambda r: len(r) == 1, 60, "the delivery after the restart")
            with server.client(token) as http:
                wait_for(lambda: deliveries(http, created["id"])[0]["state"] == "delivered", 30, "delivered")
            settle(3.0)
            got = away.snapshot()
        assert len(got) == 1
        assert got[0].json()["process"]["process_id"] == pid
        server.stop()
    finally:
        server.kill()


def test_a_notification_is_given_up_after_the_last_attempt_and_counted(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path,
        SENTINEL_ALERT_ALLOW_PRIVATE_TARGETS="1",
        SENTINEL_ALERT_MAX_ATTEMPTS="2",
        SENTINEL_ALERT_RETRY_BASE_SEC="0.05",
        SENTINEL_ALERT_RETRY_MAX_SEC="0.05",
        SENTINEL_ALERT_TIMEOUT_SEC="1",
    )
    store = SqliteStore(settings.sqlite_path)
    store.migrate()
    install_status_hook(store, settings)
    sender = Sender(store, settings)
    nowhere = f"http://127.0.0.1:{free_port()}/x"
    spec = json.dumps(
        {"name": "r", "conditions": ["FAILED"], "target": {"kind": "slack", "url": nowhere}, "quiet_period_sec": 0}
    )
    note = Notification(
        id="k-1",
        status="firing",
        condition="FAILED",
        tenant_id="t",
        rule=RuleRef(id="r1", name="r"),
        summary="x failed",
        labels={},
        fired_at="2026-01-01T00:00:00.000Z",
    )
    with store.transaction() as conn:
        conn.execute("INSERT INTO alert_rules VALUES ('r1', 't', 'api', ?, NULL, 0, 0)", (spec,))
        conn.execute(
            "INSERT INTO alert_outbox (tenant_id, rule_id, subject, idempotency_key, kind, cond, payload, created_at,"
            " state, next_attempt_at) VALUES ('t', 'r1', 'p', 'k-1', 'firing', 'FAILED', ?, 0, 'pending', 0)",
            (msgspec.json.encode(note).decode(),),
        )
    given_up = alert_metrics.ALERTS_GIVEN_UP.labels("slack")
    before = given_up._value.get()
    try:
        wait_for(
            lambda: (
                sender.deliver_due() == 0
                and store._conn().execute("SELECT state FROM alert_outbox").fetchone()[0] == "failed"
            ),
            30,
            "given up",
            interval=0.05,
        )
    finally:
        sender.stop()
    state, attempts = store._conn().execute("SELECT state, attempts FROM alert_outbox").fetchone()
    assert (state, attempts) == ("failed", 2)
    assert store._conn().execute("SELECT COUNT(*) FROM alert_attempts").fetchone()[0] == 2
    assert given_up._value.get() == before + 1
    store.close()


def test_finished_notifications_are_purged_after_the_retention(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, SENTINEL_LOG_RETENTION_DAYS="1")
    store = SqliteStore(settings.sqlite_path)
    store.migrate()
    old, recent = 1_000_000, time.time_ns() // 1000
    with store.transaction() as conn:
        for ident, state, created in (
            (1, "delivered", old),
            (2, "pending", old),
            (3, "failed", recent),
            (4, "failed", old),
        ):
            conn.execute(
                "INSERT INTO alert_outbox (id, tenant_id, rule_id, subject, idempotency_key, kind, cond, payload,"
                " created_at, state, next_attempt_at) VALUES (?, 't', 'r', 'p', ?, 'firing', 'FAILED', '{}', ?, ?, 0)",
                (ident, f"k{ident}", created, state),
            )
            conn.execute("INSERT INTO alert_attempts VALUES (?, 1, ?, 500, 'x', 1)", (ident, created))
    sender = Sender(store, settings)
    try:
        assert sender.purge() == 2
    finally:
        sender.stop()
    conn = store._conn()
    assert [row[0] for row in conn.execute("SELECT id FROM alert_outbox ORDER BY id")] == [2, 3]
    assert [row[0] for row in conn.execute("SELECT outbox_id FROM alert_attempts ORDER BY 1")] == [2, 3]
    store.close()


def test_one_alerts_notifications_leave_in_order_and_other_alerts_do_not_wait(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.db")
    store.migrate()
    now = time.time_ns() // 1000
    rows = [  # (id, subject, kind, next attempt): p1 is backing off; its resolution must wait for it
        (1, "p1", "firing", now + 60_000_000),
        (2, "p1", "resolved", now),
        (3, "p2", "firing", now),
    ]
    with store.transaction() as conn:
        for ident, subject, kind, due in rows:
            conn.execute(
                "INSERT INTO alert_outbox (id, tenant_id, rule_id, subject, idempotency_key, kind, cond, payload,"
                " created_at, state, next_attempt_at) VALUES (?, 't', 'r', ?, ?, ?, 'FAILED', '{}', 0, 'pending', ?)",
                (ident, subject, f"k{ident}", kind, due),
            )
    sql = for_backend("sqlite")
    due_ids = [row[0] for row in store._conn().execute(sql.due(), {"now": now}).fetchall()]
    assert due_ids == [3]
    store.close()
