"""The image, the compose stack and the Kubernetes manifests: parsed, cross-referenced, and held
to the settings model.

No Docker engine or Kubernetes API runs here, so nothing is built or applied: these tests check
what can be checked without one. Every file parses; every ``THREADLINE_*`` variable is a field of
``Settings`` and the values given validate; the files compose mounts are the ones the other tests
check; probes, ports, selectors and secrets refer to things that exist; the Dockerfile's
HEALTHCHECK command passes against a live bridge and fails against a dead port.
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path
from typing import Any

import pytest
import trio
import yaml

from actors.core import Settings
from actors.service import ConfigurationError, check_settings
from actors.tools import open_stack, sandbox_settings_env
from tests.deploy.conftest import DEPLOY, REPO, load_yaml, run_tool
from tests.provider_secrets import REAL_LOOKING

KUBERNETES = DEPLOY / "kubernetes"
COMPOSE = DEPLOY / "docker-compose.yml"
DOCKERFILE = DEPLOY / "Dockerfile"
SETTING = re.compile(r"\bTHREADLINE_[A-Z0-9_]+\b")
SETTINGS = {f"THREADLINE_{name.upper()}" for name in Settings.model_fields}


load_all = load_yaml


def compose() -> dict[str, Any]:
    (doc,) = load_all(COMPOSE)
    assert isinstance(doc, dict)
    return doc


def kubernetes() -> dict[str, dict[str, Any]]:
    """Every manifest the kustomization lists, by kind."""
    (kustomization,) = load_all(KUBERNETES / "kustomization.yaml")
    found: dict[str, dict[str, Any]] = {}
    for name in kustomization["resources"]:
        for doc in load_all(KUBERNETES / name):
            assert doc["kind"] not in found, f"two {doc['kind']}s"
            found[doc["kind"]] = doc
    return found


def settings_from(env: dict[str, str]) -> Settings:
    values: dict[str, Any] = {k.removeprefix("THREADLINE_").lower(): v for k, v in env.items()}
    return Settings(_env_file=None, **values)


@pytest.mark.parametrize(
    "path",
    [DOCKERFILE, COMPOSE, *sorted(KUBERNETES.glob("*.yaml")), *sorted(DEPLOY.rglob("*.yml"))],
    ids=lambda p: str(p.relative_to(DEPLOY)),
)
def test_every_threadline_variable_named_in_deploy_is_a_setting(path: Path) -> None:
    if path.suffix in {".yml", ".yaml"}:
        load_yaml(path)  # parses, with no key given twice
    named = set(SETTING.findall(path.read_text(encoding="utf-8")))
    assert named - SETTINGS == set(), "not fields of actors.core._settings.Settings"


# --- the image ---------------------------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = DOCKERFILE.read_text(encoding="utf-8").replace("\\\n", " ")
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1].strip())
        for line in text.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]


def test_dockerfile_is_multi_stage_non_root_and_serves() -> None:
    steps = dockerfile_instructions()
    stages = [args for op, args in steps if op == "FROM"]
    assert len(stages) >= 2
    assert "AS runtime" in stages[-1]
    final = steps[max(i for i, (op, _) in enumerate(steps) if op == "FROM") :]
    ops = dict(final)
    assert ops["USER"].split(":")[0] not in {"0", "root"}
    assert json.loads(ops["ENTRYPOINT"]) == ["threadline"]
    assert json.loads(ops["CMD"]) == ["serve"]
    assert "COPY" in ops
    assert "--from=build" in ops["COPY"]
    assert "/healthz" in ops["HEALTHCHECK"]
    for op, args in steps:
        if op == "COPY" and "--from" not in args:
            for source in args.split()[:-1]:
                assert (REPO / source).exists(), f"COPY {source}: no such file"
    # The image's defaults must validate too.
    env = dict(re.findall(r"(THREADLINE_[A-Z_]+)=(\S+)", ops["ENV"]))
    settings_from(env)


def healthcheck_command() -> list[str]:
    (args,) = [args for op, args in dockerfile_instructions() if op == "HEALTHCHECK"]
    command = json.loads(args.split("CMD", 1)[1])
    assert isinstance(command, list)
    return [sys.executable if part == "python" else str(part) for part in command]


async def test_dockerfile_healthcheck_passes_on_a_live_bridge_and_fails_without_one(
    tmp_path: Path,
) -> None:
    command = healthcheck_command()
    async with open_stack(
        database_url=f"sqlite:///{tmp_path / 'db'}", media_dir=str(tmp_path / "media")
    ) as stack:
        port = stack.node.ingress.url.rpartition(":")[2]
        env = {**os.environ, "THREADLINE_BIND": f"0.0.0.0:{port}"}
        alive = await trio.run_process(command, env=env, check=False, capture_stderr=True)
    assert alive.returncode == 0, alive.stderr
    dead = await trio.run_process(command, env=env, check=False, capture_stderr=True)
    assert dead.returncode != 0


# --- the compose stack -------------------------------------------------------------------------


def test_docker_compose_validates_the_file_and_resolves_it_as_we_read_it(
    docker_compose: str,
) -> None:
    result = run_tool([docker_compose, "--file", str(COMPOSE), "config"], cwd=REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    resolved = yaml.safe_load(result.stdout)
    ours = compose()["services"]
    for name, service in resolved["services"].items():
        assert service.get("environment", {}) == ours[name].get("environment", {}), name
        if "build" in service:
            assert Path(service["build"]["context"]).resolve() == REPO
    mounts = {
        volume.split(":")[0]
        for service in resolved["services"].values()
        for volume in service.get("volumes", [])
        if volume.startswith("/")
    }
    assert {str(DEPLOY / "prometheus"), str(DEPLOY / "grafana" / "dashboards")} <= mounts


def test_compose_runs_two_bridge_nodes_on_postgres_with_valid_settings() -> None:
    services = compose()["services"]
    nodes = [name for name, s in services.items() if s.get("image") == "threadline:local"]
    bridges = [n for n in nodes if "command" not in services[n]]
    assert sorted(bridges) == ["threadline-1", "threadline-2"]
    for name in bridges:
        env = {k: str(v) for k, v in services[name]["environment"].items()}
        settings = settings_from(env)
        check_settings(settings)  # the bridge would start: token set for a non-loopback /metrics
        assert settings.database_url.startswith("postgresql://")
        assert settings.metrics_bind.endswith(":9464")
        assert services[name]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert "postgres" in services


def test_compose_points_the_bridges_at_the_sandbox_with_its_exact_settings() -> None:
    services = compose()["services"]
    command = services["sandbox"]["command"]
    assert command[0] == "sandbox"
    flags = dict(arg.removeprefix("--").split("=", 1) for arg in command[1:])
    port = flags["bind"].rpartition(":")[2]
    expected = sandbox_settings_env(f"http://sandbox:{port}", flags["bridge-url"])
    env = {k: str(v) for k, v in services["threadline-1"]["environment"].items()}
    assert {k: env.get(k) for k in expected} == expected
    assert flags["webhook-url"] == env["THREADLINE_PUBLIC_URL"] + "/webhooks/intercom"


def test_compose_builds_the_checked_dockerfile() -> None:
    for service in compose()["services"].values():
        if "build" in service:
            context = (DEPLOY / service["build"]["context"]).resolve()
            assert context == REPO
            assert (context / service["build"]["dockerfile"]).resolve() == DOCKERFILE.resolve()


def bind_mounts(service: dict[str, Any]) -> dict[str, Path]:
    """Container path → host path of a service's bind mounts (relative to deploy/)."""
    mounts = {}
    for volume in service.get("volumes", []):
        source, target = volume.split(":")[:2]
        if source.startswith("."):
            mounts[target] = (DEPLOY / source).resolve()
            assert mounts[target].exists(), f"{source} does not exist"
    return mounts


