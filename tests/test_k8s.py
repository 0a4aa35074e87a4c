"""Offline checks of the deployment artefacts: k8s/*.yaml, k8s/grafana-dashboard.json and the Dockerfile.

Every Kubernetes document is validated against the bundled JSON schemas of ``kubernetes_validate`` in strict
mode (unknown fields fail), then the cross-references that the schemas cannot see are checked: probes and
ports, the restricted security profile, the read-only wallet, the shutdown budget, ConfigMap keys, label
selectors, and the PDB/HPA targets.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
K8S_DIR = REPO / "k8s"
DOCKERFILE = REPO / "Dockerfile"
DASHBOARD = K8S_DIR / "grafana-dashboard.json"
DEPLOY_DOC = REPO / "docs" / "deploy.md"

# Oldest Kubernetes minor the manifests target; every kubernetes-validate release the test extra allows
# (>= 1.30) bundles its schemas, so the check is the same everywhere.
KUBERNETES_VERSION = "1.30.0"

NAMESPACE = "clm-system"
APP_UID = 10001
WALLET_PATH = "/opt/sentinel/wallet"
WALLET_SECRET = "oracle-wallet"
DB_SECRET = "sentinel-db"
HTTP_PORT = 8080
# Seconds the pod needs after the drain window to finish in-flight requests and flush the ingest batch.
SHUTDOWN_HEADROOM_SEC = 10

# SPEC section 5 plus the settings the container adds; any other key in the ConfigMap is a typo that the
# service would silently ignore. OTEL_* variables are checked by prefix.
KNOWN_SETTINGS = frozenset(
    {
        "SENTINEL_BACKEND",
        "SENTINEL_DATA_DIR",
        "ORACLE_CONNECT_STRING",
        "ORACLE_WALLET_LOCATION",
        "ORACLE_USER",
        "ORACLE_PASSWORD",
        "ORACLE_WALLET_PASSWORD",
        "SENTINEL_ORACLE_THICK_MODE",
        "TNS_ADMIN",
        "SENTINEL_LISTEN_ADDRESS",
        "SENTINEL_LISTEN_PORT",
        "SENTINEL_WORKER_THREADS",
        "POOL_MIN_CONNECTIONS",
        "POOL_MAX_CONNECTIONS",
        "OAUTH2_ISSUER",
        "OAUTH2_AUDIENCE",
        "OAUTH2_JWK_SET_URI",
        "SENTINEL_TENANT_CLAIM",
        "SENTINEL_INGEST_ROLE",
        "SENTINEL_QUEUE_NAME",
        "SENTINEL_BATCH_SIZE",
        "SENTINEL_FLUSH_INTERVAL_MS",
        "SENTINEL_HEARTBEAT_TIMEOUT_SEC",
        "SENTINEL_LOG_RETENTION_DAYS",
        "SENTINEL_MAX_BODY_BYTES",
        "SENTINEL_DRAIN_SECONDS",
        "PROMETHEUS_MULTIPROC_DIR",
        # baselines and alerts (README "Baselines and alerts")
        "SENTINEL_BASELINE_WINDOW",
        "SENTINEL_SLOW_FACTOR",
        "SENTINEL_SLOW_MIN_RUNS",
        "SENTINEL_ALERT_ADMIN_ROLE",
        "SENTINEL_ALERT_RULES_FILE",
        "SENTINEL_ALERT_ALLOW_PRIVATE_TARGETS",
        "SENTINEL_ALERT_MAX_ATTEMPTS",
        "SENTINEL_ALERT_RETRY_BASE_SEC",
        "SENTINEL_ALERT_RETRY_MAX_SEC",
        "SENTINEL_ALERT_TIMEOUT_SEC",
        "SENTINEL_ALERTMANAGER_REPOST_SEC",
    }
)
SECRET_SETTINGS = frozenset({"ORACLE_USER", "ORACLE_PASSWORD", "ORACLE_WALLET_PASSWORD"})

# Metric name -> (type, label names), as exported by the service.
METRICS: dict[str, tuple[str, frozenset[str]]] = {
    "sentinel_events_ingested_total": ("counter", frozenset({"event_type"})),
    "sentinel_events_rejected_total": ("counter", frozenset({"reason"})),
    "sentinel_events_duplicate_total": ("counter", frozenset()),
    "sentinel_ingest_batch_size": ("histogram", frozenset()),
    "sentinel_ingest_batch_duration_seconds": ("histogram", frozenset()),
    "sentinel_ingest_lag_seconds": ("gauge", frozenset()),
    "sentinel_queue_depth": ("gauge", frozenset()),
    "sentinel_processes": ("gauge", frozenset({"status"})),
    "sentinel_dead_letters_total": ("counter", frozenset()),
    "sentinel_http_requests_total": ("counter", frozenset({"route", "method", "status"})),
    "sentinel_http_request_duration_seconds": ("histogram", frozenset({"route", "method"})),
    "sentinel_db_pool_connections": ("gauge", frozenset({"state"})),
    "sentinel_jwks_fetches_total": ("counter", frozenset({"outcome"})),
    "sentinel_build_info": ("gauge", frozenset({"version", "core", "python"})),
}
# Labels Prometheus attaches to every scraped series.
TARGET_LABELS = frozenset({"instance", "job"})
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")


# ---------------------------------------------------------------------------------------------- loading


def _load_documents() -> list[tuple[str, dict[str, Any]]]:
    documents = []
    for path in sorted(K8S_DIR.glob("*.yaml")):
        with path.open(encoding="utf-8") as handle:
            for document in yaml.safe_load_all(handle):
                if document is None:  # an empty document, e.g. after a trailing '---'
                    continue
                assert isinstance(document, dict), f"{path.name}: a document is not a mapping"
                documents.append((path.name, document))
    return documents


DOCUMENTS = _load_documents()
CRD_SCHEMAS = {
    "PrometheusRule": jsonschema.Draft202012Validator(
        json.loads((REPO / "tests" / "schemas" / "prometheusrule-v1.json").read_text(encoding="utf-8"))
    )
}


def _doc_id(entry: tuple[str, dict[str, Any]]) -> str:
    filename, document = entry
    return f"{filename}:{document.get('kind')}/{document.get('metadata', {}).get('name')}"


def _one(kind: str) -> dict[str, Any]:
    found = [document for _, document in DOCUMENTS if document.get("kind") == kind]
    assert len(found) == 1, f"expected exactly one {kind} in k8s/, found {len(found)}"
    return found[0]


@pytest.fixture(scope="module")
def deployment() -> dict[str, Any]:
    return _one("Deployment")


@pytest.fixture(scope="module")
def pod_spec(deployment: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = deployment["spec"]["template"]["spec"]
    return spec


@pytest.fixture(scope="module")
def container(pod_spec: dict[str, Any]) -> dict[str, Any]:
    containers = pod_spec["containers"]
    assert len(containers) == 1, "the pod runs exactly one container"
    main: dict[str, Any] = containers[0]
    return main


@pytest.fixture(scope="module")
def config_data() -> dict[str, str]:
    data: dict[str, str] = _one("ConfigMap")["data"]
    return data


def _env(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {item["name"]: item for item in container.get("env", [])}


def _mounts(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {mount["mountPath"]: mount for mount in container.get("volumeMounts", [])}


def _volumes(pod_spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {volume["name"]: volume for volume in pod_spec.get("volumes", [])}


def _matches(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    assert set(selector) <= {"matchLabels", "matchExpressions"}, selector
    assert not selector.get("matchExpressions"), "selectors use matchLabels only"
    match_labels: dict[str, str] = selector.get("matchLabels", {})
    return bool(match_labels) and all(labels.get(key) == value for key, value in match_labels.items())


# ----------------------------------------------------------------------------------------- schema checks


def test_manifests_present() -> None:
    names = {path.name for path in K8S_DIR.glob("*.yaml")}
    assert names >= {
        "namespace.yaml",
        "configmap.yaml",
        "rbac.yaml",
        "deployment.yaml",
        "service.yaml",
        "pdb.yaml",
        "hpa.yaml",
    }
    kinds = sorted(document["kind"] for _, document in DOCUMENTS)
    assert kinds == sorted(
        [
            "Namespace",
            "ConfigMap",
            "ServiceAccount",
            "Role",
            "RoleBinding",
            "Deployment",
            "Service",
            "PodDisruptionBudget",
            "HorizontalPodAutoscaler",
            "PrometheusRule",
        ]
    )


@pytest.mark.parametrize("entry", DOCUMENTS, ids=_doc_id)
def test_document_matches_kubernetes_schema(entry: tuple[str, dict[str, Any]]) -> None:
    filename, document = entry
    if document.get("kind") in CRD_SCHEMAS:  # custom resources: the CRD's schema (tests/test_prometheus_rules.py)
        errors = sorted(CRD_SCHEMAS[document["kind"]].iter_errors(document), key=str)
        assert not errors, f"{_doc_id(entry)}: " + "; ".join(f"{list(e.path)}: {e.message}" for e in errors)
        return
    try:
        kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as err:
        location = ".".join(str(part) for part in err.path) or "<root>"
        pytest.fail(f"{_doc_id(entry)}: invalid for Kubernetes {KUBERNETES_VERSION}: {location}: {err.message}")
    except kubernetes_validate.SchemaNotFoundError as err:
        pytest.fail(f"{filename}: {err.message}")


def test_namespaced_objects_live_in_the_namespace() -> None:
    namespace = _one("Namespace")
    assert namespace["metadata"]["name"] == NAMESPACE
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    for _, document in DOCUMENTS:
        if document["kind"] != "Namespace":
            assert document["metadata"].get("namespace") == NAMESPACE, _doc_id(("", document))


# ---------------------------------------------------------------------------------------------- probes


def _named_port(container: dict[str, Any], name: str) -> int:
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    assert name in ports, f"container has no port named {name!r}"
    port: int = ports[name]
    return port


@pytest.mark.parametrize(
    ("probe", "path"),
    [("startupProbe", "/health"), ("livenessProbe", "/health"), ("readinessProbe", "/ready")],
)
def test_probe_targets(container: dict[str, Any], probe: str, path: str) -> None:
    http_get = container[probe]["httpGet"]
    assert http_get["path"] == path
    assert http_get["port"] == "http", "probes use the named port"
    assert http_get.get("scheme", "HTTP") == "HTTP"
    assert _named_port(container, "http") == HTTP_PORT


def test_liveness_is_more_tolerant_than_readiness(container: dict[str, Any]) -> None:
    def budget(probe: dict[str, Any]) -> int:
        return int(probe.get("periodSeconds", 10)) * int(probe.get("failureThreshold", 3))

    assert budget(container["livenessProbe"]) > budget(container["readinessProbe"])
    assert budget(container["startupProbe"]) >= 30, "give the server time to start before liveness applies"


def test_listen_port_matches_container_port(container: dict[str, Any], config_data: dict[str, str]) -> None:
    assert int(config_data.get("SENTINEL_LISTEN_PORT", "8080")) == _named_port(container, "http")


def test_prometheus_scrape_annotations(deployment: dict[str, Any], container: dict[str, Any]) -> None:
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert int(annotations["prometheus.io/port"]) == _named_port(container, "http")
    assert annotations["prometheus.io/path"] == "/metrics"


# -------------------------------------------------------------------------------------------- security


def test_pod_security_context(pod_spec: dict[str, Any]) -> None:
    context = pod_spec["securityContext"]
    assert context["runAsNonRoot"] is True
    assert context["runAsUser"] == APP_UID
    assert context["runAsGroup"] == APP_UID
    assert context["seccompProfile"]["type"] == "RuntimeDefault"
    assert pod_spec.get("hostNetwork", False) is False
    assert pod_spec.get("hostPID", False) is False
    assert pod_spec.get("hostIPC", False) is False


def test_container_security_context(container: dict[str, Any]) -> None:
    context = container["securityContext"]
    assert context["readOnlyRootFilesystem"] is True
    assert context["allowPrivilegeEscalation"] is False
    assert context.get("privileged", False) is False
    assert context["runAsNonRoot"] is True
    assert context.get("runAsUser", APP_UID) == APP_UID
    assert context["capabilities"]["drop"] == ["ALL"]
    assert not context["capabilities"].get("add")
    assert context["seccompProfile"]["type"] == "RuntimeDefault"


def test_no_service_account_token(pod_spec: dict[str, Any]) -> None:
    account = _one("ServiceAccount")
    assert account["automountServiceAccountToken"] is False
    assert pod_spec["automountServiceAccountToken"] is False
    assert pod_spec["serviceAccountName"] == account["metadata"]["name"]


def test_role_is_least_privilege() -> None:
    role = _one("Role")
    read_only = {"get", "list", "watch"}
    for rule in role["rules"]:
        assert set(rule["verbs"]) <= read_only, rule
        assert "*" not in rule["resources"], rule
        assert "secrets" not in rule["resources"], rule
        assert "*" not in rule.get("apiGroups", []), rule
        assert rule.get("resourceNames"), "rules are limited to named objects"
    binding = _one("RoleBinding")
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": role["metadata"]["name"],
    }
    account = _one("ServiceAccount")
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": account["metadata"]["name"], "namespace": NAMESPACE}
    ]


def test_resources_are_bounded(container: dict[str, Any]) -> None:
    resources = container["resources"]
    for kind in ("cpu", "memory"):
        assert kind in resources["requests"], f"requests.{kind} (the HPA needs cpu requests)"
    assert "memory" in resources["limits"]


# -------------------------------------------------------------------------------------------- volumes


def test_wallet_is_mounted_read_only(
    pod_spec: dict[str, Any], container: dict[str, Any], config_data: dict[str, str]
) -> None:
    mount = _mounts(container)[WALLET_PATH]
    assert mount["readOnly"] is True
    volume = _volumes(pod_spec)[mount["name"]]
    assert volume["secret"]["secretName"] == WALLET_SECRET
    mode = volume["secret"]["defaultMode"]
    assert mode & 0o222 == 0, f"wallet files must not be writable (defaultMode {mode:o})"
    assert mode & 0o007 == 0, f"wallet files must not be world-readable (defaultMode {mode:o})"
    assert config_data["ORACLE_WALLET_LOCATION"] == WALLET_PATH


def test_writable_paths_are_empty_dirs(pod_spec: dict[str, Any], container: dict[str, Any]) -> None:
    volumes = _volumes(pod_spec)
    mounts = _mounts(container)
    for path, mount in mounts.items():
        if not mount.get("readOnly", False):
            assert "emptyDir" in volumes[mount["name"]], f"{path} is writable but not an emptyDir"
    assert "/tmp" in mounts
    multiproc = _env(container)["PROMETHEUS_MULTIPROC_DIR"]["value"]
    assert multiproc in mounts, "PROMETHEUS_MULTIPROC_DIR must be a mounted emptyDir"
    assert "emptyDir" in volumes[mounts[multiproc]["name"]]


# ------------------------------------------------------------------------------------------- shutdown


def _prestop_sleep_sec(container: dict[str, Any]) -> float:
    command = container["lifecycle"]["preStop"]["exec"]["command"]
    assert Path(command[0]).name == "sleep", f"preStop is expected to sleep, got {command}"
    return float(command[-1])


def test_grace_period_covers_prestop_and_drain(
    pod_spec: dict[str, Any], container: dict[str, Any], config_data: dict[str, str]
) -> None:
    drain = float(config_data["SENTINEL_DRAIN_SECONDS"])
    sleep = _prestop_sleep_sec(container)
    assert drain > 0, "set SENTINEL_DRAIN_SECONDS so endpoints drop the pod before it stops accepting"
    assert sleep > 0
    grace = pod_spec["terminationGracePeriodSeconds"]
    assert grace > sleep + drain, f"grace {grace}s <= preStop {sleep}s + drain {drain}s"
    assert grace >= sleep + drain + SHUTDOWN_HEADROOM_SEC, "leave time to finish requests and flush"


def test_rollout_keeps_capacity(deployment: dict[str, Any]) -> None:
    assert deployment["spec"]["replicas"] == 3
    rolling = deployment["spec"]["strategy"]["rollingUpdate"]
    assert rolling["maxUnavailable"] == 0


def test_pods_are_spread(pod_spec: dict[str, Any], deployment: dict[str, Any]) -> None:
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    selectors = [constraint["labelSelector"] for constraint in pod_spec.get("topologySpreadConstraints", [])]
    anti = pod_spec.get("affinity", {}).get("podAntiAffinity", {})
    selectors += [
        term["podAffinityTerm"]["labelSelector"]
        for term in anti.get("preferredDuringSchedulingIgnoredDuringExecution", [])
    ]
    selectors += [term["labelSelector"] for term in anti.get("requiredDuringSchedulingIgnoredDuringExecution", [])]
    assert selectors, "use topology spread constraints or pod anti-affinity"
    for selector in selectors:
        assert _matches(selector, labels), selector


# ---------------------------------------------------------------------------------------- configuration


def test_config_references_exist(container: dict[str, Any]) -> None:
    config_maps = {
        document["metadata"]["name"]: document.get("data", {})
        for _, document in DOCUMENTS
        if document["kind"] == "ConfigMap"
    }
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            name = source["configMapRef"]["name"]
            assert name in config_maps or source["configMapRef"].get("optional"), (
                f"envFrom ConfigMap {name!r} is missing"
            )
        if "secretRef" in source:
            assert source["secretRef"]["name"] == DB_SECRET
    for item in container.get("env", []):
        reference = item.get("valueFrom", {})
        if "configMapKeyRef" in reference:
            ref = reference["configMapKeyRef"]
            assert ref["name"] in config_maps, f"{item['name']}: ConfigMap {ref['name']!r} is missing"
            assert ref["key"] in config_maps[ref["name"]] or ref.get("optional"), (
                f"{item['name']}: key {ref['key']!r} is missing"
            )
        if "secretKeyRef" in reference:
            ref = reference["secretKeyRef"]
            assert ref["name"] == DB_SECRET, item
            assert ref["key"] == item["name"], item


def test_config_keys_are_known_settings(config_data: dict[str, str]) -> None:
    for key, value in config_data.items():
        assert key in KNOWN_SETTINGS or key.startswith("OTEL_"), f"unknown setting {key!r} in the ConfigMap"
        assert key not in SECRET_SETTINGS, f"{key} belongs in the Secret {DB_SECRET!r}"
        assert isinstance(value, str), f"{key}: ConfigMap values must be strings"


def test_config_values_are_sane(config_data: dict[str, str]) -> None:
    assert config_data["SENTINEL_BACKEND"] == "oracle"
    assert config_data["ORACLE_CONNECT_STRING"]
    assert int(config_data["POOL_MIN_CONNECTIONS"]) <= int(config_data["POOL_MAX_CONNECTIONS"])
    assert int(config_data["SENTINEL_WORKER_THREADS"]) >= 2
    for key in ("OAUTH2_ISSUER", "OAUTH2_JWK_SET_URI"):
        assert config_data[key].startswith("https://"), key
    assert config_data["OAUTH2_AUDIENCE"]


def test_production_mode(container: dict[str, Any], config_data: dict[str, str]) -> None:
    assert "SENTINEL_DEV_MODE" not in config_data, "dev mode skips token verification"
    assert "SENTINEL_DEV_MODE" not in _env(container)
    assert container["args"] == ["serve"], "run `sentinel serve` without --dev"


def test_db_credentials_come_from_the_secret(container: dict[str, Any]) -> None:
    env = _env(container)
    for name in ("ORACLE_USER", "ORACLE_PASSWORD"):
        ref = env[name]["valueFrom"]["secretKeyRef"]
        assert ref["name"] == DB_SECRET
        assert not ref.get("optional", False), f"{name} is required"


# ------------------------------------------------------------------------------------------- selectors


def test_deployment_selector_matches_template(deployment: dict[str, Any]) -> None:
    assert _matches(deployment["spec"]["selector"], deployment["spec"]["template"]["metadata"]["labels"])


def test_service_routes_to_the_pods(deployment: dict[str, Any], container: dict[str, Any]) -> None:
    service = _one("Service")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    selector = service["spec"]["selector"]
    assert selector
    assert all(labels.get(key) == value for key, value in selector.items()), selector
    assert service["spec"].get("type", "ClusterIP") == "ClusterIP"
    (port,) = service["spec"]["ports"]
    assert port["name"] == "http"
    assert port["port"] == 80
    assert port["targetPort"] == "http"
    _named_port(container, "http")


def test_pdb_covers_the_pods(deployment: dict[str, Any]) -> None:
    pdb = _one("PodDisruptionBudget")
    assert pdb["apiVersion"] == "policy/v1"
    assert _matches(pdb["spec"]["selector"], deployment["spec"]["template"]["metadata"]["labels"])
    spec = pdb["spec"]
    if "maxUnavailable" in spec:
        assert spec["maxUnavailable"] == 1
    else:
        assert spec["minAvailable"] < deployment["spec"]["replicas"], "a minAvailable equal to replicas blocks drains"


def test_hpa_targets_the_deployment(deployment: dict[str, Any]) -> None:
    hpa = _one("HorizontalPodAutoscaler")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": deployment["metadata"]["name"],
    }
    assert hpa["spec"]["minReplicas"] >= 2, "keep two replicas so one disruption never empties the service"
    assert hpa["spec"]["minReplicas"] <= deployment["spec"]["replicas"] <= hpa["spec"]["maxReplicas"]
    (metric,) = hpa["spec"]["metrics"]
    assert metric["type"] == "Resource"
    assert metric["resource"]["name"] == "cpu"


# -------------------------------------------------------------------------------------------- dashboard


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))


def _dashboard_queries(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    queries = []
    for panel in _panels(dashboard["panels"]):
        queries.extend((panel["title"], target["expr"]) for target in panel.get("targets", []))
    for variable in dashboard.get("templating", {}).get("list", []):
        if variable.get("type") == "query":
            query = variable["query"]
            queries.append((f"${variable['name']}", query["query"] if isinstance(query, dict) else query))
    return queries


def _base_metric(name: str) -> str | None:
    if name in METRICS:
        return name
    for suffix in HISTOGRAM_SUFFIXES:
        base = name.removesuffix(suffix)
        if base != name and METRICS.get(base, ("", frozenset()))[0] == "histogram":
            return base
    return None


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    with DASHBOARD.open(encoding="utf-8") as handle:
        loaded: dict[str, Any] = json.load(handle)
    return loaded


def test_dashboard_structure(dashboard: dict[str, Any]) -> None:
    assert dashboard["uid"]
    assert dashboard["title"]
    assert isinstance(dashboard["schemaVersion"], int)
    panels = list(_panels(dashboard["panels"]))
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in panels:
        position = panel["gridPos"]
        assert position["x"] >= 0, panel["title"]
        assert position["x"] + position["w"] <= 24, panel["title"]
        if panel["type"] != "row":
            assert panel["targets"], f"panel {panel['title']!r} has no query"
            assert all(target.get("expr") for target in panel["targets"]), panel["title"]


def test_dashboard_queries_known_metrics(dashboard: dict[str, Any]) -> None:
    used: set[str] = set()
    for title, expr in _dashboard_queries(dashboard):
        names = set(re.findall(r"\b(sentinel_[a-z0-9_]+)\b", expr))
        assert names, f"{title}: query {expr!r} uses no sentinel metric"
        bases = set()
        for name in names:
            base = _base_metric(name)
            assert base is not None, f"{title}: unknown metric {name!r} in {expr!r}"
            bases.add(base)
        used |= bases
        labels = set().union(*(METRICS[base][1] for base in bases)) | TARGET_LABELS
        if any(METRICS[base][0] == "histogram" for base in bases):
            labels.add("le")
        grouping = re.findall(r"\b(?:by|without)\s*\(([^)]*)\)", expr)
        matchers = re.findall(r"([A-Za-z_][A-Za-z0-9_]*)\s*(?:=~|!~|!=|=)\s*\"", expr)
        referenced = {label.strip() for group in grouping for label in group.split(",") if label.strip()}
        referenced |= set(matchers)
        assert referenced <= labels, f"{title}: labels {sorted(referenced - labels)} do not exist on {sorted(bases)}"
    required = set(METRICS) - {"sentinel_build_info"}
    assert required <= used, f"metrics without a panel: {sorted(required - used)}"


def test_deploy_doc_lists_every_metric() -> None:
    text = DEPLOY_DOC.read_text(encoding="utf-8")
    missing = [name for name in METRICS if f"`{name}`" not in text]
    assert not missing, f"docs/deploy.md does not describe {missing}"


# ------------------------------------------------------------------------------------------- Dockerfile

COMPILERS = ("build-essential", "gcc", "g++", "clang", "make", "cython", "python3-dev", "libc6-dev")


def _dockerfile_stages() -> list[list[tuple[str, str]]]:
    """Split the Dockerfile into stages of (INSTRUCTION, arguments), joining continuation lines."""
    logical: list[str] = []
    pending = ""
    for raw in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        stripped = raw.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if pending and stripped.startswith("#"):
            continue  # comment lines inside a continued instruction are dropped by Docker
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        logical.append(pending + stripped)
        pending = ""
    assert not pending, "the Dockerfile ends inside a continued instruction"
    stages: list[list[tuple[str, str]]] = [[]]
    for line in logical:
        instruction, _, arguments = line.partition(" ")
        instruction = instruction.upper()
        if instruction == "FROM":
            stages.append([])
        stages[-1].append((instruction, arguments.strip()))
    preamble, *built = stages
    assert all(instruction == "ARG" for instruction, _ in preamble), "only ARG may precede the first FROM"
    return built


def _instructions(stage: list[tuple[str, str]], name: str) -> list[str]:
    return [arguments for instruction, arguments in stage if instruction == name]


def test_dockerfile_is_multi_stage() -> None:
    stages = _dockerfile_stages()
    assert len(stages) >= 2
    builder = stages[0]
    assert re.search(r"\bAS\s+builder\b", builder[0][1], re.IGNORECASE)
    builder_runs = " ".join(_instructions(builder, "RUN"))
    assert "build-essential" in builder_runs
    assert "pip wheel --no-deps" in builder_runs
    assert "/wheels" in builder_runs


def test_dockerfile_final_stage_has_no_compiler() -> None:
    final = _dockerfile_stages()[-1]
    base = final[0][1].split()[0]
    assert "builder" not in base.lower(), "the runtime stage must not start from the builder"
    for instruction, arguments in final:
        if instruction == "RUN":
            words = set(re.split(r"[\s;&|]+", arguments.lower()))
            assert not words & set(COMPILERS), f"compiler in the runtime stage: {arguments}"
            if "pip" in words and "install" in words:
                assert "--no-index" in words, f"install only the builder's wheels: {arguments}"
                assert "--no-cache-dir" in words, arguments
        if instruction == "COPY":
            sources = [word for word in arguments.split()[:-1] if not word.startswith("--")]
            assert "." not in sources, f"the runtime stage must not copy the source tree: {arguments}"


def test_dockerfile_final_stage_runtime_contract() -> None:
    final = _dockerfile_stages()[-1]
    (user,) = _instructions(final, "USER")
    uid = user.split(":")[0]
    assert uid.isdigit(), "use a numeric uid: the kubelet can only verify runAsNonRoot for numeric users"
    assert uid != "0", "the image must not run as root"
    assert int(uid) == APP_UID
    assert any(f"{HTTP_PORT}" in arguments.split() for arguments in _instructions(final, "EXPOSE"))
    (healthcheck,) = _instructions(final, "HEALTHCHECK")
    assert "/health" in healthcheck
    assert "urllib" in healthcheck, "the slim image has no curl; probe with the stdlib"
    assert json.loads(_instructions(final, "ENTRYPOINT")[-1]) == ["sentinel"]
    assert json.loads(_instructions(final, "CMD")[-1]) == ["serve"]
    env = " ".join(_instructions(final, "ENV"))
    assert "SENTINEL_DATA_DIR=/var/lib/sentinel" in env
    assert "PYTHONDONTWRITEBYTECODE=1" in env
    assert _instructions(final, "WORKDIR")


def test_dockerfile_matches_deployment(container: dict[str, Any]) -> None:
    final = _dockerfile_stages()[-1]
    env = dict(
        word.split("=", 1)
        for arguments in _instructions(final, "ENV")
        for word in shlex.split(arguments)
        if "=" in word
    )
    mounts = _mounts(container)
    assert env["PROMETHEUS_MULTIPROC_DIR"] == _env(container)["PROMETHEUS_MULTIPROC_DIR"]["value"]
    assert env["PROMETHEUS_MULTIPROC_DIR"] in mounts
    assert WALLET_PATH in DOCKERFILE.read_text(encoding="utf-8")
