"""The Kubernetes manifests, checked in pure Python (no cluster, no kubectl needed).

Every manifest is listed in the kustomization and parses; kinds and apiVersions are ones a
current cluster serves; the selectors of the Deployment, Service, PodDisruptionBudget and
NetworkPolicy select the pod template's labels; the ports agree between the container, its
probes, the Service, the Ingress and the NetworkPolicy; the pods run as the ServiceAccount,
without an API token and hardened; the Prometheus Operator objects carry the label a
kube-prometheus-stack selects. Where kubectl is installed, ``kubectl kustomize`` renders the same
objects.
"""

from __future__ import annotations

import shutil
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from tests.deploy.conftest import DEPLOY, load_yaml, run_tool

KUBERNETES = DEPLOY / "kubernetes"
API_VERSIONS = {
    "ConfigMap": "v1",
    "Secret": "v1",
    "Service": "v1",
    "ServiceAccount": "v1",
    "Deployment": "apps/v1",
    "PodDisruptionBudget": "policy/v1",
    "NetworkPolicy": "networking.k8s.io/v1",
    "Ingress": "networking.k8s.io/v1",
    "ServiceMonitor": "monitoring.coreos.com/v1",
    "PrometheusRule": "monitoring.coreos.com/v1",
}
PUBLIC_ROUTES = ("/webhooks/", "/api/", "/media/")


def kustomization() -> dict[str, Any]:
    (doc,) = load_yaml(KUBERNETES / "kustomization.yaml")
    assert isinstance(doc, dict)
    return doc


def manifests() -> dict[str, dict[str, Any]]:
    """Every object the kustomization lists, by kind (one of each)."""
    found: dict[str, dict[str, Any]] = {}
    for name in kustomization()["resources"]:
        for doc in load_yaml(KUBERNETES / name):
            assert doc["kind"] not in found, f"two {doc['kind']}s"
            found[doc["kind"]] = doc
    return found


def pod_spec() -> dict[str, Any]:
    spec = manifests()["Deployment"]["spec"]["template"]["spec"]
    assert isinstance(spec, dict)
    return spec


def container() -> dict[str, Any]:
    (only,) = pod_spec()["containers"]
    assert isinstance(only, dict)
    return only


def container_ports() -> dict[str, int]:
    return {p["name"]: p["containerPort"] for p in container()["ports"]}


def env() -> dict[str, str]:
    docs = manifests()
    return {**docs["ConfigMap"]["data"], **docs["Secret"]["stringData"]}


