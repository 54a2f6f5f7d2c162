"""The operator's side of deploy/: Prometheus's config, rules and rule tests pass promtool,
Alertmanager's config passes amtool and routes by severity, and every alert is complete
(severity, summary, description, a runbook section, a case that fires and one that does
not) and reads only metrics tickwatch exports."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.documented_metrics import COUNTERS, GAUGES, HISTOGRAMS

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS = ROOT / "deploy" / "prometheus"
CONFIG = PROMETHEUS / "prometheus.yml"
RULES = sorted((PROMETHEUS / "rules").glob("*.yml"))
ALERTS = PROMETHEUS / "rules" / "tickwatch.rules.yml"
RULE_TESTS = sorted((PROMETHEUS / "tests").glob("*.yml"))
ALERTMANAGER = ROOT / "deploy" / "alertmanager" / "alertmanager.yml"
RUNBOOK = ROOT / "docs" / "runbook.md"

PARTS = ("bucket", "count", "sum")
SERIES = COUNTERS | GAUGES | {f"{h}_{part}" for h in HISTOGRAMS for part in PARTS}
TICKWATCH_NAME = re.compile(r"\btickwatch_[a-z0-9_]+")
SEVERITY_RECEIVER = {"critical": "page", "warning": "team"}


def tool(name: str, package: str) -> str:
    """The binary's path; a missing one fails (never skips) the test, saying what to install."""
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} not found: install Debian's `{package}` package (CI installs it)")
    return found


def run(name: str, package: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [tool(name, package), *args], capture_output=True, text=True, timeout=60, check=False
    )


def promtool_problems(*args: str) -> str | None:
    """None when `promtool ARGS` succeeds, else its output (which says what failed)."""
    done = run("promtool", "prometheus", *args)
    if done.returncode == 0:
        return None
    return f"promtool {' '.join(args)} exited {done.returncode}:\n{done.stdout}{done.stderr}"


def amtool(*args: str) -> subprocess.CompletedProcess[str]:
    return run("amtool", "prometheus-alertmanager", *args)


