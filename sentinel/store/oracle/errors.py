"""python-oracledb's errors as the adapter reads them, the ORA- codes it acts on, and the driver floor."""

from __future__ import annotations

import re
from typing import Any, Final

import oracledb

from sentinel.config import SettingsError
from sentinel.store.base import StoreError

# The oldest python-oracledb with everything this adapter calls: thin-mode AQ (3.0.0) with
# Queue.deqmany / enqmany (3.1.0; DPY-3001 before), and Cursor.execute(..., fetch_lobs=False) (3.4.0;
# before it the keyword is taken as a bind and every read fails with DPY-2005). pyproject.toml's
# "oracledb>=" says the same (tests/test_oracle_adapter.py checks both, and the installed driver).
DRIVER_FLOOR: Final = "3.4.0"

# ORA- codes
UNIQUE_VIOLATION: Final = 1
DEADLOCK: Final = 60
FEATURE_NOT_ENABLED: Final = 439
NOT_PARTITIONED: Final = 14501  # object is not partitioned (002 on an edition without Partitioning)


def driver_release(version: str) -> tuple[int, ...]:
    """``"26.1.0"`` -> ``(26, 1, 0)``; a pre-release counts as its release."""
    return tuple(int(part) for part in re.findall(r"\d+", version)[:3])


class DriverTooOld(StoreError, SettingsError):
    """The installed python-oracledb is older than ``DRIVER_FLOOR``: a store error that the command
    line reports as one line, as it does a bad setting."""


def check_driver(version: str | None = None) -> None:
    """Refuse a python-oracledb older than ``DRIVER_FLOOR`` with one line, before anything fails
    half-way through a batch."""
    version = version or oracledb.__version__
    if driver_release(version) < driver_release(DRIVER_FLOOR):
        raise DriverTooOld(
            f"oracle: python-oracledb {version} is too old; Sentinel needs {DRIVER_FLOOR} or later"
            f" (pip install 'oracledb>={DRIVER_FLOOR}')"
        )


def _error(exc: BaseException) -> Any:
    """The driver's error object of an ``oracledb.Error`` (``code``, ``message``, ``offset``...)."""
    return exc.args[0] if exc.args else None


def error_code(exc: BaseException) -> int:
    return int(getattr(_error(exc), "code", 0) or 0)


def error_message(exc: BaseException) -> str:
    return str(getattr(_error(exc), "message", None) or exc).strip()


def session_dead(exc: BaseException) -> bool:
    return bool(getattr(_error(exc), "is_session_dead", False))
