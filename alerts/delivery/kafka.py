"""Kafka delivery: publish alerts (and dead letters) and know where Kafka put them."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import orjson
from confluent_kafka import (
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)


class DeliveryError(Exception):
    """Kafka refused or lost a message we must not lose."""


@dataclass(frozen=True)
class Record:
    topic: str
    key: bytes
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...] = ()


class KafkaPublisher:
    """An idempotent confluent-kafka producer whose deliveries can be awaited.

    It also keeps, per partition of each topic it writes, the offset after the last
    message Kafka acknowledged: its "marks". Anything published later lands at or
    beyond them, which is what outbox recovery needs to know where to look.
    """

    def __init__(self, bootstrap: str, client_id: str = "tickwatch") -> None:
        self.bootstrap = bootstrap
        self._producer = Producer(
            {
                "bootstrap.servers": bootstrap,
                "client.id": client_id,
                "enable.idempotence": True,
                "acks": "all",
                "linger.ms": 1,
                # Java clients' partitioner, so an instrument's alerts land where they expect.
                "partitioner": "murmur2_random",
                "message.timeout.ms": 30_000,
            }
        )
        self._marks: dict[str, dict[int, int]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._poller = threading.Thread(target=self._poll, name="kafka-publisher", daemon=True)
        self._poller.start()

    def _poll(self) -> None:
        while not self._stop.is_set():
            self._producer.poll(0.05)

    def track(self, topic: str, timeout_s: float = 30.0) -> None:
        """Start the marks of a topic at its current high watermarks (blocking)."""
        highs = high_watermarks(self.bootstrap, topic, timeout_s)
        with self._lock:
            marks = self._marks.setdefault(topic, {})
            for partition, high in highs.items():
                marks[partition] = max(marks.get(partition, 0), high)

    def marks(self, topic: str) -> dict[int, int]:
        with self._lock:
            return dict(self._marks.get(topic, {}))

    def _delivered(self, msg: Message) -> None:
        with self._lock:
            partition, offset = msg.partition(), msg.offset()
            if partition is None or offset is None:
                return
            marks = self._marks.setdefault(str(msg.topic()), {})
            marks[partition] = max(marks.get(partition, 0), offset + 1)

    async def publish(self, records: Sequence[Record]) -> None:
        """Return once Kafka has acknowledged every record, in order per partition.

        One countdown per call, settled by a single wake-up of the event loop: a
        future and a cross-thread call per message cost more than the produce itself.
        """
        if not records:
            return
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        on_delivery = self._countdown(loop, done, len(records))
        for record in records:
            while True:
                try:
                    self._producer.produce(
                        record.topic,
                        value=record.value,
                        key=record.key,
                        headers=list(record.headers) or None,
                        on_delivery=on_delivery,
                    )
                    break
                except BufferError:
                    await asyncio.sleep(0.01)
        await done

    def _countdown(
        self, loop: asyncio.AbstractEventLoop, done: asyncio.Future[None], count: int
    ) -> Callable[[KafkaError | None, Message], None]:
        left = [count]
        failed: list[str] = []

        def settle() -> None:
            if done.done():
                return
            if failed:
                done.set_exception(DeliveryError(failed[0]))
            else:
                done.set_result(None)

        def on_delivery(err: KafkaError | None, msg: Message) -> None:
            # Runs on the poller thread, one message at a time.
            if err is None:
                self._delivered(msg)
            elif not failed:
                failed.append(str(err))
                loop.call_soon_threadsafe(settle)
            left[0] -= 1
            if left[0] == 0:
                loop.call_soon_threadsafe(settle)

        return on_delivery

    def close(self, timeout_s: float = 10.0) -> None:
        self._producer.flush(timeout_s)
        self._stop.set()
        self._poller.join(timeout=1.0)


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
