"""deploy/: the Prometheus alerts pass `promtool check rules` and their unit tests, and the Grafana dashboard
and the alerts query only metrics the gateway exports. These tests never skip: without promtool they fail and
say what to install (`make test` installs it)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway.metrics import Metrics

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
ALERTS = DEPLOY / "prometheus" / "alerts.yml"
ALERT_TESTS = DEPLOY / "prometheus" / "alerts.test.yml"
DASHBOARD = DEPLOY / "grafana" / "crmagento.json"

# Gauges the gateway is about to export (the freshness and reconciliation figures). They count as exported
# only while the registry lacks them: once gateway.metrics has one, its real name and type are checked instead.
EXPECTED_NEW = (
    "crmagento_sync_lag_seconds",
    "crmagento_last_applied_age_seconds",
    "crmagento_reconcile_drift",
    "crmagento_reconcile_last_run_timestamp_seconds",
)

METRIC_NAME = re.compile(r"crmagento_[a-z_]+")

# The sample names a family shows in PromQL: counters only as _total, histograms only through their series.
SAMPLE_SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "summary": ("_sum", "_count")}


def exported_families() -> dict[str, str]:
    """Family name -> type, from the gateway's real registry (a fresh one: families show without samples)."""
    return {family.name: family.type for family in Metrics().registry.collect()}


def queryable_names() -> set[str]:
    families = exported_families()
    for name in EXPECTED_NEW:
        families.setdefault(name, "gauge")
    names: set[str] = set()
    for name, kind in families.items():
        suffixes = SAMPLE_SUFFIXES.get(kind, ("",))
        names.update(name + suffix for suffix in suffixes)
        if kind == "summary":
            names.add(name)  # the quantile series
    return names


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.fail("the alert tests need promtool: apt-get install -y --no-install-recommends prometheus")
    return found


def dashboard_exprs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["expr"]] if isinstance(node.get("expr"), str) else []
        return found + [e for value in node.values() for e in dashboard_exprs(value)]
    if isinstance(node, list):
        return [e for value in node for e in dashboard_exprs(value)]
    return []


def alert_rules() -> list[dict[str, Any]]:
    return [rule for group in yaml.safe_load(ALERTS.read_text())["groups"] for rule in group["rules"]]


def test_the_alert_rules_are_valid() -> None:
    result = subprocess.run(
        [promtool(), "check", "rules", str(ALERTS)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_alert_unit_tests_pass() -> None:
    result = subprocess.run(
        [promtool(), "test", "rules", ALERT_TESTS.name],
        cwd=ALERT_TESTS.parent,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_is_unit_tested_and_tells_what_to_do() -> None:
    tests = yaml.safe_load(ALERT_TESTS.read_text())["tests"]
    evaluations = [e for case in tests for e in case.get("alert_rule_test", [])]
    runbook = (DEPLOY.parent / "docs" / "runbook.md").read_text()
    for rule in alert_rules():
        name = rule["alert"]
        mine = [e for e in evaluations if e["alertname"] == name]
        assert any(e["exp_alerts"] for e in mine), f"{name}: no test where it fires"
        assert any(not e["exp_alerts"] for e in mine), f"{name}: no test where it stays silent"
        assert rule["labels"]["severity"] in {"critical", "warning"}, name
        assert rule["annotations"]["summary"], name
        description = rule["annotations"]["description"]
        sections = re.findall(r'"(\d+\. [^"]+)"', description)
        assert sections, f"{name}: the description names no runbook section"
        for section in sections:
            assert f"## {section}" in runbook, f"{name}: no runbook section {section!r}"
        assert f"`{name}`" in runbook, f"{name}: not described in the runbook's Monitoring section"


def test_the_dashboard_is_grafana_json_on_a_datasource_variable() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    assert panels
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in panels:
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
            assert target["expr"].strip(), panel["title"]


def test_the_dashboard_queries_are_valid_promql(tmp_path: Path) -> None:
    """promtool parses each query as a recording rule, with Grafana's variables put as Grafana would."""
    grafana_vars = {"$__rate_interval": "5m", "$domain": ".*"}
    rules = []
    for number, expr in enumerate(dashboard_exprs(json.loads(DASHBOARD.read_text()))):
        for variable, value in grafana_vars.items():
            expr = expr.replace(variable, value)
        assert "$" not in expr, expr
        rules.append({"record": f"dashboard:query_{number}", "expr": expr})
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = subprocess.run(
        [promtool(), "check", "rules", str(path)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("source", "exprs"),
    [
        ("grafana/crmagento.json", lambda: dashboard_exprs(json.loads(DASHBOARD.read_text()))),
        ("prometheus/alerts.yml", lambda: [rule["expr"] for rule in alert_rules()]),
    ],
)
def test_every_metric_queried_is_one_the_gateway_exports(source: str, exprs: Any) -> None:
    queried = {name for expr in exprs() for name in METRIC_NAME.findall(expr)}
    assert queried, source
    assert sorted(queried - queryable_names()) == []


def test_the_metric_check_is_strict() -> None:
    names = queryable_names()
    assert {"crmagento_jobs_total", "crmagento_ingest_seconds_bucket", "crmagento_queue_depth"} <= names
    assert not {"crmagento_jobs", "crmagento_ingest_seconds", "crmagento_queue_depth_total"} & names
    assert set(EXPECTED_NEW) <= names
