"""The Oracle adapter's code paths against a DRIVER-LEVEL DOUBLE -- not a database.

Every connection, cursor, pool, queue, dequeue-options and message-properties object here is
``unittest.mock.create_autospec`` of python-oracledb's own class (``spec_set``), and the module
functions (``create_pool``, ``connect``, ``init_oracle_client``) are autospecced too, so a wrong
method name, argument name or call shape fails the test the way the real driver would. Errors are the
driver's own ``oracledb._Error`` objects. What the double cannot tell is whether Oracle accepts the SQL
and PL/SQL or behaves as documented: none of this ran against a server (see docs/oracle.md, and the
store contract tests with ``SENTINEL_TEST_ORACLE_DSN`` for that).
"""

from __future__ import annotations

import inspect
import re
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from unittest import mock

import msgspec
import oracle_scratch
import oracledb
import pytest

from sentinel._core import BatchBuilder, decode_batch
from sentinel.baselines import EXTRA_COUNT
from sentinel.config import Settings
from sentinel.models import from_us
from sentinel.store.base import (
    DeadLetterRow,
    DuplicateKeys,
    LogQuery,
    ProcessQuery,
    QueuedMessage,
    StoreError,
)
from sentinel.store.oracle import (
    DRIVER_FLOOR,
    GET_STATUS_WITH_BASELINES,
    OracleStore,
    check_driver,
    driver_release,
    init_session,
    plan_migration,
)
from sentinel.store.oracle import sql as oracle_sql
from sentinel.store.rows import PROCESS_COLUMNS

ROOT = Path(__file__).resolve().parents[1]
SQL_DIR = ROOT / "sql"
NOW = 1_750_000_000_000_000


# -- the double ---------------------------------------------------------------------------------------


@dataclass
class Call:
    kind: str  # execute, executemany, callproc, setinputsizes, commit, rollback, ...
    sql: str | None
    params: Any
    kwargs: dict[str, Any]
    conn: Any


@dataclass
class Driver:
    """python-oracledb as seen by the adapter: autospecced objects wired to a log of calls and to
    canned answers, keyed by SQL (the exact text or a part of it). ``rows[sql]``: the result sets of
    successive executions (the last one repeats); ``rowcounts[sql]`` likewise; ``batch_errors[sql]``:
    what ``getbatcherrors`` returns after successive ``executemany`` calls; ``fail[sql]``: exceptions
    raised by successive executions."""

    rows: dict[str, list[list[tuple[Any, ...]]]] = field(default_factory=dict)
    rowcounts: dict[str, list[int]] = field(default_factory=dict)
    batch_errors: dict[str, list[list[Any]]] = field(default_factory=dict)
    fail: dict[str, list[BaseException]] = field(default_factory=dict)
    log: list[Call] = field(default_factory=list)
    connections: list[Any] = field(default_factory=list)
    cursors: list[Any] = field(default_factory=list)
    messages: list[list[Any]] = field(default_factory=list)  # what successive deqmany calls return

    def __post_init__(self) -> None:
        self.rows.setdefault(oracle_sql.VPD_INSTALLED, [[(0,)]])
        self.pool = mock.create_autospec(oracledb.ConnectionPool, instance=True, spec_set=True)
        self.pool.acquire.side_effect = lambda *a, **k: self.connection()
        self.queue = mock.create_autospec(oracledb.Queue, instance=True, spec_set=True)
        self.deqoptions = mock.create_autospec(oracledb.DeqOptions, instance=True, spec_set=True)
        self.queue.deqoptions = self.deqoptions
        self.queue.deqmany.side_effect = lambda limit: self.messages.pop(0)[:limit] if self.messages else []

    def connection(self) -> Any:
        conn = mock.create_autospec(oracledb.Connection, instance=True, spec_set=True)
        conn.cursor.side_effect = lambda *a, **k: self.cursor(conn)
        conn.queue.side_effect = lambda name, *a, **k: self.queue
        conn.msgproperties.side_effect = self.message
        conn.commit.side_effect = lambda: self.log.append(Call("commit", None, None, {}, conn))
        conn.rollback.side_effect = lambda: self.log.append(Call("rollback", None, None, {}, conn))
        self.connections.append(conn)
        return conn

    def message(self, payload: bytes = b"", priority: int = 0, **_: Any) -> Any:
        props = mock.create_autospec(oracledb.MessageProperties, instance=True, spec_set=True)
        props.payload, props.priority = payload, priority
        return props

    def dequeued(self, payload: bytes, msgid: bytes, enqtime: datetime | None = None) -> Any:
        props = mock.create_autospec(oracledb.MessageProperties, instance=True, spec_set=True)
        props.payload, props.msgid, props.enqtime = payload, msgid, enqtime
        return props

    @staticmethod
    def _answer(table: dict[str, list[Any]], sql: str, *, sticky: bool) -> Any:
        for key, values in table.items():
            if (sql == key or key in sql) and values:
                return values.pop(0) if len(values) > 1 or not sticky else values[0]
        return None

    def cursor(self, conn: Any) -> Any:
        cur = mock.create_autospec(oracledb.Cursor, instance=True, spec_set=True)
        cur.__enter__.return_value = cur
        cur.warning = None
        cur.rowcount = 0
        pending: list[tuple[Any, ...]] = []
        errors: list[Any] = []

        def raise_if_told(sql: str) -> None:
            for key, excs in self.fail.items():
                if (sql == key or key in sql) and excs:
                    raise excs.pop(0)

        def execute(statement: str, parameters: Any = None, **kwargs: Any) -> None:
            self.log.append(Call("execute", statement, parameters, kwargs, conn))
            raise_if_told(statement)
            pending[:] = list(self._answer(self.rows, statement, sticky=True) or [])
            cur.rowcount = self._answer(self.rowcounts, statement, sticky=True) or 0

        def executemany(statement: str, parameters: Any, **kwargs: Any) -> None:
            self.log.append(Call("executemany", statement, parameters, kwargs, conn))
            raise_if_told(statement)
            errors[:] = self._answer(self.batch_errors, statement, sticky=False) or []

        def take_one() -> Any:
            return pending.pop(0) if pending else None

        def take_all() -> list[Any]:
            out = list(pending)
            pending.clear()
            return out

        cur.execute.side_effect = execute
        cur.executemany.side_effect = executemany
        cur.fetchone.side_effect = take_one
        cur.fetchall.side_effect = take_all
        cur.__iter__.side_effect = lambda: iter(take_all())
        cur.getbatcherrors.side_effect = lambda: list(errors)
        cur.setinputsizes.side_effect = lambda *a, **k: self.log.append(Call("setinputsizes", None, a, k, conn))
        cur.callproc.side_effect = lambda name, parameters=None, *a, **k: self.log.append(
            Call("callproc", name, parameters, k, conn)
        )
        self.cursors.append(cur)
        return cur

    # views of the log
    def calls(self, kind: str, sql: str | None = None) -> list[Call]:
        return [c for c in self.log if c.kind == kind and (sql is None or c.sql == sql)]

    def sequence(self) -> list[str]:
        """The log as short labels: execute:<first words>, callproc:<name>, commit, rollback."""
        out = []
        for c in self.log:
            if c.kind in ("execute", "executemany"):
                out.append(f"{c.kind}:{' '.join((c.sql or '').split()[:3])}")
            elif c.kind == "callproc":
                out.append(f"callproc:{c.sql}")
            elif c.kind in ("commit", "rollback"):
                out.append(c.kind)
        return out


def ora(code: int, text: str, offset: int = 0) -> Any:
    """The driver's error object for ``ORA-<code>: text``."""
    return oracledb._Error(message=f"ORA-{code:05d}: {text}", code=code, offset=offset)


@pytest.fixture
def driver() -> Iterator[Driver]:
    fake = Driver()
    with (
        mock.patch.object(oracledb, "create_pool", autospec=True, return_value=fake.pool) as create_pool,
        mock.patch.object(oracledb, "connect", autospec=True, side_effect=lambda *a, **k: fake.connection()),
        mock.patch.object(oracledb, "init_oracle_client", autospec=True),
    ):
        fake.create_pool = create_pool  # type: ignore[attr-defined]
        yield fake