def alert_rules(path: Path = ALERTS) -> list[dict[str, Any]]:
    groups = yaml.safe_load(path.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def github_anchors(markdown: str) -> set[str]:
    """The anchors GitHub gives the headings of a Markdown page."""
    anchors = set()
    for line in markdown.splitlines():
        if line.startswith("#"):
            heading = line.lstrip("#").strip().lower()
            anchors.add(re.sub(r"[^\w\- ]", "", heading).replace(" ", "-"))
    return anchors


def metric_names(expr: str) -> set[str]:
    return set(TICKWATCH_NAME.findall(expr))


def test_prometheus_config_passes_promtool_and_finds_every_rule_file() -> None:
    assert promtool_problems("check", "config", str(CONFIG)) is None
    done = run("promtool", "prometheus", "check", "config", str(CONFIG))
    # A rule_files glob that matches nothing passes `check config` silently.
    assert f"SUCCESS: {len(RULES)} rule files found" in done.stdout
    assert len(RULES) >= 2


def test_rule_files_pass_promtool() -> None:
    assert promtool_problems("check", "rules", *map(str, RULES)) is None


def test_rule_tests_pass_promtool() -> None:
    assert RULE_TESTS
    assert promtool_problems("test", "rules", *map(str, RULE_TESTS)) is None


def test_a_broken_rule_is_reported_with_promtool_output(tmp_path: Path) -> None:
    copy = tmp_path / "prometheus"
    shutil.copytree(PROMETHEUS, copy)
    rules = copy / "rules" / ALERTS.name
    # TicksLost blind to a series that appears at once (a first gap): its promtool case fails.
    text = rules.read_text()
    branch = "or sum by (job, topic) ("
    assert text.count(branch) == 1
    rules.write_text(text.replace(branch, "and sum by (job, topic) ("))
    problems = promtool_problems("test", "rules", str(copy / "tests" / "loss.test.yml"))
    assert problems is not None and "TickwatchTicksLost" in problems

    rules.write_text(text.replace("pending_alerts > 0", "pending_alerts >"))
    problems = promtool_problems("check", "rules", str(rules))
    assert problems is not None and "parse error" in problems


def test_the_contracts_eight_alerts_are_there() -> None:
    names = {rule["alert"] for rule in alert_rules()}
    assert {
        "TickwatchWorkerDown",
        "TickwatchGatewayDown",
        "TickwatchFeedStale",
        "TickwatchLagGrowing",
        "TickwatchDeadLettersRising",
        "TickwatchTicksLost",
        "TickwatchTickToAlertSlow",
        "TickwatchOutboxNotDraining",
    } <= names


def test_every_alert_has_severity_summary_description_and_its_runbook_section() -> None:
    anchors = github_anchors(RUNBOOK.read_text())
    problems = []
    for rule in alert_rules():
        name = rule["alert"]
        if rule.get("labels", {}).get("severity") not in SEVERITY_RECEIVER:
            problems.append(f"{name}: severity must be one of {sorted(SEVERITY_RECEIVER)}")
        annotations = rule.get("annotations", {})
        for key in ("summary", "description"):
            if not str(annotations.get(key, "")).strip():
                problems.append(f"{name}: no {key}")
        url = annotations.get("runbook_url", "")
        if url != f"docs/runbook.md#{name.lower()}":
            problems.append(f"{name}: runbook_url {url!r} is not docs/runbook.md#{name.lower()}")
        if name.lower() not in anchors:
            problems.append(f"{name}: docs/runbook.md has no section '## {name}'")
    assert problems == []


def test_every_runbook_section_named_like_an_alert_has_its_alert() -> None:
    names = {rule["alert"] for rule in alert_rules()}
    sections = re.findall(r"^## (Tickwatch\S*)$", RUNBOOK.read_text(), re.MULTILINE)
    assert len(sections) == len(set(sections)) == len(names)
    assert set(sections) == names


def test_every_alert_has_a_case_that_fires_and_one_that_does_not() -> None:
    fires: set[str] = set()
    quiet: set[str] = set()
    for path in RULE_TESTS:
        for case in yaml.safe_load(path.read_text())["tests"]:
            for check in case.get("alert_rule_test", []):
                (fires if check.get("exp_alerts") else quiet).add(check["alertname"])
    names = {rule["alert"] for rule in alert_rules()}
    assert names - fires == set(), "alerts with no case that fires"
    assert names - quiet == set(), "alerts with no case that stays quiet"


def test_rules_read_only_metrics_tickwatch_exports_by_their_type() -> None:
    problems = []
    for path in RULES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                name = rule.get("alert") or rule["record"]
                for metric in sorted(metric_names(rule["expr"]) - SERIES):
                    problems.append(f"{path.name}: {name}: {metric} is not a tickwatch metric")
                for counter in metric_names(rule["expr"]) & COUNTERS:
                    # A counter is read through increase()/rate() or compared with its past.
                    read = rf"(increase|rate)\({counter}\b|{counter} offset"
                    if not re.search(read, rule["expr"]):
                        problems.append(f"{path.name}: {name}: {counter} read as a level")
    assert problems == []


def test_alertmanager_config_passes_amtool() -> None:
    done = amtool("check-config", str(ALERTMANAGER))
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("severity", sorted(SEVERITY_RECEIVER))
def test_alertmanager_routes_each_severity_to_its_receiver(severity: str) -> None:
    names = [r["alert"] for r in alert_rules() if r["labels"]["severity"] == severity]
    assert names
    for name in names:
        done = amtool(
            "config", "routes", "test", f"--config.file={ALERTMANAGER}",
            f"alertname={name}", f"severity={severity}", "job=tickwatch-worker",
        )  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        assert done.stdout.split() == [SEVERITY_RECEIVER[severity]], (name, done.stdout)
