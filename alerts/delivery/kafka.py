"""Kafka delivery: every producer's set-up by role, and the publisher of alerts and dead letters."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from confluent_kafka import KafkaError, Message, Producer

from alerts.core.outgoing import Record
from alerts.delivery.errors import DeliveryError
from alerts.delivery.kafka_offsets import high_watermarks


@dataclass(frozen=True)
class ProducerRole:
    """What a producer is for, as the few settings that follow from it (`producer_settings`)."""

    #: How long a message waits for others to share its request: 1 ms where each one is
    #: due now, 5 ms where throughput matters more than the last millisecond.
    linger_ms: int
    #: Retries never write a message twice nor reorder a partition.
    idempotent: bool
    #: Give up on a message after this long; None keeps librdkafka's five minutes.
    message_timeout_ms: int | None = None
    #: Only critical lines in the log: the caller reports a failure itself, in one line.
    quiet: bool = False


#: Alerts and dead letters: never lost, doubled or reordered, and sent at once (the
#: tick-to-alert budget), with a bounded wait so that a stuck broker becomes an error.
ALERT_PUBLISHER = ProducerRole(linger_ms=1, idempotent=True, message_timeout_ms=30_000)
#: A tick file or a test's feed published in bulk: batched for throughput, each tick
#: once and in order.
BULK_FEED = ProducerRole(linger_ms=5, idempotent=True, message_timeout_ms=30_000, quiet=True)
#: A live feed offered at a steady rate (the bench's latency stage): each tick sent at once.
LIVE_FEED = ProducerRole(linger_ms=1, idempotent=False)

Setting = str | int | bool

#: librdkafka counts log levels as syslog does.
_LOG_CRITICAL = 2


def producer_settings(
    role: ProducerRole,
    bootstrap: str,
    client_id: str | None = None,
    max_message_bytes: int | None = None,
) -> dict[str, Setting]:
    """The librdkafka configuration of a producer in this role."""
    settings: dict[str, Setting] = {"bootstrap.servers": bootstrap}
    if client_id is not None:
        settings["client.id"] = client_id
    if role.idempotent:
        settings["enable.idempotence"] = True
    # librdkafka's default too, and implied by idempotence: said once for every role.
    settings["acks"] = "all"
    settings["linger.ms"] = role.linger_ms
    # Java clients' partitioner, so a symbol lands where partition_of and Java expect.
    settings["partitioner"] = "murmur2_random"
    if role.message_timeout_ms is not None:
        settings["message.timeout.ms"] = role.message_timeout_ms
    if max_message_bytes is not None:
        settings["message.max.bytes"] = max_message_bytes
    if role.quiet:
        settings["log_level"] = _LOG_CRITICAL
    return settings


def producer_for(
    role: ProducerRole,
    bootstrap: str,
    client_id: str | None = None,
    max_message_bytes: int | None = None,
) -> Producer:
    """A confluent-kafka producer set up for this role (see `producer_settings`)."""
    return Producer(producer_settings(role, bootstrap, client_id, max_message_bytes))


class KafkaPublisher:
    """An idempotent confluent-kafka producer whose deliveries can be awaited.

    It also keeps, per partition of each topic it writes, the offset after the last
    message Kafka acknowledged: its "marks". Anything published later lands at or
    beyond them, which is what outbox recovery needs to know where to look.
    """

    def __init__(self, bootstrap: str, client_id: str = "tickwatch") -> None:
        self.bootstrap = bootstrap
        self._producer = producer_for(ALERT_PUBLISHER, bootstrap, client_id)
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
