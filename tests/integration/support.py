"""What integration tests share: tick rows, the alerts on Kafka, a topic read to its end."""

from __future__ import annotations

from datetime import UTC, datetime

from confluent_kafka import Consumer, Message, TopicPartition

from alerts.delivery.kafka import read_to_end
from schemas.alerts import Alert
from schemas.settings import Settings
from schemas.ticks import Tick
from streams.dev.demo import backlog
from streams.dev.workers import Settling


def bidu_ticks(rows: list[tuple[str, float]]) -> list[Tick]:
    """Ticks of BIDU from (UTC ISO time, price) rows."""
    return [
        Tick(symbol="BIDU", price=price, ts=datetime.fromisoformat(ts).replace(tzinfo=UTC))
        for ts, price in rows
    ]


def alerts_on_kafka(settings: Settings) -> list[Alert]:
    """Every alert on the alerts topic, in partition order."""
    messages = read_topic(settings.kafka_bootstrap, settings.topic_alerts)
    return [Alert.model_validate_json(m.value()) for m in messages]


def read_topic(bootstrap: str, topic: str) -> list[Message]:
    """Every committed message of the topic, read from the start to the high watermarks."""
    return list(read_to_end(bootstrap, topic))


def committed(settings: Settings, topic: str) -> dict[int, int]:
    consumer = Consumer(
        {"bootstrap.servers": settings.kafka_bootstrap, "group.id": settings.app_id}
    )
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        found = consumer.committed([TopicPartition(topic, p) for p in partitions], timeout=10)
        return {tp.partition: tp.offset for tp in found}
    finally:
        consumer.close()


def processed_all(settings: Settings, ends: dict[int, int]) -> Settling:
    """True once the worker has committed every tick and everything derived from them
    (the settle check of streams/dev/workers.py, without the worker's counts)."""
    return Settling(lambda: backlog(settings, ends))
