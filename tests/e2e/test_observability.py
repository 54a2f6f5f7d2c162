"""The operator's view end to end: a real Prometheus scrapes real tickwatch processes and
evaluates the repo's rules, and a real Alertmanager delivers what fires to a loopback
webhook by the repo's routes. Every query of the committed dashboards has data once
`tickwatch demo` (a real worker and gateway on the embedded broker and Redis) has replayed
the HSTECH story; the worker killed by SIGKILL reaches the webhook as TickwatchWorkerDown;
a feed that stops during an open session (a 24/7 calendar: always open) as
TickwatchFeedStale, and not while the feed runs.

Only the rules' `for:` durations and FeedStale's 2-minute threshold are shortened, by
explicit changes that fail the test when they no longer find their text.
"""

from __future__ import annotations

import json
import math
import os
import queue
import re
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import httpx
import pytest

from schemas.settings import Settings
from schemas.ticks import Tick
from streams.dev.broker import spawn_broker
from streams.dev.children import metrics_urls, stop_child
from streams.dev.observability import (
    GATEWAY_JOB,
    WORKER_JOB,
    Prometheus,
    RuleChange,
    changed_rules,
    repo_alertmanager_config,
    repo_rule_files,
    running_alertmanager,
    running_prometheus,
)
from streams.dev.redis_server import free_port
from streams.dev.workers import start_worker
from streams.replay import publish_ticks
from streams.topics import topic_specs
from tests.e2e.observability_support import Webhook, running_webhook, until
from tests.e2e.test_cli import TICKWATCH
from tools.dashboards import DASHBOARD_FILES, annotation_queries, panel_queries

#: What the demo prints: a metrics line per process, its live page, its summary.
METRICS_LINE = re.compile(r"^demo: (worker|gateway) metrics: (http://\S+/metrics)$")
PAGE_LINE = re.compile(r"^demo: live page (http://127\.0\.0\.1:\d+)/#token=(tw_[\w-]+)$")
APPLIED_LINE = re.compile(r"^demo: worker: (\d+) applied")
SUMMARY_END = re.compile(r"^demo: alerts: \d+")
#: The test's own market: one instrument on an exchange whose session is always open.
EXCHANGE = "24/7"
INSTRUMENTS = f"""\
instruments:
  - {{symbol: PING, name: Ping, exchange: "{EXCHANGE}"}}
"""
#: FeedStale's threshold for the test (the rule's is 120 s); the feed ticks far faster.
STALE_S = 5
FEED_EVERY_S = 0.25


@pytest.fixture
def settings(redis_url: str, key_prefix: str, tmp_path: Path) -> Iterator[Settings]:
    """A broker of the test's own, Redis, the one-instrument market, and a metrics port
    picked up front, so that Prometheus can start beside the worker."""
    instruments = tmp_path / "instruments.yaml"
    instruments.write_text(INSTRUMENTS)
    base = Settings(
        redis_url=redis_url,
        key_prefix=key_prefix,
        app_id=f"tickwatch-test-{uuid.uuid4().hex[:6]}",
        ticks_partitions=1,
        alerts_partitions=1,
        commit_interval_s=0.2,
        instruments_file=instruments,
        metrics_port=free_port(),
    )
    broker = spawn_broker(topic_specs(base))
    try:
        yield base.model_copy(update={"kafka_bootstrap": broker.bootstrap})
    finally:
        broker.stop()


class Printed:
    """The lines a child prints, read from a thread, awaited with a deadline."""

    def __init__(self, process: subprocess.Popen[str], errors: Path) -> None:
        self._process = process
        self._errors = errors
        self._queue: queue.Queue[str] = queue.Queue()
        self.lines: list[str] = []
        threading.Thread(target=self._read, args=(process.stdout,), daemon=True).start()

    def _read(self, stream: IO[str] | None) -> None:
        for line in stream or ():
            self._queue.put(line.rstrip("\n"))

    def until(self, pattern: re.Pattern[str], timeout_s: float) -> re.Match[str]:
        """The match of the first line (printed so far or next) that matches."""
        deadline = time.monotonic() + timeout_s
        for line in self.lines:
            if found := pattern.search(line):
                return found
        while True:
            try:
                line = self._queue.get(timeout=0.5)
            except queue.Empty:
                if self._process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(
                        f"no line matching {pattern.pattern!r} (exit {self._process.returncode}):"
                        f"\n{chr(10).join(self.lines)[-3000:]}\n{self._errors.read_text()[-3000:]}"
                    ) from None
                continue
            self.lines.append(line)
            if found := pattern.search(line):
                return found


class Trader:
    """A client of the gateway's live stream, as the demo's page is: what it receives."""

    def __init__(self, url: str, token: str) -> None:
        self.alerts = 0
        self.failure: BaseException | None = None
        self._args = (f"{url}/v1/alerts/stream", {"Authorization": f"Bearer {token}"})
        threading.Thread(target=self._follow, daemon=True).start()

    def _follow(self) -> None:
        url, headers = self._args
        try:
            # Read until the demo ends: its gateway closes the stream.
            with httpx.stream("GET", url, headers=headers, timeout=60) as response:
                response.raise_for_status()
                for line in response.iter_lines():
                    self.alerts += line == "event: alert"
        except httpx.HTTPError as error:
            self.failure = error


