"""Kafka delivery: publish alerts (and dead letters) and know when Kafka has them."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from dataclasses import dataclass

from confluent_kafka import KafkaError, Message, Producer


class DeliveryError(Exception):
    """Kafka refused or lost a message we must not lose."""


@dataclass(frozen=True)
class Record:
    topic: str
    key: bytes
    value: bytes
    headers: tuple[tuple[str, bytes], ...] = ()


class KafkaPublisher:
    """An idempotent confluent-kafka producer whose deliveries can be awaited."""

    def __init__(self, bootstrap: str, client_id: str = "tickwatch") -> None:
        self._producer = Producer(
            {
                "bootstrap.servers": bootstrap,
                "client.id": client_id,
                "enable.idempotence": True,
                "acks": "all",
                "linger.ms": 1,
                "message.timeout.ms": 30_000,
            }
        )
        self._stop = threading.Event()
        self._poller = threading.Thread(target=self._poll, name="kafka-publisher", daemon=True)
        self._poller.start()

    def _poll(self) -> None:
        while not self._stop.is_set():
            self._producer.poll(0.05)

    async def publish(self, records: Sequence[Record]) -> None:
        """Return once Kafka has acknowledged every record, in order per partition."""
        if not records:
            return
        loop = asyncio.get_running_loop()
        futures = [loop.create_future() for _ in records]

        def settle(future: asyncio.Future[None], err: KafkaError | None, _: Message) -> None:
            if future.done():
                return
            if err is None:
                future.set_result(None)
            else:
                future.set_exception(DeliveryError(str(err)))

        for record, future in zip(records, futures, strict=True):
            callback = _threadsafe(loop, future, settle)
            while True:
                try:
                    self._producer.produce(
                        record.topic,
                        value=record.value,
                        key=record.key,
                        headers=list(record.headers) or None,
                        on_delivery=callback,
                    )
                    break
                except BufferError:
                    await asyncio.sleep(0.01)
        await asyncio.gather(*futures)

    def close(self, timeout_s: float = 10.0) -> None:
        self._producer.flush(timeout_s)
        self._stop.set()
        self._poller.join(timeout=1.0)


def _threadsafe(loop, future, settle):  # type: ignore[no-untyped-def]
    def on_delivery(err: KafkaError | None, msg: Message) -> None:
        loop.call_soon_threadsafe(settle, future, err, msg)

    return on_delivery