def make_settings(tmp_path: Path, **changes: Any) -> Settings:
    wallet = tmp_path / "wallet"
    wallet.mkdir(exist_ok=True)
    values: dict[str, Any] = {
        "backend": "oracle",
        "data_dir": tmp_path,
        "oracle_connect_string": "SENTINEL_DB",
        "oracle_wallet_location": wallet,
        "oracle_user": "sentinel",
        "oracle_password": "pw",
        "oracle_wallet_password": "wallet-pw",
        "pool_min": 2,
        "pool_max": 7,
        "queue_name": "SENTINEL_QUEUE",
    }
    values.update(changes)
    return Settings(**values)


@pytest.fixture
def store(driver: Driver, tmp_path: Path) -> OracleStore:
    return OracleStore(make_settings(tmp_path), sql_dir=SQL_DIR)


def event(
    kind: str = "HEARTBEAT", event_id: str = "e1", process_id: str = "p1", tenant: str = "acme", **extra: Any
) -> bytes:
    body = {
        "event_id": event_id,
        "event_type": kind,
        "process_id": process_id,
        "tenant_id": tenant,
        "timestamp": "2025-06-15T12:00:00Z",
        **extra,
    }
    return msgspec.json.encode(body)


def batch_for(payloads: list[bytes], seen: set[tuple[str, str]] | None = None) -> tuple[Any, list[Any]]:
    events, rejects = decode_batch(payloads)
    return BatchBuilder().build(events, seen or set(), NOW), rejects


# -- the driver: the installed python-oracledb has everything the adapter calls -------------------------

# (owner, name, keyword arguments the adapter passes by name): every call and attribute the adapter
# uses. The doubles below are autospecced from the same classes, so this list and the tests agree.
DRIVER_CALLS: list[tuple[Any, str, tuple[str, ...]]] = [
    (
        oracledb,
        "create_pool",
        (
            "dsn",
            "user",
            "password",
            "config_dir",
            "wallet_location",
            "wallet_password",
            "externalauth",
            "homogeneous",
            "min",
            "max",
            "increment",
            "getmode",
            "wait_timeout",
            "timeout",
            "ping_interval",
            "session_callback",
        ),
    ),
    (oracledb, "connect", ("dsn", "user", "password", "config_dir", "wallet_location", "wallet_password")),
    (oracledb, "init_oracle_client", ("config_dir",)),
    (oracledb, "is_thin_mode", ()),
    (oracledb.ConnectionPool, "acquire", ()),
    (oracledb.ConnectionPool, "release", ()),
    (oracledb.ConnectionPool, "drop", ()),
    (oracledb.ConnectionPool, "close", ("force",)),
    (oracledb.Connection, "cursor", ()),
    (oracledb.Connection, "queue", ()),
    (oracledb.Connection, "msgproperties", ("payload", "priority")),
    (oracledb.Connection, "commit", ()),
    (oracledb.Connection, "rollback", ()),
    (oracledb.Connection, "ping", ()),
    (oracledb.Connection, "close", ()),
    # fetch_lobs is a keyword of execute() from 3.4.0; before, it was taken as a bind (DPY-2005)
    (oracledb.Cursor, "execute", ("fetch_lobs",)),
    (oracledb.Cursor, "executemany", ("batcherrors",)),
    (oracledb.Cursor, "getbatcherrors", ()),
    (oracledb.Cursor, "setinputsizes", ()),
    (oracledb.Cursor, "callproc", ()),
    (oracledb.Cursor, "fetchone", ()),
    (oracledb.Cursor, "fetchall", ()),
    (oracledb.Cursor, "close", ()),
    (oracledb.Queue, "deqmany", ()),
    (oracledb.Queue, "enqmany", ()),
    (oracledb.Queue, "enqone", ()),
]
DRIVER_ATTRIBUTES: list[tuple[Any, tuple[str, ...]]] = [
    (oracledb.ConnectionPool, ("busy", "opened")),
    (oracledb.Cursor, ("warning", "rowcount")),
    (oracledb.Queue, ("deqoptions",)),
    (oracledb.DeqOptions, ("mode", "visibility", "navigation", "wait")),
    (oracledb.MessageProperties, ("msgid", "payload", "priority", "enqtime")),
    (
        oracledb,
        (
            "POOL_GETMODE_TIMEDWAIT",
            "DEQ_REMOVE",
            "DEQ_ON_COMMIT",
            "DEQ_FIRST_MSG",
            "DEQ_NO_WAIT",
            "DB_TYPE_NUMBER",
            "DB_TYPE_LONG",
            "DB_TYPE_LONG_RAW",
            "DB_TYPE_BINARY_DOUBLE",
            "Error",
            "DatabaseError",
            "IntegrityError",
        ),
    ),
]


@pytest.mark.parametrize(
    ("owner", "name", "keywords"),
    DRIVER_CALLS,
    ids=[f"{getattr(owner, '__name__', owner)}.{name}" for owner, name, _ in DRIVER_CALLS],
)
def test_the_installed_driver_has_every_call_the_adapter_makes(
    owner: Any, name: str, keywords: tuple[str, ...]
) -> None:
    function = getattr(owner, name)
    assert callable(function)
    parameters = inspect.signature(function).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
    for keyword in keywords:
        parameter = parameters.get(keyword)
        # a named parameter, never swallowed by **kwargs (that is how fetch_lobs became a bind)
        assert parameter is not None, f"{name}() has no parameter {keyword!r} (takes **kwargs: {takes_any})"
        assert parameter.kind in (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)


@pytest.mark.parametrize(("owner", "names"), DRIVER_ATTRIBUTES, ids=lambda v: getattr(v, "__name__", None))
def test_the_installed_driver_has_every_attribute_the_adapter_reads(owner: Any, names: tuple[str, ...]) -> None:
    missing = [name for name in names if not hasattr(owner, name)]
    assert not missing


def test_driver_errors_carry_what_the_adapter_reads() -> None:
    error = ora(3113, "end-of-file on communication channel", offset=4)
    for name in ("code", "message", "offset", "is_session_dead"):
        assert hasattr(error, name), name
    assert (error.code, error.offset) == (3113, 4)


def test_the_floor_is_declared_once_and_met() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    (line,) = [dep for dep in project["dependencies"] if dep.startswith("oracledb")]
    assert line == f"oracledb>={DRIVER_FLOOR}"
    assert driver_release(oracledb.__version__) >= driver_release(DRIVER_FLOOR)
    check_driver()  # the installed one passes


@pytest.mark.parametrize("version", ["2.5.1", "3.0.0", "3.1.0", "3.3.0"])
def test_an_older_driver_stops_the_store_with_one_line(version: str, tmp_path: Path) -> None:
    with mock.patch.object(oracledb, "__version__", version), pytest.raises(StoreError) as raised:
        OracleStore(make_settings(tmp_path))
    message = str(raised.value)
    assert "\n" not in message
    assert version in message
    assert f"oracledb>={DRIVER_FLOOR}" in message


