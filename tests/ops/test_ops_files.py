"""The files under ops/ parse, and agree with the code and with each other: real roles, commands, settings,
ports and job names; alert rules that say what to do; a dashboard on the provisioned data source."""

from __future__ import annotations

import json
import re
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest

from csms.cli.roles import ROLES
from csms.settings import Settings
from tests.ops.ops_files import (
    COMPOSE,
    K8S,
    OPS,
    alert_queries,
    alert_rules,
    compose_default,
    dashboard_queries,
    dashboards,
    k8s_objects,
    load_yaml,
    load_yaml_documents,
    panels,
)
from tests.ops.promql import metric_names

PROJECT = OPS.parent
SETTINGS = {name for name, _default, _doc in Settings.documented()}
_DEFAULTS: dict[str, object] = {f.metadata["env"]: f.default for f in fields(Settings)}
# Where each role listens: its /metrics, /healthz and /readyz (the gateway's on its OCPP port).
ROLE_PORT_SETTING = {
    "gateway": "CSMS_OCPP_PORT",
    "write-api": "CSMS_WRITE_API_PORT",
    "read-api": "CSMS_READ_API_PORT",
    "billing": "CSMS_BILLING_PORT",
    "projector": "CSMS_PROJECTOR_PORT",
}
ROLE_PORT = {role: int(str(_DEFAULTS[setting])) for role, setting in ROLE_PORT_SETTING.items()}
_JOB_MATCHER = re.compile(r'\bjob\s*(?P<op>=~|!~|!=|=)\s*"(?P<value>[^"]*)"')


def test_every_role_has_a_port() -> None:
    assert set(ROLE_PORT) == set(ROLES)


@pytest.mark.parametrize(
    "path",
    sorted(p for p in OPS.rglob("*") if p.suffix in (".yml", ".yaml", ".json")),
    ids=lambda p: str(p.relative_to(OPS)),
)
def test_every_yaml_and_json_file_parses(path: Path) -> None:
    if path.suffix == ".json":
        assert json.loads(path.read_text())
    else:
        assert load_yaml_documents(path)


# Prometheus


def _scrape_jobs(name: str) -> dict[str, dict[str, Any]]:
    config = load_yaml(OPS / "prometheus" / name)
    assert config["rule_files"] == ["alerts.yml"]
    return {job["job_name"]: job for job in config["scrape_configs"]}


def test_prometheus_scrapes_every_role_under_its_name_on_its_port() -> None:
    jobs = _scrape_jobs("prometheus.yml")
    assert set(jobs) - {"prometheus"} == set(ROLES)
    for role in ROLES:
        job = jobs[role]
        assert job.get("metrics_path", "/metrics") == "/metrics"
        [static] = job["static_configs"]
        # The compose services are named after the roles.
        assert static["targets"] == [f"{role}:{ROLE_PORT[role]}"]


def test_prometheus_on_kubernetes_names_jobs_after_the_pods_role() -> None:
    [job] = _scrape_jobs("prometheus-kubernetes.yml").values()
    relabels = job["relabel_configs"]
    assert {
        "source_labels": ["__meta_kubernetes_pod_label_app_kubernetes_io_component"],
        "target_label": "job",
    } in relabels
    # ... and every scraped pod declares the port it serves /metrics on.
    for name, objects in k8s_objects().items():
        for deployment in (o for o in objects if o["kind"] == "Deployment"):
            template = deployment["spec"]["template"]
            annotations = template["metadata"]["annotations"]
            assert annotations["prometheus.io/scrape"] == "true", name
            assert annotations["prometheus.io/path"] == "/metrics", name
            ports = [p["containerPort"] for c in template["spec"]["containers"] for p in c["ports"]]
            role = template["metadata"]["labels"]["app.kubernetes.io/component"]
            assert int(annotations["prometheus.io/port"]) == ROLE_PORT[role], name
            assert ROLE_PORT[role] in ports, name


def _job_names(expression: str) -> set[str]:
    """Job names an expression's `job` matchers can match (an alternation of plain names for `=~`)."""
    names: set[str] = set()
    for match in _JOB_MATCHER.finditer(expression):
        value = match["value"]
        names.update(value.split("|") if match["op"] in ("=~", "!~") else [value])
    return names