def test_compose_prometheus_loads_the_tested_config_and_rules() -> None:
    prometheus = compose()["services"]["prometheus"]
    mounts = bind_mounts(prometheus)
    (config_flag,) = [a for a in prometheus["command"] if a.startswith("--config.file=")]
    config_path = Path(config_flag.split("=", 1)[1])
    host_dir = mounts[str(config_path.parent)]
    assert host_dir / config_path.name == (DEPLOY / "prometheus" / "prometheus.yml").resolve()
    (config,) = load_all(host_dir / config_path.name)
    assert config["rule_files"] == ["alerts.yml"]  # relative to the config, inside the mount
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == "threadline"]
    targets = job["static_configs"][0]["targets"]
    services = compose()["services"]
    for target in targets:
        host, port = target.split(":")
        env = services[host]["environment"]
        assert env["THREADLINE_METRICS_BIND"].endswith(f":{port}")
        assert job["authorization"]["credentials"] == env["THREADLINE_METRICS_TOKEN"]


def test_compose_grafana_provisions_the_tested_dashboard() -> None:
    grafana = compose()["services"]["grafana"]
    mounts = bind_mounts(grafana)
    provisioning = mounts["/etc/grafana/provisioning"]
    (providers,) = load_all(provisioning / "dashboards" / "threadline.yml")
    (provider,) = providers["providers"]
    dashboards = mounts[provider["options"]["path"]]
    assert dashboards == (DEPLOY / "grafana" / "dashboards").resolve()
    dashboard = json.loads((dashboards / "threadline.json").read_text(encoding="utf-8"))
    (datasources,) = load_all(provisioning / "datasources" / "prometheus.yml")
    (source,) = datasources["datasources"]
    assert source["url"] == "http://prometheus:9090"
    variable = next(v for v in dashboard["templating"]["list"] if v["name"] == "datasource")
    assert variable["current"]["value"] == source["uid"]


