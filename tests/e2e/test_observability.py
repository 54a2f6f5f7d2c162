"""The operator's view end to end: a real Prometheus scrapes real tickwatch processes and
evaluates the repo's rules, and a real Alertmanager delivers what fires to a loopback
webhook by the repo's routes. The worker killed by SIGKILL reaches the webhook as
TickwatchWorkerDown; a feed that stops during an open session (a 24/7 calendar: always
open) as TickwatchFeedStale, and not while the feed runs.

Only the rules' `for:` durations and FeedStale's 2-minute threshold are shortened, by
explicit changes that fail the test when they no longer find their text.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from schemas.settings import Settings
from schemas.ticks import Tick
from streams.dev.broker import spawn_broker
from streams.dev.children import metrics_urls, stop_child
from streams.dev.observability import (
    WORKER_JOB,
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
from tests.e2e.observability_support import running_webhook, until

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
        with (
            running_webhook() as hook,
            running_alertmanager(
                tmp_path / "alertmanager", repo_alertmanager_config(hook.url)
            ) as alertmanager,
            running_prometheus(
                tmp_path / "prometheus",
                {WORKER_JOB: [url]},
                rule_files=rules,
                alertmanager=alertmanager.url,
            ) as prometheus,
        ):
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
        with (
            running_webhook() as hook,
            running_alertmanager(
                tmp_path / "alertmanager", repo_alertmanager_config(hook.url)
            ) as alertmanager,
            running_prometheus(
                tmp_path / "prometheus",
                {WORKER_JOB: [url]},
                rule_files=rules,
                alertmanager=alertmanager.url,
            ) as prometheus,
        ):
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