def test_every_manifest_is_in_the_kustomization_and_every_entry_exists() -> None:
    listed = set(kustomization()["resources"])
    present = {p.name for p in KUBERNETES.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == present


def test_kinds_api_versions_and_metadata() -> None:
    docs = manifests()
    assert set(docs) == set(API_VERSIONS)
    for kind, doc in docs.items():
        assert doc["apiVersion"] == API_VERSIONS[kind], kind
        assert doc["metadata"]["name"] == "threadline", kind
        assert doc["metadata"]["labels"]["app.kubernetes.io/name"] == "threadline", kind
        assert "namespace" not in doc["metadata"], f"{kind}: leave the namespace to kubectl -n"


def test_every_selector_selects_the_pod_template() -> None:
    docs = manifests()
    labels = docs["Deployment"]["spec"]["template"]["metadata"]["labels"]
    for kind, selector in (
        ("Deployment", docs["Deployment"]["spec"]["selector"]["matchLabels"]),
        ("Service", docs["Service"]["spec"]["selector"]),
        ("PodDisruptionBudget", docs["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"]),
        ("NetworkPolicy", docs["NetworkPolicy"]["spec"]["podSelector"]["matchLabels"]),
    ):
        assert selector, f"{kind}: an empty selector selects every pod"
        assert selector.items() <= labels.items(), kind
    monitor = docs["ServiceMonitor"]["spec"]["selector"]["matchLabels"]
    assert monitor.items() <= docs["Service"]["metadata"]["labels"].items()


def test_service_and_probes_use_the_container_ports() -> None:
    ports = container_ports()
    assert set(ports) == {"http", "metrics"}
    settings = env()
    assert ports["http"] == int(settings["THREADLINE_BIND"].rpartition(":")[2])
    assert ports["metrics"] == int(settings["THREADLINE_METRICS_BIND"].rpartition(":")[2])
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        assert container()[probe]["httpGet"]["port"] == "http", probe
    service_ports = manifests()["Service"]["spec"]["ports"]
    assert {p["targetPort"] for p in service_ports} == set(ports)
    for port in service_ports:
        assert port["name"] == port["targetPort"], "Service port names follow the container's"


def allowed_ports(rules: list[dict[str, Any]]) -> set[object]:
    return {p["port"] for rule in rules for p in rule["ports"]}


def test_network_policy_admits_exactly_the_served_ports_and_the_needed_egress() -> None:
    spec = manifests()["NetworkPolicy"]["spec"]
    assert sorted(spec["policyTypes"]) == ["Egress", "Ingress"]  # default-deny both ways
    ports = container_ports()
    ingress = spec["ingress"]
    assert allowed_ports(ingress) == set(ports)  # named ports of the container, nothing else
    for rule in ingress:
        for port in rule["ports"]:
            assert port["port"] in ports
            assert port.get("protocol", "TCP") == "TCP"
    (metrics,) = [rule for rule in ingress if allowed_ports([rule]) == {"metrics"}]
    sources = metrics["from"]
    assert sources, "/metrics is open to every namespace"
    assert all("namespaceSelector" in source for source in sources)
    database = urlsplit(env()["THREADLINE_DATABASE_URL"])
    egress = allowed_ports(spec["egress"])
    assert {53, 443, database.port or 5432} <= egress
    dns = [rule for rule in spec["egress"] if allowed_ports([rule]) == {53}]
    assert {p["protocol"] for rule in dns for p in rule["ports"]} == {"UDP", "TCP"}


def test_ingress_serves_the_public_routes_of_the_public_url_over_tls() -> None:
    docs = manifests()
    spec = docs["Ingress"]["spec"]
    host = urlsplit(env()["THREADLINE_PUBLIC_URL"]).hostname
    (rule,) = spec["rules"]
    assert rule["host"] == host  # Twilio signs the URL it posts to: the public URL's
    (tls,) = spec["tls"]
    assert tls["hosts"] == [host]
    assert tls["secretName"]
    service = docs["Service"]
    service_ports = {p["name"]: p for p in service["spec"]["ports"]}
    paths = rule["http"]["paths"]
    assert sorted(p["path"] for p in paths) == sorted(PUBLIC_ROUTES)
    for path in paths:
        assert path["pathType"] == "Prefix"
        backend = path["backend"]["service"]
        assert backend["name"] == service["metadata"]["name"]
        assert service_ports[backend["port"]["name"]]["targetPort"] == "http"  # never metrics


def test_pods_run_as_the_service_account_without_a_token_and_hardened() -> None:
    docs = manifests()
    account = docs["ServiceAccount"]
    spec = pod_spec()
    assert spec["serviceAccountName"] == account["metadata"]["name"]
    assert account["automountServiceAccountToken"] is False
    assert spec["automountServiceAccountToken"] is False
    pod = spec["securityContext"]
    assert pod["runAsNonRoot"] is True
    assert pod["runAsUser"] != 0
    assert pod["seccompProfile"]["type"] == "RuntimeDefault"
    own = container()["securityContext"]
    assert own["allowPrivilegeEscalation"] is False
    assert own["readOnlyRootFilesystem"] is True
    assert own["capabilities"]["drop"] == ["ALL"]
    assert own.get("privileged", False) is False


def test_operator_objects_carry_the_label_kube_prometheus_stack_selects() -> None:
    docs = manifests()
    for kind in ("ServiceMonitor", "PrometheusRule"):
        assert docs[kind]["metadata"]["labels"].get("release") == "prometheus", kind
        text = (KUBERNETES / f"{kind.lower()}.yaml").read_text(encoding="utf-8")
        assert "Selector" in text, f"{kind}: say which selector the label must match"


def test_the_configmap_states_the_intercom_budget_is_the_whole_apps() -> None:
    """The budget is shared by every replica (SharedRateBudget over the journal): a comment
    telling operators to divide it by the replicas would halve throughput."""
    text = (KUBERNETES / "configmap.yaml").read_text(encoding="utf-8")
    comment = text.split("THREADLINE_INTERCOM_RATE_LIMIT_PER_WINDOW")[0].rsplit("\n\n", 1)[-1]
    assert "per process" not in comment
    assert "NOT per pod" in comment


def test_kubectl_kustomize_renders_the_same_objects() -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl not installed (the checks above need none)")
    result = run_tool([kubectl, "kustomize", str(KUBERNETES)])
    assert result.returncode == 0, result.stderr
    rendered = {doc["kind"]: doc for doc in yaml.safe_load_all(result.stdout) if doc}
    assert set(rendered) == set(manifests())
    for kind, doc in rendered.items():
        assert doc["metadata"]["labels"]["app.kubernetes.io/part-of"] == "threadline", kind
