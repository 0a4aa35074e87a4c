"""The ``sentinel`` command (SPEC sections 5, 6 and 7), run as a real subprocess; the views (ps, status,
logs) against a real ``sentinel serve --dev``."""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jwt
import pytest
from apiserver import ApiServer, free_port, unique, wait_for
from cryptography.hazmat.primitives import serialization
from helpers import (
    base_env,
    encode,
    event,
    make_settings,
    read_only,
    run_worker_until_idle,
    sentinel_argv,
    sentinel_cmd,
)

from sentinel import cli
from sentinel.client import SentinelClient
from sentinel.config import load_settings
from sentinel.security import DevAuthority
from sentinel.store.base import ProcessQuery
from sentinel.store.sqlite import SqliteStore

MIGRATIONS = Path(cli.__file__).parent / "store" / "sqlite_migrations"

COMMANDS = ("serve", "migrate", "emit", "simulate", "token", "dead-letters", "ps", "status", "logs")


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def migrated(data_dir: Path) -> Path:
    """A data directory holding a database, as ``sentinel serve`` (or ``migrate``) leaves it."""
    result = sentinel_cmd("migrate", env=base_env(data_dir))
    assert result.returncode == 0, result.stderr.decode()
    return data_dir


@pytest.fixture
def dev_key(data_dir: Path) -> Path:
    """A data directory holding a dev signing key, as ``sentinel serve --dev`` leaves it."""
    DevAuthority(data_dir)
    return data_dir


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


def test_emit_from_a_file_queues_every_non_empty_line_raw(migrated: Path, data_dir: Path, tmp_path: Path) -> None:
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
def test_emit_from_stdin(migrated: Path, data_dir: Path, argument: str | None) -> None:
    lines = [encode(event(offset=index, process_id=f"stdin-{index % 9}")) for index in range(2500)]
    lines[1234] = b"{broken"
    body = b"\n".join(lines) + b"\n"
    args = ["emit"] if argument is None else ["emit", argument]
    result = sentinel_cmd(*args, env=base_env(data_dir), input=body)
    assert result.returncode == 0, result.stderr.decode()
    assert "queued 2500" in result.stderr.decode()
    assert _queued(data_dir / "sentinel.db") == lines


def test_emitted_events_are_ingested(migrated: Path, data_dir: Path, tmp_path: Path) -> None:
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


def test_simulate_queues_realistic_traffic(migrated: Path, data_dir: Path) -> None:
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


def test_dead_letters_json(migrated: Path, data_dir: Path, tmp_path: Path) -> None:
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
    answer = json.loads(result.stdout)
    assert answer["total"] == 3
    letters: list[dict[str, Any]] = answer["items"]
    # newest first
    assert [letter["code"] for letter in letters] == ["bad_event_type", "missing_field", "invalid_json"]
    assert [letter["payload"] for letter in letters] == [b.decode() for b in reversed(bad)]
    assert letters[1]["reason"] == "event_id: required"
    assert all(letter["reason"] for letter in letters)
    assert all(letter["dead_at"].endswith("Z") for letter in letters)
    ids = [letter["id"] for letter in letters]
    assert ids == sorted(ids, reverse=True)

    limited = json.loads(sentinel_cmd("dead-letters", "--json", "--limit", "1", env=env).stdout)
    assert (limited["total"], [letter["id"] for letter in limited["items"]]) == (3, ids[:1])
    recent = json.loads(sentinel_cmd("dead-letters", "--json", "--since", "1h", env=env).stdout)
    assert recent["total"] == 3
    future = json.loads(sentinel_cmd("dead-letters", "--json", "--since", "2999-01-01T00:00:00Z", env=env).stdout)
    assert future == {"total": 0, "items": []}

    text = sentinel_cmd("dead-letters", "--limit", "2", env=env)
    assert text.returncode == 0
    out = text.stdout.decode()
    assert "event_id: required" in out
    assert "bad_event_type" in out
    assert "invalid_json" not in out, "the oldest is beyond the limit"
    assert out.rstrip().endswith("2 of 3 dead letter(s), newest first")


@pytest.mark.parametrize("limit", ["0", "-1", "abc", "10001"])
def test_dead_letters_limit_is_validated(migrated: Path, data_dir: Path, limit: str) -> None:
    result = sentinel_cmd("dead-letters", "--limit", limit, env=base_env(data_dir))
    assert_one_line_error(result, "--limit", code=2)


def test_dead_letters_when_there_are_none(migrated: Path, data_dir: Path) -> None:
    env = base_env(data_dir)
    result = sentinel_cmd("dead-letters", "--json", env=env)
    assert result.returncode == 0
    assert json.loads(result.stdout) == {"total": 0, "items": []}
    assert "no dead letters" in sentinel_cmd("dead-letters", env=env).stdout.decode()


# -- token ---------------------------------------------------------------------------------------------


def _claims(token: str) -> dict[str, Any]:
    header, payload, signature = token.split(".")
    assert signature
    assert _b64json(header)["alg"] in ("ES256", "RS256")
    return _b64json(payload)  # type: ignore[no-any-return]


def _b64json(part: str) -> Any:
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def test_token_carries_the_tenant_claim(dev_key: Path, data_dir: Path) -> None:
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


def test_token_uses_the_configured_tenant_claim(dev_key: Path, data_dir: Path) -> None:
    result = sentinel_cmd("token", "--tenant", "acme", env=base_env(data_dir, SENTINEL_TENANT_CLAIM="org"))
    assert result.returncode == 0, result.stderr.decode()
    claims = _claims(result.stdout.decode().strip())
    assert claims["org"] == "acme"
    assert "tenant_id" not in claims


