"""Redis loses its state under a running worker: the worker notices, holds the
partitions, and raises no alert from empty state (a false "record" is worse than a
pause), also after a restart."""

from __future__ import annotations

from pathlib import Path

from redis import Redis

from schemas.settings import Settings
from streams.dev.children import stop_child
from streams.dev.redis_server import free_port, start_redis_server
from streams.dev.workers import start_worker, wait_until, worker_counts
from streams.replay import publish_ticks
from tests.integration.support import alerts_on_kafka, bidu_ticks, processed_all

LOST_LINE = "the market state in Redis for this partition is gone"


def test_state_flushed_under_a_worker_is_held_not_rebuilt_from_nothing(
    settings: Settings, redis_folder: str, tmp_path: Path
) -> None:
    port = free_port()
    settings = settings.model_copy(update={"redis_url": f"redis://127.0.0.1:{port}/0"})
    redis = start_redis_server(port, redis_folder)
    log = tmp_path / "worker.log"
    worker = start_worker(settings, log)
    try:
        # Two sessions of history: 100, then a +10% day (its alerts are right).
        before = bidu_ticks([("2025-09-15T12:00", 100.0), ("2025-09-16T12:00", 110.0),
                        ("2025-09-17T12:00", 104.0)])  # fmt: skip
        ends = publish_ticks(before, settings.kafka_bootstrap, settings.topic_ticks)
        wait_until(processed_all(settings, ends), 90, "the first ticks", log)
        known = {a.alert_id for a in alerts_on_kafka(settings)}
        assert known  # the +10% day

        Redis(port=port).flushall()  # as a restart without persistence would
        # From empty state, 09-18 at +5% over 09-17 would be "its strongest daily gain
        # on record"; the real history says since 09-16. Nothing may be raised.
        after = bidu_ticks([("2025-09-18T12:00", 109.3), ("2025-09-19T12:00", 120.0)])
        ends = publish_ticks(after, settings.kafka_bootstrap, settings.topic_ticks)
        wait_until(processed_all(settings, ends), 90, "the ticks after the flush", log)
        url = f"redis://127.0.0.1:{port}/0"
        wait_until(lambda: worker_counts(url, settings.key_prefix).get("held", 0) >= 1, 10,
                   "the held count", log)  # fmt: skip
        assert worker.poll() is None, log.read_text()[-3000:]
        assert [a for a in alerts_on_kafka(settings) if a.alert_id not in known] == []
        assert log.read_text().count(LOST_LINE) == 1

        # A restart finds committed offsets but no state: still held, still no alert.
        stop_child(worker)
        worker = start_worker(settings, log)
        later = bidu_ticks([("2025-09-20T12:00", 140.0)])
        ends = publish_ticks(later, settings.kafka_bootstrap, settings.topic_ticks)
        wait_until(lambda: log.read_text().count(LOST_LINE) == 2, 90, "the restart's notice", log)
        wait_until(processed_all(settings, ends), 90, "the ticks after the restart", log)
        assert [a for a in alerts_on_kafka(settings) if a.alert_id not in known] == []
    finally:
        stop_child(worker)
        stop_child(redis, timeout_s=10)
    assert "Traceback" not in log.read_text()
