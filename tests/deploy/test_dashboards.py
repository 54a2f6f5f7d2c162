"""The Grafana dashboards: the committed JSON is what tools/dashboards/ generates, every
panel queries only the metrics tickwatch exports, in PromQL a real promtool accepts, and
Grafana's provisioning finds the files where compose mounts them."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.documented_metrics import DOCUMENTED, HISTOGRAMS
from tools.dashboards import DASHBOARD_FILES, annotation_queries, panel_queries
from tools.dashboards.files import DASHBOARD_DIR, ROOT, generate
from tools.dashboards.panels import DATASOURCE_UID, TICK_TO_ALERT_BUDGET_S

RERUN = "do not edit it by hand: change tools/dashboards/ and run `python -m tools.dashboards`"
PROVISIONING = ROOT / "deploy" / "grafana" / "provisioning"

# Every metric the README documents (the worker's and the gateway's), and the process
# collector's and Prometheus's own that the dashboards read.
METRICS = set(DOCUMENTED) | {
    "process_cpu_seconds_total",
    "process_resident_memory_bytes",
    "up",
    "ALERTS",  # Prometheus's series of the operator alerts that are pending or firing
}
PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool"}
PROMQL_WORDS |= {"and", "or", "unless", "offset", "inf", "nan"}


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads (histogram series by their family)."""
    plain = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)  # label values
    plain = re.sub(r"\{[^}]*\}|\[[^\]]*\]", "", plain)  # matchers, ranges
    plain = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", plain)
    names = set()
    for match in re.finditer(r"(?<![\w.])([a-zA-Z_:][\w:]*)(\s*\()?", plain):
        name, call = match.group(1), match.group(2)
        if call or name.lower() in PROMQL_WORDS:
            continue
        family = re.sub(r"_(bucket|sum|count)$", "", name)
        names.add(family if family in HISTOGRAMS else name)
    return names


def _dashboards() -> dict[str, dict[str, Any]]:
    return {uid: json.loads(path.read_text()) for uid, path in DASHBOARD_FILES.items()}


def _all_queries() -> list[tuple[str, str, str]]:
    """(dashboard uid, panel or annotation title, raw expr) of both dashboards."""
    found: list[tuple[str, str, str]] = []
    for uid, dashboard in _dashboards().items():
        for panel in _panels(dashboard):
            found.extend((uid, panel["title"], target["expr"]) for target in panel["targets"])
        for annotation in dashboard["annotations"].get("list", []):
            found.append((uid, annotation["name"], annotation["expr"]))
    return found


def _panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return [panel for panel in dashboard["panels"] if panel["type"] != "row"]


def test_the_committed_json_is_what_the_code_generates() -> None:
    for path, text in generate().items():
        assert path.exists(), f"{path.relative_to(ROOT)} is missing: {RERUN}"
        assert path.read_text() == text, f"{path.relative_to(ROOT)} drifted: {RERUN}"
    assert sorted(DASHBOARD_DIR.glob("*.json")) == sorted(DASHBOARD_FILES.values())


def test_check_names_the_drifted_file_and_fails(tmp_path: Path) -> None:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "tools.dashboards", "--dir", str(tmp_path), *args]
        return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=60)

    assert run().returncode == 0
    assert run("--check").returncode == 0
    market = tmp_path / "tickwatch-market.json"
    market.write_text(market.read_text().replace('"tickwatch market"', '"edited"'))
    checked = run("--check")
    assert checked.returncode == 1
    assert str(market) in checked.stderr
    assert "tickwatch-overview.json" not in checked.stderr
    assert run().stdout.strip() == f"dashboards: wrote {market}"
    assert run("--check").returncode == 0


def test_dashboards_have_unique_uids_and_panel_ids() -> None:
    dashboards = _dashboards()
    assert set(dashboards) == {"tickwatch-overview", "tickwatch-market"}
    for uid, dashboard in dashboards.items():
        assert dashboard["uid"] == uid
        ids = [panel["id"] for panel in dashboard["panels"]]
        assert len(ids) == len(set(ids)), uid
        titles = [panel["title"] for panel in _panels(dashboard)]
        assert len(titles) == len(set(titles)), uid


def test_every_panel_has_a_query() -> None:
    for uid, dashboard in _dashboards().items():
        for panel in _panels(dashboard):
            exprs = [target.get("expr", "").strip() for target in panel.get("targets", [])]
            assert exprs and all(exprs), f"{uid}: panel {panel['title']!r} has an empty query"


def test_queries_read_only_exported_metrics() -> None:
    read = set()
    for uid, title, expr in _all_queries():
        names = metric_names(expr)
        assert names, f"{uid}: {title!r} reads no metric: {expr}"
        assert names <= METRICS, f"{uid}: {title!r} reads unknown {names - METRICS}: {expr}"
        read |= names
    # The list, as the dashboards show it: each of these has a panel.
    shown = METRICS - {"tickwatch_build_info", "tickwatch_partitions_assigned", "ALERTS"}
    shown -= {"tickwatch_gateway_partitions_assigned"}
    assert shown <= read, f"no panel shows {shown - read}"


def test_metric_names_sees_through_promql() -> None:
    expr = (
        "histogram_quantile(0.99, sum by (le, agent) (rate(tickwatch_batch_size_ticks_bucket"
        '{agent="ingest"}[1m]))) > on (job) group_left (version) up offset 5m'
        " or time() - tickwatch_tiks_total"
    )
    assert metric_names(expr) == {"tickwatch_batch_size_ticks", "up", "tickwatch_tiks_total"}