# --- Grafana ------------------------------------------------------------------------------------


def test_dashboard_panels_are_well_formed_and_cover_the_issue() -> None:
    dashboard = json.loads((DEPLOY / "grafana/dashboards/threadline.json").read_text("utf-8"))
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    titles = [p["title"] for p in panels]
    assert len(titles) == len(set(titles)), "two panels with one title"
    for panel in panels:
        assert panel["targets"], panel["title"]
        assert panel["datasource"]["uid"] == "${datasource}"
        grid = panel["gridPos"]
        assert grid["x"] >= 0, panel["title"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
    exprs = " ".join(t["expr"] for p in panels for t in p["targets"])
    for needed in (
        "threadline_webhook_requests_total",  # ingress rate and status codes
        "histogram_quantile(0.99, sum by (le, direction) (rate(threadline_delivery_latency",
        "threadline_journal_pending_entries",
        "threadline_journal_oldest_pending_age_seconds",
        "threadline_actors_live",
        "threadline_mailbox_depth",
        "threadline_intercom_request_duration_seconds_bucket",
        'code="429"',
        "threadline_retry_attempts_total",
        "threadline_supervisor_restarts_total",
        "threadline_dead_letters_total",
        "threadline_partitions_owned",
        "histogram_quantile(0.99, sum by (le, route) (rate(threadline_ingress_request_duration",
        "histogram_quantile(0.99, sum by (le, channel) (rate(threadline_channel_send_duration",
        "process_resident_memory_bytes{",
        "rate(process_cpu_seconds_total{",
    ):
        assert needed in exprs, needed


# --- Kubernetes --------------------------------------------------------------------------------


def test_kubernetes_manifests_have_every_resource_the_issue_asks_for() -> None:
    kinds = set(kubernetes())
    assert {
        "Deployment",
        "Service",
        "PodDisruptionBudget",
        "ConfigMap",
        "Secret",
        "ServiceMonitor",
        "PrometheusRule",
    } <= kinds
    for doc in kubernetes().values():
        assert doc["apiVersion"]
        assert doc["metadata"]["name"] == "threadline"


def test_kubernetes_settings_validate_and_the_bridge_would_start() -> None:
    docs = kubernetes()
    secret = docs["Secret"]["stringData"]
    env = {**docs["ConfigMap"]["data"], **secret}
    assert set(docs["ConfigMap"]["data"]).isdisjoint(secret)
    for key in secret:  # secrets stay out of the ConfigMap
        assert any(word in key for word in ("TOKEN", "SECRET", "SID", "DATABASE_URL")), key
    # As shipped, the example Secret holds placeholders, and the bridge refuses every one of them.
    with pytest.raises(ConfigurationError) as refused:
        check_settings(settings_from(env))
    for key in secret:
        assert key in str(refused.value), key
    # With real values in their place, it starts.
    real = {key: REAL_LOOKING.get(key, "") for key in secret}
    real["THREADLINE_DATABASE_URL"] = secret["THREADLINE_DATABASE_URL"].replace(
        "CHANGE-ME", REAL_LOOKING["THREADLINE_API_TOKEN"]
    )
    assert all(real.values()), real.keys()
    check_settings(settings_from({**env, **real}))


def test_kubernetes_deployment_probes_drains_and_references() -> None:
    docs = kubernetes()
    deployment = docs["Deployment"]
    pod = deployment["spec"]["template"]
    spec = pod["spec"]
    (container,) = spec["containers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        assert container[probe]["httpGet"]["port"] in ports
    env = {**docs["ConfigMap"]["data"], **docs["Secret"]["stringData"]}
    settings = settings_from(env)
    assert ports["http"] == int(settings.bind.rpartition(":")[2])
    assert ports["metrics"] == int(settings.metrics_bind.rpartition(":")[2])
    pre_stop = int(container["lifecycle"]["preStop"]["exec"]["command"][1])
    assert spec["terminationGracePeriodSeconds"] >= pre_stop + settings.shutdown_drain_seconds + 10
    assert container["resources"]["requests"]
    assert container["resources"]["limits"]["memory"]
    assert spec["securityContext"]["runAsNonRoot"] is True
    sources = {s.get("configMapRef", s.get("secretRef"))["name"] for s in container["envFrom"]}
    assert sources == {docs["ConfigMap"]["metadata"]["name"], docs["Secret"]["metadata"]["name"]}
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in spec["volumes"]}
    if deployment["spec"]["replicas"] > 1:  # every replica must serve every /media/ link
        assert settings.media_store == "journal"
    if settings.media_store == "directory":  # the root filesystem is read-only
        assert "emptyDir" not in volumes[mounts[settings.media_dir]]  # shared storage only
    else:
        assert settings.media_dir not in mounts  # nothing to mount: media is in the database
    labels = pod["metadata"]["labels"]
    for selector in (
        deployment["spec"]["selector"]["matchLabels"],
        docs["Service"]["spec"]["selector"],
        docs["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"],
    ):
        assert selector.items() <= labels.items()
    annotations = pod["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == str(ports["metrics"])


def test_kubernetes_service_monitor_scrapes_the_metrics_port_with_the_token() -> None:
    docs = kubernetes()
    service = docs["Service"]
    assert service["metadata"]["name"] == "threadline"  # the job label the alerts select
    monitor = docs["ServiceMonitor"]
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}
    token = endpoint["bearerTokenSecret"]
    assert token["name"] == docs["Secret"]["metadata"]["name"]
    assert token["key"] in docs["Secret"]["stringData"]


def test_kubernetes_prometheus_rule_is_the_tested_rules_file() -> None:
    (rules,) = load_all(DEPLOY / "prometheus" / "alerts.yml")
    assert kubernetes()["PrometheusRule"]["spec"] == rules
