"""k8s/prometheus-rules.yaml: the PrometheusRule for Sentinel itself. Its schema is checked with the other
manifests (tests/test_k8s.py, against the Prometheus Operator CRD's schema in tests/schemas/); here: the
alerts the service needs exist, and every expression uses metrics the service exports, with their labels."""

from __future__ import annotations

import re
from typing import Any

import jsonschema
import pytest
from test_k8s import DOCUMENTS, METRICS, TARGET_LABELS

# Metrics of sentinel.alerts (not on the dashboard, so not in test_k8s.METRICS).
ALERT_METRICS: dict[str, tuple[str, frozenset[str]]] = {
    "sentinel_alert_notifications_given_up_total": ("counter", frozenset({"target"})),
    "sentinel_alerts_fired_total": ("counter", frozenset({"condition"})),
}
KNOWN = {**METRICS, **ALERT_METRICS}
# What the rules must watch (the list) -> a metric and matcher that must appear in some rule.
REQUIRED = {
    "ingest lag": "sentinel_ingest_lag_seconds",
    "dead-letter rate": "sentinel_dead_letters_total",
    "stalled processes": 'sentinel_processes{status="STALLED"}',
    "5xx rate": 'status=~"5.."',
    "stream limit reached": 'route=~"/logs/.*"',
}


def rules() -> list[dict[str, Any]]:
    found = [doc for _, doc in DOCUMENTS if doc["kind"] == "PrometheusRule"]
    assert len(found) == 1
    return [rule for group in found[0]["spec"]["groups"] for rule in group["rules"]]


def test_the_required_alerts_exist() -> None:
    text = " ".join(" ".join(str(rule["expr"]).split()) for rule in rules())
    missing = [topic for topic, needle in REQUIRED.items() if needle not in text]
    assert not missing


@pytest.mark.parametrize("rule", rules(), ids=lambda r: r["alert"])
def test_expressions_use_exported_metrics_and_labels(rule: dict[str, Any]) -> None:
    expr = " ".join(str(rule["expr"]).split())
    assert expr.count("(") == expr.count(")")
    names = set(re.findall(r"\b(sentinel_[a-z0-9_]+)\b", expr))
    assert names, expr
    assert names <= set(KNOWN), f"unknown metrics {sorted(names - set(KNOWN))}"
    labels = set().union(*(KNOWN[name][1] for name in names)) | TARGET_LABELS
    used = set(re.findall(r"([A-Za-z_][A-Za-z0-9_]*)\s*(?:=~|!~|!=|=)\s*\"", expr))
    assert used <= labels, f"labels {sorted(used - labels)} do not exist on {sorted(names)}"
    assert re.fullmatch(r"[A-Z][A-Za-z0-9]+", rule["alert"])
    assert rule["labels"]["severity"] in {"warning", "critical"}
    assert rule["annotations"]["summary"]


def test_the_schema_refuses_a_broken_rule() -> None:
    from test_k8s import CRD_SCHEMAS

    (document,) = [doc for _, doc in DOCUMENTS if doc["kind"] == "PrometheusRule"]
    broken = {**document, "spec": {"groups": [{"name": "g", "rules": [{"alert": "A", "expr": "1", "for": "5 min"}]}]}}
    with pytest.raises(jsonschema.ValidationError):
        CRD_SCHEMAS["PrometheusRule"].validate(broken)
    unknown = {**document, "spec": {"groups": [{"name": "g", "rules": [{"alert": "A", "expr": "1", "fore": "5m"}]}]}}
    with pytest.raises(jsonschema.ValidationError):
        CRD_SCHEMAS["PrometheusRule"].validate(unknown)