# -- every user-facing error is one line -----------------------------------------------------------------


def assert_one_line_error(result: subprocess.CompletedProcess[bytes], *named: str, code: int | None = None) -> str:
    """A non-zero exit, exactly one line on stderr naming ``named``, no traceback, nothing on stdout."""
    err = result.stderr.decode()
    assert result.returncode != 0, err
    if code is not None:
        assert result.returncode == code, err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    assert lines[0].startswith("sentinel"), lines[0]
    for part in named:
        assert part in lines[0], (part, lines[0])
    assert result.stdout == b""
    return lines[0]


BAD_ARGUMENTS = [
    (["token", "--tenant", ""], "--tenant"),
    (["token", "--tenant", "   "], "--tenant"),
    (["token", "--tenant", "x" * 51], "--tenant"),
    (["token", "--tenant", "a\tb"], "--tenant"),
    (["token", "--tenant", "acme", "--ttl", "0"], "--ttl"),
    (["token", "--tenant", "acme", "--ttl", "-5"], "--ttl"),
    (["token", "--tenant", "acme", "--ttl", "soon"], "--ttl"),
    (["token", "--tenant", "acme", "--role", ""], "--role"),
    (["token"], "--tenant"),
    (["simulate", "-n", "-3"], "--processes"),
    (["simulate", "-n", "0"], "--processes"),
    (["simulate", "--failure-rate", "5"], "--failure-rate"),
    (["simulate", "--failure-rate", "-0.1"], "--failure-rate"),
    (["simulate", "--duplicate-rate", "nan"], "--duplicate-rate"),
    (["simulate", "--invalid-rate", "inf"], "--invalid-rate"),
    (["simulate", "--rate", "-1"], "--rate"),
    (["simulate", "--concurrency", "0"], "--concurrency"),
    (["simulate", "--tenant", ""], "--tenant"),
    (["simulate", "--seed", "x"], "--seed"),
    (["serve", "--workers", "0"], "--workers"),
    (["serve", "--workers", "-2"], "--workers"),
    (["serve", "--port", "70000"], "--port"),
    (["serve", "--demo-rate", "0"], "--demo-rate"),
    (["dead-letters", "--since", "yesterday"], "--since"),
    (["ps", "--status", "BOGUS"], "--status"),
    (["ps", "--limit", "0"], "--limit"),
    (["ps", "--interval", "0"], "--interval"),
    (["ps", "--url", "ftp://example"], "--url"),
    (["ps", "--url", "localhost:8080"], "--url"),
    (["ps", "-o", "yaml"], "--output"),
    (["logs", "p", "--level", "LOUD"], "--level"),
    (["logs", "p", "--since", "last week"], "--since"),
    (["logs", "p", "--since", "99999d"], "before 1900"),
    (["logs", "p", "--since", "1000000000d"], "before 1900"),
    (["ps", "--since", "47000d"], "before 1900"),
    (["dead-letters", "--since", "3000000h"], "before 1900"),
    (["logs", "p", "-f", "--wait", "-1"], "--wait"),
    (["logs"], "process_id"),
    (["status"], "process_id"),
    (["frobnicate"], "frobnicate"),
]


@pytest.mark.parametrize(("args", "named"), BAD_ARGUMENTS, ids=[" ".join(a) for a, _ in BAD_ARGUMENTS])
def test_a_bad_argument_is_one_line_naming_it(data_dir: Path, args: list[str], named: str) -> None:
    result = sentinel_cmd(*args, env=base_env(data_dir))
    line = assert_one_line_error(result, named, code=2)
    assert "--help" in line
    assert not data_dir.exists(), "nothing is created for a bad argument"


def test_emit_of_a_missing_file_or_a_directory(migrated: Path, data_dir: Path, tmp_path: Path) -> None:
    env = base_env(data_dir)
    assert_one_line_error(sentinel_cmd("emit", "/nonexistent.jsonl", env=env), "/nonexistent.jsonl", "No such file")
    assert_one_line_error(sentinel_cmd("emit", str(tmp_path), env=env), str(tmp_path), "directory")
    unreadable = tmp_path / "secret.jsonl"
    unreadable.write_bytes(encode(event()) + b"\n")
    unreadable.chmod(0)
    if os.access(unreadable, os.R_OK):  # root reads anything
        unreadable.chmod(0o600)
    else:
        assert_one_line_error(sentinel_cmd("emit", str(unreadable), env=env), "Permission denied")
    assert _queued(data_dir / "sentinel.db") == []


@pytest.mark.parametrize("where", ["/proc/nope", "/proc/nope/deeper", "/dev/null/data"])
def test_migrate_into_an_impossible_directory(data_dir: Path, where: str) -> None:
    assert_one_line_error(sentinel_cmd("migrate", "--data-dir", where, env=base_env(data_dir)), where)


def _unusable_data_dirs(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    """Data directories a user may name by mistake: where each is, and the words its line must hold."""
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "sentinel.db").write_bytes(b"this is not a database" * 100)
    a_file = tmp_path / "a-file"
    a_file.write_text("not a directory")
    dir_db = tmp_path / "dir-db"
    (dir_db / "sentinel.db").mkdir(parents=True)
    return {
        "junk database": (junk, "not a SQLite database"),
        "a file": (a_file, "is a file"),
        "below a file": (a_file / "deeper", "is a file"),
        "database is a directory": (dir_db, "directory"),
        "unwritable": (Path("/proc/1"), "/proc/1"),
    }


