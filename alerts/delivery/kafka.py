"""Kafka delivery: publish alerts (and dead letters) and know where Kafka put them."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from confluent_kafka import KafkaError, Message, Producer

from alerts.delivery.errors import DeliveryError
from alerts.delivery.kafka_offsets import high_watermarks


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