def test_alerts_and_dashboards_select_jobs_that_are_scraped() -> None:
    jobs = set(_scrape_jobs("prometheus.yml"))
    for query in alert_queries() + dashboard_queries():
        assert _job_names(query.expression) <= jobs, query.source


def test_every_alert_rule_says_how_bad_for_how_long_and_what_to_do() -> None:
    guide = (PROJECT / "docs" / "operations.md").read_text()
    anchors = {_anchor(line) for line in guide.splitlines() if line.startswith("#")}
    names = [rule["alert"] for rule in alert_rules()]
    assert len(names) == len(set(names)), "alert names are unique"
    for rule in alert_rules():
        name = rule["alert"]
        assert set(rule) == {"alert", "expr", "for", "labels", "annotations"}, name
        assert re.fullmatch(r"\d+[smh]", rule["for"]), name
        assert rule["labels"]["severity"] in ("critical", "warning"), name
        annotations = rule["annotations"]
        assert annotations["summary"].strip(), name
        assert annotations["description"].strip(), name
        # Each alert has its own entry in the operations guide.
        assert annotations["runbook"] == f"docs/operations.md#{name.lower()}", name
        assert name.lower() in anchors, f"docs/operations.md has no heading {name}"
        assert metric_names(rule["expr"]), name


def _anchor(heading: str) -> str:
    """The fragment a Markdown renderer gives a heading."""
    text = heading.lstrip("#").strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


# Grafana


def test_the_dashboards_read_the_provisioned_data_source() -> None:
    provisioning = OPS / "grafana" / "provisioning"
    [datasource] = load_yaml(provisioning / "datasources" / "prometheus.yml")["datasources"]
    assert datasource["type"] == "prometheus"
    assert datasource["url"] == "http://prometheus:9090"  # the compose service
    found = dashboards()
    assert found
    for path, dashboard in found.items():
        ids = [panel["id"] for panel in panels(dashboard)]
        assert len(ids) == len(set(ids)), path.name
        for panel in panels(dashboard):
            if panel["type"] == "row":
                continue
            assert panel["datasource"]["uid"] == datasource["uid"], panel["title"]
            assert panel["targets"], panel["title"]
            for target in panel["targets"]:
                assert target["datasource"]["uid"] == datasource["uid"], panel["title"]
                assert metric_names(target["expr"]), panel["title"]


def test_the_dashboard_provider_reads_the_folder_compose_mounts() -> None:
    [provider] = load_yaml(OPS / "grafana" / "provisioning" / "dashboards" / "csms.yml")["providers"]
    grafana = load_yaml(COMPOSE)["services"]["grafana"]
    assert f"./grafana/dashboards:{provider['options']['path']}:ro" in grafana["volumes"]


# Kubernetes


def _objects_of(kind: str) -> list[dict[str, Any]]:
    return [o for objects in k8s_objects().values() for o in objects if o["kind"] == kind]


def _component(obj: dict[str, Any]) -> str:
    component: str = obj["metadata"]["labels"]["app.kubernetes.io/component"]
    return component


def test_the_manifests_describe_every_role_and_the_migration() -> None:
    kinds = {o["kind"] for objects in k8s_objects().values() for o in objects}
    assert kinds == {
        "Namespace", "ConfigMap", "Secret", "Deployment", "Service", "PodDisruptionBudget", "Job",
    }  # fmt: skip
    deployments = {_component(d): d for d in _objects_of("Deployment")}
    assert set(deployments) == set(ROLES)
    services = {_component(s): s for s in _objects_of("Service")}
    assert services["gateway"]["spec"]["type"] == "LoadBalancer"
    assert [p["port"] for p in services["gateway"]["spec"]["ports"]] == [ROLE_PORT["gateway"]]
    for role in ("write-api", "read-api"):
        assert [p["port"] for p in services[role]["spec"]["ports"]] == [ROLE_PORT[role]]
    # One active instance each (advisory locks), another standing by.
    assert deployments["projector"]["spec"]["replicas"] >= 2
    assert deployments["billing"]["spec"]["replicas"] >= 2
    [job] = _objects_of("Job")
    [container] = job["spec"]["template"]["spec"]["containers"]
    assert container["command"] == ["csms", "migrate"]