CREATING = [["migrate"], ["serve", "--dev"], ["serve", "--dev", "--demo"]]
EXISTING = [["dead-letters"], ["ingest"], ["simulate", "-n", "2"], ["emit", "-"]]


@pytest.mark.parametrize("args", CREATING + EXISTING, ids=[" ".join(a) for a in CREATING + EXISTING])
def test_an_unusable_data_directory_is_one_line_naming_it(tmp_path: Path, args: list[str]) -> None:
    """Every command, every store or data-directory failure: one line naming the path and the problem."""
    for case, (where, problem) in _unusable_data_dirs(tmp_path).items():
        words = "no Sentinel database" if args in EXISTING and case == "unwritable" else problem
        extra = ["--port", str(free_port())] if args[0] == "serve" else []
        env = base_env(where, SENTINEL_LISTEN_ADDRESS="127.0.0.1")
        line_in = encode(event()) + b"\n" if args[0] == "emit" else None
        result = sentinel_cmd(*args, *extra, "--data-dir", str(where), env=env, input=line_in, timeout=120)
        line = assert_one_line_error(result, str(where), words)
        assert "internal error" not in line, (case, line)


def test_migrate_dry_run_of_an_unusable_data_directory_is_one_line(tmp_path: Path) -> None:
    for where, (place, problem) in _unusable_data_dirs(tmp_path).items():
        if where == "unwritable":
            continue  # nothing there yet: the dry run rightly says it would create the database
        result = sentinel_cmd("migrate", "--dry-run", "--data-dir", str(place), env=base_env(place))
        assert_one_line_error(result, str(place), problem)


def test_an_unexpected_failure_is_still_one_line(data_dir: Path) -> None:
    """A database that is not a database: whatever breaks inside, the user gets one line."""
    data_dir.mkdir()
    (data_dir / "sentinel.db").write_bytes(b"this is not a database" * 100)
    for args in (["dead-letters"], ["migrate"], ["migrate", "--dry-run"]):
        assert_one_line_error(sentinel_cmd(*args, env=base_env(data_dir)))


# -- commands other than serve and migrate never create a database or a key -----------------------------


def _run_in(cwd: Path, *args: str, env_extra: dict[str, str] | None = None) -> subprocess.CompletedProcess[bytes]:
    env = {k: v for k, v in base_env(cwd).items() if k != "SENTINEL_DATA_DIR"}
    env.update(env_extra or {})
    return subprocess.run(sentinel_argv(*args), cwd=cwd, env=env, capture_output=True, timeout=60, check=False)


@pytest.mark.parametrize(
    "args",
    [
        ["emit", "events.jsonl"],
        ["emit", "events.jsonl", "--dry-run"],
        ["simulate", "-n", "2", "-q"],
        ["dead-letters"],
        ["token", "--tenant", "acme"],
        ["ingest"],
        ["ps"],
        ["status", "p-1"],
        ["logs", "p-1"],
    ],
    ids=" ".join,
)
def test_run_from_another_folder_creates_nothing_and_says_where_it_looked(tmp_path: Path, args: list[str]) -> None:
    (tmp_path / "events.jsonl").write_bytes(encode(event()) + b"\n")
    result = _run_in(tmp_path, *args)
    if "--dry-run" in args:  # judging lines needs no database
        assert result.returncode == 0, result.stderr.decode()
    else:
        line = assert_one_line_error(result)
        assert str(tmp_path / "sentinel-data") in line, line
        assert "--data-dir" in line, line
        assert "SENTINEL_DATA_DIR" in line, line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["events.jsonl"], "nothing was created"


def test_a_named_data_dir_that_does_not_exist_is_reported(tmp_path: Path) -> None:
    missing = tmp_path / "elsewhere"
    line = assert_one_line_error(_run_in(tmp_path, "dead-letters", "--data-dir", str(missing)))
    assert str(missing / "sentinel.db") in line
    assert "--data-dir" in line
    line = assert_one_line_error(_run_in(tmp_path, "token", "--tenant", "t", env_extra={"SENTINEL_DATA_DIR": "d"}))
    assert "SENTINEL_DATA_DIR" in line
    assert str(tmp_path / "d") in line
    assert not missing.exists()
    assert not (tmp_path / "d").exists()


# -- emit judges every line as the ingest will ------------------------------------------------------------


def _nested(field: str, depth: int) -> bytes:
    nested = f'"{field}":'.encode() + b"[" * depth + b"]" * depth + b',"event_id"'
    return encode(event(process_id="deep")).replace(b'"event_id"', nested)


@pytest.mark.parametrize("depth", [1_000, 100_000])
@pytest.mark.parametrize("field", ["message", "unknown_field"])
def test_emit_of_a_deeply_nested_line_queues_every_line_and_judges_it(
    migrated: Path, data_dir: Path, tmp_path: Path, depth: int, field: str
) -> None:
    first = encode(event(event_type="STARTED", process_id="deep"))
    source = tmp_path / "deep.jsonl"
    source.write_bytes(first + b"\n" + _nested(field, depth) + b"\n" + encode(event(process_id="deep")) + b"\n")
    result = sentinel_cmd("emit", str(source), env=base_env(data_dir))
    assert result.returncode == 0, result.stderr.decode()
    err = result.stderr.decode()
    assert "Traceback" not in err
    assert err.startswith("queued 3 message(s)"), err
    assert len(_queued(data_dir / "sentinel.db")) == 3, "every line is queued, never a partial chunk"
    predicted = int(m.group(1)) if (m := re.search(r"(\d+) will be dead-lettered", err)) else 0
    settings = make_settings(data_dir)
    store = SqliteStore(settings.sqlite_path)
    try:
        run_worker_until_idle(store, settings)
        letters = store.dead_letters(0, 10)
        assert len(letters) == predicted, (err, letters)
        assert [f"line 2: {d.code}: {d.reason}" for d in letters] == [line.strip() for line in err.splitlines()[1:]]
        status = store.get_status("acme", "deep")
        assert status is not None
        assert status.event_count == 3 - predicted
    finally:
        store.close()


