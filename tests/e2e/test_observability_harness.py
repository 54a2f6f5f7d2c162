"""The operator harness itself (streams/dev/observability.py): a real Prometheus scrapes a
real exporter and fires a rule of the test's own through a real Alertmanager to a loopback
webhook; rule changes that find nothing to change fail loudly."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from streams.dev.observability import (
    WORKER_JOB,
    ObservabilityError,
    RuleChange,
    alertmanager_config,
    changed_rules,
    repo_alertmanager_config,
    running_alertmanager,
    running_prometheus,
)
from streams.exporter import new_registry, serve_metrics
from tests.e2e.observability_support import running_webhook, until

RULES = {
    "groups": [
        {
            "name": "harness",
            "rules": [
                {
                    "alert": "BuildSeen",
                    "expr": 'tickwatch_build_info{component="worker"} > 5',
                    "for": "10m",
                    "labels": {"severity": "warning"},
                }
            ],
        }
    ]
}


def write_rules(folder: Path) -> Path:
    path = folder / "harness.rules.yml"
    path.write_text(yaml.safe_dump(RULES))
    return path


def test_rule_changes_apply_or_name_what_they_did_not_find(tmp_path: Path) -> None:
    source = write_rules(tmp_path)
    (written,) = changed_rules(
        [source], [RuleChange("BuildSeen", for_="0s", old="> 5", new="> 0")], tmp_path / "out"
    )
    rule = yaml.safe_load(written.read_text())["groups"][0]["rules"][0]
    assert (rule["for"], rule["expr"]) == ("0s", 'tickwatch_build_info{component="worker"} > 0')

    with pytest.raises(ObservabilityError) as raised:
        changed_rules(
            [source],
            [RuleChange("BuildSeen", old="> 120"), RuleChange("NoSuchAlert", for_="1s")],
            tmp_path / "out2",
        )
    assert "'> 120' not in its expr" in str(raised.value)
    assert "no alert 'NoSuchAlert'" in str(raised.value)


def test_the_repos_alertmanager_config_keeps_its_routes_and_posts_to_the_test_webhook() -> None:
    config = repo_alertmanager_config("http://127.0.0.1:5555/ignored")
    urls = [h["url"] for r in config["receivers"] for h in r.get("webhook_configs", [])]
    assert urls and all(url.startswith("http://127.0.0.1:5555/") for url in urls), urls
    routes = [config["route"], *config["route"].get("routes", [])]
    assert config["route"]["group_wait"] == config["route"]["group_interval"] == "1s"
    assert all(r.get("group_wait", "1s") == "1s" for r in routes), routes
    assert {r["receiver"] for r in routes} >= {"page", "team"}, routes


def test_an_alertmanager_config_without_a_webhook_is_named(tmp_path: Path) -> None:
    source = tmp_path / "alertmanager.yml"
    source.write_text(yaml.safe_dump({"route": {"receiver": "x"}, "receivers": [{"name": "x"}]}))
    with pytest.raises(ObservabilityError, match="no webhook receiver"):
        repo_alertmanager_config("http://127.0.0.1:1/", source)


@pytest.mark.slow
def test_prometheus_scrapes_and_a_firing_rule_reaches_the_webhook(tmp_path: Path) -> None:
    registry = new_registry("worker")
    endpoint = serve_metrics(registry, "127.0.0.1", 0, "TICKWATCH_METRICS_PORT")
    rules = changed_rules(
        [write_rules(tmp_path)],
        [RuleChange("BuildSeen", for_="1s", old="> 5", new="> 0")],
        tmp_path / "rules",
    )
    try:
        with (
            running_webhook() as hook,
            running_alertmanager(tmp_path / "am", alertmanager_config(hook.url)) as alertmanager,
            running_prometheus(
                tmp_path / "prom",
                {WORKER_JOB: [endpoint.url]},
                rule_files=rules,
                alertmanager=alertmanager.url,
            ) as prometheus,
        ):
            found = until(
                lambda: prometheus.query(f'up{{job="{WORKER_JOB}"}} == 1'), 20, "a first scrape"
            )
            assert found[0]["metric"]["instance"] == endpoint.url.split("/")[2]
            alert = hook.wait_for("BuildSeen", "firing", 30)
            assert alert["labels"]["job"] == WORKER_JOB
            assert alert["labels"]["severity"] == "warning"
    finally:
        endpoint.stop()
