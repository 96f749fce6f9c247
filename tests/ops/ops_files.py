"""Reading the files under ops/: the PromQL of the alert rules and the dashboards, the manifests, compose."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.ops.promql import metric_names

OPS = Path(__file__).resolve().parents[2] / "ops"
ALERTS = OPS / "prometheus" / "alerts.yml"
DASHBOARDS = OPS / "grafana" / "dashboards"
K8S = OPS / "k8s"
COMPOSE = OPS / "compose.yaml"

_GRAFANA_LABEL_VALUES = re.compile(
    r"^\s*label_values\((?P<expression>.*),\s*[A-Za-z_][A-Za-z0-9_]*\s*\)\s*$", re.S
)
_GRAFANA_QUERY_RESULT = re.compile(r"^\s*query_result\((?P<expression>.*)\)\s*$", re.S)


@dataclass(frozen=True, slots=True)
class Query:
    """One PromQL expression and where it comes from (for the failure message)."""

    source: str
    expression: str

    @property
    def metrics(self) -> set[str]:
        return metric_names(self.expression)


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def load_yaml_documents(path: Path) -> list[Any]:
    return [document for document in yaml.safe_load_all(path.read_text()) if document is not None]


def alert_rules() -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = []
    for group in load_yaml(ALERTS)["groups"]:
        rules.extend(group["rules"])
    return rules


def alert_queries() -> list[Query]:
    return [Query(f"alert {rule['alert']}", rule["expr"]) for rule in alert_rules()]


def dashboards() -> dict[Path, dict[str, Any]]:
    return {path: json.loads(path.read_text()) for path in sorted(DASHBOARDS.glob("*.json"))}


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, including those nested in collapsed rows."""
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def dashboard_queries() -> list[Query]:
    queries: list[Query] = []
    for path, dashboard in dashboards().items():
        queries.extend(
            Query(f"{path.name}: panel {panel['title']!r}", target["expr"])
            for panel in panels(dashboard)
            for target in panel.get("targets", [])
        )
        for variable in dashboard.get("templating", {}).get("list", []):
            if variable.get("type") != "query":
                continue
            query = variable["query"]
            text = query["query"] if isinstance(query, dict) else query
            queries.append(Query(f"{path.name}: variable {variable['name']!r}", _grafana_promql(text)))
    return queries


def _grafana_promql(text: str) -> str:
    """The PromQL inside a Grafana variable query (`label_values(EXPR, label)`, `query_result(EXPR)`)."""
    for pattern in (_GRAFANA_LABEL_VALUES, _GRAFANA_QUERY_RESULT):
        match = pattern.match(text)
        if match:
            return match["expression"]
    if re.match(r"^\s*(label_values\(\s*[A-Za-z_][A-Za-z0-9_]*\s*\)|label_names\(\)|metrics\()", text):
        return ""  # names labels or metrics, selects no series
    return text


def k8s_objects() -> dict[str, list[dict[str, Any]]]:
    """The objects of every manifest under ops/k8s/ (kustomization.yaml aside), by file name."""
    return {
        path.name: load_yaml_documents(path)
        for path in sorted(K8S.glob("*.yaml"))
        if path.name != "kustomization.yaml"
    }


_INTERPOLATION = re.compile(
    r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<operator>:?[-?])(?P<default>[^}]*))?\}"
)


def compose_default(value: str) -> str:
    """`value` with every `${VAR:-default}` replaced by its default, as compose does with VAR unset."""
    return _INTERPOLATION.sub(lambda match: match["default"] or "", value)