def test_emit_reports_the_lines_the_ingest_will_refuse(migrated: Path, data_dir: Path, tmp_path: Path) -> None:
    good = [encode(event(process_id="mixed", offset=n)) for n in range(3)]
    bad = [
        b"not json",
        b"[1, 2]",
        encode(event(event_type="FINISHED")),
        encode(event(timestamp="yesterday")),
        b"{}",
        encode(event(event_type="LOG", level="LOUD")),
    ]
    source = tmp_path / "mixed.jsonl"
    lines = [good[0], bad[0], bad[1], good[1], *bad[2:], good[2]]
    source.write_bytes(b"\n".join(lines) + b"\n")
    env = base_env(data_dir)

    dry = sentinel_cmd("emit", str(source), "--dry-run", env=env)
    assert dry.returncode == 0
    assert dry.stderr.decode().startswith("would queue 9 message(s); 6 will be dead-lettered")
    assert _queued(data_dir / "sentinel.db") == [], "a dry run queues nothing"

    result = sentinel_cmd("emit", str(source), env=env)
    assert result.returncode == 0
    err = result.stderr.decode().splitlines()
    assert err[0] == "queued 9 message(s); 6 will be dead-lettered by the ingest"
    assert err[1:] == [
        "  line 2: invalid_json: " + err[1].split("invalid_json: ", 1)[1],
        "  line 3: not_object: " + err[2].split("not_object: ", 1)[1],
        "  line 5: bad_event_type: " + err[3].split("bad_event_type: ", 1)[1],
        "  line 6: bad_timestamp: " + err[4].split("bad_timestamp: ", 1)[1],
        "  line 7: missing_field: event_id: required",
        "  ... and 1 more",
    ]
    settings = make_settings(data_dir)
    store = SqliteStore(settings.sqlite_path)
    try:
        run_worker_until_idle(store, settings)
        assert len(store.dead_letters(0, 100)) == 6
    finally:
        store.close()


# -- migrate --dry-run -------------------------------------------------------------------------------------


def test_migrate_dry_run_says_what_it_would_do_and_does_nothing(data_dir: Path) -> None:
    env = base_env(data_dir)
    fresh = sentinel_cmd("migrate", "--dry-run", env=env)
    assert fresh.returncode == 0, fresh.stderr.decode()
    db = (data_dir / "sentinel.db").absolute()
    every = ", ".join(path.name for path in sorted(MIGRATIONS.glob("*.sql")))
    assert fresh.stdout.decode().strip() == f"dry run: would create {db} and apply {every}"
    assert not data_dir.exists()
    assert sentinel_cmd("migrate", env=env).returncode == 0
    again = sentinel_cmd("migrate", "--dry-run", env=env)
    assert again.stdout.decode().strip() == f"dry run: {db} is up to date; nothing to apply"


# -- simulate ----------------------------------------------------------------------------------------------


def test_simulate_events_are_stamped_now(data_dir: Path) -> None:
    before = datetime.now(UTC)
    result = sentinel_cmd("simulate", "-n", "20", "--seed", "1", "-q", "--stdout", env=base_env(data_dir))
    after = datetime.now(UTC)
    assert result.returncode == 0, result.stderr.decode()
    stamps = [
        datetime.fromisoformat(json.loads(line)["timestamp"]) for line in result.stdout.splitlines() if line.strip()
    ]
    assert stamps
    assert all(before <= stamp <= after for stamp in stamps), (before, min(stamps), max(stamps), after)


def test_simulate_progress_bar_ends_at_100_percent(migrated: Path, data_dir: Path) -> None:
    for seed in ("1", "2", "3"):
        result = sentinel_cmd("simulate", "-n", "9", "--seed", seed, env=base_env(data_dir))
        assert result.returncode == 0, result.stderr.decode()
        lines = result.stderr.decode().splitlines()
        bar = lines[-2]
        sent = int(lines[-1].split()[1])
        assert " 100.0% " in bar, bar
        assert f"9/9 processes, {sent:,} events" in bar, bar


@pytest.mark.parametrize("rate", ["0", "300"])
def test_simulate_progress_never_passes_its_total(data_dir: Path, rate: str) -> None:
    """The bar counts processes ended out of a total known from the start: every line it draws (a
    terminal's redraws too) stays within it, and the percent never goes down or past 100."""
    args = ["simulate", "-n", "5", "--rate", rate, "--stdout"]
    env = base_env(data_dir)
    for stderr in (sentinel_cmd(*args, env=env).stderr, _terminal_output(sentinel_argv(*args), "stderr", env=env)):
        bars = re.findall(rb"\] +([\d.]+)% (\d+)/(\d+) processes, ([\d,]+) events", stderr)
        assert bars, stderr
        percents = [float(p) for p, _, _, _ in bars]
        assert percents == sorted(percents), bars
        assert percents[-1] == 100.0, bars
        assert all(int(ended) <= int(total) == 5 for _, ended, total, _ in bars), bars


