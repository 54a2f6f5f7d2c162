"""Tail: print the alerts topic for a person, or as JSON lines for a program."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

from confluent_kafka import Consumer, KafkaError
from pydantic import ValidationError

from alerts.delivery.kafka_offsets import reader, watermarks
from schemas.alerts import Alert


def format_alert(alert: Alert) -> str:
    """One line a trader can read at a glance."""
    return (
        f"{alert.ts:%Y-%m-%d %H:%M:%S}Z  {alert.instrument:<10} {alert.change:+7.2f}%  "
        f"{alert.message}"
    )


class AlertReader:
    """Reads the alerts topic from its start (or end), committed messages only."""

    def __init__(self, bootstrap: str, topic: str, from_beginning: bool) -> None:
        self.topic = topic
        self._consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": f"tickwatch-tail-{uuid.uuid4().hex[:8]}",
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest" if from_beginning else "latest",
                "isolation.level": "read_committed",
            }
        )
        self._consumer.subscribe([topic])
        self._bootstrap = bootstrap
        self._offsets: Consumer | None = None

    def poll(self, timeout_s: float) -> Iterator[tuple[bytes, Alert | None]]:
        """Raw value and the alert in it (None when the message is not an alert)."""
        for msg in self._consumer.consume(num_messages=500, timeout=timeout_s):
            error = msg.error()
            if error is not None:
                if error.code() != KafkaError._PARTITION_EOF:
                    raise RuntimeError(str(error))
                continue
            value = msg.value() or b""
            try:
                yield value, Alert.model_validate_json(value)
            except ValidationError:
                yield value, None

    def at_end(self) -> bool:
        """True once every assigned partition has been read to its high watermark."""
        assigned = self._consumer.assignment()
        if not assigned:
            return False
        positions = self._consumer.position(assigned)
        # Asked on a consumer of their own: behind a fetch waiting at the broker for
        # data, each would wait up to fetch.wait.max.ms (1.4 s in all for the demo).
        if self._offsets is None:
            self._offsets = reader(self._bootstrap)
        ends = watermarks(self._offsets, self.topic, [tp.partition for tp in positions], 5)
        return all(max(tp.offset, 0) >= ends[tp.partition][1] for tp in positions)

    def close(self) -> None:
        self._consumer.close()
        if self._offsets is not None:
            self._offsets.close()


def tail(
    bootstrap: str,
    topic: str,
    as_json: bool,
    from_beginning: bool,
    emit: Callable[[str], None] = print,
    keep_going: Callable[[], bool] = lambda: True,
) -> None:
    reader = AlertReader(bootstrap, topic, from_beginning)
    try:
        while keep_going():
            for raw, alert in reader.poll(0.5):
                if as_json:
                    emit(raw.decode("utf-8", errors="replace"))
                elif alert is not None:
                    emit(format_alert(alert))
                else:
                    emit(f"(not an alert) {raw[:200]!r}")
    finally:
        reader.close()