def no_data(result: list[dict[str, Any]]) -> str | None:
    """Why a query's answer would show as no data in Grafana: no series, or only NaN."""
    if not result:
        return "no series"
    values = [float(series["value"][1]) for series in result]
    if all(math.isnan(value) for value in values):
        return f"only NaN ({len(values)} series)"
    return None


def dashboard_queries() -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(where, expr) for every target of every panel, and every annotation, of the
    committed dashboards: those that must have data after the demo, and those that may
    not (annotations of firing operator alerts, which the demo need not raise: though
    during HKEX hours its 2025 ticks are rightly stale, FeedStale waits a minute)."""
    data: list[tuple[str, str]] = []
    maybe: list[tuple[str, str]] = []
    for uid, path in sorted(DASHBOARD_FILES.items()):
        dashboard = json.loads(path.read_text())
        for title, expr in panel_queries(dashboard):
            data.append((f"{uid} / {title}", expr))
        for name, expr in annotation_queries(dashboard):
            (maybe if "ALERTS" in expr else data).append((f"{uid} / annotation {name}", expr))
    return data, maybe


def without_data(prometheus: Prometheus, queries: list[tuple[str, str]]) -> list[str]:
    empty = []
    for where, expr in queries:
        why = no_data(prometheus.query(expr))
        if why is not None:
            empty.append(f"{where}: {why}: {expr}")
    return empty


@pytest.mark.slow
def test_every_dashboard_query_has_data_once_the_demo_has_replayed(tmp_path: Path) -> None:
    # Ports chosen up front (as an operator may), so that Prometheus scrapes from the
    # demo's first tick on: a rate needs two samples around what it counts.
    worker = f"http://127.0.0.1:{free_port()}/metrics"
    gateway = f"http://127.0.0.1:{free_port()}/metrics"
    env = {
        **os.environ,
        "TICKWATCH_METRICS_PORT": worker.split(":")[2].split("/")[0],
        "TICKWATCH_GATEWAY_METRICS_PORT": gateway.split(":")[2].split("/")[0],
        "TICKWATCH_GATEWAY_PORT": "0",
    }
    queries, maybe = dashboard_queries()
    assert len(queries) >= 20, queries
    errors = tmp_path / "demo.err"
    with (
        # The repo's rules too: dashboards may read their recorded series.
        running_prometheus(
            tmp_path / "prometheus",
            {WORKER_JOB: [worker], GATEWAY_JOB: [gateway]},
            rule_files=repo_rule_files(),
        ) as prometheus,
        errors.open("w") as errors_file,
    ):
        demo = subprocess.Popen(
            [*TICKWATCH, "demo", "--keep-running"],
            stdout=subprocess.PIPE, stderr=errors_file, text=True, env=env,
        )  # fmt: skip
        try:
            printed = Printed(demo, errors)
            url, token = printed.until(PAGE_LINE, 120).groups()
            trader = Trader(url, token)  # alerts are delivered live, as to the page
            applied = int(printed.until(APPLIED_LINE, 180)[1])
            printed.until(SUMMARY_END, 30)
            said = [m.groups() for line in printed.lines if (m := METRICS_LINE.search(line))]
            assert sorted(said) == [("gateway", gateway), ("worker", worker)], printed.lines

            # Prometheus has the demo's end once it has scraped the worker's final count.
            done = f"sum(tickwatch_ticks_applied_total) == {applied}"
            until(lambda: prometheus.query(done), 30, f"Prometheus to see {done}")
            assert trader.failure is None, trader.failure
            assert trader.alerts > 0, "the trader's stream received no alert"
            # The gateway's counts come from another process's scrapes: a few seconds more.
            deadline = time.monotonic() + 20
            while (empty := without_data(prometheus, queries)) and time.monotonic() < deadline:
                time.sleep(1)
            assert empty == [], "dashboard queries without data:\n" + "\n".join(empty)
            for _, expr in maybe:
                prometheus.query(expr)  # Prometheus takes it (an error raises)
        finally:
            demo.send_signal(signal.SIGTERM)
            try:
                demo.wait(timeout=30)
            finally:
                demo.kill()
                demo.wait()


def served_metrics(log: Path, url: str, timeout_s: float = 60) -> str:
    """The worker's /metrics text once it serves it; checks it said so, as the contract's
    one line on its output."""
    deadline = time.monotonic() + timeout_s
    while True:
        said = metrics_urls(log, "worker")
        if said:
            assert said == [url], said
            return httpx.get(url, timeout=5).text
        if time.monotonic() > deadline:
            tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
            raise AssertionError(f"no 'tickwatch worker: metrics' line in {log}:\n{tail}")
        time.sleep(0.1)


@contextmanager
def operator_alerting(
    folder: Path, worker_url: str, rules: list[Path]
) -> Iterator[tuple[Webhook, Prometheus]]:
    """A loopback webhook behind the repo's Alertmanager routes, and a Prometheus scraping
    one worker with these rules and notifying that Alertmanager."""
    with (
        running_webhook() as hook,
        running_alertmanager(folder / "alertmanager", repo_alertmanager_config(hook.url)) as am,
        running_prometheus(
            folder / "prometheus", {WORKER_JOB: [worker_url]}, rule_files=rules,
            alertmanager=am.url,
        ) as prometheus,
    ):  # fmt: skip
        yield hook, prometheus


@pytest.mark.slow
def test_a_killed_worker_reaches_the_webhook_as_worker_down(
    settings: Settings, tmp_path: Path
) -> None:
    rules = changed_rules(
        repo_rule_files(), [RuleChange("TickwatchWorkerDown", for_="1s")], tmp_path / "rules"
    )
    url = f"http://127.0.0.1:{settings.metrics_port}/metrics"
    log = tmp_path / "worker.log"
    worker = start_worker(settings, log)
    try:
        with operator_alerting(tmp_path, url, rules) as (hook, prometheus):
            served_metrics(log, url)
            # Until Prometheus has scraped the worker, the rule may fire: by its absent()
            # branch, or on a first scrape that came before the worker listened. This is
            # about the running worker, by its instance label, and what comes after it.
            instance = f"127.0.0.1:{settings.metrics_port}"
            up = f'up{{instance="{instance}"}} == 1'
            down = f'ALERTS{{alertname="TickwatchWorkerDown", instance="{instance}"}}'
            until(
                lambda: prometheus.query(up) and not prometheus.query(down),
                30,
                "Prometheus to scrape the running worker, and no WorkerDown for it",
            )
            mark = hook.mark()

            worker.kill()
            worker.wait()
            alert = hook.wait_for("TickwatchWorkerDown", "firing", 30, mark, instance=instance)
            assert alert["labels"]["severity"] == "critical"
            assert alert["receiver"] == "page", "a critical alert pages (the repo's routes)"
            assert alert["labels"]["job"] == WORKER_JOB
            assert alert["annotations"]["runbook_url"].endswith("#tickwatchworkerdown")
            assert alert["annotations"]["summary"]
    finally:
        stop_child(worker)


class Feed:
    """Ticks of PING stamped now, every FEED_EVERY_S, from a thread, until stopped."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._stop = threading.Event()
        self.sent = 0
        self.failure: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                tick = Tick(symbol="PING", price=100 + self.sent % 7, ts=datetime.now(UTC))
                publish_ticks([tick], self._settings.kafka_bootstrap, self._settings.topic_ticks)
                self.sent += 1
                self._stop.wait(FEED_EVERY_S)
        except BaseException as error:  # shown by stop(): a silent feed would pass as stale
            self.failure = error

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)
        assert self.failure is None, f"the feed failed: {self.failure!r}"


