"""A real worker's /metrics, scraped over HTTP: what it counts is what happened."""

from __future__ import annotations

import shutil
import socket
import subprocess
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from alerts.delivery.kafka_offsets import reader, watermarks
from schemas.settings import Settings
from schemas.ticks import Tick
from streams.dev.children import metrics_urls, stop_child
from streams.dev.redis_server import free_port
from streams.dev.workers import start_worker, wait_until
from streams.replay import publish_ticks
from tests.documented_metrics import undocumented
from tests.integration.support import alerts_on_kafka, processed_all

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]

TICKS = [
    ("2025-09-17T02:00", "BIDU", 100.0),
    ("2025-09-17T02:00", "BABA", 120.0),
    ("2025-09-17T07:59", "BIDU", 101.0),
    ("2025-09-18T02:00", "BIDU", 103.0),
    ("2025-09-18T02:00", "BABA", 124.0),
    ("2025-09-18T03:00", "BIDU", 105.2),  # +4.2% on the previous close: an alert
    ("2025-09-18T04:00", "BIDU", 106.0),
]


def ticks() -> list[Tick]:
    return [
        Tick(symbol=s, price=p, ts=datetime.fromisoformat(ts).replace(tzinfo=UTC))
        for ts, s, p in TICKS
    ]


def samples(text: str) -> Samples:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def scrape(url: str) -> str:
    return httpx.get(url, timeout=5).text


def settled(found: Samples) -> bool:
    lag = [v for (name, _), v in found.items() if name == "tickwatch_consumer_lag_messages"]
    applied = found.get(("tickwatch_ticks_applied_total", ()))
    return applied == 7 and bool(lag) and not any(lag)


def announced(log: Path, worker: subprocess.Popen[bytes]) -> str:
    """The worker's metrics URL, from the one line it prints on start."""
    found: list[str] = []

    def said() -> bool:
        assert worker.poll() is None, log.read_text()
        found[:] = metrics_urls(log, "worker")
        return bool(found)

    wait_until(said, 30, "the worker's metrics line", log)
    return found[0]


def test_the_counters_say_what_the_worker_did_and_promtool_accepts_them(
    settings: Settings, tmp_path: Path
) -> None:
    log = tmp_path / "worker.log"
    worker = start_worker(settings, log)
    try:
        url = announced(log, worker)
        assert url.startswith("http://127.0.0.1:") and url.endswith("/metrics")
        assert not url.endswith(":9108/metrics")  # a spawned worker takes any free port
        ends = publish_ticks(ticks(), settings.kafka_bootstrap, settings.topic_ticks)
        wait_until(processed_all(settings, ends), 90, "the worker to commit every tick", log)
        # Counted in the same step as the batch's outcome, before Faust commits it; lag
        # is looked at every half second.
        wait_until(lambda: settled(samples(scrape(url))), 10, "the counts and lag", log)
        text = scrape(url)
    finally:
        stop_child(worker)

    found = samples(text)
    consumer = reader(settings.kafka_bootstrap, "probe")
    try:
        highs = watermarks(consumer, settings.topic_ticks, None, 5)
    finally:
        consumer.close()
    topic = (("topic", settings.topic_ticks),)
    assert found[("tickwatch_messages_consumed_total", topic)] == sum(h for _, h in highs.values())
    assert found[("tickwatch_ticks_consumed_total", ())] == 7
    assert found[("tickwatch_ticks_ignored_total", (("reason", "duplicate"),))] == 0
    assert found[("tickwatch_ticks_lost_total", topic)] == 0
    kinds = Counter((a.kind, a.stage) for a in alerts_on_kafka(settings))
    assert sum(kinds.values()) == 1
    raised = {
        (dict(labels)["kind"], dict(labels)["stage"]): value
        for (name, labels), value in found.items()
        if name == "tickwatch_alerts_total"
    }
    assert raised == kinds
    # The stores' round trips: loads, epochs, members and one commit per batch at least.
    commits = found[("tickwatch_redis_commit_seconds_count", ())]
    assert 1 <= commits < found[("tickwatch_redis_roundtrips_total", ())]
    assert found[("tickwatch_tick_to_alert_seconds_count", (("since", "ingest"),))] == 1
    assert found[("tickwatch_tick_to_alert_seconds_count", (("since", "event_time"),))] == 1
    assert found[("tickwatch_batch_size_ticks_sum", (("agent", "ingest"),))] == sum(
        h for _, h in highs.values()
    )
    assert found[("tickwatch_partitions_assigned", topic)] == settings.ticks_partitions
    # Event time: the newest tick of the demo's exchange ("24/7": always open), in 2025.
    exchange = (("exchange", "24/7"),)
    newest = datetime(2025, 9, 18, 4, tzinfo=UTC).timestamp()
    assert found[("tickwatch_last_tick_timestamp_seconds", exchange)] == newest
    assert found[("tickwatch_event_time_lag_seconds", exchange)] > 86_400
    assert found[("tickwatch_exchange_open", exchange)] == 1
    assert found[("tickwatch_outbox_pending_alerts", ())] == 0
    build = {
        dict(labels)["component"] for (name, labels) in found if name == "tickwatch_build_info"
    }
    assert build == {"worker"}
    assert undocumented(text) == {}, "export nothing the README's metric tables do not list"

    promtool = shutil.which("promtool")
    assert promtool is not None, "promtool (Debian's prometheus package) is needed"
    checked = subprocess.run(
        [promtool, "check", "metrics"], input=text.encode(), capture_output=True, timeout=30
    )
    assert (checked.returncode, checked.stdout + checked.stderr) == (0, b"")


def test_without_metrics_the_worker_serves_nothing(settings: Settings, tmp_path: Path) -> None:
    port = free_port()
    quiet = settings.model_copy(update={"metrics_enabled": False, "metrics_port": port})
    log = tmp_path / "worker.log"
    worker = start_worker(quiet, log)
    try:
        ends = publish_ticks(ticks(), settings.kafka_bootstrap, settings.topic_ticks)
        wait_until(processed_all(settings, ends), 90, "the worker to commit every tick", log)
        with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port)):
            pass
    finally:
        stop_child(worker)
    assert metrics_urls(log, "worker") == []
    assert "metrics" not in log.read_text()


def test_a_busy_metrics_port_is_one_line_and_exit_2(settings: Settings, tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = settings.model_copy(update={"metrics_port": taken.getsockname()[1]})
        log = tmp_path / "worker.log"
        worker = start_worker(busy, log)
        assert worker.wait(60) == 2
    lines = log.read_text().strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("tickwatch worker: error: cannot serve metrics on 127.0.0.1:")
    assert lines[0].endswith("(set TICKWATCH_METRICS_PORT)")
