"""The example Grafana dashboard: every query parses as PromQL and asks only for metrics and labels the servers
really export (collected from their own registries, not from a list in this test)."""

import json
import re
from pathlib import Path

import promql_parser
import pytest

from authz_server.metrics import CheckMetrics
from mint_server.metrics import MintMetrics

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "satgate-dashboard.json"
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$__range": "1h", "$tenant": ".*"}


def exported() -> dict[str, set[str]]:
    """Sample name → label names, from registries that have seen one of everything."""
    authz = CheckMetrics()
    authz.decided(402, "budget_exhausted", 0.001, "acme", 0)
    authz.decided(200, None, 0.001, "acme", 3)
    authz.ledger_errors.inc()
    mint = MintMetrics()
    mint.exchanges.labels("kubernetes", "issued").inc()
    mint.jwks_fetches.labels("ok").inc()
    mint.latency.labels("jwt").observe(0.01)
    names: dict[str, set[str]] = {}
    for registry in (authz.registry, mint.registry):
        for family in registry.collect():
            for sample in family.samples:
                names.setdefault(sample.name, set()).update(sample.labels)
    return names


def dashboard() -> dict:
    return json.loads(DASHBOARD.read_text())


def queries() -> list[tuple[str, str]]:
    found = []
    for panel in dashboard()["panels"]:
        for target in panel.get("targets", []):
            found.append((panel["title"], target["expr"]))
    variable = next(v for v in dashboard()["templating"]["list"] if v["name"] == "tenant")
    metric, label = re.fullmatch(r"label_values\((\w+), (\w+)\)", variable["definition"]).groups()
    found.append(("tenant variable", f"count by ({label}) ({metric})"))  # what label_values asks Prometheus
    return found


def selectors(expr: str) -> list[tuple[str, set[str], set[str]]]:
    """(metric, labels matched, labels grouped by) for every selector, with the grouping labels of the aggregation
    that encloses it."""
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    found: list[tuple[str, set[str], set[str]]] = []
    grouping: list[set[str]] = [set()]

    def pre(node):
        if isinstance(node, promql_parser.AggregateExpr):
            grouping.append(set(node.modifier.labels) if node.modifier is not None else set())
        if isinstance(node, promql_parser.VectorSelector):
            found.append((node.name, {m.name for m in node.matchers.matchers}, set().union(*grouping)))

    def post(node):
        if isinstance(node, promql_parser.AggregateExpr):
            grouping.pop()

    promql_parser.walk(promql_parser.parse(expr), pre, post)
    return found


@pytest.mark.parametrize(("title", "expr"), queries(), ids=[title for title, _ in queries()])
def test_every_query_asks_for_exported_metrics_and_labels(title, expr):
    names = exported()
    found = selectors(expr)
    assert found, f"{title}: no metric selector in {expr}"
    for metric, matched, grouped in found:
        assert metric in names, f"{title}: {metric} is not exported"
        assert matched | grouped <= names[metric], (
            f"{title}: {metric} has no label(s) {(matched | grouped) - names[metric]}"
        )


def test_a_wrong_metric_name_would_be_caught():
    (metric, _, _), *_ = selectors("sum(rate(satgate_authz_decision_total[$__rate_interval]))")
    assert metric not in exported()
    with pytest.raises(ValueError, match="parenthesis"):
        selectors("sum(rate(satgate_authz_decisions_total[5m])")


def test_every_metric_is_on_the_dashboard():
    shown = {metric for _, expr in queries() for metric, _, _ in selectors(expr)}
    families = {
        name.removesuffix("_bucket") for name in exported() if not name.endswith(("_created", "_sum", "_count"))
    }
    assert families - {name.removesuffix("_bucket") for name in shown} == set()


def test_the_dashboard_is_importable_anywhere():
    doc = dashboard()
    ids = [panel["id"] for panel in doc["panels"]]
    assert len(ids) == len(set(ids))
    variables = {v["name"]: v for v in doc["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    for panel in doc["panels"]:
        if panel["type"] != "row":
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
            assert panel["targets"], panel["title"]
