"""The operator's side for development: a real Prometheus scraping tickwatch's /metrics and
evaluating deploy/prometheus's rules, and a real Alertmanager it notifies, as children.

The end-to-end tests point them at real workers and gateways; every file they need
(configs, storage) lives in a folder the caller gives, which keeps their logs for a
failure's message.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import yaml

from schemas.errors import TickwatchError
from streams.dev.children import spawn, stop_child
from streams.dev.redis_server import free_port

#: The repo's operator alerting rules (a checkout's; an installed package has no deploy/).
RULES_DIR = Path(__file__).resolve().parents[2] / "deploy" / "prometheus" / "rules"
#: The repo's Alertmanager config (its routes and receivers).
ALERTMANAGER_FILE = RULES_DIR.parents[1] / "alertmanager" / "alertmanager.yml"
#: Job names of the contract, as deploy/prometheus/prometheus.yml names them.
WORKER_JOB = "tickwatch-worker"
GATEWAY_JOB = "tickwatch-gateway"
#: How often Prometheus scrapes and evaluates here: a test waits seconds, not minutes.
INTERVAL = "1s"


class ObservabilityError(TickwatchError):
    """Prometheus or Alertmanager could not start or answer, or a rule change did not apply;
    the message says which, and where its log is."""


@dataclass(frozen=True)
class RuleChange:
    """One change to one alerting rule of the repo's files, for a test that cannot wait
    minutes or hours: its `for` replaced, and/or `old` replaced by `new` in its expr.

    Loud when the alert or the text is not found: a renamed alert or a changed threshold
    must fail the test, not leave it checking the unchanged rule.
    """

    alert: str
    for_: str | None = None
    old: str = ""
    new: str = ""


def changed_rules(sources: Sequence[Path], changes: Sequence[RuleChange], into: Path) -> list[Path]:
    """The rule files, with the changes applied, written into `into`; ObservabilityError
    naming every change that found no alert or no text."""
    into.mkdir(parents=True, exist_ok=True)
    unmet = {change: f"no alert {change.alert!r}" for change in changes}
    written = []
    for number, source in enumerate(sources):
        try:
            document = yaml.safe_load(source.read_text())
        except (OSError, yaml.YAMLError) as error:
            raise ObservabilityError(f"cannot read rules {source}: {error}") from None
        for group in (document or {}).get("groups", []):
            for rule in group.get("rules", []):
                for change in changes:
                    if rule.get("alert") == change.alert:
                        unmet.pop(change, None)
                        _apply(change, rule, unmet)
        target = into / f"{number:02d}-{source.name}"
        target.write_text(yaml.safe_dump(document, sort_keys=False))
        written.append(target)
    if unmet:
        raise ObservabilityError(
            "rule changes did not apply: " + "; ".join(f"{c}: {why}" for c, why in unmet.items())
        )
    return written


def _apply(change: RuleChange, rule: dict[str, Any], unmet: dict[RuleChange, str]) -> None:
    if change.for_ is not None:
        rule["for"] = change.for_
    if change.old:
        expr = str(rule.get("expr", ""))
        if change.old not in expr:
            unmet[change] = f"{change.old!r} not in its expr {expr!r}"
        rule["expr"] = expr.replace(change.old, change.new)


def repo_rule_files() -> list[Path]:
    """deploy/prometheus/rules/*.yml; ObservabilityError when there is none."""
    found = sorted(RULES_DIR.glob("*.yml"))
    if not found:
        raise ObservabilityError(f"no rule files in {RULES_DIR}")
    return found


def binary(*names: str) -> str:
    """The first of these programs on PATH; ObservabilityError saying what to install."""
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    raise ObservabilityError(
        f"{names[0]} is not installed (Debian: apt-get install prometheus prometheus-alertmanager)"
    )


def scrape_config(targets: Mapping[str, Sequence[str]]) -> list[dict[str, Any]]:
    """A scrape job per job name, its targets given as metrics URLs; ObservabilityError
    when one job's URLs differ in path (Prometheus has one path per job)."""
    jobs = []
    for job, urls in targets.items():
        parts = [urlsplit(url) for url in urls]
        paths = {part.path or "/metrics" for part in parts}
        if len(paths) > 1:
            raise ObservabilityError(f"job {job}: one metrics path per job, not {sorted(paths)}")
        jobs.append(
            {
                "job_name": job,
                "metrics_path": paths.pop() if paths else "/metrics",
                "static_configs": [{"targets": [part.netloc for part in parts]}],
            }
        )
    return jobs


@dataclass
class Server:
    """A running Prometheus or Alertmanager child: its URL, process and log."""

    name: str
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def tail(self, chars: int = 3000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def get(self, path: str, **params: str) -> Any:
        """The `data` of an API answer; ObservabilityError (with the log) on any failure."""
        try:
            answer = httpx.get(f"{self.url}{path}", params=params, timeout=10)
            body = answer.json()
        except (httpx.HTTPError, ValueError) as error:
            raise ObservabilityError(f"{self.name} {path}: {error}\n{self.tail()}") from None
        if body.get("status") != "success":
            raise ObservabilityError(f"{self.name} {path} {params}: {body.get('error', body)}")
        return body.get("data")


class Prometheus(Server):
    def query(self, expr: str) -> list[dict[str, Any]]:
        """The instant vector (or [scalar]) an expression gives now."""
        data = self.get("/api/v1/query", query=expr)
        result = data["result"]
        return list(result) if data["resultType"] == "vector" else [{"value": result}]

    def targets(self) -> list[dict[str, Any]]:
        return list(self.get("/api/v1/targets")["activeTargets"])

    def alerts(self) -> list[dict[str, Any]]:
        """The alerts its rules hold now, pending or firing."""
        return list(self.get("/api/v1/alerts")["alerts"])


@contextmanager
def running_prometheus(
    folder: Path,
    targets: Mapping[str, Sequence[str]],
    *,
    rule_files: Sequence[Path] = (),
    alertmanager: str | None = None,
    timeout_s: float = 30.0,
) -> Iterator[Prometheus]:
    """Prometheus on a free loopback port, scraping and evaluating every second: `targets`
    maps job names to metrics URLs; `alertmanager` is an Alertmanager's URL. Its config,
    storage and log in `folder`; stopped on exit."""
    folder.mkdir(parents=True, exist_ok=True)
    config: dict[str, Any] = {
        "global": {
            "scrape_interval": INTERVAL,
            "scrape_timeout": INTERVAL,
            "evaluation_interval": INTERVAL,
        },
        "rule_files": [str(path) for path in rule_files],
        "scrape_configs": scrape_config(targets),
    }
    if alertmanager is not None:
        config["alerting"] = {
            "alertmanagers": [{"static_configs": [{"targets": [urlsplit(alertmanager).netloc]}]}]
        }
    config_file = folder / "prometheus.yml"
    config_file.write_text(yaml.safe_dump(config, sort_keys=False))
    port = free_port()
    args = [
        binary("prometheus"),
        f"--config.file={config_file}",
        f"--storage.tsdb.path={folder / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        # Alerts go out as soon as they fire, not at Prometheus's 1-minute resend pace.
        "--rules.alert.resend-delay=1s",
    ]
    with _running("prometheus", args, folder, f"http://127.0.0.1:{port}", timeout_s) as server:
        yield Prometheus(server.name, server.url, server.process, server.log)


def alertmanager_config(webhook: str) -> dict[str, Any]:
    """Every alert to one webhook, grouped by alert name and sent within a second."""
    return {
        "route": {
            "receiver": "webhook",
            "group_by": ["alertname"],
            "group_wait": "1s",
            "group_interval": "1s",
            "repeat_interval": "1h",
        },
        "receivers": [
            {"name": "webhook", "webhook_configs": [{"url": webhook, "send_resolved": True}]}
        ],
    }


def repo_alertmanager_config(webhook: str, source: Path = ALERTMANAGER_FILE) -> dict[str, Any]:
    """The repo's Alertmanager config, its routes as they are, but every webhook receiver's
    URL moved to `webhook`'s host and port (its path kept, so a test sees which receiver
    got what) and every route's waits cut to a second. ObservabilityError when it has no
    webhook receiver to move."""
    try:
        config = yaml.safe_load(source.read_text())
    except (OSError, yaml.YAMLError) as error:
        raise ObservabilityError(f"cannot read {source}: {error}") from None
    target = urlsplit(webhook)
    moved = 0
    for receiver in config.get("receivers", []):
        for hook in receiver.get("webhook_configs", []):
            hook["url"] = urlsplit(hook["url"])._replace(netloc=target.netloc).geturl()
            moved += 1
    if not moved:
        raise ObservabilityError(f"{source}: no webhook receiver to point at {webhook}")
    routes = [config["route"]]
    while routes:
        route = routes.pop()
        for wait in ("group_wait", "group_interval"):
            if wait in route or route is config["route"]:
                route[wait] = "1s"
        routes.extend(route.get("routes", []))
    return dict(config)


@contextmanager
def running_alertmanager(
    folder: Path, config: Mapping[str, Any], timeout_s: float = 30.0
) -> Iterator[Server]:
    """Alertmanager on a free loopback port, clustering off, with `config` (e.g.
    `alertmanager_config(url)` or `repo_alertmanager_config(url)`). Its config, storage
    and log in `folder`; stopped on exit."""
    folder.mkdir(parents=True, exist_ok=True)
    config_file = folder / "alertmanager.yml"
    config_file.write_text(yaml.safe_dump(dict(config), sort_keys=False))
    port = free_port()
    args = [
        binary("prometheus-alertmanager", "alertmanager"),
        f"--config.file={config_file}",
        f"--storage.path={folder / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--cluster.listen-address=",  # a single instance: no gossip port to collide on
    ]
    with _running("alertmanager", args, folder, f"http://127.0.0.1:{port}", timeout_s) as server:
        yield server


@contextmanager
def _running(
    name: str, args: Sequence[str], folder: Path, url: str, timeout_s: float
) -> Iterator[Server]:
    log = folder / f"{name}.log"
    with log.open("ab") as out:
        process = spawn(args, stdout=out, stderr=out)
    server = Server(name, url, process, log)
    try:
        _wait_ready(server, timeout_s)
        yield server
    finally:
        stop_child(process, timeout_s=10)


def _wait_ready(server: Server, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        if server.process.poll() is not None:
            raise ObservabilityError(
                f"{server.name} exited with code {server.process.returncode}; "
                f"see {server.log}:\n{server.tail()}"
            )
        try:
            if httpx.get(f"{server.url}/-/ready", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise ObservabilityError(
                f"{server.name} not ready within {timeout_s:.0f}s; see {server.log}:\n"
                f"{server.tail()}"
            )
        time.sleep(0.05)
