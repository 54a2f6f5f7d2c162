"""Faust agents: thin loops that turn Kafka events into engine batches."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import faust
from faust.types import TP
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from alerts.core.decode import Incoming
from alerts.delivery.errors import DeliveryError
from alerts.engine.indices import IndexEngine
from alerts.engine.ticks import BatchResult, Engine
from schemas.settings import Settings
from schemas.ticks import Tick
from streams.gaps import GapWatch
from streams.lag import LagWatch
from streams.metrics import StatsWriter, WorkerCounts
from streams.metrics_timings import Untimed

log = logging.getLogger(__name__)

#: Pauses between attempts at a batch while Redis or Kafka is out of reach (the last
#: one repeats).
RETRY_PAUSES_S = (0.5, 1.0, 2.0, 5.0)
_OUT_OF_REACH = (RedisConnectionError, RedisTimeoutError, DeliveryError)

Result = TypeVar("Result", covariant=True)


class BatchEngine(Protocol[Result]):
    def forget(self) -> None: ...

    async def process(self, batch: Sequence[Incoming]) -> Result: ...


@dataclass(frozen=True)
class Engines:
    """What the agents of one worker share: the ingest engine and the index engine, the
    watches for skipped offsets on their topics, the worker's counts and timings."""

    ingest: Engine
    index: IndexEngine
    ticks_gaps: GapWatch
    constituents_gaps: GapWatch
    stats: StatsWriter
    timings: Untimed
    ticks_lag: LagWatch | None = None  # None: the index agent hears nothing of lag
    metrics: bool = False  # keep the gauges of lag and assignment up to date


def _incoming(events: Any) -> list[Incoming]:
    return [Incoming(e.message.partition, e.message.offset, e.message.value) for e in events]


async def until_done(
    engine: BatchEngine[Result],
    batch: Sequence[Incoming],
    what: str,
    counts: WorkerCounts | None = None,
) -> Result:
    """The batch processed, however long Redis or Kafka is out of reach.

    Letting the agent crash instead would lose the batch: Faust restarts a crashed agent
    without handing it the events it held, and the partition's later ticks would then
    make them look like redeliveries. Each attempt starts again from Redis, as after a
    rebalance, so a commit whose reply was lost, or alerts left in the outbox, are
    found and settled once.
    """
    attempt = 0
    while True:
        try:
            return await engine.process(batch)
        except _OUT_OF_REACH as error:
            pause = RETRY_PAUSES_S[min(attempt, len(RETRY_PAUSES_S) - 1)]
            log.warning("%s batch of %d not processed (%s: %s); retrying in %.1f s",
                        what, len(batch), type(error).__name__, error, pause)  # fmt: skip
            engine.forget()
            if counts is not None:
                counts.redone("unreachable")
            await asyncio.sleep(pause)
            attempt += 1


@dataclass(frozen=True)
class _Knowing:
    """The ingest engine with what the consumer knows of each partition's lag."""

    engine: Engine
    behind: Mapping[int, bool]

    def forget(self) -> None:
        self.engine.forget()

    async def process(self, batch: Sequence[Incoming]) -> BatchResult:
        return await self.engine.process(batch, self.behind)


async def ingest_batch(
    engine: Engine,
    batch: Sequence[Incoming],
    behind: Mapping[int, bool] | None = None,
    counts: WorkerCounts | None = None,
) -> BatchResult | None:
    """The batch processed (see until_done); None when it failed for a reason other than
    Redis or Kafka being out of reach, a bug, say. Then its messages go to the
    dead-letter topic as internal_error, to be replayed once fixed, rather than vanish
    with a crashed agent; the engine starts the next batch from Redis."""
    try:
        knowing = engine if behind is None else _Knowing(engine, behind)
        return await until_done(knowing, batch, "ticks", counts)
    except Exception as error:
        detail = f"{type(error).__name__}: {error}"
        log.exception("ticks batch of %d failed; dead-lettered as internal_error", len(batch))
        engine.forget()
        await engine.dead_letter(batch, "internal_error", detail)
        return None


