"""Kafka delivery, read side: partition watermarks, a group's committed offsets, a topic's log."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence

import orjson
from confluent_kafka import Consumer, KafkaException, Message, TopicPartition

from alerts.delivery.errors import DeliveryError
from schemas.settings import Settings


def reader(bootstrap: str, group: str = "tickwatch-recovery") -> Consumer:
    """A consumer that reads offsets, watermarks and the partitions it is assigned
    without joining its group or committing anything; the caller closes it."""
    return Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
            # Its reads stop at a high watermark: a fetch left waiting at the broker for
            # newer data would hold up the next partition's by up to 500 ms (a second
            # on the embedded broker).
            "fetch.wait.max.ms": 10,
        }
    )


def group_reader(settings: Settings, group: str) -> Consumer:
    """A consumer in `group` that reads committed messages only, commits only when told,
    starts where the group has no position at the oldest message kept, and uses the
    settings' group timeouts and fetch wait; the caller subscribes and closes it."""
    return Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "group.id": group,
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "session.timeout.ms": int(settings.session_timeout_s * 1000),
            "heartbeat.interval.ms": int(settings.heartbeat_interval_s * 1000),
            "fetch.wait.max.ms": settings.fetch_max_wait_ms,
        }
    )


def ready_messages(consumer: Consumer, most: int, wait_s: float) -> list[Message]:
    """Up to `most` messages as soon as one arrives (waiting at most `wait_s`), with what
    else is already fetched. (`consume(most, wait_s)` waits the whole `wait_s` unless
    `most` arrive: on a quiet topic, that wait lands on every message's latency.)"""
    first = consumer.poll(wait_s)
    if first is None:
        return []
    return [first, *consumer.consume(most - 1, 0)] if most > 1 else [first]


def partitions_of(consumer: Consumer, topic: str, timeout_s: float) -> list[int]:
    """The topic's partitions, as the cluster's metadata lists them."""
    return list(consumer.list_topics(topic, timeout=timeout_s).topics[topic].partitions)


def watermarks(
    consumer: Consumer, topic: str, partitions: Iterable[int] | None, timeout_s: float
) -> dict[int, tuple[int, int]]:
    """Each partition's log start and high watermark (all partitions when None), asked
    of the brokers now, never cached. KafkaException when Kafka does not answer."""
    if partitions is None:
        partitions = partitions_of(consumer, topic, timeout_s)
    found = {}
    for partition in partitions:
        tp = TopicPartition(topic, partition)
        low, high = consumer.get_watermark_offsets(tp, timeout=timeout_s, cached=False)
        found[partition] = (int(low), int(high))
    return found


def committed_offsets(
    consumer: Consumer, topic: str, partitions: Sequence[int], timeout_s: float
) -> dict[int, int | None]:
    """The consumer's group's committed offset on each partition; None where it never
    committed one. KafkaException when Kafka does not answer."""
    wanted = [TopicPartition(topic, p) for p in partitions]
    found = consumer.committed(wanted, timeout=timeout_s)
    return {tp.partition: (tp.offset if tp.offset >= 0 else None) for tp in found}


def high_watermarks(bootstrap: str, topic: str, timeout_s: float = 30.0) -> dict[int, int]:
    """Each partition's high watermark, now."""
    consumer = reader(bootstrap)
    try:
        return {p: high for p, (_, high) in watermarks(consumer, topic, None, timeout_s).items()}
    finally:
        consumer.close()


def read_to_end(
    bootstrap: str, topic: str, starts: Mapping[int, int] | None = None, timeout_s: float = 30.0
) -> Iterator[Message]:
    """Every committed message of the topic, partition by partition, from `starts`
    (default: the oldest kept) to the high watermarks as they are now."""
    consumer = reader(bootstrap)
    try:
        if starts is None:
            starts = dict.fromkeys(partitions_of(consumer, topic, timeout_s), 0)
        for partition, start in sorted(starts.items()):
            low, high = watermarks(consumer, topic, [partition], timeout_s)[partition]
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
            self._consumer = reader(self.bootstrap, self.group)
        return self._consumer

    def committed(self, topic: str, partitions: Sequence[int]) -> dict[int, int | None]:
        """Each partition's committed offset; None where the group never committed one.
        DeliveryError when Kafka does not answer."""
        try:
            with self._lock:
                return committed_offsets(self._client(), topic, partitions, self._timeout_s)
        except KafkaException as error:
            raise DeliveryError(f"committed offsets of {self.group}: {error}") from None

    def log_start(self, topic: str, partition: int) -> int:
        """The oldest offset Kafka still keeps on this partition (DeliveryError when Kafka
        does not answer)."""
        try:
            with self._lock:
                found = watermarks(self._client(), topic, [partition], self._timeout_s)
        except KafkaException as error:
            raise DeliveryError(f"log start of {topic}[{partition}]: {error}") from None
        return found[partition][0]

    def unread(self, topic: str, partitions: Sequence[int]) -> dict[int, bool]:
        """Whether the group has anything to read on each partition, asked now: its
        committed offset (the log start where it never committed) below the high
        watermark. DeliveryError when Kafka does not answer."""
        try:
            with self._lock:
                client = self._client()
                committed = committed_offsets(client, topic, partitions, self._timeout_s)
                marks = watermarks(client, topic, partitions, self._timeout_s)
        except KafkaException as error:
            raise DeliveryError(f"offsets of {self.group} on {topic}: {error}") from None
        return {p: max(committed[p] or 0, low) < high for p, (low, high) in marks.items()}

    def close(self) -> None:
        with self._lock:
            if self._consumer is not None:
                self._consumer.close()
                self._consumer = None
