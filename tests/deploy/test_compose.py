"""docker-compose.yml checked without Docker: the Compose schema, mounts, ports, start order,
secrets, variables and Prometheus's targets; and each check fails on a broken copy."""

from __future__ import annotations

import copy
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.compose_checks import (
    Compose,
    container_ports,
    load_compose,
    mount_problems,
    mounts,
    port_problems,
    prometheus_targets,
    read_env_file,
    schema_problems,
    scrape_problems,
    secret_problems,
    setting_problems,
    start_order_problems,
    undeclared_variables,
    url_problems,
)
from tests.deploy.interpolation import MissingVariable

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
PROMETHEUS = ROOT / "deploy" / "prometheus" / "prometheus.yml"
#: Each tickwatch scrape job and the command of the services it must scrape.
JOBS = {"tickwatch-worker": "worker", "tickwatch-gateway": "gateway"}

Check = Callable[[Compose], list[str]]


@pytest.fixture(scope="module")
def compose() -> Compose:
    return load_compose(COMPOSE, read_env_file(ENV_EXAMPLE))


def prometheus_config() -> dict[str, Any]:
    config: dict[str, Any] = yaml.safe_load(PROMETHEUS.read_text())
    return config


def broken(compose: Compose, change: Callable[[dict[str, Any]], None]) -> Compose:
    """A copy of the file with one change made to its interpolated form."""
    resolved = copy.deepcopy(compose.resolved)
    change(resolved)
    return Compose(raw=resolved, resolved=resolved, root=compose.root)


def added(check: Check, compose: Compose, change: Callable[[dict[str, Any]], None]) -> list[str]:
    """The problems `check` finds in the broken copy and not in the file itself, so that
    each negative test shows its own check failing whatever else is wrong."""
    before = set(check(compose))
    return [p for p in check(broken(compose, change)) if p not in before]


def test_the_stack_has_its_services(compose: Compose) -> None:
    wanted = {"kafka", "redis", "topics", "worker", "gateway", "prometheus", "alertmanager"}
    assert wanted | {"grafana", "tickwatch"} <= compose.services.keys()


def test_it_validates_against_the_compose_specification(compose: Compose) -> None:
    assert schema_problems(compose) == []


@pytest.mark.parametrize(
    "check",
    [mount_problems, port_problems, start_order_problems, secret_problems, setting_problems],
)
def test_it_passes_each_check(compose: Compose, check: Check) -> None:
    assert check(compose) == []


def test_every_variable_it_uses_is_in_env_example() -> None:
    assert undeclared_variables(COMPOSE.read_text(), read_env_file(ENV_EXAMPLE)) == []


def test_env_example_sets_every_required_variable() -> None:
    # load_compose raises MissingVariable naming the first required variable left unset.
    env = read_env_file(ENV_EXAMPLE)
    for name, value in env.items():
        assert value, f".env.example leaves {name} empty"
    load_compose(COMPOSE, env)


def test_a_required_variable_missing_from_the_environment_is_named() -> None:
    env = read_env_file(ENV_EXAMPLE)
    del env["GF_SECURITY_ADMIN_PASSWORD"]
    with pytest.raises(MissingVariable) as missing:
        load_compose(COMPOSE, env)
    assert missing.value.name == "GF_SECURITY_ADMIN_PASSWORD"


def test_the_passwords_reach_redis_and_grafana(compose: Compose) -> None:
    env = read_env_file(ENV_EXAMPLE)
    redis = compose.services["redis"]
    assert redis["command"][-2:] == ["--requirepass", env["REDIS_PASSWORD"]]
    assert "--appendonly" in redis["command"]
    assert redis["environment"]["REDISCLI_AUTH"] == env["REDIS_PASSWORD"]
    for name in ("worker", "gateway", "topics", "tickwatch"):
        url = compose.services[name]["environment"]["TICKWATCH_REDIS_URL"]
        assert url == f"redis://:{env['REDIS_PASSWORD']}@redis:6379/0", name
    grafana = compose.services["grafana"]["environment"]
    assert grafana["GF_SECURITY_ADMIN_PASSWORD"] == env["GF_SECURITY_ADMIN_PASSWORD"]


