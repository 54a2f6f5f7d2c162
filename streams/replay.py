"""Replay: publish a tick file (CSV or JSONL) to the ticks topic, as a feed would."""

from __future__ import annotations

import csv
import time
from collections.abc import Iterator, Sequence
from datetime import date
from pathlib import Path

import orjson
from confluent_kafka import KafkaException, Producer
from pydantic import ValidationError

from alerts.catalog import Market
from schemas.errors import InputError, describe
from schemas.ticks import SessionEnd, Tick, TickBatch
from streams.partitioner import partition_of

CSV_FIELDS = ("ts", "symbol", "price", "volume", "seq")


def read_ticks(path: Path) -> list[Tick]:
    """Every tick of the file, or InputError naming the first bad line."""
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    rows = _jsonl_rows(path) if path.suffix in (".jsonl", ".ndjson") else _csv_rows(path)
    ticks = []
    for line, row in rows:
        try:
            ticks.append(Tick.model_validate(row))
        except ValidationError as error:
            raise InputError(f"{path}:{line}: {describe(error)}") from None
    return ticks


def _csv_rows(path: Path) -> Iterator[tuple[int, dict[str, object]]]:
    with path.open(newline="", encoding="utf-8") as handle:
        for line, cells in enumerate(csv.reader(handle), start=1):
            if not cells or cells[0].startswith("#"):
                continue
            if line == 1 and cells[0].strip().lower() == "ts":
                continue
            if not 3 <= len(cells) <= len(CSV_FIELDS):
                raise InputError(
                    f"{path}:{line}: expected ts,symbol,price[,volume,seq], got {len(cells)} fields"
                )
            row: dict[str, object] = {
                k: v.strip() for k, v in zip(CSV_FIELDS, cells, strict=False) if v.strip()
            }
            yield line, row


def _jsonl_rows(path: Path) -> Iterator[tuple[int, dict[str, object]]]:
    with path.open("rb") as handle:
        for line, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            try:
                row = orjson.loads(raw)
            except orjson.JSONDecodeError as error:
                raise InputError(f"{path}:{line}: not JSON ({error})") from None
            if not isinstance(row, dict):
                raise InputError(f"{path}:{line}: expected a JSON object")
            yield line, row


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
) -> dict[int, int]:
    """Publish in file order; return the next offset of each partition written to.

    With `speed`, ticks are spaced by their timestamps divided by speed (2.0 = twice
    as fast as they happened); without, as fast as Kafka takes them. With `batch`,
    consecutive ticks bound for the same partition travel as one message of up to
    that many ticks. Each of `ends` is then published to every partition, as a feed
    does at the close.
    """
    out = _Publisher(bootstrap, topic)
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


class _Publisher:
    """A producer with Java's partitioner, counting where each message landed."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.topic = topic
        self.producer = Producer(
            {
                "bootstrap.servers": bootstrap,
                "enable.idempotence": True,
                "linger.ms": 5,
                "partitioner": "murmur2_random",
                "message.timeout.ms": 30_000,
                "log_level": 2,  # a one-line error says it all; see finish()
            }
        )
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

    def _delivered(self, err: object, msg: object) -> None:
        if err is not None:
            self.failures.append(str(err))
            return
        partition, offset = msg.partition(), msg.offset()  # type: ignore[attr-defined]
        self.next_offsets[partition] = max(self.next_offsets.get(partition, 0), offset + 1)

    def send(self, key: bytes | None, value: bytes, partition: int | None = None) -> None:
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
        if self.failures or remaining:
            raise InputError(f"Kafka did not take every tick: {self.failures[:1] or remaining}")
        return self.next_offsets
