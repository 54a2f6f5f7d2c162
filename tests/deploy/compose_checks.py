"""What can be checked of docker-compose.yml without a Docker engine; each check lists problems."""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import yaml
from dotenv import dotenv_values
from jsonschema import Draft7Validator

from schemas.settings import Settings
from tests.deploy.interpolation import interpolate, variables_used

Service = dict[str, Any]
#: Environment names that hold secrets: their value must come from .env, never the file.
SECRET_NAME = re.compile(r"PASSWORD|PASSWD|SECRET|TOKEN|API_KEY|_AUTH$")
#: A secret's only acceptable form: a required variable, no default to fall back on.
REQUIRED_VARIABLE = re.compile(r"^\$\{[_A-Za-z][_A-Za-z0-9]*:\?[^}]*\}$")
URL_PASSWORD = re.compile(r"[a-z][a-z0-9+.-]*://[^/@:\s]*:(?P<password>[^@\s]*)@")
SECRET_FLAGS = ("--requirepass", "--masterauth")
#: Host names by which Prometheus reaches itself.
SELF = ("localhost", "127.0.0.1")


@dataclass(frozen=True)
class Compose:
    """A compose file as written (`raw`) and after interpolation (`resolved`)."""

    raw: dict[str, Any]
    resolved: dict[str, Any]
    root: Path  # bind-mount sources are relative to it

    @property
    def services(self) -> dict[str, Service]:
        services: dict[str, Service] = self.resolved["services"]
        return services


def read_env_file(path: Path) -> dict[str, str]:
    """The variables of a .env file, as compose reads them."""
    return {k: v or "" for k, v in dotenv_values(path, interpolate=False).items()}


def load_compose(path: Path, env: Mapping[str, str]) -> Compose:
    """The compose file at `path`, interpolated with `env` (MissingVariable names a gap)."""
    raw = yaml.safe_load(path.read_text())
    return Compose(raw=raw, resolved=_interpolated(raw, env), root=path.parent)


