"""Metrics of baselines and alerts (merged across processes like the others, see ``sentinel.telemetry``)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

ALERTS_FIRED = Counter(
    "sentinel_alerts_fired", "Alert notifications written to the outbox, by condition", ["condition"]
)
ALERTS_SUPPRESSED = Counter(
    "sentinel_alerts_suppressed", "Alerts not sent because the rule's quiet period held, by condition", ["condition"]
)
ALERT_DELIVERIES = Counter(
    "sentinel_alert_delivery_attempts", "Delivery attempts by target kind and outcome", ["target", "outcome"]
)
ALERTS_GIVEN_UP = Counter(
    "sentinel_alert_notifications_given_up",
    "Notifications abandoned after SENTINEL_ALERT_MAX_ATTEMPTS failed attempts, by target kind",
    ["target"],
)
ALERT_DELIVERY_DURATION = Histogram(
    "sentinel_alert_delivery_duration_seconds",
    "Time of one delivery attempt",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