def test_every_option_has_help() -> None:
    parser = cli.build_parser()
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, sub in subparsers.choices.items():
        for action in sub._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            assert action.help, f"sentinel {name} {action.option_strings or action.dest} has no help"


# -- serve's default worker count -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cores", "variable", "expected"),
    [({0, 1}, None, 2), ({0}, None, 1), (set(range(16)), None, 3), ({0, 1}, "4", 3), ({0, 1}, "9", 8)],
)
def test_default_workers_fit_the_machine(
    monkeypatch: pytest.MonkeyPatch, cores: set[int], variable: str | None, expected: int
) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: cores)
    if variable is None:
        monkeypatch.delenv("SENTINEL_WORKER_THREADS", raising=False)
    else:
        monkeypatch.setenv("SENTINEL_WORKER_THREADS", variable)
    assert cli.default_workers(load_settings({} if variable is None else {"SENTINEL_WORKER_THREADS": variable})) == (
        expected
    )


# -- the configuration reference ---------------------------------------------------------------------------


def test_configuration_reference_lists_every_setting_with_its_default() -> None:
    root = Path(__file__).resolve().parent.parent
    source = (root / "sentinel" / "config.py").read_text()
    # every variable read: _int(env, "NAME", ...), _text(env, "NAME"), env.get("NAME"), ...
    names = sorted(set(re.findall(r'(?:\(env, |env\.get\()"([A-Z][A-Z0-9_]+)"', source)))
    assert len(names) > 15
    doc = (root / "docs" / "configuration.md").read_text()
    rows = {m.group(1): m.group(0) for m in re.finditer(r"^\| `([A-Z0-9_]+)` \|.*$", doc, re.MULTILINE)}
    missing = [name for name in names if name not in rows]
    assert not missing, f"docs/configuration.md lacks {missing}"
    defaults = load_settings({})
    for name, attribute in (
        ("SENTINEL_BATCH_SIZE", "batch_size"),
        ("SENTINEL_FLUSH_INTERVAL_MS", "flush_interval_ms"),
        ("SENTINEL_HEARTBEAT_TIMEOUT_SEC", "heartbeat_timeout_sec"),
        ("SENTINEL_LISTEN_PORT", "listen_port"),
        ("SENTINEL_MAX_BODY_BYTES", "max_body_bytes"),
        ("SENTINEL_LOG_RETENTION_DAYS", "log_retention_days"),
        ("POOL_MIN_CONNECTIONS", "pool_min"),
        ("POOL_MAX_CONNECTIONS", "pool_max"),
        ("SENTINEL_WORKER_THREADS", "worker_threads"),
    ):
        assert f"`{getattr(defaults, attribute)}`" in rows[name], (name, rows[name])
    readme = (root / "README.md").read_text()
    assert "docs/configuration.md" in readme
    assert "kept beside this repository" not in readme


# -- the views against a real server ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def views(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    with ApiServer(tmp_path_factory.mktemp("views") / "data", dev=True) as server:
        yield server


@pytest.fixture(scope="module")
def seeded(views: ApiServer) -> dict[str, str]:
    """Three processes of one kind: completed with logs, running at 40 %, failed."""
    kind = unique("VIEWS")
    ids = {"done": unique("done"), "running": unique("running"), "failed": unique("failed")}
    with SentinelClient(views.base_url, views.dev_token("acme"), flush_interval=0.05) as client:
        for process_id in ids.values():
            client.emit("STARTED", process_id, process_name=f"name of {process_id}", process_type=kind)
        client.emit("LOG", ids["done"], level="DEBUG", message="first line", component="loader")
        client.emit("LOG", ids["done"], level="ERROR", message="second line", details={"rows": 3})
        client.emit("COMPLETED", ids["done"], result={"rows": 3})
        client.emit("PROGRESS", ids["running"], percent=40, step="load")
        client.emit("ERROR", ids["failed"], error_code="ORA-01555", error_message="snapshot too old")
        assert client.flush(30)
        for process_id in ids.values():
            wait_for(lambda pid=process_id: _exists(client, pid), 30, f"{process_id} visible")
        wait_for(lambda: client.status(ids["failed"]).status == "FAILED", 30, "the failure")
        wait_for(lambda: client.status(ids["done"]).log_count == 2, 30, "the logs")
    return {**ids, "kind": kind}


def _exists(client: SentinelClient, process_id: str) -> bool:
    try:
        client.status(process_id)
    except Exception:
        return False
    return True


