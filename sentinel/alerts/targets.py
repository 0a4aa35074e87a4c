"""The three targets: what each is sent, how a webhook is signed, and where Sentinel refuses to send.

- **webhook**: the notification as JSON (``engine.Notification``), with ``X-Sentinel-Timestamp`` (Unix
  seconds) and ``X-Sentinel-Signature: v1=<hex HMAC-SHA256(secret, timestamp + "." + body)>``; a receiver
  recomputes it with the rule's secret and refuses old timestamps (replays). ``Idempotency-Key`` carries
  the notification's key, the same on every retry of it.
- **slack**: a Slack-compatible incoming-webhook message ``{"text": ...}``.
- **alertmanager**: ``POST <url>/api/v2/alerts`` with one alert (labels, annotations, ``startsAt``;
  ``endsAt`` when resolved). Firing alerts are posted again every ``SENTINEL_ALERTMANAGER_REPOST_SEC``
  while their condition holds (keep it below Alertmanager's ``resolve_timeout``), and the resolution
  carries the same labels.

**Outbound requests (SSRF).** Targets are URLs typed by tenant admins and fetched from inside the
deployment. Unless ``SENTINEL_ALERT_ALLOW_PRIVATE_TARGETS`` is set, a target whose host is or resolves to
a loopback, private, link-local (cloud metadata), multicast or reserved address is refused, when the rule
is saved (literal addresses) and again before every attempt (names, resolved then). Redirects are not
followed, the response body is never read, and each attempt has a timeout. A name that resolves to a
public address at the check and to a private one at the connection (DNS rebinding) is not caught: put an
egress policy in front of the pod where that matters.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import socket
from urllib.parse import urlsplit

import msgspec

from sentinel.alerts.engine import Notification

SIGNATURE_HEADER = "X-Sentinel-Signature"
TIMESTAMP_HEADER = "X-Sentinel-Timestamp"


class TargetRefused(Exception):
    """The target is not allowed (an attempt is recorded as failed, with this reason)."""


def sign(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"v1={digest}"


def verify(secret: str, timestamp: str, body: bytes, signature: str) -> bool:
    return hmac.compare_digest(sign(secret, timestamp, body), signature)


def guard(url: str, *, allow_private: bool) -> None:
    """Refuse a target that is, or resolves to, a non-public address (see the module docstring)."""
    if allow_private:
        return
    host = urlsplit(url).hostname or ""
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except OSError as exc:
        raise TargetRefused(f"cannot resolve {host!r}: {exc.strerror or exc}") from None
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if not address.is_global:
            raise TargetRefused(f"{host!r} resolves to a non-public address ({address}); refused")


def alertmanager_url(url: str) -> str:
    base = url.rstrip("/")
    return base if base.endswith("/api/v2/alerts") else base + "/api/v2/alerts"


def render(kind: str, note: Notification, secret: str | None, timestamp: str) -> tuple[bytes, dict[str, str]]:
    """(body, headers) of one delivery."""
    headers = {"Content-Type": "application/json", "Idempotency-Key": note.id, "User-Agent": "process-sentinel"}
    if kind == "alertmanager":
        alert: dict[str, object] = {
            "labels": note.labels,
            "annotations": {"summary": note.summary, "tenant_id": note.tenant_id},
            "startsAt": note.fired_at,
        }
        if note.resolved_at is not None:
            alert["endsAt"] = note.resolved_at
        return msgspec.json.encode([alert]), headers
    if kind == "slack":
        mark = "RESOLVED" if note.status == "resolved" else "FIRING"
        text = f"[{mark}] {note.summary} (tenant {note.tenant_id}, rule {note.rule.name})"
        return msgspec.json.encode({"text": text}), headers
    body = msgspec.json.encode(note)
    if secret is not None:
        headers[TIMESTAMP_HEADER] = timestamp
        headers[SIGNATURE_HEADER] = sign(secret, timestamp, body)
    return body, headers
