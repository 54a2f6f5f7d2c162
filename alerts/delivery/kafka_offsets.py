"""Kafka delivery, read side: partition watermarks, a group's committed offsets, a topic's log."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping, Sequence

import orjson
from confluent_kafka import Consumer, KafkaException, Message, TopicPartition

from alerts.delivery.errors import DeliveryError


def _consumer(bootstrap: str) -> Consumer:
    return Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "tickwatch-recovery",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
        }
    )


def high_watermarks(bootstrap: str, topic: str, timeout_s: float = 30.0) -> dict[int, int]:
    consumer = _consumer(bootstrap)
    try:
        partitions = consumer.list_topics(topic, timeout=timeout_s).topics[topic].partitions
        return {
            p: consumer.get_watermark_offsets(
                TopicPartition(topic, p), timeout=timeout_s, cached=False
            )[1]
            for p in partitions
        }
    finally:
        consumer.close()


def read_to_end(
    bootstrap: str, topic: str, starts: Mapping[int, int] | None = None, timeout_s: float = 30.0
) -> Iterator[Message]:
    """Every committed message of the topic, partition by partition, from `starts`
    (default: the oldest kept) to the high watermarks as they are now."""
    consumer = _consumer(bootstrap)
    try:
        if starts is None:
            partitions = consumer.list_topics(topic, timeout=timeout_s).topics[topic].partitions
            starts = dict.fromkeys(partitions, 0)
        for partition, start in sorted(starts.items()):
            tp = TopicPartition(topic, partition)
            low, high = consumer.get_watermark_offsets(tp, timeout=timeout_s, cached=False)
            first = max(start, low)
            if first >= high:
                continue
            consumer.assign([TopicPartition(topic, partition, first)])
            while True:
                msg = consumer.poll(timeout_s)
                if msg is None:
                    raise DeliveryError(f"{topic}[{partition}] did not answer in time")
                if msg.error() is not None:
                    raise DeliveryError(f"reading {topic}[{partition}]: {msg.error()}")
                yield msg
                if (msg.offset() or 0) >= high - 1:
                    break
    finally:
        consumer.close()


def alert_ids_from(
    bootstrap: str, topic: str, starts: Mapping[int, int], timeout_s: float = 30.0
) -> set[str]:
    """Ids of every alert on these partitions from these offsets to their ends.

    Used on recovery: an outbox entry whose id is already on the topic was published
    by a worker that died before removing it, and must not be published again.
    """
    return {_alert_id(msg.value()) for msg in read_to_end(bootstrap, topic, starts, timeout_s)}


def _alert_id(value: bytes | None) -> str:
    try:
        return str(orjson.loads(value or b"{}").get("alert_id", ""))
    except orjson.JSONDecodeError:
        return ""


class GroupOffsets:
    """Where a consumer group stands on a topic, as Kafka records it: its committed
    offsets, and the oldest offset each partition still keeps.

    Blocking calls (run them in a thread); one unsubscribed consumer, made on first use,
    which reads the group's offsets without joining it.
    """

    def __init__(self, bootstrap: str, group: str, timeout_s: float = 10.0) -> None:
        self.bootstrap = bootstrap
        self.group = group
        self._timeout_s = timeout_s
        self._consumer: Consumer | None = None
        self._lock = threading.Lock()

    def _client(self) -> Consumer:
        if self._consumer is None:
            self._consumer = Consumer(
                {
                    "bootstrap.servers": self.bootstrap,
                    "group.id": self.group,
                    "enable.auto.commit": False,
                }
            )
        return self._consumer

    def committed(self, topic: str, partitions: Sequence[int]) -> dict[int, int | None]:
        """Each partition's committed offset; None where the group never committed one.
        DeliveryError when Kafka does not answer."""
        wanted = [TopicPartition(topic, p) for p in partitions]
        try:
            with self._lock:
                found = self._client().committed(wanted, timeout=self._timeout_s)
        except KafkaException as error:
            raise DeliveryError(f"committed offsets of {self.group}: {error}") from None
        return {tp.partition: (tp.offset if tp.offset >= 0 else None) for tp in found}

    def log_start(self, topic: str, partition: int) -> int:
        """The oldest offset Kafka still keeps on this partition (DeliveryError when Kafka
        does not answer)."""
        tp = TopicPartition(topic, partition)
        try:
            with self._lock:
                low, _ = self._client().get_watermark_offsets(
                    tp, timeout=self._timeout_s, cached=False
                )
        except KafkaException as error:
            raise DeliveryError(f"log start of {topic}[{partition}]: {error}") from None
        return int(low)

    def close(self) -> None:
        with self._lock:
            if self._consumer is not None:
                self._consumer.close()
                self._consumer = None