@pytest.mark.slow
def test_a_feed_that_stops_during_its_session_reaches_the_webhook_as_feed_stale(
    settings: Settings, tmp_path: Path
) -> None:
    rules = changed_rules(
        repo_rule_files(),
        [RuleChange("TickwatchFeedStale", for_="1s", old="> 120", new=f"> {STALE_S}")],
        tmp_path / "rules",
    )
    url = f"http://127.0.0.1:{settings.metrics_port}/metrics"
    log = tmp_path / "worker.log"
    worker = start_worker(settings, log)
    feed = Feed(settings)
    try:
        # Prometheus first sees the worker once it has applied a tick: an open exchange
        # with no tick yet is stale by the rule's own design.
        lag = f'tickwatch_event_time_lag_seconds{{exchange="{EXCHANGE}"}}'
        until(lambda: lag in served_metrics(log, url), 60, f"{lag} on {url}")
        with operator_alerting(tmp_path, url, rules) as (hook, prometheus):
            began = time.monotonic()
            opened = f'tickwatch_exchange_open{{exchange="{EXCHANGE}"}} == 1'
            until(lambda: prometheus.query(opened), 30, f"Prometheus to see {opened}")
            # The feed runs on while the rule is evaluated every second.
            started = time.monotonic()
            until(lambda: time.monotonic() - started > 6, 10, "the feed to run 6 s")
            window = f"{int(time.monotonic() - began) + 5}s"
            (highest,) = prometheus.query(f"max_over_time({lag}[{window}])")
            assert float(highest["value"][1]) < STALE_S, highest
            assert prometheus.query(f"count_over_time({lag}[{window}]) >= 5"), "too few scrapes"
            never = f'count_over_time(ALERTS{{alertname="TickwatchFeedStale"}}[{window}])'
            assert prometheus.query(never) == [], "FeedStale pending or firing during the feed"

            feed.stop()
            alert = hook.wait_for("TickwatchFeedStale", "firing", 40)
            assert alert["labels"]["exchange"] == EXCHANGE
            assert alert["labels"]["severity"] == "warning"
            assert alert["receiver"] == "team", "a warning goes to the team (the repo's routes)"
            assert "newest_tick" not in alert["labels"], alert["labels"]
            assert alert["annotations"]["runbook_url"].endswith("#tickwatchfeedstale")
            assert worker.poll() is None, "the worker died: a stale feed must come from the feed"
    finally:
        feed.stop()
        stop_child(worker)