def test_the_command_line_reports_an_old_driver_in_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from sentinel.cli import main

    monkeypatch.setenv("SENTINEL_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("SENTINEL_BACKEND", "oracle")
    monkeypatch.setenv("ORACLE_CONNECT_STRING", "dbhost:1521/FREEPDB1")
    with mock.patch.object(oracledb, "__version__", "3.3.0"):
        assert main(["migrate", "--oracle"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "python-oracledb 3.3.0 is too old" in err


@pytest.mark.parametrize(
    ("version", "release"), [("3.4.0", (3, 4, 0)), ("26.1.0", (26, 1, 0)), ("4.0.0rc1", (4, 0, 0))]
)
def test_newer_drivers_pass(version: str, release: tuple[int, ...]) -> None:
    assert driver_release(version) == release
    check_driver(version)


# -- connecting -----------------------------------------------------------------------------------------


def test_pool_thin_mode_with_wallet(driver: Driver, store: OracleStore, tmp_path: Path) -> None:
    assert store.connections.pool is driver.pool
    assert store.connections.pool is driver.pool  # created once
    driver.create_pool.assert_called_once()  # type: ignore[attr-defined]
    kwargs = driver.create_pool.call_args.kwargs  # type: ignore[attr-defined]
    wallet = str(tmp_path / "wallet")
    assert kwargs == {
        "dsn": "SENTINEL_DB",  # a TNS alias, resolved through tnsnames.ora in config_dir
        "user": "sentinel",
        "password": "pw",
        "config_dir": wallet,
        "wallet_location": wallet,  # ewallet.pem
        "wallet_password": "wallet-pw",
        "min": 2,
        "max": 7,
        "increment": 1,
        "getmode": oracledb.POOL_GETMODE_TIMEDWAIT,
        "wait_timeout": 10_000,
        "timeout": 300,
        "ping_interval": 60,
        "session_callback": init_session,
    }
    oracledb.init_oracle_client.assert_not_called()  # type: ignore[attr-defined]


def test_thick_mode_with_wallet_credentials(driver: Driver, tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path,
        oracle_thick_mode=True,
        oracle_user=None,
        oracle_password=None,
        oracle_connect_string="tcps://db.example.com:2484/svc",
    )
    with mock.patch.object(oracledb, "is_thin_mode", autospec=True, return_value=True):
        store = OracleStore(settings)
    oracledb.init_oracle_client.assert_called_once_with(config_dir=str(tmp_path / "wallet"))  # type: ignore[attr-defined]
    store.connections.pool  # noqa: B018
    kwargs = driver.create_pool.call_args.kwargs  # type: ignore[attr-defined]
    # cwallet.sso through sqlnet.ora in config_dir; the wallet's stored credentials (external auth)
    assert kwargs["externalauth"] is True
    assert kwargs["homogeneous"] is False
    assert "wallet_location" not in kwargs
    assert "user" not in kwargs
    assert "password" not in kwargs
    assert kwargs["dsn"] == "tcps://db.example.com:2484/svc"


def test_thick_mode_is_initialised_once_per_process(driver: Driver, tmp_path: Path) -> None:
    with mock.patch.object(oracledb, "is_thin_mode", autospec=True, return_value=False):
        OracleStore(make_settings(tmp_path, oracle_thick_mode=True))
    oracledb.init_oracle_client.assert_not_called()  # type: ignore[attr-defined]


def test_pool_failure_is_a_store_error(driver: Driver, store: OracleStore) -> None:
    driver.create_pool.side_effect = oracledb.DatabaseError(ora(12154, "TNS:could not resolve"))  # type: ignore[attr-defined]
    with pytest.raises(StoreError, match="ORA-12154"):
        store.ping()


def test_sessions_work_in_utc(driver: Driver) -> None:
    conn = driver.connection()
    init_session(conn, None)
    assert [(c.kind, c.sql) for c in driver.log] == [("execute", "ALTER SESSION SET TIME_ZONE = 'UTC'")]


def test_ping_uses_a_pooled_connection_and_gives_it_back(driver: Driver, store: OracleStore) -> None:
    store.ping()
    conn = driver.connections[0]
    conn.ping.assert_called_once_with()
    driver.pool.release.assert_called_once_with(conn)


# -- the consumer: fetch --------------------------------------------------------------------------------


def test_fetch_dequeues_on_a_dedicated_connection(driver: Driver, store: OracleStore) -> None:
    driver.messages = [
        [
            driver.dequeued(b'{"a":1}', b"id-1", datetime(2025, 6, 15, 12, 0, 0, 5)),
            driver.dequeued(b'{"a":2}', b"id-2", None),
        ]
    ]
    consumer = store.consumer()
    messages = consumer.fetch(100, 2.5)
    assert messages == [
        QueuedMessage(b"id-1", b'{"a":1}', 1_749_988_800_000_005),
        QueuedMessage(b"id-2", b'{"a":2}', None),
    ]
    oracledb.connect.assert_called_once_with(  # type: ignore[attr-defined]
        dsn="SENTINEL_DB",
        user="sentinel",
        password="pw",
        config_dir=str(store.settings.oracle_wallet_location),
        wallet_location=str(store.settings.oracle_wallet_location),
        wallet_password="wallet-pw",
    )
    driver.pool.acquire.assert_not_called()  # not a pooled connection
    conn = driver.connections[0]
    conn.queue.assert_called_once_with("SENTINEL_QUEUE")  # RAW payload: no payload type
    options = driver.deqoptions
    assert options.visibility == oracledb.DEQ_ON_COMMIT  # the dequeue is part of the batch transaction
    assert options.navigation == oracledb.DEQ_FIRST_MSG
    assert options.mode == oracledb.DEQ_REMOVE
    assert options.wait == 3  # whole seconds, rounded up
    driver.queue.deqmany.assert_called_once_with(100)
    assert driver.sequence()[0] == "execute:ALTER SESSION SET"
    consumer.fetch(10, 0.0)
    assert options.wait == oracledb.DEQ_NO_WAIT
    oracledb.connect.assert_called_once()  # type: ignore[attr-defined]  # held for the consumer's life
    assert not driver.calls("commit")


def test_fetch_with_a_batch_filling_up_does_not_wait_in_the_database(driver: Driver, store: OracleStore) -> None:
    driver.messages = [[driver.dequeued(b"{}", b"m1")], []]
    consumer = store.consumer()
    consumer.fetch(10, 0.05)
    assert driver.deqoptions.wait == 1  # idle: wait in the database
    with mock.patch("sentinel.store.oracle.consumer.time.sleep", autospec=True) as sleep:
        assert consumer.fetch(10, 0.05) == []
    assert driver.deqoptions.wait == oracledb.DEQ_NO_WAIT  # holding messages: do not overrun the flush
    sleep.assert_called_once_with(0.05)


def test_dequeue_failure_drops_a_dead_connection(driver: Driver, store: OracleStore) -> None:
    consumer = store.consumer()
    consumer.fetch(1, 0)
    driver.queue.deqmany.side_effect = oracledb.DatabaseError(ora(3113, "end-of-file on communication"))
    with pytest.raises(StoreError, match="dequeue failed"):
        consumer.fetch(1, 0)
    driver.connections[0].close.assert_called_once_with()
    driver.queue.deqmany.side_effect = lambda limit: []
    consumer.fetch(1, 0)
    assert len(driver.connections) == 2  # reconnected


# -- the consumer: claim_keys ---------------------------------------------------------------------------------


def test_claim_keys_claims_keys_and_reports_unique_violations(driver: Driver, store: OracleStore) -> None:
    consumer = store.consumer()
    keys = [("acme", "e2"), ("acme", "e1"), ("globex", "e1"), ("acme", "e2")]
    # rows go in sorted: acme/e1, acme/e2, globex/e1; the second one was ingested before
    driver.batch_errors[oracle_sql.INSERT_DEDUPE] = [[ora(1, "unique constraint (S.SENTINEL_DEDUPE_PK) violated", 1)]]
    assert consumer.claim_keys(keys) == {("acme", "e2")}
    (insert,) = driver.calls("executemany", oracle_sql.INSERT_DEDUPE)
    assert [row[:2] for row in insert.params] == [("acme", "e1"), ("acme", "e2"), ("globex", "e1")]
    assert insert.kwargs == {"batcherrors": True}
    # claimed keys are not inserted again in the same transaction
    assert consumer.claim_keys([("acme", "e1")]) == set()
    assert len(driver.calls("executemany", oracle_sql.INSERT_DEDUPE)) == 1
    # bind types declared once for the cursor
    assert len(driver.calls("setinputsizes")) == 1


def test_claim_keys_fails_on_any_other_row_error(driver: Driver, store: OracleStore) -> None:
    consumer = store.consumer()
    driver.batch_errors[oracle_sql.INSERT_DEDUPE] = [[ora(1400, "cannot insert NULL", 0)]]
    with pytest.raises(StoreError, match="ORA-01400"):
        consumer.claim_keys([("acme", "e1")])


def test_claim_keys_claims_again_the_rows_that_met_a_deadlock(driver: Driver, store: OracleStore) -> None:
    consumer = store.consumer()
    keys = [("acme", "e1"), ("acme", "e2"), ("acme", "e3")]
    driver.batch_errors[oracle_sql.INSERT_DEDUPE] = [
        [ora(60, "deadlock detected while waiting for resource", 1), ora(1, "unique constraint violated", 2)],
        [],
    ]
    assert consumer.claim_keys(keys) == {("acme", "e3")}
    first, second = driver.calls("executemany", oracle_sql.INSERT_DEDUPE)
    assert [row[:2] for row in first.params] == keys
    assert [row[:2] for row in second.params] == [("acme", "e2")]  # only the row the deadlock failed
    assert not driver.calls("rollback")
    # claimed (e1, e2) are not claimed again in this transaction
    assert consumer.claim_keys([("acme", "e2")]) == set()
    assert len(driver.calls("executemany", oracle_sql.INSERT_DEDUPE)) == 2


def test_claim_keys_runs_a_deadlocked_statement_again_then_gives_up(driver: Driver, store: OracleStore) -> None:
    from sentinel.store.oracle import RETRY_ATTEMPTS

    consumer = store.consumer()
    deadlock = oracledb.DatabaseError(ora(60, "deadlock detected while waiting for resource"))
    driver.fail[oracle_sql.INSERT_DEDUPE] = [deadlock]
    assert consumer.claim_keys([("acme", "e1")]) == set()
    assert len(driver.calls("executemany", oracle_sql.INSERT_DEDUPE)) == 2
    driver.fail[oracle_sql.INSERT_DEDUPE] = [deadlock] * RETRY_ATTEMPTS
    with pytest.raises(StoreError, match="ORA-00060"):
        consumer.claim_keys([("acme", "e9")])
    assert len(driver.calls("executemany", oracle_sql.INSERT_DEDUPE)) == 2 + RETRY_ATTEMPTS


# -- the consumer: commit -------------------------------------------------------------------------------


def test_commit_writes_the_core_rows_and_commits_once(driver: Driver, store: OracleStore) -> None:
    payloads = [
        event("STARTED", "e1", process_name="nightly"),
        event("LOG", "e2", level="INFO", message="hello", details={"rows": 3}),
        event("PROGRESS", "e3", percent=40, step="load"),
        b'{"event_id": "x"',
    ]
    driver.messages = [[driver.dequeued(p, f"m{i}".encode()) for i, p in enumerate(payloads)]]
    consumer = store.consumer()
    messages = consumer.fetch(10, 0)
    events, rejects = decode_batch([m.payload for m in messages])
    assert consumer.claim_keys([(e.tenant_id, e.event_id) for e in events]) == set()
    batch = BatchBuilder().build(events, set(), NOW)
    dead = [DeadLetterRow(code, reason, raw, None, NOW) for _, raw, code, reason in rejects]

    outcome = consumer.commit(messages, batch, dead)

    assert driver.sequence() == [
        "execute:ALTER SESSION SET",
        "execute:SELECT COUNT(*) FROM",  # is VPD installed?
        "executemany:INSERT INTO sentinel_dedupe",
        "executemany:INSERT INTO sentinel_logs",
        "executemany:INSERT INTO sentinel_status_stage",
        "execute:MERGE INTO sentinel_processes",
        "executemany:INSERT INTO sentinel_dead_letters",
        "commit",
    ]
    (logs,) = driver.calls("executemany", oracle_sql.INSERT_LOGS)
    assert logs.params is batch.log_rows  # the core's rows as they are, LOG_COLUMNS order
    assert logs.kwargs == {"batcherrors": True}
    (stage,) = driver.calls("executemany", oracle_sql.INSERT_STATUS_STAGE)
    assert stage.params == batch.status_rows  # one process: already in key order
    assert stage.kwargs == {"batcherrors": True}
    (dead_letters,) = driver.calls("executemany", oracle_sql.INSERT_DEAD_LETTER)
    assert [row[0] for row in dead_letters.params] == ["invalid_json"]
    assert outcome.messages == 4
    assert outcome.logs == 1
    assert outcome.statuses == 1
    assert outcome.dead_letters == 1
    assert not driver.calls("rollback")


def test_cursors_and_bind_types_are_kept_for_the_consumers_life(driver: Driver, store: OracleStore) -> None:
    consumer = store.consumer()
    for round_ in range(3):
        payloads = [event("LOG", f"e{round_}", level="INFO", message="m")]
        driver.messages = [[driver.dequeued(payloads[0], b"m")]]
        messages = consumer.fetch(10, 0)
        consumer.claim_keys([("acme", f"e{round_}")])
        batch, _ = batch_for(payloads)
        consumer.commit(messages, batch, [])
    # one cursor per statement (dedupe, logs, stage, merge) + the two set-up cursors, never more
    assert len(driver.cursors) == 6
    sizes = driver.calls("setinputsizes")
    assert len(sizes) == 3  # dedupe, logs, stage: declared once each
    assert len(driver.calls("commit")) == 3
    log_sizes = next(c.params for c in sizes if len(c.params) == 13)
    assert log_sizes[5] is oracledb.DB_TYPE_LONG  # message -> CLOB
    assert log_sizes[3] is oracledb.DB_TYPE_NUMBER  # ts, microseconds


def test_refused_rows_are_dead_lettered_without_rollback(driver: Driver, store: OracleStore) -> None:
    payloads = [
        event("LOG", "e1", level="INFO", message="fine"),
        event("LOG", "e2", level="INFO", message="too long for the column"),
        event("HEARTBEAT", "e3", process_id="p2"),
    ]
    enqueued = datetime(2025, 6, 15)
    driver.messages = [[driver.dequeued(p, f"m{i}".encode(), enqueued) for i, p in enumerate(payloads)]]
    consumer = store.consumer()
    messages = consumer.fetch(10, 0)
    events, _ = decode_batch(payloads)
    consumer.claim_keys([(e.tenant_id, e.event_id) for e in events])
    batch = BatchBuilder().build(events, set(), NOW)
    driver.batch_errors[oracle_sql.INSERT_LOGS] = [[ora(12899, "value too large for column MESSAGE", 1)]]
    driver.batch_errors[oracle_sql.INSERT_STATUS_STAGE] = [[ora(2290, "check constraint violated", 1)]]

    outcome = consumer.commit(messages, batch, [])

    assert not driver.calls("rollback")
    assert len(driver.calls("commit")) == 1
    (dead,) = driver.calls("executemany", oracle_sql.INSERT_DEAD_LETTER)
    log_letter, status_letter = dead.params
    # the refused log row, mapped back to its queue message
    assert log_letter[0] == "db_rejected"
    assert log_letter[1].startswith("sentinel_logs: ORA-12899")
    assert log_letter[2] == payloads[1]
    assert log_letter[3] == 1_749_945_600_000_000
    # the refused status row (a fold of several events): its columns
    assert status_letter[1].startswith("sentinel_processes: ORA-02290")
    assert msgspec.json.decode(status_letter[2])["process_id"] == "p2"
    assert outcome.logs == 1
    assert outcome.statuses == 1
    assert outcome.dead_letters == 2
    assert outcome.extra == {"db_rejected": 2}


def test_a_failed_batch_rolls_back_everything(driver: Driver, store: OracleStore) -> None:
    payloads = [event("STARTED", "e1")]
    driver.messages = [[driver.dequeued(payloads[0], b"m1")]]
    consumer = store.consumer()
    messages = consumer.fetch(10, 0)
    consumer.claim_keys([("acme", "e1")])
    batch, _ = batch_for(payloads)
    driver.fail[oracle_sql.MERGE_STATUS] = [oracledb.DatabaseError(ora(1652, "unable to extend temp segment"))]
    with pytest.raises(StoreError, match="ORA-01652"):
        consumer.commit(messages, batch, [])
    assert driver.sequence()[-1] == "rollback"
    assert not driver.calls("commit")
    # the transaction is over: its claims went with it, so they are made again next time
    consumer.claim_keys([("acme", "e1")])
    assert len(driver.calls("executemany", oracle_sql.INSERT_DEDUPE)) == 2


def test_rollback_gives_the_messages_back(driver: Driver, store: OracleStore) -> None:
    driver.messages = [[driver.dequeued(b"{}", b"m1")]]
    consumer = store.consumer()
    messages = consumer.fetch(10, 0)
    consumer.rollback(messages)
    assert driver.sequence()[-1] == "rollback"
    consumer.close()
    driver.connections[0].close.assert_called_once_with()


def test_merge_is_retried_when_another_replica_inserted_the_process(driver: Driver, store: OracleStore) -> None:
    payloads = [event("STARTED", "e1")]
    driver.messages = [[driver.dequeued(payloads[0], b"m1")]]
    consumer = store.consumer()
    messages = consumer.fetch(10, 0)
    consumer.claim_keys([("acme", "e1")])
    batch, _ = batch_for(payloads)
    driver.fail[oracle_sql.MERGE_STATUS] = [oracledb.IntegrityError(ora(1, "unique constraint violated"))]
    consumer.commit(messages, batch, [])
    assert len(driver.calls("execute", oracle_sql.MERGE_STATUS)) == 2
    assert driver.sequence()[-1] == "commit"


def test_merge_is_retried_after_a_deadlock_and_gives_up_after_the_last_attempt(
    driver: Driver, store: OracleStore
) -> None:
    from sentinel.store.oracle import RETRY_ATTEMPTS

    deadlock = oracledb.DatabaseError(ora(60, "deadlock detected while waiting for resource"))
    consumer = store.consumer()
    for round_, failures in enumerate((RETRY_ATTEMPTS - 1, RETRY_ATTEMPTS)):
        payloads = [event("STARTED", f"e{round_}")]
        driver.messages = [[driver.dequeued(payloads[0], b"m1")]]
        messages = consumer.fetch(10, 0)
        batch, _ = batch_for(payloads)
        driver.fail[oracle_sql.MERGE_STATUS] = [deadlock] * failures
        merges = len(driver.calls("execute", oracle_sql.MERGE_STATUS))
        if failures < RETRY_ATTEMPTS:
            consumer.commit(messages, batch, [])  # the batch survives: no rollback, no retry count
            assert driver.sequence()[-1] == "commit"
            assert not driver.calls("rollback")
        else:
            with pytest.raises(StoreError, match="ORA-00060"):
                consumer.commit(messages, batch, [])
            assert driver.sequence()[-1] == "rollback"
        assert len(driver.calls("execute", oracle_sql.MERGE_STATUS)) - merges == RETRY_ATTEMPTS


def test_stage_rows_go_in_sorted_by_process_key(driver: Driver, store: OracleStore) -> None:
    """Replicas merging overlapping processes lock them in the same order."""
    keys = [("globex", "p2"), ("acme", "p9"), ("acme", "p10"), ("globex", "p1"), ("acme", "p1")]
    payloads = [event("HEARTBEAT", f"e{i}", process_id=p, tenant=t) for i, (t, p) in enumerate(keys)]
    driver.messages = [[driver.dequeued(p, b"m") for p in payloads]]
    consumer = store.consumer()
    messages = consumer.fetch(10, 0)
    batch, _ = batch_for(payloads)
    # a row refused by the stage insert is found by its offset in the rows as sent
    driver.batch_errors[oracle_sql.INSERT_STATUS_STAGE] = [[ora(2290, "check constraint violated", 1)]]
    outcome = consumer.commit(messages, batch, [])
    (stage,) = driver.calls("executemany", oracle_sql.INSERT_STATUS_STAGE)
    assert [tuple(row[:2]) for row in stage.params] == sorted(keys)
    (dead,) = driver.calls("executemany", oracle_sql.INSERT_DEAD_LETTER)
    assert msgspec.json.decode(dead.params[0][2])["process_id"] == "p10"  # sorted()[1]
    assert outcome.statuses == 4


def test_log_times_beyond_the_last_partition_are_dead_lettered(driver: Driver, store: OracleStore) -> None:
    """Interval partitions stop at 1,048,575 per table (ORA-14300 around 4840): later log lines are
    dead-lettered with a reason naming the limit, the rest of the batch is stored."""
    assert oracle_sql.LOG_TS_LIMIT_US == 1_048_574 * 86_400_000_000
    assert datetime.fromtimestamp(oracle_sql.LOG_TS_LIMIT_US // 1_000_000, UTC).year == 4840
    payloads = [
        event("LOG", "e1", level="INFO", message="now"),
        event("LOG", "e2", level="INFO", message="far", timestamp="4840-11-24T00:00:00Z"),  # the first refused
        event("LOG", "e3", level="INFO", message="just in", timestamp="4840-11-23T23:59:59.999999Z"),
        event("LOG", "e4", level="INFO", message="end of days", timestamp="9999-12-31T23:59:59Z"),
    ]
    enqueued = datetime(2025, 6, 15)
    driver.messages = [[driver.dequeued(p, f"m{i}".encode(), enqueued) for i, p in enumerate(payloads)]]
    consumer = store.consumer()
    messages = consumer.fetch(10, 0)
    batch, rejects = batch_for(payloads)
    assert not rejects  # the core accepts them all
    outcome = consumer.commit(messages, batch, [])
    (logs,) = driver.calls("executemany", oracle_sql.INSERT_LOGS)
    assert [row[2] for row in logs.params] == ["e1", "e3"]
    (dead,) = driver.calls("executemany", oracle_sql.INSERT_DEAD_LETTER)
    assert [row[2] for row in dead.params] == [payloads[1], payloads[3]]  # the messages as queued
    for code, reason, _, enqueued_at, _ in dead.params:
        assert code == "bad_timestamp"
        assert reason == (
            "timestamp: the Oracle store keeps log lines before 4840-11-24T00:00:00Z (sentinel_logs' daily partitions)"
        )
        assert enqueued_at == 1_749_945_600_000_000
    assert (outcome.logs, outcome.dead_letters, outcome.extra) == (2, 2, {"bad_timestamp": 2})
    assert driver.sequence()[-1] == "commit"


def test_keys_not_claimed_by_claim_keys_are_claimed_at_commit(driver: Driver, store: OracleStore) -> None:
    payloads = [event("HEARTBEAT", "e1"), event("HEARTBEAT", "e2")]
    driver.messages = [[driver.dequeued(p, b"m") for p in payloads]]
    consumer = store.consumer()
    messages = consumer.fetch(10, 0)
    batch, _ = batch_for(payloads)
    driver.batch_errors[oracle_sql.INSERT_DEDUPE] = [[ora(1, "unique constraint violated", 1)]]
    with pytest.raises(DuplicateKeys) as raised:
        consumer.commit(messages, batch, [])
    assert raised.value.keys == {("acme", "e2")}
    # nothing was written and nothing rolled back: the worker rebuilds and commits again
    assert not driver.calls("executemany", oracle_sql.INSERT_LOGS)
    assert not driver.calls("rollback")
    rebuilt, _ = batch_for(payloads, seen={("acme", "e2")})
    consumer.commit(messages, rebuilt, [])
    assert len(driver.calls("executemany", oracle_sql.INSERT_DEDUPE)) == 1
    assert driver.sequence()[-1] == "commit"


def test_a_dead_session_during_commit_is_replaced(driver: Driver, store: OracleStore) -> None:
    payloads = [event("HEARTBEAT", "e1")]
    driver.messages = [[driver.dequeued(payloads[0], b"m1")]]
    consumer = store.consumer()
    messages = consumer.fetch(10, 0)
    consumer.claim_keys([("acme", "e1")])
    batch, _ = batch_for(payloads)
    dead = oracledb.DatabaseError(ora(3113, "end-of-file on communication channel"))
    driver.fail[oracle_sql.INSERT_STATUS_STAGE] = [dead]
    with pytest.raises(StoreError, match="batch commit failed"):
        consumer.commit(messages, batch, [])
    # the server rolled the session's transaction back as it died: the connection is dropped, not reused
    driver.connections[0].close.assert_called_once_with()
    consumer.fetch(10, 0)
    assert len(driver.connections) == 2


def test_vpd_consumer_works_in_the_service_context(driver: Driver, store: OracleStore) -> None:
    driver.rows[oracle_sql.VPD_INSTALLED] = [[(1,)]]
    store.consumer().fetch(1, 0)
    assert driver.sequence()[:3] == [
        "execute:ALTER SESSION SET",
        "execute:SELECT COUNT(*) FROM",
        "callproc:sentinel_ctx_pkg.set_service_scope",
    ]


# -- the status merge is the SQLite upsert, word for word ------------------------------------------------


def test_merge_applies_exactly_the_sqlite_upsert_rules() -> None:
    """SPEC section 3 lives in two SQL texts; after renaming (s. = excluded., t. = the stored row,
    GREATEST = MAX, the staged terminal_status = excluded.status) they must be the same text, so a
    change to one that is not made to the other fails here."""
    from sentinel.store.sqlite import UPSERT_STATUS

    def words(text: str) -> str:
        return " ".join(text.split())

    sqlite_set = words(UPSERT_STATUS.split("DO UPDATE SET", 1)[1])
    merge_set = oracle_sql.MERGE_STATUS.split("WHEN MATCHED THEN UPDATE SET", 1)[1].split("WHEN NOT MATCHED", 1)[0]
    merge_set = merge_set.replace("s.terminal_status", "excluded.status").replace("GREATEST(", "MAX(")
    merge_set = words(re.sub(r"\bt\.", "", re.sub(r"\bs\.", "excluded.", merge_set)))
    assert merge_set == sqlite_set
    # and a new process is inserted with the same columns
    sqlite_columns = words(UPSERT_STATUS.split("INSERT INTO processes (", 1)[1].split(")", 1)[0])
    merge_columns = words(oracle_sql.MERGE_STATUS.split("WHEN NOT MATCHED THEN INSERT (", 1)[1].split(")", 1)[0])
    assert merge_columns == sqlite_columns
    assert "COALESCE(s.terminal_status, 'RUNNING')" in oracle_sql.MERGE_STATUS


# -- producers ------------------------------------------------------------------------------------------


def test_enqueue_sends_raw_messages_with_priorities_in_one_transaction(driver: Driver, store: OracleStore) -> None:
    assert store.enqueue([b'{"a":1}', b'{"b":2}'], [1, 6]) == 2
    conn = driver.connections[0]
    assert conn.msgproperties.call_args_list == [
        mock.call(payload=b'{"a":1}', priority=1),
        mock.call(payload=b'{"b":2}', priority=6),
    ]
    (sent,) = driver.queue.enqmany.call_args.args
    assert [(m.payload, m.priority) for m in sent] == [(b'{"a":1}', 1), (b'{"b":2}', 6)]
    assert driver.sequence() == ["commit"]
    driver.pool.release.assert_called_once_with(conn)


def test_enqueue_refuses_an_oversized_payload_before_sending_anything(driver: Driver, store: OracleStore) -> None:
    from sentinel._core._shared import MAX_EVENT_BYTES

    fits = b"x" * MAX_EVENT_BYTES
    with pytest.raises(ValueError, match=f"event 1: {MAX_EVENT_BYTES + 1} bytes"):
        store.enqueue([fits, fits + b"x", b"{}"], [5, 5, 5])
    assert not driver.connections  # nothing sent, no connection taken
    assert store.enqueue([fits], [5]) == 1


def test_enqueue_in_thick_mode_sends_one_at_a_time(driver: Driver, tmp_path: Path) -> None:
    with mock.patch.object(oracledb, "is_thin_mode", autospec=True, return_value=False):
        store = OracleStore(make_settings(tmp_path, oracle_thick_mode=True))
    store.enqueue([b"{}", b"{}"], [5, 5])
    assert driver.queue.enqone.call_count == 2
    driver.queue.enqmany.assert_not_called()


# -- readers: the tenant is a bind, never text -------------------------------------------------------------

TENANT = "acme' OR '1'='1"


def status_row(**values: Any) -> tuple[Any, ...]:
    base = dict.fromkeys(PROCESS_COLUMNS)
    base.update(
        tenant_id=TENANT,
        process_id="p1",
        status="RUNNING",
        last_seen_at=NOW,
        event_count=1,
        log_count=0,
        metadata='{"k": "v"}',
    )
    base.update(values)
    return tuple(base[c] for c in PROCESS_COLUMNS) + (None,) * EXTRA_COUNT  # no baseline


def assert_bound(call: Call, tenant: str = TENANT) -> None:
    assert call.params["tenant_id"] == tenant
    assert tenant not in (call.sql or "")
    assert "acme" not in (call.sql or "")
    assert call.kwargs == {"fetch_lobs": False}  # CLOBs come back as str


def test_get_status_binds_the_tenant(driver: Driver, store: OracleStore) -> None:
    driver.rows[GET_STATUS_WITH_BASELINES] = [[status_row()]]
    doc = store.get_status(TENANT, "p1")
    assert doc is not None
    assert doc.tenant_id == TENANT
    assert doc.metadata == msgspec.Raw(b'{"k": "v"}')
    (query,) = driver.calls("execute", GET_STATUS_WITH_BASELINES)
    assert_bound(query)
    assert query.params == {"tenant_id": TENANT, "process_id": "p1"}
    driver.rows[GET_STATUS_WITH_BASELINES] = [[]]
    assert store.get_status(TENANT, "nope") is None


def test_list_processes_binds_every_filter(driver: Driver, store: OracleStore) -> None:
    query = ProcessQuery(
        statuses=("RUNNING", "FAILED"),
        process_type="ETL",
        package_name="PKG",
        updated_since=5,
        after=(NOW, "p9"),
        limit=20,
    )
    store.list_processes(TENANT, query)
    (query,) = [c for c in driver.calls("execute") if c.sql and oracle_sql.SELECT_PROCESS in c.sql]
    assert_bound(query)
    assert query.params == {
        "tenant_id": TENANT,
        "status_0": "RUNNING",
        "status_1": "FAILED",
        "process_type": "ETL",
        "package_name": "PKG",
        "updated_since": 5,
        "after_seen": NOW,
        "after_id": "p9",
        "limit": 20,
    }
    assert "ORDER BY last_seen_at DESC, process_id FETCH FIRST :limit ROWS ONLY" in (query.sql or "")
    # every name bound in the text has a value, and nothing else is passed
    assert set(re.findall(r":(\w+)", query.sql or "")) == set(query.params)


def test_search_and_counts_bind_the_tenant_and_every_filter(driver: Driver, store: OracleStore) -> None:
    store.list_processes(TENANT, ProcessQuery(search="Nightly_100%", limit=5))
    (listing,) = [c for c in driver.calls("execute") if c.sql and oracle_sql.SELECT_PROCESS in c.sql]
    assert_bound(listing)
    assert listing.params == {"tenant_id": TENANT, "search": "nightly_100%", "limit": 5}
    assert "INSTR(LOWER(process_id), :search) > 0" in (listing.sql or "")
    count_sql = "SELECT status, COUNT(*) FROM sentinel_processes"
    driver.rows[count_sql] = [[("RUNNING", 3), ("FAILED", 1)]]
    counts = store.count_processes(
        TENANT, ProcessQuery(statuses=("FAILED",), process_type="ETL", package_name="PKG", search="x", limit=9)
    )
    assert counts == {"RUNNING": 3, "FAILED": 1}
    (counting,) = [c for c in driver.calls("execute") if c.sql and c.sql.startswith(count_sql)]
    assert_bound(counting)
    # The status filter, the cursor and the limit are not part of a count.
    assert counting.params == {"tenant_id": TENANT, "process_type": "ETL", "package_name": "PKG", "search": "x"}
    assert (counting.sql or "").endswith("GROUP BY status")
    assert set(re.findall(r":(\w+)", counting.sql or "")) == set(counting.params)


def test_stack_trace_binds_the_tenant(driver: Driver, store: OracleStore) -> None:
    driver.rows[oracle_sql.STACK_TRACE] = [[("Traceback",)], []]
    assert store.stack_trace(TENANT, "p1") == "Traceback"
    assert store.stack_trace(TENANT, "nope") is None
    first, _ = driver.calls("execute", oracle_sql.STACK_TRACE)
    assert_bound(first)
    assert first.params == {"tenant_id": TENANT, "process_id": "p1"}


@pytest.mark.parametrize(("changed_after", "bound"), [("", {}), ("p4", {"changed_after": "p4"})])
def test_list_processes_walk_parts_bind_the_snapshot(
    driver: Driver, store: OracleStore, changed_after: str, bound: dict[str, str]
) -> None:
    """Part 1 of a paged walk reads the processes unchanged since its snapshot; part 2 the changed ones by
    process_id (from the start: no '' bound, which Oracle would read as NULL)."""
    store.list_processes(TENANT, ProcessQuery(snapshot=NOW, after=(NOW, "p9"), limit=5))
    store.list_processes(TENANT, ProcessQuery(snapshot=NOW, changed_after=changed_after, limit=5))
    driver.rows[oracle_sql.PROCESS_SNAPSHOT] = [[(NOW,)]]
    assert store.process_snapshot(TENANT) == NOW
    first, second = [c for c in driver.calls("execute") if c.sql and oracle_sql.SELECT_PROCESS in c.sql]
    assert "updated_at <= :snapshot" in (first.sql or "")
    assert first.params == {"tenant_id": TENANT, "snapshot": NOW, "after_seen": NOW, "after_id": "p9", "limit": 5}
    assert "updated_at > :snapshot" in (second.sql or "")
    assert "ORDER BY process_id FETCH FIRST :limit ROWS ONLY" in (second.sql or "")
    assert (second.sql or "").endswith("ORDER BY p.process_id")
    assert second.params == {"tenant_id": TENANT, "snapshot": NOW, "limit": 5, **bound}
    for call in (first, second):
        assert set(re.findall(r":(\w+)", call.sql or "")) == set(call.params)
    (snap,) = driver.calls("execute", oracle_sql.PROCESS_SNAPSHOT)
    assert snap.params == {"tenant_id": TENANT}


def test_list_logs_and_logs_after_bind_the_tenant(driver: Driver, store: OracleStore) -> None:
    row = (7, NOW, 2, None, '{"d": 1}', "etl", None, None, None, 15)
    driver.rows[oracle_sql.SELECT_LOG] = [[row]]
    (entry,) = store.list_logs(TENANT, "p1", LogQuery(min_level=2, since=1, after=(NOW, 3), limit=10))
    assert entry.message == ""  # Oracle keeps '' as NULL
    assert (entry.seq, entry.level, entry.duration_us) == (7, "INFO", 15)
    store.logs_after(TENANT, "p1", 6, 50)
    first, second = [c for c in driver.calls("execute") if c.sql and c.sql.startswith(oracle_sql.SELECT_LOG)]
    assert_bound(first)
    assert first.params == {
        "tenant_id": TENANT,
        "process_id": "p1",
        "min_level": 2,
        "since": 1,
        "after_ts": NOW,
        "after_seq": 3,
        "limit": 10,
    }
    assert "log_level >= :min_level" in (first.sql or "")
    assert_bound(second)
    assert second.params == {"tenant_id": TENANT, "process_id": "p1", "after_seq": 6, "limit": 50}


def test_dead_letters_read(driver: Driver, store: OracleStore) -> None:
    driver.rows[oracle_sql.DEAD_LETTERS] = [[(1, "invalid_json", "bad", None, None, NOW)]]
    (letter,) = store.dead_letters(0, 10)
    assert letter.payload == ""  # an empty payload is NULL in Oracle
    driver.rows[oracle_sql.COUNT_DEAD_LETTERS] = [[(1,)], [(1,)]]
    driver.rows[oracle_sql.RECENT_DEAD_LETTERS] = [[(9, "bad_event_type", "bad", b"{}", None, NOW)], []]
    _, (newest,) = store.recent_dead_letters(10)
    assert (newest.id, newest.payload) == (9, "{}")
    assert store.recent_dead_letters(10, before_id=9) == (1, [])
    first, second = driver.calls("execute", oracle_sql.RECENT_DEAD_LETTERS)
    assert first.params == {"since": -(2**63) + 1, "before_id": 2**63 - 1, "limit": 10}
    assert second.params == {"since": -(2**63) + 1, "before_id": 9, "limit": 10}
    assert "ORDER BY id DESC" in oracle_sql.RECENT_DEAD_LETTERS


def test_recent_dead_letters_read(driver: Driver, store: OracleStore) -> None:
    driver.rows[oracle_sql.COUNT_DEAD_LETTERS] = [[(7,)]]
    driver.rows[oracle_sql.RECENT_DEAD_LETTERS] = [[(9, "invalid_json", "bad", b"{", None, NOW)]]
    total, (letter,) = store.recent_dead_letters(1, 123)
    assert (total, letter.id, letter.payload) == (7, 9, "{")


# -- VPD: the tenant in the database around each use of a pooled connection ----------------------------


def test_vpd_tenant_is_set_and_cleared_around_each_read(driver: Driver, store: OracleStore) -> None:
    driver.rows[oracle_sql.VPD_INSTALLED] = [[(1,)]]
    store.get_status("acme", "p1")
    store.get_status("globex", "p1")
    assert (
        driver.sequence()
        == [
            "execute:SELECT COUNT(*) FROM",  # asked once
            "callproc:sentinel_ctx_pkg.set_tenant",
            f"execute:{' '.join(GET_STATUS_WITH_BASELINES.split()[:3])}",
            "callproc:sentinel_ctx_pkg.clear_context",
            "callproc:sentinel_ctx_pkg.set_tenant",
            f"execute:{' '.join(GET_STATUS_WITH_BASELINES.split()[:3])}",
            "callproc:sentinel_ctx_pkg.clear_context",
        ]
    )
    assert [c.params for c in driver.calls("callproc") if c.sql == oracle_sql.SET_TENANT] == [["acme"], ["globex"]]
    assert driver.pool.release.call_count == 2
    driver.pool.drop.assert_not_called()


def test_vpd_housekeeping_uses_the_service_context(driver: Driver, store: OracleStore) -> None:
    driver.rows[oracle_sql.VPD_INSTALLED] = [[(1,)]]
    driver.rows[oracle_sql.FIND_QUEUE] = [[("SENTINEL", "SENTINEL_QUEUE_TAB")]]
    sweep = oracle_sql.MARK_STALLED.format(view='"SENTINEL"."AQ$SENTINEL_QUEUE_TAB"')
    driver.rowcounts[sweep] = [4]
    assert store.mark_stalled(NOW, NOW + 5) == 4
    assert driver.sequence() == [
        "execute:SELECT COUNT(*) FROM",
        "callproc:sentinel_ctx_pkg.set_service_scope",
        "execute:SELECT owner, queue_table",
        "execute:UPDATE sentinel_processes p",
        "commit",
        "callproc:sentinel_ctx_pkg.clear_context",
    ]
    # The sweep leaves alone every process whose event may still wait in the queue (SPEC section 3).
    assert driver.calls("execute", sweep)[0].params == {
        "now": NOW + 5,
        "idle_before": NOW,
        "idle_before_ts": from_us(NOW).replace(tzinfo=None),
        "queue": "SENTINEL_QUEUE",
    }


def test_vpd_context_is_cleared_after_a_failed_query(driver: Driver, store: OracleStore) -> None:
    driver.rows[oracle_sql.VPD_INSTALLED] = [[(1,)]]
    driver.fail[GET_STATUS_WITH_BASELINES] = [oracledb.DatabaseError(ora(1013, "user requested cancel"))]
    with pytest.raises(StoreError, match="ORA-01013"):
        store.get_status("acme", "p1")
    assert driver.sequence()[-1] == "callproc:sentinel_ctx_pkg.clear_context"
    driver.pool.release.assert_called_once()


def test_a_connection_whose_context_cannot_be_cleared_leaves_the_pool(driver: Driver, store: OracleStore) -> None:
    driver.rows[oracle_sql.VPD_INSTALLED] = [[(1,)]]
    original = driver.cursor

    def cursor(conn: Any) -> Any:
        cur = original(conn)
        real = cur.callproc.side_effect

        def callproc(name: str, parameters: Any = None, *args: Any, **kwargs: Any) -> None:
            real(name, parameters)
            if name == oracle_sql.CLEAR_CONTEXT:
                raise oracledb.DatabaseError(ora(4068, "existing state of packages has been discarded"))

        cur.callproc.side_effect = callproc
        return cur

    driver.cursor = cursor  # type: ignore[method-assign]
    store.get_status("acme", "p1")
    driver.pool.drop.assert_called_once()
    driver.pool.release.assert_not_called()


def test_without_vpd_no_context_calls(driver: Driver, store: OracleStore) -> None:
    store.get_status("acme", "p1")
    assert not driver.calls("callproc")


# -- housekeeping -----------------------------------------------------------------------------------------


def test_purge_drops_whole_old_days_then_deletes_the_rest(driver: Driver, store: OracleStore) -> None:
    day = oracle_sql.DAY_US
    old = 20_000 * day + 123
    cutoff = 20_002 * day + 5
    driver.rows[oracle_sql.OLDEST_LOG] = [[(old,)], [(20_002 * day,)]]
    driver.rows[oracle_sql.COUNT_LOGS_BETWEEN] = [[(40,)]]
    driver.rowcounts[oracle_sql.PURGE_LOGS] = [3]
    driver.rowcounts[oracle_sql.PURGE_DEDUPE] = [7]
    assert store.purge(cutoff, NOW) == (43, 7)
    (count,) = driver.calls("execute", oracle_sql.COUNT_LOGS_BETWEEN)
    assert count.params == {"low": 20_000 * day, "high": 20_001 * day}
    drops = [c.sql for c in driver.calls("execute") if c.sql and "DROP PARTITION" in c.sql]
    assert drops == [f"ALTER TABLE sentinel_logs DROP PARTITION FOR ({20_000 * day}) UPDATE INDEXES"]
    assert driver.calls("execute", oracle_sql.PURGE_LOGS)[0].params == {"before": cutoff, "chunk": 5000}


def test_purge_on_a_table_without_partitions_deletes_rows(driver: Driver, store: OracleStore) -> None:
    """002 on an edition without the Partitioning option: the first DROP PARTITION says so (ORA-14501)
    and retention is the chunked delete alone from then on."""
    day = oracle_sql.DAY_US
    driver.rows[oracle_sql.OLDEST_LOG] = [[(20_000 * day,)]]
    driver.rows[oracle_sql.COUNT_LOGS_BETWEEN] = [[(40,)]]
    driver.fail["DROP PARTITION"] = [oracledb.DatabaseError(ora(14501, "object is not partitioned"))]
    driver.rowcounts[oracle_sql.PURGE_LOGS] = [3]
    assert store.purge(20_005 * day, NOW) == (3, 0)
    assert store.purge(20_005 * day, NOW) == (3, 0)
    drops = [c for c in driver.calls("execute") if c.sql and "DROP PARTITION" in c.sql]
    assert len(drops) == 1  # not tried again
    assert len(driver.calls("execute", oracle_sql.OLDEST_LOG)) == 1
    assert len(driver.calls("execute", oracle_sql.PURGE_LOGS)) == 2


def test_queue_stats_counts_ready_and_delayed_messages() -> None:
    """The AQ$ view names a delayed message's state WAIT (every message in its retry_delay after a
    rolled-back batch); the backlog counts it with READY and nothing else."""
    states = re.search(r"msg_state IN \(([^)]*)\)", oracle_sql.QUEUE_STATS)
    assert states is not None
    assert [s.strip().strip("'") for s in states.group(1).split(",")] == ["READY", "WAIT"]


def test_queue_stats_reads_the_aq_view(driver: Driver, store: OracleStore) -> None:
    driver.rows[oracle_sql.FIND_QUEUE] = [[("SENTINEL", "SENTINEL_QUEUE_TAB")]]
    driver.rows['FROM "SENTINEL"."AQ$SENTINEL_QUEUE_TAB"'] = [[(3, datetime(2025, 6, 15, 12))]]
    stats = store.queue_stats()
    assert (stats.depth, stats.oldest_enqueued_at) == (3, 1_749_988_800_000_000)
    assert driver.calls("execute", oracle_sql.FIND_QUEUE)[0].params == {"name": "SENTINEL_QUEUE", "owner": None}


def test_secret_is_created_once(driver: Driver, store: OracleStore) -> None:
    driver.rows[oracle_sql.GET_SECRET] = [[], [(b"k" * 32,)]]
    assert store.secret("hmac") == b"k" * 32
    (put,) = driver.calls("execute", oracle_sql.PUT_SECRET)
    assert put.params["name"] == "hmac"
    assert len(put.params["secret_value"]) == 32


# -- migration ----------------------------------------------------------------------------------------------


def test_plan_migration_needs_no_database() -> None:
    plan = plan_migration(SQL_DIR)
    assert [name for name, _ in plan][:1] == ["001_sentinel_types.sql"]
    assert plan[-1][0] == "007_sentinel_alerts.sql"
    assert any(sql.startswith("CREATE OR REPLACE PACKAGE BODY sentinel_pkg") for _, sql in plan)


def test_migrate_runs_every_statement_and_tolerates_existing_objects(driver: Driver, store: OracleStore) -> None:
    exists = oracledb.DatabaseError(ora(955, "name is already used by an existing object"))
    driver.fail["CREATE TABLE sentinel_processes"] = [exists]
    applied = store.migrate()
    assert applied == [p.name for p in sorted(SQL_DIR.glob("*.sql"))]
    executed = [c.sql for c in driver.calls("execute")]
    assert executed[0] == oracle_sql.CREATE_MIGRATIONS
    statements = [sql for _, sql in plan_migration(SQL_DIR)]
    assert [s for s in executed if s in statements] == statements
    assert len(driver.calls("commit")) == len(applied)  # one per script


def test_migrate_skips_recorded_scripts_and_reports_compile_errors(driver: Driver, store: OracleStore) -> None:
    from sentinel.store.oracle import load_scripts

    scripts = load_scripts(SQL_DIR)
    driver.rows[oracle_sql.APPLIED_MIGRATIONS] = [[(name, checksum) for name, checksum, _ in scripts[:3]]]
    driver.rows[oracle_sql.COMPILE_ERRORS] = [[("SENTINEL_PKG", "PACKAGE BODY", 12, 5, "PLS-00201: identifier 'X'\n")]]
    original = driver.cursor

    def cursor(conn: Any) -> Any:
        cur = original(conn)
        real = cur.execute.side_effect

        def execute(statement: str, parameters: Any = None, **kwargs: Any) -> None:
            real(statement, parameters, **kwargs)
            compiled_badly = "PACKAGE BODY" in statement
            cur.warning = ora(24344, "success with compilation error") if compiled_badly else None

        cur.execute.side_effect = execute
        return cur

    driver.cursor = cursor  # type: ignore[method-assign]
    with pytest.raises(StoreError, match="SENTINEL_PKG PACKAGE BODY 12:5 PLS-00201"):
        store.migrate()
    executed = [c.sql for c in driver.calls("execute")]
    assert not any("CREATE OR REPLACE TYPE" in (sql or "") for sql in executed)  # 001-003 were recorded


def test_migrate_skips_vpd_where_the_edition_lacks_it(driver: Driver, store: OracleStore) -> None:
    driver.fail["DBMS_RLS.ADD_POLICY"] = [
        oracledb.DatabaseError(ora(439, "feature not enabled: Fine-grained access control"))
    ]
    scripts = [p.name for p in sorted(SQL_DIR.glob("*.sql"))]
    assert store.migrate() == [name for name in scripts if "_vpd" not in name]


# -- the contract tests' entry point -------------------------------------------------------------------


def test_split_dsn() -> None:
    assert oracle_scratch.split_dsn("scott/tiger@db:1521/FREEPDB1") == ("scott", "tiger", "db:1521/FREEPDB1")
    assert oracle_scratch.split_dsn("scott/p@ss@host/svc") == ("scott", "p@ss", "host/svc")
    assert oracle_scratch.split_dsn("SENTINEL_DB") == (None, None, "SENTINEL_DB")


def test_open_test_store_migrates_and_empties(driver: Driver, tmp_path: Path) -> None:
    calls: list[str] = []

    def record(name: str) -> Any:
        return lambda _: calls.append(name)

    with (
        mock.patch.object(OracleStore, "migrate", autospec=True, side_effect=record("migrate")),
        mock.patch.object(oracle_scratch, "reset", autospec=True, side_effect=record("reset")),
    ):
        store = oracle_scratch.open_test_store("scott/tiger@localhost:1521/FREEPDB1", env={})
    assert calls == ["migrate", "reset"]
    settings = store.settings
    assert (settings.oracle_user, settings.oracle_password, settings.oracle_connect_string) == (
        "scott",
        "tiger",
        "localhost:1521/FREEPDB1",
    )
    assert settings.backend == "oracle"
    assert settings.pool_max == 4


def test_reset_empties_tables_and_queue(driver: Driver, store: OracleStore) -> None:
    driver.rows[oracle_sql.FIND_QUEUE] = [[("SENTINEL", "SENTINEL_QUEUE_TAB")]]
    oracle_scratch.reset(store)
    executed = [c.sql for c in driver.calls("execute")]
    truncated = [sql for sql in executed if sql and sql.startswith("TRUNCATE")]
    assert truncated == [f"TRUNCATE TABLE {table}" for table in oracle_scratch.TABLES]
    purge = driver.calls("execute", oracle_scratch.PURGE_QUEUE_TABLE)[0]
    assert purge.params == {"queue_table": "SENTINEL.SENTINEL_QUEUE_TAB"}
    assert driver.calls("execute", oracle_scratch.NO_RETRY_DELAY)[0].params == {"queue_name": "SENTINEL_QUEUE"}


def test_the_consumer_and_store_satisfy_the_protocols(store: OracleStore) -> None:
    from sentinel.store.base import Consumer, Store

    assert isinstance(store, Store)
    assert isinstance(store.consumer(), Consumer)
