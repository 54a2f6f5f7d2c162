"""What integration tests share: tick rows, the alerts on Kafka, a topic read to its end."""

from __future__ import annotations

from datetime import UTC, datetime

from confluent_kafka import Message

from alerts.delivery.kafka_offsets import (
    GroupOffsets,
    committed_offsets,
    partitions_of,
    read_to_end,
    reader,
)
from schemas.alerts import Alert
from schemas.settings import Settings
from schemas.ticks import Tick
from streams.dev.workers import Settling, backlog


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
    """The worker group's committed offset on each partition of the topic; 0 where it
    never committed one."""
    consumer = reader(settings.kafka_bootstrap, settings.app_id)
    try:
        partitions = partitions_of(consumer, topic, 10)
        found = committed_offsets(consumer, topic, partitions, 10)
        return {p: offset or 0 for p, offset in found.items()}
    finally:
        consumer.close()


def processed_all(settings: Settings, ends: dict[int, int]) -> Settling:
    """True once the worker has committed every tick and everything derived from them
    (the settle check of streams/dev/workers.py, without the worker's counts)."""
    return Settling(lambda: backlog(settings, ends))


def log_start(settings: Settings, topic: str, partition: int = 0) -> int:
    """The oldest offset Kafka still keeps of the topic's partition."""
    probe = GroupOffsets(settings.kafka_bootstrap, "probe")
    try:
        return probe.log_start(topic, partition)
    finally:
        probe.close()
