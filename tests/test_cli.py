"""The ``sentinel`` command (SPEC sections 5 and 6), run as a real subprocess."""

from __future__ import annotations

import base64
import json
import stat
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from helpers import base_env, encode, event, make_settings, read_only, run_worker_until_idle, sentinel_cmd

from sentinel.store.base import ProcessQuery
from sentinel.store.sqlite import SqliteStore

COMMANDS = ("serve", "migrate", "emit", "simulate", "token", "dead-letters")


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


def _queued(db: Path) -> list[bytes]:
    conn = read_only(db)
    try:
        return [bytes(row[0]) for row in conn.execute("SELECT payload FROM queue ORDER BY msg_id")]
    finally:
        conn.close()


# -- configuration -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("variable", "value", "named"),
    [
        ("SENTINEL_BATCH_SIZE", "abc", "SENTINEL_BATCH_SIZE"),
        ("SENTINEL_BATCH_SIZE", "0", "SENTINEL_BATCH_SIZE"),
        ("SENTINEL_BACKEND", "mysql", "SENTINEL_BACKEND"),
        ("SENTINEL_LISTEN_PORT", "99999", "SENTINEL_LISTEN_PORT"),
        ("SENTINEL_LISTEN_PORT", "http", "SENTINEL_LISTEN_PORT"),
        ("SENTINEL_WORKER_THREADS", "0", "SENTINEL_WORKER_THREADS"),
        ("SENTINEL_FLUSH_INTERVAL_MS", "-5", "SENTINEL_FLUSH_INTERVAL_MS"),
        ("SENTINEL_HEARTBEAT_TIMEOUT_SEC", "1.5", "SENTINEL_HEARTBEAT_TIMEOUT_SEC"),
        ("SENTINEL_LOG_RETENTION_DAYS", "0", "SENTINEL_LOG_RETENTION_DAYS"),
        ("SENTINEL_MAX_BODY_BYTES", "ten", "SENTINEL_MAX_BODY_BYTES"),
        ("POOL_MAX_CONNECTIONS", "0", "POOL_MAX_CONNECTIONS"),
        ("OAUTH2_ISSUER", "ftp://idp.example", "OAUTH2_ISSUER"),
        ("SENTINEL_TENANT_CLAIM", "tenant id", "SENTINEL_TENANT_CLAIM"),
        # oracle without a connect string: the variable that is missing is the one named
        ("SENTINEL_BACKEND", "oracle", "ORACLE_CONNECT_STRING"),
    ],
)
def test_a_bad_setting_stops_start_up_with_one_line(data_dir: Path, variable: str, value: str, named: str) -> None:
    result = sentinel_cmd("migrate", env=base_env(data_dir, **{variable: value}))
    assert result.returncode == 2
    lines = result.stderr.decode().splitlines()
    assert len(lines) == 1, lines
    assert named in lines[0]
    assert "Traceback" not in lines[0]
    assert result.stdout == b""
    assert not (data_dir / "sentinel.db").exists(), "nothing may be created with a bad configuration"


def test_pool_min_above_pool_max_is_refused(data_dir: Path) -> None:
    result = sentinel_cmd("migrate", env=base_env(data_dir, POOL_MIN_CONNECTIONS="30", POOL_MAX_CONNECTIONS="10"))
    assert result.returncode == 2
    lines = result.stderr.decode().splitlines()
    assert len(lines) == 1
    assert "POOL_MAX_CONNECTIONS" in lines[0]


def test_help_lists_the_commands(data_dir: Path) -> None:
    result = sentinel_cmd("--help", env=base_env(data_dir))
    assert result.returncode == 0
    text = result.stdout.decode()
    for command in COMMANDS:
        assert command in text, command
    assert "ingest" in text


@pytest.mark.parametrize("command", COMMANDS)
def test_each_command_has_help(data_dir: Path, command: str) -> None:
    result = sentinel_cmd(command, "--help", env=base_env(data_dir))
    assert result.returncode == 0
    assert result.stdout.decode().startswith(f"usage: sentinel {command}")


# -- migrate -------------------------------------------------------------------------------------------


