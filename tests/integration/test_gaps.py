"""Offsets Kafka deleted before a worker read them are named and counted, never skipped
in silence."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

from schemas.settings import Settings
from schemas.ticks import Tick
from streams.dev.broker import spawn_broker
from streams.dev.children import stop_child
from streams.dev.workers import start_worker, wait_until, worker_counts
from streams.replay import publish_ticks
from streams.topics import topic_specs
from tests.integration.support import committed, log_start, processed_all


def test_a_position_below_the_log_start_is_one_error_and_a_count(
    base_settings: Settings, tmp_path: Path
) -> None:
    settings = base_settings.model_copy(update={"ticks_partitions": 1})
    broker = spawn_broker(topic_specs(settings))
    settings = settings.model_copy(update={"kafka_bootstrap": broker.bootstrap})
    log = tmp_path / "worker.log"
    start = datetime(2025, 9, 17, 1, tzinfo=UTC)
    try:
        worker = start_worker(settings, log)
        first = [Tick(symbol="BIDU", price=100.0, ts=start)]
        ends = publish_ticks(first, settings.kafka_bootstrap, settings.topic_ticks)
        wait_until(processed_all(settings, ends), 90, "the first tick", log)
        stop_child(worker)
        read_to = committed(settings, settings.topic_ticks)[0]

        # While no worker runs, more than the embedded broker keeps (about 5 MB).
        flood = [Tick(symbol=f"S{n % 500:03d}", price=50.0, ts=start + timedelta(seconds=n))
                 for n in range(90_000)]  # fmt: skip
        ends = publish_ticks(flood, settings.kafka_bootstrap, settings.topic_ticks, batch=1000)
        lost = log_start(settings, settings.topic_ticks) - read_to
        assert lost > 0  # the broker dropped messages the group had not read

        worker = start_worker(settings, log)
        wait_until(processed_all(settings, ends), 120, "the rest of the flood", log)
        stop_child(worker)
    finally:
        broker.stop()
    text = log.read_text()
    errors = re.findall(r"ERROR.*ticks\[0\]: offsets (\d+) to (\d+) \((\d+) messages\) were "
                        r"deleted by Kafka before this worker read them", text)  # fmt: skip
    assert errors == [(str(read_to), str(read_to + lost - 1), str(lost))], text[-3000:]
    assert settings.redis_url is not None
    assert worker_counts(settings.redis_url, settings.key_prefix).get("lost:ticks") == lost
