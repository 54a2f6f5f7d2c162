"""The real worker process against the embedded broker and a real Redis."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import orjson
from redis import Redis

from alerts.delivery.kafka import BULK_FEED, producer_for
from schemas.alerts import Alert, alert_id
from schemas.settings import Settings
from schemas.ticks import Tick
from streams.dev.children import stop_child as stop
from streams.dev.workers import start_worker, wait_until
from streams.replay import publish_ticks
from tests.integration.support import processed_all, read_topic


def ticks_of(rows: list[tuple[str, str, float]]) -> list[Tick]:
    return [
        Tick(symbol=s, price=p, ts=datetime.fromisoformat(ts).replace(tzinfo=UTC))
        for ts, s, p in rows
    ]


def test_a_four_percent_gain_travels_kafka_faust_redis_kafka(
    settings: Settings, tmp_path: Path
) -> None:
    ticks = ticks_of(
        [
            ("2025-09-17T02:00", "BIDU", 100.0),
            ("2025-09-17T02:00", "BABA", 120.0),
            ("2025-09-17T07:59", "BIDU", 101.0),
            ("2025-09-18T02:00", "BIDU", 103.0),
            ("2025-09-18T02:00", "BABA", 124.0),
            ("2025-09-18T03:00", "BIDU", 105.2),
            ("2025-09-18T04:00", "BIDU", 106.0),
        ]
    )
    log = tmp_path / "worker.log"
    worker = start_worker(settings, log)
    try:
        ends = publish_ticks(ticks, settings.kafka_bootstrap, settings.topic_ticks)
        wait_until(processed_all(settings, ends), 90, "the worker to commit every tick", log)
    finally:
        stop(worker)

    alerts = [
        Alert.model_validate_json(m.value())
        for m in read_topic(settings.kafka_bootstrap, settings.topic_alerts)
    ]
    session = datetime(2025, 9, 18).date()
    assert [(a.instrument, a.session, a.price, a.reference_price) for a in alerts] == [
        ("BIDU", session, 105.2, 101.0)
    ]
    assert alerts[0].alert_id == alert_id("daily_gain", "BIDU", session, 4.0, "intraday")

    redis = Redis.from_url(settings.redis_url)
    hot, history = redis.hmget(f"{settings.key_prefix}:{{BIDU}}:state", "s", "h")
    redis.close()
    state = orjson.loads(hot)
    assert (state["session"], state["last"]) == ("2025-09-18", 106.0)
    assert orjson.loads(history)["last_close"] == 101.0


def test_a_bad_tick_is_dead_lettered_with_its_reason(settings: Settings, tmp_path: Path) -> None:
    producer = producer_for(BULK_FEED, settings.kafka_bootstrap)
    producer.produce(settings.topic_ticks, key=b"X", value=b"{not json")
    producer.produce(settings.topic_ticks, key=b"X", value=b'{"symbol":"X","price":-1,"ts":1}')
    good = b'{"symbol":"X","price":1,"ts":"2025-09-18T10:00:00+08:00"}'
    producer.produce(settings.topic_ticks, key=b"X", value=good)
    producer.flush(10)
    log = tmp_path / "worker.log"
    worker = start_worker(settings, log)
    try:
        wait_until(
            lambda: len(read_topic(settings.kafka_bootstrap, settings.topic_dlq)) == 2,
            90,
            "two dead letters",
            log,
        )
    finally:
        stop(worker)
    letters = read_topic(settings.kafka_bootstrap, settings.topic_dlq)
    reasons = sorted(dict(m.headers())["reason"].decode() for m in letters)
    assert reasons == ["invalid_json", "invalid_tick"]
    bodies = sorted(m.value() for m in letters)
    assert bodies == [b'{"symbol":"X","price":-1,"ts":1}', b"{not json"]
    errors = [dict(m.headers())["error"].decode() for m in letters]
    assert any("price" in e for e in errors)