def test_migrate_twice_is_idempotent(data_dir: Path) -> None:
    env = base_env(data_dir)
    first = sentinel_cmd("migrate", env=env)
    assert first.returncode == 0, first.stderr.decode()
    db = data_dir / "sentinel.db"
    assert db.exists()
    conn = read_only(db)
    try:
        tables = sorted(r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'"))
        version = conn.execute("PRAGMA user_version").fetchone()[0]
    finally:
        conn.close()
    assert {"queue", "processes", "logs", "dedupe", "dead_letters"} <= set(tables)
    assert version >= 1
    store = SqliteStore(db)
    try:
        store.enqueue([b'{"kept": true}'], [5])
    finally:
        store.close()

    second = sentinel_cmd("migrate", env=env)
    assert second.returncode == 0, second.stderr.decode()
    assert first.stdout != second.stdout  # the first applied something, the second had nothing to do
    conn = read_only(db)
    try:
        again = sorted(r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'"))
        assert again == tables
        assert conn.execute("PRAGMA user_version").fetchone()[0] == version
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        conn.close()
    assert _queued(db) == [b'{"kept": true}']


# -- emit ----------------------------------------------------------------------------------------------


def _lines() -> list[bytes]:
    return [
        encode(event(event_type="STARTED", process_id="emit-1")),
        b"this is not json",
        encode(event(event_type="LOG", process_id="emit-1", message="ünïcödé ✓")),
        b'["an", "array"]',
        encode(event(event_type="ERROR", process_id="emit-1", error_code="E1")),
        encode(event(timestamp="yesterday", process_id="emit-1")),
    ]


def test_emit_from_a_file_queues_every_non_empty_line_raw(data_dir: Path, tmp_path: Path) -> None:
    lines = _lines()
    source = tmp_path / "events.jsonl"
    source.write_bytes(b"\n" + b"\n\n".join(lines) + b"\n\n")
    result = sentinel_cmd("emit", str(source), env=base_env(data_dir))
    assert result.returncode == 0, result.stderr.decode()
    assert f"queued {len(lines)}" in result.stderr.decode()
    db = data_dir / "sentinel.db"
    assert _queued(db) == lines

    # queued as a producer queues them: the ERROR first (SPEC section 3: errors jump the queue)
    store = SqliteStore(db)
    consumer = store.consumer()
    try:
        fetched = consumer.fetch(100, 0.0)
        order = [bytes(m.payload) for m in fetched]
        consumer.rollback(fetched)
    finally:
        consumer.close()
        store.close()
    assert order[0] == lines[4]
    assert sorted(order) == sorted(lines)


@pytest.mark.parametrize("argument", [None, "-"])
def test_emit_from_stdin(data_dir: Path, argument: str | None) -> None:
    lines = [encode(event(offset=index, process_id=f"stdin-{index % 9}")) for index in range(2500)]
    lines[1234] = b"{broken"
    body = b"\n".join(lines) + b"\n"
    args = ["emit"] if argument is None else ["emit", argument]
    result = sentinel_cmd(*args, env=base_env(data_dir), input=body)
    assert result.returncode == 0, result.stderr.decode()
    assert "queued 2500" in result.stderr.decode()
    assert _queued(data_dir / "sentinel.db") == lines


def test_emitted_events_are_ingested(data_dir: Path, tmp_path: Path) -> None:
    source = tmp_path / "events.jsonl"
    source.write_bytes(b"\n".join(_lines()) + b"\n")
    assert sentinel_cmd("emit", str(source), env=base_env(data_dir)).returncode == 0
    settings = make_settings(data_dir)
    store = SqliteStore(settings.sqlite_path)
    try:
        run_worker_until_idle(store, settings)
        doc = store.get_status("acme", "emit-1")
        assert doc is not None
        assert (doc.status, doc.event_count, doc.log_count, doc.error_code) == ("FAILED", 3, 1, "E1")
        assert [d.code for d in store.dead_letters(0, 10)] == ["invalid_json", "not_object", "bad_timestamp"]
    finally:
        store.close()


# -- simulate ------------------------------------------------------------------------------------------


def test_simulate_queues_realistic_traffic(data_dir: Path) -> None:
    env = base_env(data_dir)
    result = sentinel_cmd(
        "simulate",
        "-n",
        "6",
        "--seed",
        "3",
        "--tenant",
        "acme",
        "--tenant",
        "globex",
        "--failure-rate",
        "0",
        "--duplicate-rate",
        "0",
        "-q",
        env=env,
    )
    assert result.returncode == 0, result.stderr.decode()
    queued = _queued(data_dir / "sentinel.db")
    assert f"sent {len(queued)} message(s) for 6 process(es)" in result.stderr.decode()
    settings = make_settings(data_dir)
    store = SqliteStore(settings.sqlite_path)
    try:
        run_worker_until_idle(store, settings)
        assert store.dead_letters(0, 10) == []
        acme = store.list_processes("acme", ProcessQuery())
        globex = store.list_processes("globex", ProcessQuery())
        assert (len(acme), len(globex)) == (3, 3)
        docs = [*acme, *globex]
        assert sum(d.event_count for d in docs) == len(queued)
        assert all(d.started_at is not None and d.process_name for d in docs)
        assert {d.status for d in docs} <= {"COMPLETED", "CANCELLED"}
    finally:
        store.close()


# -- dead-letters --------------------------------------------------------------------------------------


def test_dead_letters_json(data_dir: Path, tmp_path: Path) -> None:
    bad = [b"not json at all", b"{}", encode(event(event_type="FINISHED"))]
    source = tmp_path / "bad.jsonl"
    source.write_bytes(b"\n".join([encode(event()), *bad]) + b"\n")
    env = base_env(data_dir)
    assert sentinel_cmd("emit", str(source), env=env).returncode == 0
    settings = make_settings(data_dir)
    store = SqliteStore(settings.sqlite_path)
    try:
        run_worker_until_idle(store, settings)
    finally:
        store.close()

    result = sentinel_cmd("dead-letters", "--json", env=env)
    assert result.returncode == 0, result.stderr.decode()
    letters: list[dict[str, Any]] = json.loads(result.stdout)
    assert [letter["code"] for letter in letters] == ["invalid_json", "missing_field", "bad_event_type"]
    assert [letter["payload"] for letter in letters] == [b.decode() for b in bad]
    assert letters[1]["reason"] == "event_id: required"
    assert all(letter["reason"] for letter in letters)
    assert all(letter["dead_at"].endswith("Z") for letter in letters)
    ids = [letter["id"] for letter in letters]
    assert ids == sorted(ids)

    limited = json.loads(sentinel_cmd("dead-letters", "--json", "--limit", "1", env=env).stdout)
    assert [letter["id"] for letter in limited] == ids[:1]
    after = json.loads(sentinel_cmd("dead-letters", "--json", "--after", str(ids[0]), env=env).stdout)
    assert [letter["id"] for letter in after] == ids[1:]

    text = sentinel_cmd("dead-letters", env=env)
    assert text.returncode == 0
    assert "event_id: required" in text.stdout.decode()
    assert "bad_event_type" in text.stdout.decode()


def test_dead_letters_when_there_are_none(data_dir: Path) -> None:
    env = base_env(data_dir)
    assert sentinel_cmd("migrate", env=env).returncode == 0
    result = sentinel_cmd("dead-letters", "--json", env=env)
    assert result.returncode == 0
    assert json.loads(result.stdout) == []
    assert "no dead letters" in sentinel_cmd("dead-letters", env=env).stdout.decode()


def test_dead_letters_on_a_fresh_data_dir_answers_without_a_traceback(data_dir: Path) -> None:
    """Asking before anything ran is a normal question: an empty answer (or a one-line error), not a crash."""
    result = sentinel_cmd("dead-letters", "--json", env=base_env(data_dir))
    assert "Traceback" not in result.stderr.decode(), result.stderr.decode()
    if result.returncode == 0:
        assert json.loads(result.stdout) == []
    else:
        assert len(result.stderr.decode().splitlines()) == 1


# -- token ---------------------------------------------------------------------------------------------


def _claims(token: str) -> dict[str, Any]:
    header, payload, signature = token.split(".")
    assert signature
    assert _b64json(header)["alg"] in ("ES256", "RS256")
    return _b64json(payload)  # type: ignore[no-any-return]


def _b64json(part: str) -> Any:
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def test_token_carries_the_tenant_claim(data_dir: Path) -> None:
    result = sentinel_cmd("token", "--tenant", "t", env=base_env(data_dir))
    assert result.returncode == 0, result.stderr.decode()
    lines = result.stdout.decode().split()
    assert len(lines) == 1
    claims = _claims(lines[0])
    assert claims["tenant_id"] == "t"
    assert "sentinel-ingest" in claims["roles"]
    assert claims["exp"] > claims["iat"]

    # signed by the dev key kept in the data directory (owner-only), which the server trusts
    keys = [path for path in data_dir.iterdir() if path.suffix == ".pem"]
    assert len(keys) == 1
    assert stat.S_IMODE(keys[0].stat().st_mode) & 0o077 == 0
    private = serialization.load_pem_private_key(keys[0].read_bytes(), password=None)
    verified = jwt.decode(
        lines[0],
        private.public_key(),
        algorithms=["ES256", "RS256"],  # type: ignore[arg-type]
        audience=claims["aud"],
        issuer=claims["iss"],
    )
    assert verified["tenant_id"] == "t"

    # a second token comes from the same key
    again = sentinel_cmd("token", "--tenant", "other", "--role", "reader", env=base_env(data_dir))
    token = again.stdout.decode().strip()
    assert (
        jwt.decode(
            token,
            private.public_key(),
            algorithms=["ES256", "RS256"],  # type: ignore[arg-type]
            audience=claims["aud"],
            issuer=claims["iss"],
        )["tenant_id"]
        == "other"
    )
    assert _claims(token)["roles"] == ["reader"]


def test_token_uses_the_configured_tenant_claim(data_dir: Path) -> None:
    result = sentinel_cmd("token", "--tenant", "acme", env=base_env(data_dir, SENTINEL_TENANT_CLAIM="org"))
    assert result.returncode == 0, result.stderr.decode()
    claims = _claims(result.stdout.decode().strip())
    assert claims["org"] == "acme"
    assert "tenant_id" not in claims
