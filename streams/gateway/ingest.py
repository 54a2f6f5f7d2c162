"""Alerts in: every partition of the alerts topic into the gateway's Redis Stream (a thread).

The Kafka position lives in Redis with the alerts it led to: on assignment each partition
is sought to the offset Redis holds, and each polled batch is appended in one script call
that skips what it already has. A kill at any instruction neither loses nor doubles an
alert. Kafka commits follow, only so operators can see the group's lag.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Message, TopicPartition
from pydantic import ValidationError
from redis import Redis
from redis.exceptions import RedisError

from alerts.delivery.kafka_offsets import group_reader, ready_messages
from alerts.delivery.stream import Incoming, SyncAlertStream
from schemas.alerts import Alert
from schemas.settings import Settings
from streams.gateway.backoff import pause_s
from streams.redis_ready import DEFAULT_REDIS_URL

log = logging.getLogger(__name__)

_POLL_S = 0.5
_MESSAGES_PER_POLL = 500

T = TypeVar("T")


@dataclass(frozen=True)
class Decoded:
    """One polled batch: the alerts to append, the offsets to commit, what was not an alert."""

    alerts: list[tuple[Incoming, Alert]]
    next_offsets: dict[int, int]
    invalid: int


def jumps(expected: dict[int, int], messages: Sequence[Message]) -> list[tuple[int, int, int]]:
    """(partition, expected offset, offset seen) wherever a poll skips past the next offset
    expected. Most jumps are harmless (transaction markers, aborted records); only those
    whose skipped offsets Kafka no longer keeps are losses, which the caller checks."""
    found = []
    ahead = dict(expected)
    for message in messages:
        if message.error() is not None:
            continue
        partition, offset = message.partition() or 0, message.offset() or 0
        wanted = ahead.get(partition)
        if wanted is not None and offset > wanted:
            found.append((partition, wanted, offset))
        ahead[partition] = offset + 1
    return found


def decode(messages: Sequence[Message]) -> Decoded:
    """The alerts in a poll; a message that is not a valid Alert is logged and left out."""
    alerts: list[tuple[Incoming, Alert]] = []
    next_offsets: dict[int, int] = {}
    invalid = 0
    for message in messages:
        error = message.error()
        if error is not None:
            if error.code() != KafkaError._PARTITION_EOF:
                log.warning("alerts ingest: Kafka: %s", error)
            continue
        partition, offset = message.partition() or 0, message.offset() or 0
        next_offsets[partition] = offset + 1
        value = message.value() or b""
        try:
            alert = Alert.model_validate_json(value)
        except ValidationError as rejected:
            invalid += 1
            first = rejected.errors()[0]
            log.warning(
                "alerts ingest: partition %d offset %d is not an alert (%s: %s); skipped",
                partition, offset, ".".join(str(p) for p in first["loc"]), first["msg"],
            )  # fmt: skip
            continue
        alerts.append((Incoming(partition, offset, value), alert))
    return Decoded(alerts, next_offsets, invalid)


class AlertIngest:
    """The consumer thread; `start()`, then `stop()`. Redis or Kafka trouble is logged and
    retried with back-off, never the end of the thread."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._redis = Redis.from_url(
            settings.redis_url or DEFAULT_REDIS_URL, socket_timeout=10, socket_connect_timeout=5
        )
        self._stream = SyncAlertStream(
            self._redis,
            settings.key_prefix,
            settings.gateway_stream_max_len,
            settings.gateway_stream_max_age_s,
        )
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="gateway-alerts", daemon=True)
        #: What it did, for /healthz: alerts added, duplicates and replays skipped,
        #: messages that were not alerts.
        self.added = 0
        self.duplicates = 0
        self.old = 0
        self.invalid = 0
        #: Alerts Kafka deleted before the gateway read them (retention, a truncated topic).
        self.lost = 0
        self._expected: dict[int, int] = {}
        #: Partitions of the alerts topic this gateway ingests (the group shares them out).
        self.partitions = 0
        #: The last Redis or Kafka trouble, None once things work again.
        self.trouble: str | None = None

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop after the current poll and leave the group, so its partitions move at once."""
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(timeout_s)
        self._redis.close()

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def _consumer(self) -> Consumer:
        s = self._settings
        # on_assign seeks to Redis's positions; "earliest" is only for a partition it misses.
        consumer = group_reader(s, f"{s.app_id}-gateway")
        consumer.subscribe([s.topic_alerts], on_assign=self._on_assign, on_revoke=self._on_revoke)
        return consumer

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        positions = self._retrying("reading positions", self._stream.positions)
        for tp in partitions:
            tp.offset = (positions or {}).get(tp.partition, OFFSET_BEGINNING)
        self._expected = {
            tp.partition: tp.offset for tp in partitions if tp.offset != OFFSET_BEGINNING
        }
        consumer.assign(partitions)
        self.partitions = len(partitions)

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # Also called for partitions lost; the next assignment brings the new count.
        self.partitions = 0

    def _run(self) -> None:
        consumer: Consumer | None = None
        failures = 0
        while not self._stopping.is_set():
            try:
                if consumer is None:
                    consumer = self._consumer()
                messages = ready_messages(consumer, _MESSAGES_PER_POLL, _POLL_S)
                if messages:
                    self._look_for_gaps(consumer, messages)
                    self._take(consumer, decode(messages))
                failures = 0
            except Exception as error:  # a bug or a broken client must not end the feed
                failures += 1
                self.trouble = f"poll: {error}"
                log.warning("alerts ingest: poll failed (%s); retrying", error)
                self._stopping.wait(pause_s(failures))
        if consumer is not None:
            consumer.close()

    def _look_for_gaps(self, consumer: Consumer, messages: Sequence[Message]) -> None:
        """Say so when Kafka deleted alerts before they were read: the consumer then moves
        to the oldest message kept, and without this the skipped ones would pass unsaid."""
        for partition, wanted, seen in jumps(self._expected, messages):
            topic = TopicPartition(self._settings.topic_alerts, partition)
            start, _ = consumer.get_watermark_offsets(topic, timeout=5, cached=False)
            if start > wanted:
                gone = min(seen, start) - wanted
                self.lost += gone
                log.error(
                    "alerts ingest: %s[%d]: offsets %d to %d (%d messages) were deleted by "
                    "Kafka before the gateway read them; those alerts are not in the stream "
                    "(read them from their source, or replay the ticks)",
                    self._settings.topic_alerts, partition, wanted, wanted + gone - 1, gone,
                )  # fmt: skip
        for message in messages:
            if message.error() is None:
                self._expected[message.partition() or 0] = (message.offset() or 0) + 1

    def _take(self, consumer: Consumer, batch: Decoded) -> None:
        self.invalid += batch.invalid
        appended = self._retrying("appending", lambda: self._stream.append(batch.alerts))
        if appended is None:
            return  # stopping: the batch is read again next time, and skipped if kept
        self.added += appended.added
        self.duplicates += appended.duplicates
        self.old += appended.old
        offsets = [
            TopicPartition(self._settings.topic_alerts, partition, offset)
            for partition, offset in batch.next_offsets.items()
        ]
        consumer.commit(offsets=offsets, asynchronous=True)

    def _retrying(self, what: str, call: Callable[[], T]) -> T | None:
        """call() until Redis answers; None if the gateway stops first."""
        failures = 0
        while True:
            try:
                result = call()
            except (RedisError, OSError) as error:
                failures += 1
                self.trouble = f"Redis: {error}"
                if failures == 1:
                    log.warning("alerts ingest: Redis %s: %s; retrying", what, error)
                if self._stopping.wait(pause_s(failures)):
                    return None
                continue
            if failures:
                log.warning("alerts ingest: Redis answers again")
            self.trouble = None
            return result