def register(
    app: faust.App,
    settings: Settings,
    engines: Callable[[], Awaitable[Engines]],
) -> None:
    ticks = app.topic(settings.topic_ticks, key_serializer="raw", value_serializer="raw")
    constituents = app.topic(
        settings.topic_constituents, key_serializer="raw", value_serializer="raw"
    )
    started: list[Engines] = []

    def owned(topic: str) -> list[int]:
        return [tp.partition for tp in app.consumer.assignment() if tp.topic == topic]

    @app.on_partitions_revoked.connect  # type: ignore[arg-type]
    async def on_revoked(app: faust.App, revoked: Any, **_: Any) -> None:
        for both in started:
            both.ingest.forget()
            both.index.forget()
            both.ticks_gaps.forget()
            both.constituents_gaps.forget()
            if both.ticks_lag is not None:
                both.ticks_lag.forget()

    def watch_partitions(counts: WorkerCounts) -> None:
        """Lag and assignment, as the consumer knows them now (on the event loop: the
        consumer's state is not for other threads)."""
        topics = (settings.topic_ticks, settings.topic_constituents)
        owned_now = [tp for tp in app.consumer.assignment() if tp.topic in topics]
        counts.assigned = {t: sum(1 for tp in owned_now if tp.topic == t) for t in topics}
        counts.lag = partition_lag(app, owned_now, counts.next_offsets)

    @app.timer(interval=0.5)  # type: ignore[misc]
    async def write_stats() -> None:
        for both in started:
            if both.metrics:
                watch_partitions(both.stats.counts)
            await both.stats.maybe_write()

    @app.agent(ticks, name="ingest")
    async def ingest(stream: faust.StreamT[bytes]) -> None:
        both = await engines()
        started.append(both)
        counts = both.stats.counts
        timings = both.timings
        try:
            async for events in stream.take_events(  # type: ignore[attr-defined]
                settings.batch_max, within=settings.batch_within_s
            ):
                taken_at, started_s = time.time(), time.perf_counter()
                batch = _incoming(events)
                counts.lost(await both.ticks_gaps.check(batch))
                held_before = set(both.ingest.lost)
                behind = None
                if both.ticks_lag is not None:
                    behind = await both.ticks_lag.behind(batch, owned(settings.topic_ticks))
                result = await ingest_batch(both.ingest, batch, behind, counts)
                if result is None:
                    counts.dead_lettered(settings.topic_ticks, batch, "internal_error")
                    continue
                timings.published(result.alerts, taken_at)
                timings.batch("ingest", len(batch), time.perf_counter() - started_s)
                counts.ingested(settings.topic_ticks, batch, result)
                if both.metrics:
                    counts.seen(both.ingest.event_times())
                newly_lost = both.ingest.lost - held_before
                if newly_lost:  # stop fetching what cannot be applied
                    app.consumer.pause_partitions(
                        [TP(settings.topic_ticks, p) for p in sorted(newly_lost)]
                    )
                log.info(
                    "ticks batch of %d: %d applied, %d duplicates, %d rejected, %d held, "
                    "ignored %s, %d alerts",
                    len(events),
                    result.applied,
                    result.duplicates,
                    result.rejected,
                    result.held,
                    result.ignored or "none",
                    len(result.alerts),
                )
                await both.stats.maybe_write()
        finally:
            await both.ingest.close()
            await both.stats.write()

    @app.agent(constituents, name="index")
    async def index(stream: faust.StreamT[bytes]) -> None:
        both = await engines()
        counts = both.stats.counts
        async for events in stream.take_events(  # type: ignore[attr-defined]
            settings.batch_max, within=settings.batch_within_s
        ):
            started_s = time.perf_counter()
            batch = _incoming(events)
            counts.lost(await both.constituents_gaps.check(batch))
            result = await until_done(both.index, batch, "constituents", counts)
            both.timings.batch("index", len(batch), time.perf_counter() - started_s)
            index_ticks = sum(1 for e in result.emitted if isinstance(e, Tick))
            counts.indexed(settings.topic_constituents, batch, index_ticks)
            log.info(
                "constituents batch of %d: %d applied, %d duplicates, %d index messages out",
                len(events),
                result.applied,
                result.duplicates,
                len(result.emitted),
            )


def partition_lag(
    app: faust.App, owned: Sequence[TP], next_offsets: Mapping[str, int]
) -> dict[tuple[str, int], int]:
    """High watermark minus the next offset to process, for each owned partition the
    worker has processed from and whose high watermark the consumer knows."""
    lag = {}
    for tp in owned:
        following = next_offsets.get(f"{tp.topic}:{tp.partition}")
        try:
            high = app.consumer.highwater(tp)
        except (AssertionError, KeyError, AttributeError):  # aiokafka asserts assignment
            continue
        if following is not None and isinstance(high, int):
            lag[(tp.topic, tp.partition)] = max(0, high - following)
    return lag
