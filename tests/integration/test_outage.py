"""Redis restarts under a running worker: its ticks wait for it, none is lost."""

from __future__ import annotations

import time
from datetime import date
from pathlib import Path

import orjson
from redis import Redis

from schemas.alerts import alert_id
from schemas.settings import Settings
from streams.dev.children import stop_child
from streams.dev.redis_server import free_port, start_redis_server
from streams.dev.workers import start_worker, wait_until
from streams.replay import publish_ticks
from tests.integration.support import alerts_on_kafka, bidu_ticks, processed_all


def test_ticks_sent_while_redis_is_down_are_applied_once_it_is_back(
    settings: Settings, redis_folder: str, tmp_path: Path
) -> None:
    port = free_port()
    settings = settings.model_copy(update={"redis_url": f"redis://127.0.0.1:{port}/0"})
    redis = start_redis_server(port, redis_folder, durable=True)
    log = tmp_path / "worker.log"
    worker = start_worker(settings, log)
    try:
        before = bidu_ticks([("2025-09-17T02:00", 100.0), ("2025-09-17T07:59", 101.0),
                        ("2025-09-18T02:00", 103.0)])  # fmt: skip
        ends = publish_ticks(before, settings.kafka_bootstrap, settings.topic_ticks)
        wait_until(processed_all(settings, ends), 90, "the first ticks", log)

        stop_child(redis, timeout_s=10)
        during = bidu_ticks([("2025-09-18T03:00", 105.2), ("2025-09-18T04:00", 106.0)])
        ends = publish_ticks(during, settings.kafka_bootstrap, settings.topic_ticks)
        wait_until(lambda: "not processed" in log.read_text(), 30, "a retry while away", log)
        time.sleep(2)  # a few more attempts, with the worker still up
        assert worker.poll() is None, log.read_text()[-3000:]

        redis = start_redis_server(port, redis_folder, durable=True)
        wait_until(processed_all(settings, ends), 90, "the ticks sent while Redis was down", log)
        client = Redis(port=port)
        state = orjson.loads(client.hget(f"{settings.key_prefix}:{{BIDU}}:state", "s") or b"{}")
        client.close()
    finally:
        stop_child(worker)
        stop_child(redis, timeout_s=10)

    assert (state["last"], state["high"]) == (106.0, 106.0)
    alerts = alerts_on_kafka(settings)
    session = date(2025, 9, 18)
    assert [(a.alert_id, a.price) for a in alerts] == [
        (alert_id("daily_gain", "BIDU", session, 4.0, "intraday"), 105.2)
    ]
    assert "Crashed" not in log.read_text()