def view(server: ApiServer, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[bytes]:
    """A view command pointed at the server, with a dev token minted from its data directory."""
    env = base_env(server.data_dir, SENTINEL_URL=server.base_url, NO_PROXY="127.0.0.1")
    return sentinel_cmd(*args, env=env, timeout=timeout)


ANSI = re.compile(rb"\x1b\[")


@pytest.mark.slow
def test_ps_table_wide_and_json(views: ApiServer, seeded: dict[str, str]) -> None:
    table = view(views, "ps", "--type", seeded["kind"])
    assert table.returncode == 0, table.stderr.decode()
    assert not ANSI.search(table.stdout), "no colours off a terminal"
    lines = table.stdout.decode().splitlines()
    assert lines[0].split() == ["ID", "STATUS", "NAME", "PROGRESS", "LAST", "SEEN", "DURATION"]
    rows = {line.split()[0]: line for line in lines[1:]}
    assert set(rows) == {seeded["done"], seeded["running"], seeded["failed"]}
    assert " COMPLETED " in rows[seeded["done"]]
    assert " 40% " in rows[seeded["running"]]
    assert " ago " in rows[seeded["running"]]
    assert " FAILED " in rows[seeded["failed"]]
    assert all(line == line.rstrip() for line in lines)

    wide = view(views, "ps", "--type", seeded["kind"], "-o", "wide").stdout.decode().splitlines()
    assert wide[0].split()[-6:] == ["TYPE", "PACKAGE", "STEP", "EVENTS", "LOGS", "ERROR"]
    failed_row = next(line for line in wide if line.startswith(seeded["failed"]))
    assert "ORA-01555 snapshot too old" in failed_row
    assert seeded["kind"] in failed_row

    listed = json.loads(view(views, "ps", "--type", seeded["kind"], "-o", "json").stdout)
    assert {item["process_id"] for item in listed} == {seeded["done"], seeded["running"], seeded["failed"]}
    only_failed = json.loads(view(views, "ps", "--type", seeded["kind"], "--status", "failed", "-o", "json").stdout)
    assert [item["process_id"] for item in only_failed] == [seeded["failed"]]
    limited = json.loads(view(views, "ps", "--type", seeded["kind"], "--limit", "2", "-o", "json").stdout)
    assert len(limited) == 2
    recent = json.loads(view(views, "ps", "--type", seeded["kind"], "--since", "1h", "-o", "json").stdout)
    assert len(recent) == 3
    none = view(views, "ps", "--type", unique("NOTHING"))
    assert none.stdout.decode().strip() == "no processes for tenant acme"
    other = json.loads(view(views, "ps", "--type", seeded["kind"], "--tenant", "globex", "-o", "json").stdout)
    assert other == [], "a dev token for another tenant sees none of them"


@pytest.mark.slow
def test_status_text_and_json(views: ApiServer, seeded: dict[str, str]) -> None:
    text = view(views, "status", seeded["done"])
    assert text.returncode == 0, text.stderr.decode()
    fields = dict(line.split(None, 1) for line in text.stdout.decode().splitlines())
    assert fields["status"] == "COMPLETED"
    assert fields["result"] == '{"rows":3}'
    assert fields["log_count"] == "2"
    document = json.loads(view(views, "status", seeded["running"], "-o", "json").stdout)
    assert (document["status"], document["progress_percent"], document["current_step"]) == ("RUNNING", 40.0, "load")
    missing = unique("absent")
    line = assert_one_line_error(view(views, "status", missing))
    assert "404" in line
    assert "no such process" in line
    assert missing in line


@pytest.mark.slow
def test_logs_paged_filtered_and_followed(views: ApiServer, seeded: dict[str, str]) -> None:
    logs = view(views, "logs", seeded["done"])
    assert logs.returncode == 0, logs.stderr.decode()
    lines = logs.stdout.decode().splitlines()
    assert len(lines) == 2
    assert lines[0].endswith("DEBUG [loader] first line")
    assert lines[1].endswith('ERROR second line {"rows":3}')
    errors = view(views, "logs", seeded["done"], "--level", "error").stdout.decode().splitlines()
    assert [line.split(" ", 2)[2] for line in errors] == ['second line {"rows":3}']
    assert view(views, "logs", seeded["done"], "--since", "2999-01-01T00:00:00Z").stdout == b""
    as_json = [json.loads(line) for line in view(views, "logs", seeded["done"], "-o", "json").stdout.splitlines()]
    assert [item["message"] for item in as_json] == ["first line", "second line"]
    followed = view(views, "logs", seeded["done"], "-f")
    assert followed.returncode == 0
    assert followed.stdout.decode().splitlines() == lines
    assert followed.stderr.decode().strip() == f"-- {seeded['done']} is COMPLETED; end of log"
    line = assert_one_line_error(view(views, "logs", unique("absent"), "-f", "--wait", "1"), "404")
    assert "waited 1s for it to appear" in line


@pytest.mark.slow
def test_logs_follow_streams_live_lines_until_the_process_ends(views: ApiServer) -> None:
    process_id = unique("live")
    env = base_env(views.data_dir, SENTINEL_URL=views.base_url, NO_PROXY="127.0.0.1")
    with SentinelClient(views.base_url, views.dev_token("acme"), flush_interval=0.05) as client:
        client.emit("STARTED", process_id)
        client.emit("LOG", process_id, level="INFO", message="before")
        assert client.flush(30)
        wait_for(lambda: _exists(client, process_id), 30, "the process")
        follower = subprocess.Popen(
            sentinel_argv("logs", process_id, "-f"), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        try:
            assert follower.stdout is not None
            assert follower.stdout.readline().decode().rstrip().endswith("INFO  before")
            for number in range(3):
                client.emit("LOG", process_id, level="WARN", message=f"live {number}")
            client.emit("COMPLETED", process_id)
            assert client.flush(30)
            out, err = follower.communicate(timeout=60)
        finally:
            if follower.poll() is None:
                follower.kill()
                follower.communicate()
    assert follower.returncode == 0, err.decode()
    assert [line.split(" ", 1)[1] for line in out.decode().splitlines()] == [f"WARN  live {n}" for n in range(3)]
    assert err.decode().strip() == f"-- {process_id} is COMPLETED; end of log"


@pytest.mark.slow
def test_views_report_server_and_token_failures_in_one_line(views: ApiServer, tmp_path: Path) -> None:
    env = base_env(views.data_dir, NO_PROXY="127.0.0.1")
    down = f"http://127.0.0.1:{free_port()}"
    line = assert_one_line_error(sentinel_cmd("ps", "--url", down, env=env))
    assert "cannot reach Sentinel at " + down in line
    line = assert_one_line_error(sentinel_cmd("ps", "--url", views.base_url, "--token", "not.a.jwt", env=env))
    assert "401" in line
    foreign = DevAuthority(tmp_path / "other").mint("acme")
    line = assert_one_line_error(
        sentinel_cmd("status", "x", "--url", views.base_url, env={**env, "SENTINEL_TOKEN": foreign})
    )
    assert "401" in line
    token = views.dev_token("acme")
    explicit = sentinel_cmd("ps", "--url", views.base_url, "--token", token, "-o", "json", env=env)
    assert explicit.returncode == 0, explicit.stderr.decode()
    assert isinstance(json.loads(explicit.stdout), list)
    line = assert_one_line_error(sentinel_cmd("ps", "--url", "http://no-such-host.invalid:1", env=env))
    assert "cannot reach Sentinel" in line


@pytest.mark.slow
def test_ps_watch_redraws_until_interrupted(views: ApiServer, seeded: dict[str, str], tmp_path: Path) -> None:
    env = base_env(views.data_dir, SENTINEL_URL=views.base_url, NO_PROXY="127.0.0.1")
    out_path = tmp_path / "watch.out"
    with open(out_path, "wb") as out:
        watcher = subprocess.Popen(
            sentinel_argv("ps", "--watch", "--interval", "0.3", "--type", seeded["kind"]),
            env=env,
            stdout=out,
            stderr=subprocess.PIPE,
        )
    try:
        wait_for(lambda: out_path.read_bytes().count(b"every 0.3s: sentinel ps") >= 3, 60, "three redraws")
        watcher.send_signal(signal.SIGINT)
        _, err = watcher.communicate(timeout=30)
    finally:
        if watcher.poll() is None:
            watcher.kill()
            watcher.communicate()
    assert watcher.returncode == 0, err.decode()
    assert err == b""
    text = out_path.read_text()
    assert text.count(seeded["failed"]) >= 3
    assert text.count("every 0.3s: sentinel ps") >= 3
    assert "Traceback" not in text


def test_ps_watch_with_json_is_refused(data_dir: Path) -> None:
    assert_one_line_error(sentinel_cmd("ps", "--watch", "-o", "json", env=base_env(data_dir)), "--watch", code=2)


def _on_a_terminal(args: list[str], env: dict[str, str]) -> bytes:
    """Run a command with its stdout on a pseudo-terminal; what it wrote there."""
    return _terminal_output(sentinel_argv(*args), "stdout", env=env)


def _terminal_output(argv: list[str], stream: str, **popen: Any) -> bytes:
    """Run ``argv`` to success with ``stream`` (stdout or stderr) on a pseudo-terminal and the other one
    discarded; what it wrote there."""
    import pty

    master, slave = pty.openpty()
    try:
        other = "stderr" if stream == "stdout" else "stdout"
        proc = subprocess.Popen(argv, **{stream: slave, other: subprocess.DEVNULL}, **popen)
        os.close(slave)
        chunks = []
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO once the child has closed the terminal
                break
            if not chunk:
                break
            chunks.append(chunk)
        assert proc.wait(timeout=60) == 0
        return b"".join(chunks)
    finally:
        os.close(master)


@pytest.mark.slow
def test_colours_only_on_a_terminal(views: ApiServer, seeded: dict[str, str]) -> None:
    env = base_env(views.data_dir, SENTINEL_URL=views.base_url, NO_PROXY="127.0.0.1", TERM="xterm-256color")
    env.pop("NO_COLOR", None)
    coloured = _on_a_terminal(["ps", "--type", seeded["kind"]], env)
    assert ANSI.search(coloured), coloured
    assert seeded["failed"].encode() in coloured
    plain = _on_a_terminal(["ps", "--type", seeded["kind"]], {**env, "NO_COLOR": "1"})
    assert seeded["failed"].encode() in plain
    colour = re.compile(rb"\x1b\[(?:[0-9;]*;)?(?:3[0-8]|9[0-7])(?:;[0-9]+)*m")
    assert colour.search(coloured)
    assert not colour.search(plain), "NO_COLOR is honoured (bold stays, as the convention allows)"
    piped = view(views, "ps", "--type", seeded["kind"])
    assert not ANSI.search(piped.stdout)
    # an 80-column terminal: long lines are wrapped by the terminal, never cut
    wide = _on_a_terminal(["ps", "--type", seeded["kind"], "-o", "wide"], env)
    assert b"COMPLETED" in wide
    assert b"ORA-01555 snapshot too old" in wide


def test_a_closed_pipe_ends_quietly(data_dir: Path) -> None:
    with subprocess.Popen(
        sentinel_argv("simulate", "--stdout", "-n", "3000", "-q"),
        env=base_env(data_dir),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    ) as proc:
        assert proc.stdout is not None
        proc.stdout.readline()
        proc.stdout.close()
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0
    assert err == b""


def test_dev_tokens_of_the_views_are_renewed(dev_key: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tokens = cli._DevTokens(load_settings({"SENTINEL_DATA_DIR": str(data_dir)}), "globex")
    first = tokens.token()
    assert tokens.token() == first, "kept while fresh"
    assert _claims(first)["tenant_id"] == "globex"
    assert _claims(first)["exp"] - _claims(first)["iat"] == cli._DevTokens.TTL
    later = time.monotonic() + cli._DevTokens.TTL / 2 + 1
    monkeypatch.setattr(time, "monotonic", lambda: later)
    renewed = tokens.token()
    assert renewed != first, "renewed halfway through its life"
    tokens.invalidate(renewed)
    assert tokens.token() != renewed, "a refused token is replaced"


@pytest.mark.slow
def test_serve_with_the_defaults_fits_the_machine(tmp_path: Path) -> None:
    """No --workers and no SENTINEL_WORKER_THREADS: no more HTTP workers than cores, so Granian has
    nothing to warn about."""
    port = free_port()
    env = base_env(tmp_path / "data", PYTHONUNBUFFERED="1")
    log_path = tmp_path / "serve.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            sentinel_argv("serve", "--dev", "--host", "127.0.0.1", "--port", str(port)),
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        with SentinelClient(f"http://127.0.0.1:{port}", "unused.token.here", timeout=2) as probe:
            wait_for(lambda: _answers(probe), 60, "the server")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
    text = log_path.read_text()
    expected = max(1, min(3, len(os.sched_getaffinity(0))))
    assert f"({expected} HTTP worker(s)," in text, text
    assert "Consider using" not in text, text
    assert "Traceback" not in text, text


def _answers(client: SentinelClient) -> bool:
    try:
        client.health()
    except Exception:
        return False
    return True


@pytest.mark.slow
def test_logs_follow_of_a_just_emitted_process_waits_for_it(views: ApiServer) -> None:
    """`sentinel logs -f` right after the events were accepted (202), before the ingest stored them."""
    for attempt in range(3):
        process_id = unique(f"just-emitted-{attempt}")
        with SentinelClient(views.base_url, views.dev_token("acme"), flush_interval=0.05) as client:
            client.emit("STARTED", process_id)
            client.emit("LOG", process_id, level="INFO", message="first and last")
            client.emit("COMPLETED", process_id)
            assert client.flush(30)
        followed = view(views, "logs", process_id, "-f")
        assert followed.returncode == 0, followed.stderr.decode()
        assert followed.stdout.decode().rstrip().endswith("INFO  first and last")
        assert followed.stderr.decode().strip() == f"-- {process_id} is COMPLETED; end of log"


@pytest.mark.slow
@pytest.mark.parametrize("process_id", [".", "..", "../x", "a/../..", "%2E%2E", "?q#f", "sp ace", "ünï/cödé"])
def test_views_reach_process_ids_that_look_like_url_syntax(views: ApiServer, process_id: str) -> None:
    tenant = "dots"
    with SentinelClient(views.base_url, views.dev_token(tenant), flush_interval=0.05) as client:
        client.emit("STARTED", process_id)
        client.emit("LOG", process_id, level="WARN", message=f"from {process_id}")
        client.emit("COMPLETED", process_id)
        assert client.flush(30)
    document = json.loads(view(views, "status", process_id, "--tenant", tenant, "-o", "json").stdout or b"{}")
    if document.get("status") != "COMPLETED":  # the run before may have left it RUNNING for a moment
        wait_for(
            lambda: (
                json.loads(view(views, "status", process_id, "--tenant", tenant, "-o", "json").stdout)["status"]
                == "COMPLETED"
            ),
            30,
            f"{process_id!r} completed",
        )
        document = json.loads(view(views, "status", process_id, "--tenant", tenant, "-o", "json").stdout)
    assert document["process_id"] == process_id
    for args in ([], ["-f"]):
        logs = view(views, "logs", process_id, "--tenant", tenant, "-o", "json", *args)
        assert logs.returncode == 0, logs.stderr.decode()
        assert f"from {process_id}" in [json.loads(line)["message"] for line in logs.stdout.splitlines()]


# -- the Makefile's targets and the README --------------------------------------------------------------

ROOT = Path(__file__).resolve().parent.parent


def test_every_make_target_with_help_is_named_in_the_readme() -> None:
    targets = re.findall(r"^([A-Za-z0-9_.-]+):[^\n]*?## ", (ROOT / "Makefile").read_text(), re.MULTILINE)
    assert "test" in targets
    development = (ROOT / "README.md").read_text().split("## Development", 1)[1].split("\n## ", 1)[0]
    missing = [target for target in targets if f"`{target}`" not in development]
    assert missing == [], f"Makefile targets the README's Development section does not name: {missing}"


def test_make_help_has_colours_only_on_a_terminal() -> None:
    make = shutil.which("make")
    assert make is not None, "GNU make is needed for the developer targets"
    plain = subprocess.run([make, "-s", "help"], cwd=ROOT, capture_output=True, timeout=60, check=True)
    assert not ANSI.search(plain.stdout), plain.stdout
    assert re.search(rb"^  test +the whole suite", plain.stdout, re.MULTILINE), plain.stdout
    assert ANSI.search(_terminal_output([make, "-s", "help"], "stdout", cwd=ROOT))


def test_the_follow_wait_default_in_help_is_the_clients() -> None:
    from sentinel.client._client import APPEAR_WITHIN

    parser = cli.build_parser()
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    wait = next(a for a in subparsers.choices["logs"]._actions if "--wait" in a.option_strings)
    assert f"(default {APPEAR_WITHIN:g})" in (wait.help or "")
