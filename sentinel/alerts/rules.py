"""Alert rules: what to watch for, for which processes, and where to say it.

A rule belongs to one tenant. It names conditions (FAILED, STALLED, CANCELLED, slow, not_started_by),
optional filters on the process type, name and package, a quiet period, and one target. Rules come from
the API (``/alert-rules``, role ``SENTINEL_ALERT_ADMIN_ROLE``) or from the operator's file
(``SENTINEL_ALERT_RULES_FILE``, JSON ``{"rules": [...]}``), which the ingest loads into the same table at
start with ids ``config:<id>``; the API shows those and refuses to change them.

Secrets (the webhook's HMAC key) are stored apart from the rule's JSON and never leave the server: the
API answers ``secret_set`` instead.
"""

from __future__ import annotations

import ipaddress
import os
import re
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Final, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec

Condition = Literal["FAILED", "STALLED", "CANCELLED", "slow", "not_started_by"]
TargetKind = Literal["webhook", "slack", "alertmanager"]
CONDITIONS: Final[tuple[str, ...]] = ("FAILED", "STALLED", "CANCELLED", "slow", "not_started_by")
MAX_RULES_PER_TENANT: Final = 200
CONFIG_PREFIX: Final = "config:"

_Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
_Secret = Annotated[str, msgspec.Meta(min_length=16, max_length=256)]
_TIME_OF_DAY = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


class RuleError(ValueError):
    """A rule that cannot be accepted; the message names the field."""


class Target(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    kind: TargetKind
    url: Annotated[
        str,
        msgspec.Meta(
            max_length=2000,
            description="webhook/slack: the URL posted to; alertmanager: its base URL (/api/v2/alerts is added)",
        ),
    ]


class RuleSpec(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A rule as its author wrote it (the ``spec`` column)."""

    name: _Name
    conditions: Annotated[list[Condition], msgspec.Meta(min_length=1, max_length=5)]
    target: Target
    process_type: _Name | None = None
    process_name: _Name | None = None
    package_name: _Name | None = None
    not_started_by: Annotated[
        str | None, msgspec.Meta(description="HH:MM, for not_started_by: the named process must start by then")
    ] = None
    timezone: Annotated[str, msgspec.Meta(max_length=64, description="IANA zone of not_started_by")] = "UTC"
    quiet_period_sec: Annotated[
        int,
        msgspec.Meta(
            ge=0,
            le=7 * 86_400,
            description="after firing, the same condition of the same process type and name stays silent this long",
        ),
    ] = 300
    enabled: bool = True

    def matches(self, process_type: str | None, process_name: str | None, package_name: str | None) -> bool:
        return (
            (self.process_type is None or self.process_type == process_type)
            and (self.process_name is None or self.process_name == process_name)
            and (self.package_name is None or self.package_name == package_name)
        )

    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


class RuleIn(RuleSpec, kw_only=True, forbid_unknown_fields=True):
    """The body of ``POST /alert-rules`` and ``PUT /alert-rules/{id}``."""

    secret: Annotated[
        _Secret | None,
        msgspec.Meta(description="webhook targets: the HMAC-SHA256 key (write-only; PUT without it keeps the old one)"),
    ] = None


class RuleOut(RuleSpec, kw_only=True):
    id: str
    tenant_id: str
    source: Literal["api", "config"]
    secret_set: bool
    created_at: datetime
    updated_at: datetime


def spec_of(rule: RuleSpec) -> RuleSpec:
    """The rule's own fields, without what came with it (secret, id, tenant)."""
    fields = {f: getattr(rule, f) for f in RuleSpec.__struct_fields__}
    return RuleSpec(**fields)


def check_url(url: str, *, allow_private: bool) -> None:
    """A target URL must be http(s) with a host; with private targets refused, a literal address must be
    public. (Names are checked again when resolved, before every attempt: see ``targets.guard``.)"""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise RuleError("target.url: expected an http(s) URL with a host")
    if parts.username or parts.password:
        raise RuleError("target.url: credentials in the URL are not accepted")
    if allow_private:
        return
    host = parts.hostname
    if host == "localhost" or host.endswith(".localhost"):
        raise RuleError("target.url: loopback targets are refused (SENTINEL_ALERT_ALLOW_PRIVATE_TARGETS)")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return
    if not address.is_global:
        raise RuleError(
            "target.url: private, loopback and reserved addresses are refused (SENTINEL_ALERT_ALLOW_PRIVATE_TARGETS)"
        )


def validate(rule: RuleSpec, secret: str | None, *, had_secret: bool, allow_private: bool) -> None:
    """What the schema cannot say; raises ``RuleError``."""
    if len(set(rule.conditions)) != len(rule.conditions):
        raise RuleError("conditions: each condition at most once")
    if "not_started_by" in rule.conditions:
        if rule.process_name is None:
            raise RuleError("process_name: required by the not_started_by condition")
        if rule.not_started_by is None:
            raise RuleError("not_started_by: required (HH:MM) by the not_started_by condition")
    if rule.not_started_by is not None and not _TIME_OF_DAY.match(rule.not_started_by):
        raise RuleError("not_started_by: expected HH:MM (00:00 to 23:59)")
    try:
        rule.zone()
    except (ZoneInfoNotFoundError, ValueError, OSError):  # unknown, malformed, or a directory of the database
        raise RuleError(f"timezone: unknown time zone {rule.timezone!r}") from None
    check_url(rule.target.url, allow_private=allow_private)
    if rule.target.kind == "webhook" and secret is None and not had_secret:
        raise RuleError("secret: required for a webhook target (at least 16 characters)")


# -- the operator's file -------------------------------------------------------------------------------


class ConfigRule(RuleSpec, kw_only=True, forbid_unknown_fields=True):
    id: Annotated[str, msgspec.Meta(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.-]+$")]
    tenant_id: Annotated[str, msgspec.Meta(min_length=1, max_length=50)]
    secret: _Secret | None = None
    secret_env: Annotated[str | None, msgspec.Meta(description="environment variable holding the secret")] = None


class ConfigFile(msgspec.Struct, forbid_unknown_fields=True):
    rules: list[ConfigRule]


def load_config_rules(path: Path, *, allow_private: bool, env: Any = None) -> list[tuple[ConfigRule, str | None]]:
    """The rules of the operator's file with their secrets; raises ``RuleError`` naming the file and rule."""
    env = os.environ if env is None else env
    try:
        parsed = msgspec.json.decode(path.read_bytes(), type=ConfigFile)
    except OSError as exc:
        raise RuleError(f"{path}: cannot read: {exc.strerror}") from None
    except msgspec.ValidationError as exc:
        raise RuleError(f"{path}: {exc}") from None
    except msgspec.DecodeError as exc:
        raise RuleError(f"{path}: not JSON: {exc}") from None
    out: list[tuple[ConfigRule, str | None]] = []
    seen: set[str] = set()
    for rule in parsed.rules:
        if rule.id in seen:
            raise RuleError(f"{path}: rule id {rule.id!r} appears twice")
        seen.add(rule.id)
        secret = rule.secret
        if rule.secret_env is not None:
            secret = env.get(rule.secret_env) or None
            if secret is None or len(secret) < 16:
                raise RuleError(f"{path}: rule {rule.id}: {rule.secret_env} must hold a secret of 16+ characters")
        try:
            validate(rule, secret, had_secret=False, allow_private=allow_private)
        except RuleError as exc:
            raise RuleError(f"{path}: rule {rule.id}: {exc}") from None
        out.append((rule, secret))
    return out
