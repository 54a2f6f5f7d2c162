"""The Kafka readers against the embedded broker: watermarks, committed offsets, a topic
read to its end, and DeliveryError where the worker needs one."""

from __future__ import annotations

import orjson
import pytest
from confluent_kafka import TopicPartition

from alerts.delivery.errors import DeliveryError
from alerts.delivery.kafka import BULK_FEED, producer_for
from alerts.delivery.kafka_offsets import (
    GroupOffsets,
    alert_ids_from,
    committed_offsets,
    high_watermarks,
    partitions_of,
    read_to_end,
    reader,
    watermarks,
)
from schemas.settings import Settings


def publish(settings: Settings, topic: str, counts: dict[int, int]) -> None:
    """`count` alerts-like messages on each partition, ids "p<partition>-<n>"."""
    producer = producer_for(BULK_FEED, settings.kafka_bootstrap)
    for partition, count in counts.items():
        for n in range(count):
            value = orjson.dumps({"alert_id": f"p{partition}-{n}"})
            producer.produce(topic, key=b"k", value=value, partition=partition)
    assert producer.flush(10) == 0


def commit(settings: Settings, group: str, topic: str, offsets: dict[int, int]) -> None:
    """Commit offsets for a group, as a worker of it would."""
    consumer = reader(settings.kafka_bootstrap, group)
    try:
        tps = [TopicPartition(topic, p, o) for p, o in offsets.items()]
        consumer.commit(offsets=tps, asynchronous=False)
    finally:
        consumer.close()


def test_watermarks_are_each_partitions_start_and_end(settings: Settings) -> None:
    topic = settings.topic_alerts
    publish(settings, topic, {0: 3, 1: 5})
    consumer = reader(settings.kafka_bootstrap)
    try:
        assert sorted(partitions_of(consumer, topic, 10)) == [0, 1]
        assert watermarks(consumer, topic, None, 10) == {0: (0, 3), 1: (0, 5)}
        assert watermarks(consumer, topic, [1], 10) == {1: (0, 5)}
    finally:
        consumer.close()
    assert high_watermarks(settings.kafka_bootstrap, topic) == {0: 3, 1: 5}


def test_committed_offsets_are_none_until_the_group_commits(settings: Settings) -> None:
    topic, group = settings.topic_ticks, f"{settings.app_id}-readers"
    publish(settings, topic, {0: 4, 2: 1})
    offsets = GroupOffsets(settings.kafka_bootstrap, group)
    consumer = reader(settings.kafka_bootstrap, group)
    try:
        assert offsets.committed(topic, [0, 1, 2]) == {0: None, 1: None, 2: None}
        commit(settings, group, topic, {0: 4, 2: 0})
        assert offsets.committed(topic, [0, 1, 2]) == {0: 4, 1: None, 2: 0}
        assert committed_offsets(consumer, topic, [0, 2], 10) == {0: 4, 2: 0}
        assert offsets.log_start(topic, 0) == 0
    finally:
        consumer.close()
        offsets.close()


def test_a_partition_is_unread_while_the_group_stands_below_its_high_watermark(
    settings: Settings,
) -> None:
    topic, group = settings.topic_ticks, f"{settings.app_id}-lag"
    publish(settings, topic, {0: 4, 2: 1})
    offsets = GroupOffsets(settings.kafka_bootstrap, group)
    try:
        assert offsets.unread(topic, [0, 1, 2]) == {0: True, 1: False, 2: True}
        commit(settings, group, topic, {0: 4, 2: 0})
        assert offsets.unread(topic, [0, 1, 2]) == {0: False, 1: False, 2: True}
    finally:
        offsets.close()


def test_reading_to_the_end_starts_where_asked_and_stops_at_the_high_watermarks(
    settings: Settings,
) -> None:
    topic = settings.topic_alerts
    publish(settings, topic, {0: 3, 1: 2})
    everything = [(m.partition(), m.offset()) for m in read_to_end(settings.kafka_bootstrap, topic)]
    assert everything == [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1)]
    later = read_to_end(settings.kafka_bootstrap, topic, {0: 2, 1: 5})
    assert [(m.partition(), m.offset()) for m in later] == [(0, 2)]
    ids = alert_ids_from(settings.kafka_bootstrap, topic, {0: 1, 1: 0})
    assert ids == {"p0-1", "p0-2", "p1-0", "p1-1"}


def test_group_offsets_raise_delivery_error_when_kafka_does_not_answer() -> None:
    offsets = GroupOffsets("127.0.0.1:1", "nobody", timeout_s=0.5)
    try:
        with pytest.raises(DeliveryError, match="committed offsets of nobody"):
            offsets.committed("ticks", [0])
        with pytest.raises(DeliveryError, match=r"log start of ticks\[0\]"):
            offsets.log_start("ticks", 0)
        with pytest.raises(DeliveryError, match="offsets of nobody on ticks"):
            offsets.unread("ticks", [0])
    finally:
        offsets.close()
