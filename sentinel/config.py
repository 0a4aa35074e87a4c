"""Settings, read once from the environment (SPEC section 5).

A bad value raises :class:`SettingsError` whose message is one line naming the variable and what it
expected; the CLI prints that line and exits, so a misconfigured pod fails fast and says why.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, TypeVar

Backend = Literal["sqlite", "oracle"]

T = TypeVar("T")


class SettingsError(ValueError):
    """A setting is missing or malformed; ``str(err)`` is the one line to show the operator."""


@dataclass(frozen=True, slots=True)
class Settings:
    backend: Backend = "sqlite"
    data_dir: Path = Path("./sentinel-data")
    oracle_connect_string: str | None = None
    oracle_wallet_location: Path | None = None
    oracle_user: str | None = None
    oracle_password: str | None = field(default=None, repr=False)
    oracle_wallet_password: str | None = field(default=None, repr=False)
    oracle_thick_mode: bool = False
    listen_address: str = "0.0.0.0"  # noqa: S104 - a container service listens on all interfaces
    listen_port: int = 8080
    worker_threads: int = 4
    pool_min: int = 5
    pool_max: int = 20
    oauth2_issuer: str | None = None
    oauth2_audience: str | None = None
    oauth2_jwk_set_uri: str | None = None
    tenant_claim: str = "tenant_id"
    ingest_role: str = "sentinel-ingest"
    admin_role: str = "sentinel-admin"  # the dashboard's dead-letter view (the platform's, not a tenant's)
    ui_client_id: str | None = None  # the dashboard's public OIDC client (Authorization Code + PKCE)
    ui_scopes: str = "openid"
    queue_name: str = "SENTINEL_QUEUE"
    batch_size: int = 1000
    flush_interval_ms: int = 50
    heartbeat_timeout_sec: int = 120
    log_retention_days: int = 30
    max_body_bytes: int = 1_048_576
    drain_sec: float = 0.0
    # Connections (section "Connections and streams" of the README): every open connection holds one
    # of a Granian worker's ``http_max_connections`` slots, so none may stay open for free.
    http_max_connections: int = 2048
    http_header_timeout_sec: float = 10.0
    http_body_timeout_sec: float = 15.0
    sse_max_streams: int = 256
    sse_max_streams_per_tenant: int = 32
    sse_keepalive_sec: float = 15.0
    ingest_stall_sec: float = 30.0
    dev_mode: bool = False
    runtime_dir: Path | None = None  # set by ``sentinel serve`` for its children: drain flag, locks
    # Baselines and alerts (sentinel.baselines, sentinel.alerts)
    baseline_window: int = 100
    slow_factor: float = 1.5
    slow_min_runs: int = 5
    alert_admin_role: str = "sentinel-admin"
    alert_rules_file: Path | None = None
    alert_allow_private_targets: bool = False
    alert_max_attempts: int = 10
    alert_retry_base_sec: float = 2.0
    alert_retry_max_sec: float = 300.0
    alert_timeout_sec: float = 5.0
    alertmanager_repost_sec: float = 60.0

    @property
    def sqlite_path(self) -> Path:
        return self.data_dir / "sentinel.db"

    @property
    def ingest_lock_path(self) -> Path:
        """Held by the running ingest consumer: one per embedded database, one per Oracle pod."""
        if self.backend == "sqlite" or self.runtime_dir is None:
            return self.data_dir / "ingest.lock"
        return self.runtime_dir / "ingest.lock"

    @property
    def ingest_progress_path(self) -> Path:
        """Touched by the running consumer whenever it has caught up or committed a batch; /ready reads
        its age (a frozen or stuck consumer cannot say so itself)."""
        return self.ingest_lock_path.with_name("ingest.progress")

    @property
    def drain_flag_path(self) -> Path | None:
        return None if self.runtime_dir is None else self.runtime_dir / "draining"

    @property
    def http_workers(self) -> int:
        """Granian workers: the threads budget minus the one ingest consumer, at least one."""
        return max(1, self.worker_threads - 1)


def _text(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name)
    if value is None:
        return None
    value = value.strip()
    return value or None


def _int(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = _text(env, name)
    if raw is None:
        return default
    try:
        value = int(raw, 10)
    except ValueError:
        raise SettingsError(f"{name}: expected an integer from {low} to {high}, got {raw!r}") from None
    if not low <= value <= high:
        raise SettingsError(f"{name}: expected an integer from {low} to {high}, got {value}")
    return value


def _float(env: Mapping[str, str], name: str, default: float, low: float, high: float) -> float:
    raw = _text(env, name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name}: expected a number from {low:g} to {high:g}, got {raw!r}") from None
    if not low <= value <= high:
        raise SettingsError(f"{name}: expected a number from {low:g} to {high:g}, got {raw}")
    return value


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = _text(env, name)
    if raw is None:
        return default
    lowered = raw.lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise SettingsError(f"{name}: expected true or false, got {raw!r}")


def _choice(env: Mapping[str, str], name: str, default: str, choices: tuple[str, ...]) -> str:
    raw = _text(env, name)
    if raw is None:
        return default
    if raw.lower() not in choices:
        raise SettingsError(f"{name}: expected one of {', '.join(choices)}, got {raw!r}")
    return raw.lower()


def _url(env: Mapping[str, str], name: str) -> str | None:
    raw = _text(env, name)
    if raw is not None and not raw.startswith(("https://", "http://")):
        raise SettingsError(f"{name}: expected an http(s) URL, got {raw!r}")
    return raw


def _identifier(env: Mapping[str, str], name: str, default: str, check: Callable[[str], bool]) -> str:
    raw = _text(env, name)
    if raw is None:
        return default
    if not check(raw):
        raise SettingsError(f"{name}: expected a plain name (letters, digits, '_', '.', '$', '-'), got {raw!r}")
    return raw


def _existing_file(env: Mapping[str, str], name: str) -> Path | None:
    raw = _text(env, name)
    if raw is not None and not Path(raw).is_file():
        raise SettingsError(f"{name}: expected an existing file, got {raw!r}")
    return Path(raw) if raw is not None else None


def _plain_name(value: str) -> bool:
    return 0 < len(value) <= 128 and all(c.isalnum() or c in "_.$-" for c in value)


def _ui_client_id(env: Mapping[str, str]) -> str | None:
    raw = _text(env, "SENTINEL_UI_CLIENT_ID")
    if raw is not None and not (len(raw) <= 200 and raw.isprintable() and " " not in raw):
        raise SettingsError(f"SENTINEL_UI_CLIENT_ID: expected a client id without spaces, got {raw!r}")
    return raw


def _ui_scopes(env: Mapping[str, str]) -> str:
    scopes = (_text(env, "SENTINEL_UI_SCOPES") or "openid").split()
    if "openid" not in scopes or not all(_plain_name(s.replace(":", "_").replace("/", "_")) for s in scopes):
        raise SettingsError(
            f"SENTINEL_UI_SCOPES: expected space-separated scopes including openid, got {' '.join(scopes)!r}"
        )
    return " ".join(scopes)


def load_settings(env: Mapping[str, str] | None = None, *, dev_mode: bool | None = None) -> Settings:
    """Read and check every setting; the first bad one raises :class:`SettingsError`."""
    env = os.environ if env is None else env
    connect = _text(env, "ORACLE_CONNECT_STRING")
    backend = _choice(env, "SENTINEL_BACKEND", "oracle" if connect else "sqlite", ("sqlite", "oracle"))
    if backend == "oracle" and connect is None:
        raise SettingsError("ORACLE_CONNECT_STRING: required when SENTINEL_BACKEND is oracle")
    wallet = _text(env, "ORACLE_WALLET_LOCATION")
    if wallet is not None and not Path(wallet).is_dir():
        raise SettingsError(f"ORACLE_WALLET_LOCATION: expected an existing directory, got {wallet!r}")
    pool_min = _int(env, "POOL_MIN_CONNECTIONS", 5, 0, 1000)
    pool_max = _int(env, "POOL_MAX_CONNECTIONS", 20, 1, 1000)
    if pool_max < pool_min:
        raise SettingsError(
            f"POOL_MAX_CONNECTIONS: expected at least POOL_MIN_CONNECTIONS ({pool_min}), got {pool_max}"
        )
    port = _int(env, "SENTINEL_LISTEN_PORT", 8080, 0, 65535)
    listen_address = _text(env, "SENTINEL_LISTEN_ADDRESS") or "0.0.0.0"  # noqa: S104
    try:
        ipaddress.ip_address(listen_address)
    except ValueError:
        raise SettingsError(
            f"SENTINEL_LISTEN_ADDRESS: expected an IP address such as 0.0.0.0 or ::1, got {listen_address!r}"
        ) from None
    max_connections = _int(env, "SENTINEL_HTTP_MAX_CONNECTIONS", 2048, 16, 1_000_000)
    max_streams = _int(env, "SENTINEL_SSE_MAX_STREAMS", 256, 1, 1_000_000)
    if max_streams >= max_connections:
        raise SettingsError(
            f"SENTINEL_SSE_MAX_STREAMS: expected fewer than SENTINEL_HTTP_MAX_CONNECTIONS ({max_connections}) "
            f"so other requests keep a connection, got {max_streams}"
        )
    max_tenant_streams = _int(env, "SENTINEL_SSE_MAX_STREAMS_PER_TENANT", 32, 1, 1_000_000)
    if max_tenant_streams > max_streams:
        raise SettingsError(
            f"SENTINEL_SSE_MAX_STREAMS_PER_TENANT: expected at most SENTINEL_SSE_MAX_STREAMS ({max_streams}), "
            f"got {max_tenant_streams}"
        )
    allow_private_targets = _bool(env, "SENTINEL_ALERT_ALLOW_PRIVATE_TARGETS", False)
    rules_file = _existing_file(env, "SENTINEL_ALERT_RULES_FILE")
    if rules_file is not None:
        from sentinel.alerts.rules import RuleError, load_config_rules

        try:
            load_config_rules(rules_file, allow_private=allow_private_targets, env=env)
        except RuleError as exc:
            raise SettingsError(f"SENTINEL_ALERT_RULES_FILE: {exc}") from None
    return Settings(
        backend="oracle" if backend == "oracle" else "sqlite",
        data_dir=Path(_text(env, "SENTINEL_DATA_DIR") or "./sentinel-data"),
        oracle_connect_string=connect,
        oracle_wallet_location=Path(wallet) if wallet else None,
        oracle_user=_text(env, "ORACLE_USER"),
        oracle_password=env.get("ORACLE_PASSWORD") or None,
        oracle_wallet_password=env.get("ORACLE_WALLET_PASSWORD") or None,
        oracle_thick_mode=_bool(env, "SENTINEL_ORACLE_THICK_MODE", False),
        listen_address=listen_address,
        listen_port=port,
        worker_threads=_int(env, "SENTINEL_WORKER_THREADS", 4, 1, 256),
        pool_min=pool_min,
        pool_max=pool_max,
        oauth2_issuer=_url(env, "OAUTH2_ISSUER"),
        oauth2_audience=_text(env, "OAUTH2_AUDIENCE"),
        oauth2_jwk_set_uri=_url(env, "OAUTH2_JWK_SET_URI"),
        tenant_claim=_identifier(env, "SENTINEL_TENANT_CLAIM", "tenant_id", _plain_name),
        ingest_role=_identifier(env, "SENTINEL_INGEST_ROLE", "sentinel-ingest", _plain_name),
        admin_role=_identifier(env, "SENTINEL_ADMIN_ROLE", "sentinel-admin", _plain_name),
        ui_client_id=_ui_client_id(env),
        ui_scopes=_ui_scopes(env),
        queue_name=_identifier(env, "SENTINEL_QUEUE_NAME", "SENTINEL_QUEUE", _plain_name),
        batch_size=_int(env, "SENTINEL_BATCH_SIZE", 1000, 1, 100_000),
        flush_interval_ms=_int(env, "SENTINEL_FLUSH_INTERVAL_MS", 50, 1, 60_000),
        heartbeat_timeout_sec=_int(env, "SENTINEL_HEARTBEAT_TIMEOUT_SEC", 120, 1, 30 * 86_400),
        log_retention_days=_int(env, "SENTINEL_LOG_RETENTION_DAYS", 30, 1, 36_500),
        max_body_bytes=_int(env, "SENTINEL_MAX_BODY_BYTES", 1_048_576, 1024, 256 * 1_048_576),
        drain_sec=_float(env, "SENTINEL_DRAIN_SECONDS", 0.0, 0.0, 600.0),
        http_max_connections=max_connections,
        # Granian takes the header timeout in milliseconds, from 1 ms to 60 s.
        http_header_timeout_sec=_float(env, "SENTINEL_HTTP_HEADER_TIMEOUT_SEC", 10.0, 0.1, 60.0),
        http_body_timeout_sec=_float(env, "SENTINEL_HTTP_BODY_TIMEOUT_SEC", 15.0, 0.1, 3600.0),
        sse_max_streams=max_streams,
        sse_max_streams_per_tenant=max_tenant_streams,
        sse_keepalive_sec=_float(env, "SENTINEL_SSE_KEEPALIVE_SEC", 15.0, 0.1, 3600.0),
        ingest_stall_sec=_float(env, "SENTINEL_INGEST_STALL_SEC", 30.0, 1.0, 86_400.0),
        dev_mode=_bool(env, "SENTINEL_DEV_MODE", False) if dev_mode is None else dev_mode,
        runtime_dir=Path(runtime) if (runtime := _text(env, "SENTINEL_RUNTIME_DIR")) else None,
        baseline_window=_int(env, "SENTINEL_BASELINE_WINDOW", 100, 5, 10_000),
        slow_factor=_float(env, "SENTINEL_SLOW_FACTOR", 1.5, 1.0, 100.0),
        slow_min_runs=_int(env, "SENTINEL_SLOW_MIN_RUNS", 5, 1, 10_000),
        alert_admin_role=_identifier(env, "SENTINEL_ALERT_ADMIN_ROLE", "sentinel-admin", _plain_name),
        alert_rules_file=rules_file,
        alert_allow_private_targets=allow_private_targets,
        alert_max_attempts=_int(env, "SENTINEL_ALERT_MAX_ATTEMPTS", 10, 1, 1000),
        alert_retry_base_sec=_float(env, "SENTINEL_ALERT_RETRY_BASE_SEC", 2.0, 0.05, 3600.0),
        alert_retry_max_sec=_float(env, "SENTINEL_ALERT_RETRY_MAX_SEC", 300.0, 0.05, 86_400.0),
        alert_timeout_sec=_float(env, "SENTINEL_ALERT_TIMEOUT_SEC", 5.0, 0.1, 120.0),
        alertmanager_repost_sec=_float(env, "SENTINEL_ALERTMANAGER_REPOST_SEC", 60.0, 1.0, 3600.0),
    )


def require_identity_provider(settings: Settings) -> None:
    """Outside dev mode the API must have an issuer and an audience to check tokens against."""
    if settings.dev_mode:
        return
    if settings.oauth2_issuer is None:
        raise SettingsError("OAUTH2_ISSUER: required unless the server runs in dev mode (sentinel serve --dev)")
    if settings.oauth2_audience is None:
        raise SettingsError("OAUTH2_AUDIENCE: required unless the server runs in dev mode (sentinel serve --dev)")
