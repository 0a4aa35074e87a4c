"""Connections: the pool, the consumer's dedicated connection, and the tenant context (VPD).

Thin mode by default; thick mode with ``SENTINEL_ORACLE_THICK_MODE``. When ``005_sentinel_vpd.sql`` is
installed, a pooled connection is limited to the caller's tenant (``sentinel_ctx_pkg``) while in use
and cleared before it goes back.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from typing import Any, Final

import oracledb

from sentinel.config import Settings
from sentinel.models import to_us
from sentinel.store.base import StoreError
from sentinel.store.oracle import sql
from sentinel.store.oracle.errors import error_message, session_dead

log = logging.getLogger(__name__)

POOL_PING_INTERVAL_SEC: Final = 60  # ping a pooled connection idle this long before handing it out
POOL_IDLE_TIMEOUT_SEC: Final = 300  # close surplus idle pooled connections after this
POOL_WAIT_TIMEOUT_MS: Final = 10_000  # an exhausted pool fails an acquire after this, not never


def connect_params(settings: Settings) -> dict[str, Any]:
    """Arguments of ``oracledb.connect`` (and, with the pool sizes, ``oracledb.create_pool``).

    Thin mode: ``ORACLE_WALLET_LOCATION`` is both ``config_dir`` (tnsnames.ora, so the connect string
    may be a TNS alias) and ``wallet_location`` (ewallet.pem, unlocked by ``ORACLE_WALLET_PASSWORD``).
    Thick mode reads the wallet directory through ``init_oracle_client(config_dir=...)`` and its
    sqlnet.ora (cwallet.sso); without ``ORACLE_USER`` it authenticates with the wallet's stored
    credentials (external authentication)."""
    if not settings.oracle_connect_string:
        raise StoreError("ORACLE_CONNECT_STRING: required for the oracle backend")
    params: dict[str, Any] = {"dsn": settings.oracle_connect_string}
    if settings.oracle_user:
        params["user"] = settings.oracle_user
    if settings.oracle_password:
        params["password"] = settings.oracle_password
    wallet = str(settings.oracle_wallet_location) if settings.oracle_wallet_location else None
    if settings.oracle_thick_mode:
        if not settings.oracle_user:
            params["externalauth"] = True
    elif wallet is not None:
        params["config_dir"] = wallet
        params["wallet_location"] = wallet
        if settings.oracle_wallet_password:
            params["wallet_password"] = settings.oracle_wallet_password
    return params


def pool_params(settings: Settings) -> dict[str, Any]:
    params = connect_params(settings)
    params.update(
        min=settings.pool_min,
        max=settings.pool_max,
        increment=1,
        getmode=oracledb.POOL_GETMODE_TIMEDWAIT,
        wait_timeout=POOL_WAIT_TIMEOUT_MS,
        timeout=POOL_IDLE_TIMEOUT_SEC,
        ping_interval=POOL_PING_INTERVAL_SEC,
        session_callback=init_session,
    )
    if params.get("externalauth"):
        params["homogeneous"] = False  # thick mode requires it for external authentication
    return params


def init_thick_mode(settings: Settings) -> None:
    """Load the Oracle Client libraries once per process (``SENTINEL_ORACLE_THICK_MODE``)."""
    if oracledb.is_thin_mode():
        wallet = settings.oracle_wallet_location
        oracledb.init_oracle_client(config_dir=str(wallet) if wallet else None)


def init_session(conn: oracledb.Connection, requested_tag: str | None = None) -> None:
    """Per-session settings, run on every new connection (the pool's ``session_callback``)."""
    with conn.cursor() as cursor:
        cursor.execute(sql.SESSION_UTC)


def utc_us(moment: datetime | None) -> int | None:
    """A naive datetime the session produced in UTC (see ``init_session``) as microseconds."""
    return None if moment is None else to_us(moment.replace(tzinfo=UTC))


class Connections:
    """The pool (opened on first use), dedicated connections, and the tenant context around each use."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._pool: oracledb.ConnectionPool | None = None
        self._lock = threading.Lock()
        self._vpd: bool | None = None  # whether 005_sentinel_vpd.sql is installed (asked once)

    @property
    def pool(self) -> oracledb.ConnectionPool:
        with self._lock:
            if self._pool is None:
                try:
                    self._pool = oracledb.create_pool(**pool_params(self.settings))
                except oracledb.Error as exc:
                    raise StoreError(f"oracle: cannot create the connection pool: {error_message(exc)}") from exc
            return self._pool

    def connect(self) -> oracledb.Connection:
        """A dedicated connection outside the pool (the ingest consumer's), set up like pooled ones."""
        try:
            conn = oracledb.connect(**connect_params(self.settings))
            init_session(conn)
        except oracledb.Error as exc:
            raise StoreError(f"oracle: cannot connect: {error_message(exc)}") from exc
        return conn

    def vpd_installed(self, conn: oracledb.Connection) -> bool:
        if self._vpd is None:
            with conn.cursor() as cursor:
                cursor.execute(sql.VPD_INSTALLED)
                row = cursor.fetchone()
            self._vpd = bool(row and row[0])
        return self._vpd

    def forget_vpd(self) -> None:
        """Ask again whether VPD is installed (after a migration, which may have installed it)."""
        self._vpd = None

    @contextmanager
    def connection(self, tenant_id: str | None = None, *, tenant_context: bool = True) -> Iterator[oracledb.Connection]:
        """A pooled connection for the duration of the block; driver errors become ``StoreError``.

        With VPD installed and ``tenant_context``, the session's tenant context is set to ``tenant_id``
        (``None``: the service context of ingest and housekeeping, across tenants) while in use, and
        cleared before it goes back to the pool; a connection that cannot be cleared is dropped from the
        pool instead."""
        pool = self.pool
        try:
            conn = pool.acquire()
        except oracledb.Error as exc:
            raise StoreError(f"oracle: no connection: {error_message(exc)}") from exc
        context_set = False
        healthy = True
        try:
            if tenant_context and self.vpd_installed(conn):
                with conn.cursor() as cursor:
                    context_set = True
                    if tenant_id is None:
                        cursor.callproc(sql.SET_SERVICE_CONTEXT)
                    else:
                        cursor.callproc(sql.SET_TENANT, [tenant_id])
            yield conn
        except oracledb.Error as exc:
            healthy = not session_dead(exc)
            raise StoreError(f"oracle: {error_message(exc)}") from exc
        finally:
            self._give_back(pool, conn, context_set=context_set, healthy=healthy)

    @staticmethod
    def _give_back(
        pool: oracledb.ConnectionPool, conn: oracledb.Connection, *, context_set: bool, healthy: bool
    ) -> None:
        if healthy and context_set:
            try:
                with conn.cursor() as cursor:
                    cursor.callproc(sql.CLEAR_CONTEXT)
            except oracledb.Error:
                healthy = False
        try:
            if healthy:
                pool.release(conn)
            else:
                pool.drop(conn)
        except oracledb.Error:
            log.warning("oracle: could not return a connection to the pool", exc_info=True)

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            with suppress(oracledb.Error):
                pool.close(force=True)

    def stats(self) -> tuple[int, int]:
        """(busy, open) connections of the pool, for the ``sentinel_db_pool_connections`` gauge."""
        pool = self._pool
        if pool is None:
            return 0, 0
        return int(pool.busy), int(pool.opened)
