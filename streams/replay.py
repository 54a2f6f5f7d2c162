"""Replay: publish a tick file (CSV or JSONL) to the ticks topic, as a feed would."""

from __future__ import annotations

import csv
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import orjson
from confluent_kafka import KafkaException
from pydantic import ValidationError

from alerts.core.market import Market
from alerts.delivery.errors import DeliveryError
from alerts.delivery.kafka import BULK_FEED, producer_for
from alerts.delivery.kafka_offsets import GroupOffsets
from schemas.errors import InputError, describe
from schemas.ticks import SessionEnd, Tick, TickBatch
from streams.partitioner import partition_of

CSV_FIELDS = ("ts", "symbol", "price", "volume", "seq")


@dataclass(frozen=True)
class BadLine:
    """A line of a tick file that is not a tick, and why."""

    line: int
    reason: str


#: Bad lines shown one by one; beyond them only their total is told.
SHOWN_BAD_LINES = 5


@dataclass(frozen=True)
class TickFile:
    ticks: list[Tick]
    bad: list[BadLine]

    def first_bad(self, path: Path) -> list[str]:
        """The first SHOWN_BAD_LINES bad lines, one line each, for a person."""
        return [f"{path}:{b.line}: skipped: {b.reason}" for b in self.bad[:SHOWN_BAD_LINES]]


def read_ticks(path: Path) -> list[Tick]:
    """Every tick of the file, or InputError naming the first bad line."""
    return read_tick_file(path).ticks


def read_tick_file(path: Path, skip_bad: bool = False) -> TickFile:
    """The file's ticks. A bad line is InputError naming file and line, or, with
    `skip_bad`, is left out and listed with its reason."""
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    jsonl = path.suffix in (".jsonl", ".ndjson")
    ticks: list[Tick] = []
    bad: list[BadLine] = []
    with path.open("rb") as handle:
        for line, raw in enumerate(handle, start=1):
            try:
                row = _json_row(raw) if jsonl else _csv_row(raw, line)
                if row is not None:
                    ticks.append(Tick.model_validate(row))
            except (_BadRow, ValidationError) as error:
                reason = describe(error) if isinstance(error, ValidationError) else str(error)
                if not skip_bad:
                    raise InputError(f"{path}:{line}: {reason}") from None
                bad.append(BadLine(line, reason))
    return TickFile(ticks, bad)


class _BadRow(ValueError):
    """A line that is not a tick, before validation."""


def _csv_row(raw: bytes, line: int) -> dict[str, object] | None:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise _BadRow("not UTF-8 text") from None
    cells = next(csv.reader([text]), [])
    if not cells or cells[0].startswith("#") or not "".join(cells).strip():
        return None
    if line == 1 and cells[0].strip().lower() == "ts":
        return None
    if not 3 <= len(cells) <= len(CSV_FIELDS):
        raise _BadRow(f"expected ts,symbol,price[,volume,seq], got {len(cells)} fields")
    return {k: v.strip() for k, v in zip(CSV_FIELDS, cells, strict=False) if v.strip()}


def _json_row(raw: bytes) -> dict[str, object] | None:
    if not raw.strip():
        return None
    try:
        row = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise _BadRow(f"not JSON ({error})") from None
    if not isinstance(row, dict):
        raise _BadRow("expected a JSON object")
    return row


def encode(tick: Tick) -> bytes:
    return tick.model_dump_json(exclude_none=True).encode()


def session_ends(ticks: Sequence[Tick], market: Market) -> list[SessionEnd]:
    """End-of-day messages for the last session of each exchange the ticks reach."""
    last: dict[str, date] = {}
    for tick in ticks:
        spec = market.instruments.get(tick.symbol)
        if spec is None:
            continue
        session = market.calendar(spec.exchange).session_at(tick.ts_ms)
        if session is not None and session.day > last.get(spec.exchange, date.min):
            last[spec.exchange] = session.day
    return [
        SessionEnd(type="session_end", exchange=exchange, session=day)
        for exchange, day in sorted(last.items())
    ]


def publish_ticks(
    ticks: Sequence[Tick],
    bootstrap: str,
    topic: str,
    speed: float | None = None,
    ends: Sequence[SessionEnd] = (),
    batch: int | None = None,
    pace: Pace | None = None,
) -> dict[int, int]:
    """Publish in file order; return the next offset of each partition written to.

    With `speed`, ticks are spaced by their timestamps divided by speed (2.0 = twice
    as fast as they happened); without, as fast as Kafka takes them. With `batch`,
    consecutive ticks bound for the same partition travel as one message of up to
    that many ticks. Each of `ends` is then published to every partition, as a feed
    does at the close. With `pace`, no partition gets further ahead of the consumer
    group than it allows.
    """
    out = _Publisher(bootstrap, topic, pace)
    start_wall = time.monotonic()
    first_ts = ticks[0].ts if ticks else None
    pending: dict[int, list[Tick]] = {}
    for tick in ticks:
        if speed and first_ts is not None:
            due = (tick.ts - first_ts).total_seconds() / speed
            wait = due - (time.monotonic() - start_wall)
            if wait > 0:
                for partition in list(pending):
                    out.send_batch(partition, pending.pop(partition))
                out.producer.flush()
                time.sleep(wait)
        if batch is None:
            out.send(tick.symbol.encode(), encode(tick))
            continue
        partition = partition_of(tick.symbol.encode(), out.partitions)
        group = pending.setdefault(partition, [])
        group.append(tick)
        if len(group) >= batch:
            out.send_batch(partition, pending.pop(partition))
    for partition in list(pending):
        out.send_batch(partition, pending.pop(partition))
    for end in ends:
        for partition in range(out.partitions):
            out.send(end.exchange.encode(), end.model_dump_json().encode(), partition)
    return out.finish()


