"""The engine with a real Redis and the embedded broker: redelivery, stale owners, outbox."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from redis.asyncio import Redis

from alerts.delivery.kafka import KafkaPublisher
from alerts.engine import Engine, Incoming, Topics
from alerts.market import InstrumentState
from alerts.rules import DailyMoveRule
from alerts.state import Change, StateStore
from schemas.alerts import Alert
from schemas.settings import Settings
from schemas.ticks import Tick
from streams.replay import encode
from tests.integration.support import read_topic

RULES = [DailyMoveRule(name="gain4", rungs=(4.0,))]


def message(offset: int, day: int, price: float, symbol: str = "BIDU") -> Incoming:
    tick = Tick(symbol=symbol, price=price, ts=datetime(2025, 9, day, 2, offset, tzinfo=UTC))
    return Incoming(partition=0, offset=offset, value=encode(tick))


def alerts_on_kafka(settings: Settings) -> list[Alert]:
    messages = read_topic(settings.kafka_bootstrap, settings.topic_alerts)
    return [Alert.model_validate_json(m.value()) for m in messages]


class Harness:
    def __init__(self, settings: Settings) -> None:
        self.redis = Redis.from_url(settings.redis_url)
        self.store = StateStore(self.redis, settings.key_prefix)
        self.publisher = KafkaPublisher(settings.kafka_bootstrap)
        self.topics = Topics(settings.topic_alerts, settings.topic_dlq)

    def engine(self) -> Engine:
        return Engine(self.store, self.publisher, RULES, self.topics)

    async def close(self) -> None:
        self.publisher.close()
        await self.redis.aclose()


@pytest.fixture
async def harness(settings: Settings):
    h = Harness(settings)
    yield h
    await h.close()


BATCH = [message(0, 17, 100.0), message(1, 18, 103.0), message(2, 18, 104.5)]


async def test_a_redelivered_batch_changes_nothing(harness: Harness, settings: Settings) -> None:
    engine = harness.engine()
    first = await engine.process(BATCH)
    assert (first.applied, len(first.alerts)) == (3, 1)
    again = await engine.process(BATCH)
    assert (again.applied, again.duplicates, again.alerts) == (0, 3, [])
    # A new worker (empty cache) that is handed the same messages after a rebalance.
    fresh = await harness.engine().process(BATCH)
    assert (fresh.applied, fresh.duplicates, fresh.alerts) == (0, 3, [])
    await engine.close()
    assert [a.price for a in alerts_on_kafka(settings)] == [104.5]
    assert await harness.store.pending() == {}


async def test_a_stale_owner_reloads_instead_of_overwriting(
    harness: Harness, settings: Settings
) -> None:
    old_owner, new_owner = harness.engine(), harness.engine()
    await old_owner.process(BATCH[:1])
    # The partition moves: the new owner applies the next tick behind the old one's back.
    await new_owner.process(BATCH[1:2])
    result = await old_owner.process(BATCH[1:])
    assert (result.applied, result.duplicates) == (1, 1)
    state = (await harness.store.load(["BIDU"]))["BIDU"]
    assert state.state.offsets == {0: 2} and state.state.last == 104.5
    assert state.version == 3
    assert [a.price for a in alerts_on_kafka(settings)] == [104.5]


async def test_alerts_left_in_the_outbox_by_a_crash_are_published_on_recovery(
    harness: Harness, settings: Settings
) -> None:
    # A worker committed its state and alert, then died before publishing.
    finished = harness.engine()
    alert = (await finished.process(BATCH)).alerts[0]
    await finished.close()
    orphan = alert.model_copy(update={"instrument": "BABA", "alert_id": "orphan"})
    await harness.store.commit(
        [Change("BABA", 0, InstrumentState("BABA"), [orphan.model_dump_json().encode()])], []
    )
    assert list(await harness.store.pending()) != []
    assert await harness.engine().recover() == 1
    assert await harness.store.pending() == {}
    assert sorted(a.alert_id for a in alerts_on_kafka(settings)) == sorted(
        [alert.alert_id, "orphan"]
    )
