"""Batched tick messages: the same results as the same ticks sent one by one."""

from __future__ import annotations

import random
from datetime import date

from redis.asyncio import Redis

from alerts.core.decode import Incoming
from alerts.core.market import Market
from alerts.core.sessions import get_calendar
from alerts.delivery.kafka import BULK_FEED, KafkaPublisher, producer_for
from alerts.engine.ticks import Engine, Topics
from alerts.store.instruments import StateStore
from schemas.instruments import InstrumentsFile
from schemas.rules import DailyMoveRule, MultiYearRule
from schemas.settings import Settings
from schemas.ticks import Tick
from streams.partitioner import partition_of
from streams.replay import publish_ticks
from tests.integration.support import read_topic
from tests.market_data import interleave, story

MARKET = Market(
    InstrumentsFile(default_exchange="XHKG"),
    (
        DailyMoveRule(name="gain", rungs=(2.0, 4.0), stages=("intraday", "close")),
        DailyMoveRule(name="loss", direction="down", rungs=(2.0,)),
        MultiYearRule(name="high1", kind="multi_year_high", years=1),
    ),
)


def ticks() -> list[Tick]:
    rng = random.Random(5)
    hk = get_calendar("XHKG")
    stories = [
        story(s, hk, date(2024, 6, 28), date(2025, 6, 30), date(2025, 7, 31), rng)
        for s in ("A.HK", "B.HK", "C.HK", "D.HK")
    ]
    return interleave(stories)


async def run_through_engine(settings: Settings, prefix: str, batch: int | None) -> list:
    """Publish the ticks, read them back as the worker would, apply them; the alerts."""
    topic = settings.topic_ticks
    publish_ticks(ticks(), settings.kafka_bootstrap, topic, batch=batch)
    messages = read_topic(settings.kafka_bootstrap, topic)
    redis = Redis.from_url(settings.redis_url)
    publisher = KafkaPublisher(settings.kafka_bootstrap)
    engine = Engine(StateStore(redis, prefix), publisher, MARKET,
                    Topics(topic, settings.topic_alerts, settings.topic_dlq))  # fmt: skip
    await engine.start()
    alerts = []
    for partition in sorted({m.partition() for m in messages}):
        mine = [m for m in messages if m.partition() == partition]
        for start in range(0, len(mine), 50):
            chunk = [
                Incoming(m.partition(), m.offset(), m.value()) for m in mine[start : start + 50]
            ]
            alerts += (await engine.process(chunk)).alerts
            # A redelivered chunk changes nothing.
            assert (await engine.process(chunk)).alerts == []
    publisher.close()
    await redis.aclose()
    return sorted((a.alert_id, a.price, a.since, a.stage) for a in alerts)


async def test_batched_messages_give_the_alerts_of_single_ticks(
    base_settings: Settings,
    broker,
    key_prefix: str,  # type: ignore[no-untyped-def]
) -> None:
    settings = base_settings.model_copy(update={"kafka_bootstrap": broker.bootstrap})
    one_by_one = await run_through_engine(settings, key_prefix + ":single", None)
    other = settings.model_copy(update={"topic_ticks": settings.topic_dlq})  # a fresh topic
    batched = await run_through_engine(other, key_prefix + ":batched", 25)
    assert len(one_by_one) > 20
    assert batched == one_by_one


def test_batches_land_on_the_partition_of_their_symbols_single_ticks(
    settings: Settings,
) -> None:
    producer = producer_for(BULK_FEED, settings.kafka_bootstrap)
    landed: dict[str, int] = {}

    def delivered(err, msg) -> None:  # type: ignore[no-untyped-def]
        landed[msg.key().decode()] = msg.partition()

    symbols = [f"{n:04d}.HK" for n in range(40)]
    for symbol in symbols:
        producer.produce(settings.topic_ticks, key=symbol.encode(), value=b"{}",
                         on_delivery=delivered)  # fmt: skip
    producer.flush(10)
    partitions = settings.ticks_partitions
    assert landed == {s: partition_of(s.encode(), partitions) for s in symbols}