@dataclass(frozen=True)
class Pace:
    """Hold publishing while a consumer group has more than `max_bytes` unread on a
    partition. Kafka deletes by time or size whether or not anyone read a message, and
    the embedded broker keeps only about 5 MB per partition: a replay far ahead of
    the workers would lose its oldest ticks."""

    group: str
    max_bytes: int = 2_000_000
    #: Told, every `notice_s` of waiting, how far behind the group is.
    notice: Callable[[str], None] | None = None
    notice_s: float = 10.0


class _Pacer:
    """Counts what each partition holds beyond the group's committed offset."""

    def __init__(self, bootstrap: str, topic: str, pace: Pace) -> None:
        self.topic = topic
        self.pace = pace
        self._offsets = GroupOffsets(bootstrap, pace.group)
        self._sizes: dict[int, deque[tuple[int, int]]] = {}  # partition: (offset, bytes)
        self._ahead: dict[int, int] = {}  # partition: bytes sent and not read by the group
        self._read_to: dict[int, int] = {}

    def sent(self, partition: int, size: int) -> None:
        self._ahead[partition] = self._ahead.get(partition, 0) + size

    def delivered(self, partition: int, offset: int, size: int) -> None:
        self._sizes.setdefault(partition, deque()).append((offset, size))

    def ahead(self, partition: int) -> int:
        """Bytes on (or on their way to) the partition that the group has not read."""
        read_to = self._read_to.get(partition, 0)
        sizes = self._sizes.get(partition)
        while sizes and sizes[0][0] < read_to:
            self._ahead[partition] -= sizes.popleft()[1]
        return self._ahead.get(partition, 0)

    def wait(self, partition: int, flush: Callable[[], object]) -> None:
        """Return once the group is close enough behind on this partition."""
        if self.ahead(partition) <= self.pace.max_bytes:
            return
        flush()
        started = noticed = time.monotonic()
        while self._refresh(partition) > self.pace.max_bytes:
            if self.pace.notice and time.monotonic() - noticed >= self.pace.notice_s:
                noticed = time.monotonic()
                self.pace.notice(
                    f"waiting {noticed - started:.0f}s for consumer group {self.pace.group} "
                    f"to read {self.topic}[{partition}] "
                    f"({self.ahead(partition):,} bytes unread; --no-pace publishes regardless)"
                )
            time.sleep(0.2)

    def _refresh(self, partition: int) -> int:
        try:
            committed = self._offsets.committed(self.topic, [partition])[partition]
            if committed is None:  # the group has read nothing yet: it starts at log start
                committed = self._offsets.log_start(self.topic, partition)
        except DeliveryError as error:
            raise InputError(f"cannot pace the replay: {error}") from None
        self._read_to[partition] = committed
        return self.ahead(partition)

    def close(self) -> None:
        self._offsets.close()


class _Publisher:
    """A producer with Java's partitioner, counting where each message landed."""

    def __init__(self, bootstrap: str, topic: str, pace: Pace | None = None) -> None:
        self.topic = topic
        # Quiet: a one-line error says it all; see finish().
        self.producer = producer_for(BULK_FEED, bootstrap)
        try:
            metadata = self.producer.list_topics(topic, timeout=10).topics[topic]
        except KafkaException as error:
            raise InputError(
                f"cannot reach Kafka at {bootstrap} (set TICKWATCH_KAFKA_BOOTSTRAP): "
                f"{error.args[0].str()}"
            ) from None
        if metadata.error is not None or not metadata.partitions:
            raise InputError(f"topic {topic!r} does not exist on {bootstrap}; run tickwatch topics")
        self.partitions = len(metadata.partitions)
        self.next_offsets: dict[int, int] = {}
        self.failures: list[str] = []
        self._pacer = _Pacer(bootstrap, topic, pace) if pace is not None else None

    def _delivered(self, err: object, msg: object) -> None:
        if err is not None:
            self.failures.append(str(err))
            return
        partition, offset = msg.partition(), msg.offset()  # type: ignore[attr-defined]
        self.next_offsets[partition] = max(self.next_offsets.get(partition, 0), offset + 1)
        if self._pacer is not None:
            self._pacer.delivered(partition, offset, _size(msg))

    def send(self, key: bytes | None, value: bytes, partition: int | None = None) -> None:
        if self._pacer is not None:
            if partition is None:
                partition = partition_of(key or b"", self.partitions)
            self._pacer.wait(partition, self.producer.flush)
            self._pacer.sent(partition, len(key or b"") + len(value) + _RECORD_OVERHEAD)
        while True:
            try:
                if partition is None:
                    self.producer.produce(
                        self.topic, key=key, value=value, on_delivery=self._delivered
                    )
                else:
                    self.producer.produce(
                        self.topic,
                        key=key,
                        value=value,
                        partition=partition,
                        on_delivery=self._delivered,
                    )
                break
            except BufferError:
                self.producer.poll(0.05)
        self.producer.poll(0)

    def send_batch(self, partition: int, ticks: Sequence[Tick]) -> None:
        body = TickBatch(type="batch", ticks=list(ticks)).model_dump_json(exclude_none=True)
        self.send(None, body.encode(), partition)

    def finish(self) -> dict[int, int]:
        remaining = self.producer.flush(30)
        if self._pacer is not None:
            self._pacer.close()
        if self.failures or remaining:
            raise InputError(f"Kafka did not take every tick: {self.failures[:1] or remaining}")
        return self.next_offsets


#: Bytes a record takes in Kafka's log beyond its key and value (headers, lengths).
_RECORD_OVERHEAD = 24


def _size(msg: object) -> int:
    key, value = msg.key(), msg.value()  # type: ignore[attr-defined]
    return len(key or b"") + len(value or b"") + _RECORD_OVERHEAD