def test_every_bind_mount_source_is_committed(compose: Compose) -> None:
    # On disk is not enough: a clone has only what git tracks.
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    for mount in mounts(compose):
        if mount.bind:
            source = str((ROOT / mount.source).resolve().relative_to(ROOT))
            assert any(f == source or f.startswith(f"{source}/") for f in tracked), (
                f"{mount.service} mounts {mount.source}, which git does not track"
            )


def test_prometheus_scrapes_services_and_ports_of_the_stack(compose: Compose) -> None:
    assert scrape_problems(compose, prometheus_config()) == []


def test_each_tickwatch_job_scrapes_the_processes_it_is_named_for(compose: Compose) -> None:
    targets = list(prometheus_targets(prometheus_config()))
    for job, command in JOBS.items():
        hosts = {t.host for t in targets if t.job == job}
        assert hosts, f"no targets for job {job}"
        for host in hosts:
            assert compose.services[host]["command"] == [command], (job, host)


def test_grafana_reaches_prometheus_by_a_service_and_port_of_the_stack(compose: Compose) -> None:
    folder = ROOT / "deploy" / "grafana" / "provisioning" / "datasources"
    sources = [
        s
        for f in sorted(folder.glob("*.yml"))
        for s in yaml.safe_load(f.read_text())["datasources"]
    ]
    assert sources
    for source in sources:
        assert url_problems(compose, f"data source {source['name']}", source["url"]) == []


def test_a_url_outside_the_stack_is_found(compose: Compose) -> None:
    assert url_problems(compose, "x", "http://prometheus:9091") == [
        "x: http://prometheus:9091: prometheus does not expose port 9091"
    ]
    assert url_problems(compose, "x", "http://prom:9090/") == [
        "x: http://prom:9090/: no compose service 'prom'"
    ]


def test_grafana_finds_the_dashboards_where_they_are_mounted(compose: Compose) -> None:
    grafana = compose.services["grafana"]
    home = Path(grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"])
    by_target = {Path(m.target): m.source for m in mounts(compose) if m.service == "grafana"}
    source = by_target[home.parent]
    assert (ROOT / source / home.name).is_file()


# The checks can fail: each one on a copy broken the way it guards against.


def test_a_misspelt_key_breaks_the_schema(compose: Compose) -> None:
    def misspell(c: dict[str, Any]) -> None:
        c["services"]["worker"]["helthcheck"] = c["services"]["worker"].pop("healthcheck")

    problems = added(schema_problems, compose, misspell)
    assert any("helthcheck" in p for p in problems), problems


def test_a_bad_value_breaks_the_schema(compose: Compose) -> None:
    def bad(c: dict[str, Any]) -> None:
        c["services"]["worker"]["depends_on"]["redis"]["condition"] = "service_ready"

    assert added(schema_problems, compose, bad)


def test_a_missing_mount_source_is_found(compose: Compose) -> None:
    def missing(c: dict[str, Any]) -> None:
        c["services"]["grafana"]["volumes"].append("./deploy/grafana/nowhere:/etc/nowhere:ro")

    problems = added(mount_problems, compose, missing)
    assert problems == ["grafana: ./deploy/grafana/nowhere:/etc/nowhere: the source does not exist"]


def test_a_directory_mounted_on_a_file_is_found(compose: Compose) -> None:
    def wrong_kind(c: dict[str, Any]) -> None:
        c["services"]["prometheus"]["volumes"][0] = "./deploy/prometheus:/etc/prometheus/p.yml"

    assert "is a file, the source is not" in added(mount_problems, compose, wrong_kind)[0]


def test_an_undeclared_volume_or_a_source_outside_the_repo_is_found(compose: Compose) -> None:
    def outside(c: dict[str, Any]) -> None:
        c["services"]["redis"]["volumes"] = ["redis-state:/data", "/etc:/host-etc:ro"]

    problems = added(mount_problems, compose, outside)
    assert len(problems) == 2
    assert "'redis-state' is not declared" in problems[0]
    assert "outside the repository" in problems[1]


@pytest.mark.parametrize(
    ("port", "clash"),
    [("3000:8080", True), ("127.0.0.1:3000:8080", True), ("3001:8080", False), ("3000", False)],
)
def test_a_duplicate_host_port_is_found(compose: Compose, port: str, clash: bool) -> None:
    def add(c: dict[str, Any]) -> None:
        c["services"]["gateway"]["ports"].append(port)

    problems = added(port_problems, compose, add)
    assert bool(problems) == clash, problems
    if clash:
        assert problems == ["host port 3000/tcp is published by both gateway and grafana"]


def test_ports_on_different_loopback_addresses_do_not_clash(compose: Compose) -> None:
    def add(c: dict[str, Any]) -> None:
        c["services"]["gateway"]["ports"].append("127.0.0.2:9090:8080")

    assert added(port_problems, compose, add) == []


def test_waiting_for_health_without_a_healthcheck_is_found(compose: Compose) -> None:
    def drop(c: dict[str, Any]) -> None:
        del c["services"]["redis"]["healthcheck"]
        c["services"]["topics"]["restart"] = "unless-stopped"

    problems = added(start_order_problems, compose, drop)
    assert "worker waits for redis to be healthy; it has no healthcheck" in problems
    assert "worker waits for topics to complete; it is always restarted" in problems


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            lambda c: c["services"]["grafana"]["environment"].update(
                GF_SECURITY_ADMIN_PASSWORD="${GF_SECURITY_ADMIN_PASSWORD:-admin}"
            ),
            "grafana: GF_SECURITY_ADMIN_PASSWORD must be",
        ),
        (
            lambda c: c["services"]["redis"]["command"].__setitem__(-1, "hunter2"),
            "redis: --requirepass takes a literal password",
        ),
        (
            lambda c: c["services"]["worker"]["environment"].update(
                TICKWATCH_REDIS_URL="redis://:hunter2@redis:6379/0"
            ),
            "a URL holds a literal password",
        ),
    ],
)
def test_a_literal_secret_is_found(
    compose: Compose, change: Callable[[dict[str, Any]], None], expected: str
) -> None:
    raw = copy.deepcopy(compose.raw)
    change(raw)
    problems = secret_problems(Compose(raw=raw, resolved=compose.resolved, root=ROOT))
    assert len(problems) == 1 and problems[0].startswith(expected), problems


