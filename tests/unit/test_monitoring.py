"""infra/monitoring: the alert rules pass promtool (syntax and their own unit tests), the
Grafana dashboard has a dashboard's shape, and both only name metrics PlayGate exports."""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from edge_validator.metrics import metrics
from tests.support.factories import ROOT
from tests.support.servers import require_tool

MONITORING = ROOT / "infra" / "monitoring"
RULES = MONITORING / "playgate-alerts.yml"
DASHBOARD = MONITORING / "playgate-dashboard.json"
_SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}
_METRIC = re.compile(r"\bplaygate_[a-z_]+\b")

# The part of Grafana's dashboard model this file relies on (schemaVersion 39).
DASHBOARD_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["title", "uid", "schemaVersion", "panels", "templating", "time"],
    "properties": {
        "uid": {"type": "string", "pattern": "^[a-zA-Z0-9_-]{1,40}$"},
        "schemaVersion": {"type": "integer", "minimum": 30},
        "templating": {
            "type": "object",
            "required": ["list"],
            "properties": {"list": {"type": "array", "items": {"required": ["name", "type"]}}},
        },
        "panels": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["id", "type", "title", "gridPos", "datasource", "targets"],
                "properties": {
                    "id": {"type": "integer"},
                    "type": {"enum": ["timeseries", "stat", "gauge", "table", "bargauge"]},
                    "gridPos": {
                        "type": "object",
                        "required": ["h", "w", "x", "y"],
                        "properties": {
                            "w": {"type": "integer", "minimum": 1, "maximum": 24},
                            "x": {"type": "integer", "minimum": 0, "maximum": 23},
                        },
                    },
                    "datasource": {
                        "type": "object",
                        "required": ["type", "uid"],
                        "properties": {"type": {"const": "prometheus"}},
                    },
                    "targets": {
                        "type": "array",
                        "minItems": 1,
                        "items": {"type": "object", "required": ["refId", "expr"]},
                    },
                },
            },
        },
    },
}


# The native verifier's families (nginx's own /metrics): "name", "type" in its FAMILIES table.
NATIVE_METRICS = ROOT / "playgate" / "nginx" / "lua" / "playgate_metrics.lua"
_NATIVE_FAMILY = re.compile(r'"(playgate_[a-z_]+)", "(counter|gauge)"')


def exported_names() -> set[str]:
    """Every sample name PlayGate's metrics can produce, the validator's and nginx's."""
    names = {name for name, _ in _NATIVE_FAMILY.findall(NATIVE_METRICS.read_text())}
    names.add("playgate_native_feed_age_seconds")
    for field in dataclasses.fields(metrics()):
        for family in getattr(metrics(), field.name).describe():
            names.update(family.name + s for s in _SUFFIXES[family.type])
    return names


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return doc


def expressions(dashboard: dict[str, Any]) -> list[str]:
    return [t["expr"] for p in dashboard["panels"] for t in p["targets"]]


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [require_tool("promtool"), *args], capture_output=True, text=True, timeout=60, check=False
    )


def test_alert_rules_pass_promtool_and_their_tests() -> None:
    checked = promtool("check", "rules", str(RULES))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = promtool("test", "rules", str(MONITORING / "playgate-alerts.test.yml"))
    assert tested.returncode == 0, tested.stdout + tested.stderr
    alerts = {
        r.get("alert") for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]
    }
    assert {
        "PlayGateFailOpenDecisions",
        "PlayGateRevocationViewStale",
        "PlayGateDenyRateSpike",
        "PlayGateSigner5xx",
    } <= alerts


def test_promtool_catches_a_broken_rule(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text(RULES.read_text().replace("> 30", "> > 30"))
    assert promtool("check", "rules", str(broken)).returncode != 0


def test_dashboard_has_a_grafana_dashboard_shape(dashboard: dict[str, Any]) -> None:
    jsonschema.validate(dashboard, DASHBOARD_SCHEMA)
    panels = dashboard["panels"]
    assert len({p["id"] for p in panels}) == len(panels)
    cells = set()
    for p in panels:
        g = p["gridPos"]
        assert g["x"] + g["w"] <= 24
        cell = {
            (x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])
        }
        assert not cells & cell, f"panel {p['title']!r} overlaps another"
        cells |= cell
        assert len({t["refId"] for t in p["targets"]}) == len(p["targets"])
    variables = {v["name"] for v in dashboard["templating"]["list"]}
    assert {"datasource", "job"} <= variables
    assert {p["datasource"]["uid"] for p in panels} == {"${datasource}"}


def test_dashboard_queries_are_valid_promql(dashboard: dict[str, Any], tmp_path: Path) -> None:
    """promtool parses each query, with Grafana's variables filled in as Grafana would."""
    rules = [
        {
            "record": f"dashboard:query_{n}",
            "expr": e.replace("$__rate_interval", "5m").replace("$job", ".*"),
        }
        for n, e in enumerate(expressions(dashboard))
    ]
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    checked = promtool("check", "rules", str(path))
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_dashboard_and_alerts_name_only_exported_metrics(dashboard: dict[str, Any]) -> None:
    exported = exported_names()
    used = set(_METRIC.findall(" ".join(expressions(dashboard))))
    used |= {n for n in _METRIC.findall(RULES.read_text()) if not n.startswith("playgate:")}
    assert used
    assert used <= exported, used - exported
    # Every metric appears on the dashboard.
    families = {n.removesuffix(s) for n in used for s in ("_total", "_bucket")}
    for field in dataclasses.fields(metrics()):
        for family in getattr(metrics(), field.name).describe():
            assert any(f.startswith(family.name) for f in families), family.name