def test_rates_use_grafana_rate_interval() -> None:
    for uid, title, expr in _all_queries():
        for window in re.findall(r"\[([^\]]*)\]", expr):
            assert window == "$__rate_interval", f"{uid}: {title!r} has a fixed window: {expr}"


def test_promtool_accepts_every_query(tmp_path: Path) -> None:
    """Each query, variables substituted, as a recording rule: promtool parses the PromQL."""
    queries = [
        query
        for dashboard in _dashboards().values()
        for query in panel_queries(dashboard) + annotation_queries(dashboard)
    ]
    rules = [{"record": f"dashboard:query{n}", "expr": expr} for n, (_, expr) in enumerate(queries)]
    path = tmp_path / "queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    checked = subprocess.run(
        ["promtool", "check", "rules", str(path)], capture_output=True, text=True, timeout=60
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {len(rules)} rules found" in checked.stdout


def test_panel_queries_are_plain_promql() -> None:
    market = _dashboards()["tickwatch-market"]
    queries = panel_queries(market)
    assert len(queries) == sum(len(panel["targets"]) for panel in _panels(market))
    assert all("$" not in expr for _, expr in queries)
    levels = dict(panel_queries(market, index="HSTECH"))["Index level"]
    assert levels == 'max by (index) (tickwatch_index_level{index=~"HSTECH"})'
    assert dict(panel_queries(market))["Index level"].endswith('{index=~".+"})')
    rates = [expr for _, expr in panel_queries(_dashboards()["tickwatch-overview"])]
    assert any("[1m]" in expr for expr in rates)
    [(name, alerts)] = annotation_queries(market)
    assert "tickwatch_index_alerts_total" in alerts and "$" not in alerts, name


def test_panels_use_the_datasource_variable_of_the_provisioned_prometheus() -> None:
    datasources = yaml.safe_load((PROVISIONING / "datasources" / "prometheus.yml").read_text())
    [prometheus] = datasources["datasources"]
    assert prometheus["uid"] == DATASOURCE_UID and prometheus["type"] == "prometheus"
    for uid, dashboard in _dashboards().items():
        [variable] = [v for v in dashboard["templating"]["list"] if v["name"] == "datasource"]
        assert variable["type"] == "datasource" and variable["query"] == "prometheus"
        assert variable["current"]["value"] == DATASOURCE_UID, uid
        for panel in _panels(dashboard):
            for source in [panel["datasource"]] + [t["datasource"] for t in panel["targets"]]:
                assert source == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]


def test_latency_panels_draw_the_budget() -> None:
    overview = _dashboards()["tickwatch-overview"]
    [panel] = [p for p in _panels(overview) if p["title"].startswith("Tick to alert, from ingest")]
    steps = panel["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert TICK_TO_ALERT_BUDGET_S in [step["value"] for step in steps]
    assert panel["fieldConfig"]["defaults"]["custom"]["thresholdsStyle"]["mode"] == "line"
    assert 'since="ingest"' in panel["targets"][-1]["expr"]


def test_market_has_index_variable_and_alert_annotations() -> None:
    market = _dashboards()["tickwatch-market"]
    [index] = [v for v in market["templating"]["list"] if v["name"] == "index"]
    assert index["query"] == "label_values(tickwatch_index_level, index)"
    [alerts] = market["annotations"]["list"]
    assert "tickwatch_index_alerts_total" in alerts["expr"] and alerts["enable"]
    assert '{index=~"$index"}' in alerts["expr"]


def test_overview_marks_every_operator_alert_while_it_fires() -> None:
    overview = _dashboards()["tickwatch-overview"]
    [firing] = overview["annotations"]["list"]
    [pattern] = re.findall(r'alertname=~"([^"]+)"', firing["expr"])
    rules = sorted((ROOT / "deploy" / "prometheus" / "rules").glob("*.yml"))
    names = [
        rule["alert"]
        for path in rules
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
        if "alert" in rule
    ]
    assert "TickwatchWorkerDown" in names
    assert all(re.fullmatch(pattern, name) for name in names), names
    assert 'alertstate="firing"' in firing["expr"]


@pytest.fixture(scope="module")
def grafana_service() -> dict[str, Any]:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    service: dict[str, Any] = compose["services"]["grafana"]
    return service


def _mounts(service: dict[str, Any]) -> dict[str, str]:
    """Container path -> host path (relative to the repository) of a service's bind mounts."""
    mounts = {}
    for volume in service.get("volumes", []):
        if isinstance(volume, str):
            source, target = volume.split(":")[:2]
        else:
            source, target = volume["source"], volume["target"]
        if source.startswith("."):
            mounts[target] = str(Path(source))
    return mounts


def test_provisioning_reads_the_dashboards_where_compose_mounts_them(
    grafana_service: dict[str, Any],
) -> None:
    mounts = _mounts(grafana_service)
    provisioning = PROVISIONING.relative_to(ROOT)
    assert mounts.get("/etc/grafana/provisioning") == str(provisioning)
    [provider] = yaml.safe_load((PROVISIONING / "dashboards" / "tickwatch.yml").read_text())[
        "providers"
    ]
    assert provider["type"] == "file"
    assert mounts.get(provider["options"]["path"]) == str(DASHBOARD_DIR.relative_to(ROOT))