def test_a_variable_missing_from_env_example_is_found() -> None:
    text = COMPOSE.read_text() + "\nx-extra: ${NOT_IN_THE_EXAMPLE:-1}\n"
    assert undeclared_variables(text, read_env_file(ENV_EXAMPLE)) == [
        "NOT_IN_THE_EXAMPLE is used by the compose file but not listed in .env.example"
    ]


def test_an_unknown_setting_is_found(compose: Compose) -> None:
    def typo(c: dict[str, Any]) -> None:
        c["services"]["worker"]["environment"]["TICKWATCH_METRIC_PORT"] = "9108"

    assert added(setting_problems, compose, typo) == [
        "worker: TICKWATCH_METRIC_PORT is not a tickwatch setting"
    ]


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("workers:9108", "job tickwatch-worker: workers:9108: no compose service 'workers'"),
        ("worker:9100", "job tickwatch-worker: worker:9100: worker does not expose port 9100"),
    ],
)
def test_a_scrape_target_outside_the_stack_is_found(
    compose: Compose, target: str, expected: str
) -> None:
    job = {"job_name": "tickwatch-worker", "static_configs": [{"targets": [target]}]}
    config = {"scrape_configs": [job]}
    assert scrape_problems(compose, config)[0] == expected


def test_a_worker_serving_metrics_on_its_loopback_only_is_found(compose: Compose) -> None:
    def loopback(c: dict[str, Any]) -> None:
        del c["services"]["worker"]["environment"]["TICKWATCH_METRICS_HOST"]
        c["services"]["worker"]["environment"]["TICKWATCH_METRICS_PORT"] = "9200"

    config = {
        "scrape_configs": [
            {"job_name": "w", "dns_sd_configs": [{"names": ["worker"], "type": "A", "port": 9108}]}
        ]
    }
    assert scrape_problems(broken(compose, loopback), config) == [
        "job w: worker:9108: TICKWATCH_METRICS_HOST is '127.0.0.1': Prometheus cannot reach it",
        "job w: worker:9108: the process serves metrics on 9200 (TICKWATCH_METRICS_PORT)",
    ]


def test_container_ports_read_expose_and_ports() -> None:
    service = {"expose": ["9108", "7000-7001/tcp"], "ports": ["127.0.0.1:80:8080", {"target": 81}]}
    assert container_ports(service) == {9108, 7000, 7001, 8080, 81}