def test_every_container_runs_a_real_role_with_its_probes() -> None:
    for deployment in _objects_of("Deployment"):
        role = _component(deployment)
        spec = deployment["spec"]["template"]["spec"]
        [container] = spec["containers"]
        assert container["command"] == ["csms", "serve", "--role", role]
        assert role in ROLES
        [port] = container["ports"]
        assert port["containerPort"] == ROLE_PORT[role]
        for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
            assert container[probe]["httpGet"]["path"] == path, (role, probe)
            assert container[probe]["httpGet"]["port"] in (port["name"], port["containerPort"]), (role, probe)
        assert {"configMapRef": {"name": "csms-config"}} in container["envFrom"], role
        assert {"secretRef": {"name": "csms-env"}} in container["envFrom"], role


def test_the_gateway_has_time_to_drain() -> None:
    [gateway] = [d for d in _objects_of("Deployment") if _component(d) == "gateway"]
    spec = gateway["spec"]["template"]["spec"]
    [container] = spec["containers"]
    pause = int(container["lifecycle"]["preStop"]["exec"]["command"][-1])
    # After the pause: up to 10 s for chargers' in-flight messages and disconnects, 10 s for open requests.
    assert spec["terminationGracePeriodSeconds"] >= pause + 20 + 10


def test_the_environment_names_real_settings_that_parse() -> None:
    [config] = _objects_of("ConfigMap")
    environment = dict(config["data"])
    for secret in _objects_of("Secret"):
        if secret["metadata"]["name"] == "csms-env":
            environment.update(secret["stringData"])
    assert set(environment) <= SETTINGS
    settings = Settings.from_env(environment)  # raises naming a malformed variable
    for role, setting in ROLE_PORT_SETTING.items():
        assert int(environment[setting]) == ROLE_PORT[role]
    assert settings.database_url is not None
    assert settings.redis_url is not None
    assert settings.stripe_api_key is not None
    # The signing key file is the mounted Secret, in both APIs.
    key_file = Path(environment["CSMS_AUTH_SIGNING_KEY_FILE"])
    for deployment in _objects_of("Deployment"):
        if _component(deployment) in ("write-api", "read-api"):
            [container] = deployment["spec"]["template"]["spec"]["containers"]
            mounts = {m["mountPath"] for m in container["volumeMounts"]}
            assert str(key_file.parent) in mounts, _component(deployment)


def test_kustomization_applies_every_manifest_but_the_secrets() -> None:
    kustomization = load_yaml(K8S / "kustomization.yaml")
    manifests = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml", "secret.yaml"}
    assert set(kustomization["resources"]) == manifests
    assert kustomization["namespace"] == "csms"


# Compose


def test_compose_runs_every_role_after_the_migration() -> None:
    services = load_yaml(COMPOSE)["services"]
    assert services["migrate"]["command"] == ["csms", "migrate"]
    for role in ROLES:
        service = services[role]
        assert service["command"] == ["csms", "serve", "--role", role]
        assert service["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
        assert str(ROLE_PORT[role]) in " ".join(service["healthcheck"]["test"])
    assert services["gateway"]["stop_grace_period"] == "60s"


def test_compose_environment_names_real_settings_that_parse() -> None:
    compose = load_yaml(COMPOSE)
    environment = {name: compose_default(str(value)) for name, value in compose["x-csms-environment"].items()}
    assert set(environment) <= SETTINGS
    settings = Settings.from_env(environment)
    assert settings.database_url is not None
    assert "@postgres:5432/" in settings.database_url
    assert settings.redis_url == "redis://redis:6379/0"
    for role in ROLES:
        assert compose["services"][role]["environment"] == compose["x-csms-environment"]


def test_compose_mounts_files_that_exist() -> None:
    for name, service in load_yaml(COMPOSE)["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (OPS / source).exists(), (name, volume)