def _interpolated(value: Any, env: Mapping[str, str]) -> Any:
    # Compose interpolates values, never keys.
    if isinstance(value, str):
        return interpolate(value, env)
    if isinstance(value, dict):
        return {k: _interpolated(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolated(v, env) for v in value]
    return value


def schema_problems(compose: Compose) -> list[str]:
    """Where the interpolated file breaks the Compose specification's JSON Schema."""
    vendored = resources.files("check_jsonschema.builtin_schemas.vendor") / "compose-spec.json"
    schema = json.loads(vendored.read_text())
    validator = Draft7Validator(schema, format_checker=Draft7Validator.FORMAT_CHECKER)
    return [
        f"{'/'.join(str(p) for p in error.absolute_path) or '(top)'}: {error.message}"
        for error in sorted(validator.iter_errors(compose.resolved), key=str)
    ]


def undeclared_variables(compose_text: str, declared: Mapping[str, str]) -> list[str]:
    """Variables the file uses that .env.example does not list."""
    return [
        f"{name} is used by the compose file but not listed in .env.example"
        for name in sorted(variables_used(compose_text) - declared.keys())
    ]


@dataclass(frozen=True)
class Mount:
    service: str
    source: str
    target: str
    bind: bool


def mounts(compose: Compose) -> Iterator[Mount]:
    for name, service in compose.services.items():
        for volume in service.get("volumes", []):
            if isinstance(volume, str):
                source, _, rest = volume.partition(":")
                target = rest.split(":")[0]
                bind = source.startswith((".", "/", "~"))
            else:
                source, target = volume.get("source", ""), volume["target"]
                bind = volume.get("type") == "bind"
            yield Mount(name, source, target, bind)


def mount_problems(compose: Compose) -> list[str]:
    """Bind sources missing from the repo or of the wrong kind; undeclared named volumes."""
    problems = []
    declared = set(compose.resolved.get("volumes") or {})
    root = compose.root.resolve()
    for mount in mounts(compose):
        where = f"{mount.service}: {mount.source}:{mount.target}"
        if not mount.bind:
            if mount.source and mount.source not in declared:
                problems.append(f"{where}: volume {mount.source!r} is not declared")
            continue
        source = (root / mount.source).resolve()
        # A target named like a file (prometheus.yml) takes a file; any other, a directory.
        wants_file = bool(PurePosixPath(mount.target).suffix)
        if not source.is_relative_to(root):
            problems.append(f"{where}: the source is outside the repository")
        elif not source.exists():
            problems.append(f"{where}: the source does not exist")
        elif wants_file and not source.is_file():
            problems.append(f"{where}: the target is a file, the source is not")
        elif not wants_file and not source.is_dir():
            problems.append(f"{where}: the target is a directory, the source is not")
    return problems


@dataclass(frozen=True)
class Published:
    service: str
    host_ip: str  # "" = every address
    host_port: int
    protocol: str


def published_ports(service_name: str, service: Service) -> Iterator[Published]:
    for port in service.get("ports", []):
        if isinstance(port, dict):
            if port.get("published") is not None:
                for host_port in _port_range(str(port["published"])):
                    ip, protocol = port.get("host_ip", ""), port.get("protocol", "tcp")
                    yield Published(service_name, ip, host_port, protocol)
            continue
        spec, _, protocol = str(port).partition("/")
        parts = spec.rsplit(":", 2)
        if len(parts) == 1:
            continue  # container port only: the host picks a free one
        host_ip = parts[0] if len(parts) == 3 else ""
        for host_port in _port_range(parts[-2]):
            yield Published(service_name, host_ip, host_port, protocol or "tcp")


def container_ports(service: Service) -> set[int]:
    """Ports the service listens on inside the network: its `expose` and `ports` targets."""
    found: set[int] = set()
    for port in service.get("expose", []):
        found.update(_port_range(str(port).partition("/")[0]))
    for port in service.get("ports", []):
        if isinstance(port, dict):
            found.add(int(port["target"]))
        else:
            found.update(_port_range(str(port).partition("/")[0].rsplit(":", 1)[-1]))
    return found


def _port_range(text: str) -> range:
    first, _, last = text.partition("-")
    return range(int(first), int(last or first) + 1)


def port_problems(compose: Compose) -> list[str]:
    """Host ports published twice (on the same address, or one of them on every address)."""
    seen: list[Published] = []
    problems = []
    for name, service in compose.services.items():
        for port in published_ports(name, service):
            for other in seen:
                same_address = (
                    not port.host_ip or not other.host_ip or port.host_ip == other.host_ip
                )
                if (other.host_port, other.protocol) == (port.host_port, port.protocol) and (
                    same_address
                ):
                    problems.append(
                        f"host port {port.host_port}/{port.protocol} is published by both "
                        f"{other.service} and {port.service}"
                    )
            seen.append(port)
    return problems


def start_order_problems(compose: Compose) -> list[str]:
    """depends_on naming a missing service, service_healthy on a service with no
    healthcheck, service_completed_successfully on a service restarted for ever."""
    problems = []
    services = compose.services
    for name, service in services.items():
        depends = service.get("depends_on") or {}
        if isinstance(depends, list):
            depends = {d: {"condition": "service_started"} for d in depends}
        for other, how in depends.items():
            condition = how.get("condition", "service_started")
            if other not in services:
                problems.append(f"{name} depends on {other}, which is not a service")
                continue
            check = services[other].get("healthcheck") or {}
            if condition == "service_healthy" and (not check.get("test") or check.get("disable")):
                problems.append(f"{name} waits for {other} to be healthy; it has no healthcheck")
            if condition == "service_completed_successfully" and services[other].get("restart") in (
                "always",
                "unless-stopped",
            ):
                problems.append(f"{name} waits for {other} to complete; it is always restarted")
    return problems


def secret_problems(compose: Compose) -> list[str]:
    """Secrets written in the file instead of coming from .env (checked as written)."""
    problems = []
    for name, service in compose.raw.get("services", {}).items():
        for key, value in _environment(service).items():
            if SECRET_NAME.search(key) and not REQUIRED_VARIABLE.match(str(value)):
                problems.append(f"{name}: {key} must be ${{{key}:?...}} from .env, not {value!r}")
        command = service.get("command") or []
        command = command.split() if isinstance(command, str) else command
        for flag, value in itertools.pairwise(command):
            if flag in SECRET_FLAGS and not REQUIRED_VARIABLE.match(str(value)):
                problems.append(f"{name}: {flag} takes a literal password; use a variable")
    for text in _strings(compose.raw):
        for match in URL_PASSWORD.finditer(text):
            if not REQUIRED_VARIABLE.match(match["password"]):
                problems.append(f"a URL holds a literal password: {text!r}")
    return problems


def _environment(service: Service) -> dict[str, Any]:
    environment = service.get("environment") or {}
    if isinstance(environment, list):
        return dict(item.partition("=")[::2] for item in environment)
    return dict(environment)


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def setting_problems(compose: Compose) -> list[str]:
    """TICKWATCH_* variables that are no setting of tickwatch (a typo is silently ignored)."""
    known = {f"TICKWATCH_{name.upper()}" for name in Settings.model_fields}
    return [
        f"{name}: {key} is not a tickwatch setting"
        for name, service in compose.services.items()
        for key in _environment(service)
        if key.startswith("TICKWATCH_") and key not in known
    ]


@dataclass(frozen=True)
class Target:
    job: str
    host: str
    port: int


def prometheus_targets(config: dict[str, Any]) -> Iterator[Target]:
    """Every host:port the Prometheus config scrapes or sends alerts to."""
    for job in config.get("scrape_configs") or []:
        yield from _targets(job["job_name"], job)
    for manager in (config.get("alerting") or {}).get("alertmanagers") or []:
        yield from _targets("(alerting)", manager)


def _targets(job: str, section: dict[str, Any]) -> Iterator[Target]:
    for static in section.get("static_configs") or []:
        for target in static.get("targets") or []:
            host, _, port = str(target).rpartition(":")
            yield Target(job, host, int(port))
    for dns in section.get("dns_sd_configs") or []:
        for host in dns.get("names") or []:
            yield Target(job, host, int(dns["port"]))


def scrape_problems(compose: Compose, prometheus_config: dict[str, Any]) -> list[str]:
    """Targets naming no compose service, or a port the service does not listen on; a
    tickwatch target whose process would not listen there beyond its own loopback."""
    problems = []
    services = compose.services
    prometheus = next(
        (n for n, s in services.items() if str(s.get("image", "")).startswith("prom/prometheus")),
        None,
    )
    for target in prometheus_targets(prometheus_config):
        host = prometheus if target.host in SELF else target.host
        where = f"job {target.job}: {target.host}:{target.port}"
        if host not in services:
            problems.append(f"{where}: no compose service {target.host!r}")
            continue
        service = services[host]
        if target.port not in container_ports(service):
            problems.append(f"{where}: {host} does not expose port {target.port}")
        if "build" in service:
            problems.extend(f"{where}: {p}" for p in _metrics_listen_problems(service, target))
    return problems


def _metrics_listen_problems(service: Service, target: Target) -> list[str]:
    # tickwatch's processes serve metrics on 127.0.0.1 unless told otherwise.
    environment = _environment(service)
    command = service.get("command") or ["worker"]
    setting = "gateway_metrics_port" if command[0] == "gateway" else "metrics_port"
    variable = f"TICKWATCH_{setting.upper()}"
    port = int(environment.get(variable, Settings.model_fields[setting].default))
    host = environment.get("TICKWATCH_METRICS_HOST", Settings.model_fields["metrics_host"].default)
    problems = []
    if host != "0.0.0.0":
        problems.append(f"TICKWATCH_METRICS_HOST is {host!r}: Prometheus cannot reach it")
    if port != target.port:
        problems.append(f"the process serves metrics on {port} ({variable})")
    return problems


def url_problems(compose: Compose, where: str, url: str) -> list[str]:
    """A URL one service uses to reach another (Grafana's data source, say) that names no
    service of the stack, or a port that service does not listen on."""
    parsed = urlsplit(url)
    host, port = parsed.hostname or "", parsed.port or {"https": 443}.get(parsed.scheme, 80)
    if host not in compose.services:
        return [f"{where}: {url}: no compose service {host!r}"]
    if port not in container_ports(compose.services[host]):
        return [f"{where}: {url}: {host} does not expose port {port}"]
    return []
