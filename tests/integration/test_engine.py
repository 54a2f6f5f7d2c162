"""The engine with a real Redis and the embedded broker: redelivery, stale owners, outbox."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from redis.asyncio import Redis

from alerts.core.decode import Incoming, position
from alerts.core.instrument import InstrumentState
from alerts.core.market import Market
from alerts.core.outbox import OutboxEntry
from alerts.core.outgoing import Record
from alerts.delivery.kafka import KafkaPublisher
from alerts.engine.ticks import Engine, Topics
from alerts.store.instruments import Change, StateStore
from schemas.instruments import InstrumentsFile
from schemas.rules import DailyMoveRule
from schemas.settings import Settings
from schemas.ticks import SessionEnd, Tick
from streams.metrics import WorkerCounts
from streams.metrics_timings import Untimed
from streams.replay import encode
from tests.integration.support import alerts_on_kafka, read_topic

MARKET = Market(
    InstrumentsFile(default_exchange="24/7"),
    (DailyMoveRule(name="gain4", rungs=(4.0,), stages=("intraday", "close")),),
)


def message(offset: int, day: int, price: float, symbol: str = "BIDU", partition: int = 0):  # type: ignore[no-untyped-def]
    tick = Tick(symbol=symbol, price=price, ts=datetime(2025, 9, day, 2, offset, tzinfo=UTC))
    return Incoming(partition=partition, offset=offset, value=encode(tick))


class Harness:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.redis = Redis.from_url(settings.redis_url)
        self.counts = WorkerCounts()
        self.store = StateStore(self.redis, settings.key_prefix, Untimed(self.counts))
        self.publisher = KafkaPublisher(settings.kafka_bootstrap)
        self.topics = Topics(
            settings.topic_ticks,
            settings.topic_alerts,
            settings.topic_dlq,
            settings.topic_constituents,
        )

    async def engine(self, market: Market = MARKET) -> Engine:
        engine = Engine(self.store, self.publisher, market, self.topics)
        await engine.start()
        return engine

    async def close(self) -> None:
        self.publisher.close()
        await self.redis.aclose()


@pytest.fixture
async def harness(settings: Settings):  # type: ignore[no-untyped-def]
    h = Harness(settings)
    yield h
    await h.close()


BATCH = [message(0, 17, 100.0), message(1, 18, 103.0), message(2, 18, 104.5)]


async def test_a_redelivered_batch_changes_nothing(harness: Harness, settings: Settings) -> None:
    engine = await harness.engine()
    first = await engine.process(BATCH)
    assert (first.applied, len(first.alerts)) == (3, 1)
    assert engine.outbox_pending == 0  # committed, then published
    newest = datetime(2025, 9, 18, 2, 2, tzinfo=UTC)  # BATCH's last tick
    assert engine.event_times() == {"24/7": int(newest.timestamp() * 1000)}
    again = await engine.process(BATCH)
    assert (again.applied, again.duplicates, again.alerts) == (0, 3, [])
    # A new worker (empty cache) that is handed the same messages after a rebalance.
    fresh = await (await harness.engine()).process(BATCH)
    assert (fresh.applied, fresh.duplicates, fresh.alerts) == (0, 3, [])
    await engine.close()
    assert [a.price for a in alerts_on_kafka(settings)] == [104.5]


async def test_a_stale_owner_reloads_instead_of_overwriting(
    harness: Harness, settings: Settings
) -> None:
    old_owner, new_owner = await harness.engine(), await harness.engine()
    await old_owner.process(BATCH[:1])
    # The partition moves: the new owner applies the next tick behind the old one's back.
    await new_owner.process(BATCH[1:2])
    result = await old_owner.process(BATCH[1:])
    assert (result.applied, result.duplicates) == (1, 1)
    assert harness.counts.labelled["retries:stale_state"] == 1  # its first commit refused
    loaded = (await harness.store.load(["BIDU"])).states["BIDU"]
    assert loaded.state.offsets == {0: position(2)} and loaded.state.last == 104.5
    assert loaded.version == 3
    assert [a.price for a in alerts_on_kafka(settings)] == [104.5]


async def test_a_later_tick_on_the_partition_closes_other_instruments_sessions(
    harness: Harness, settings: Settings
) -> None:
    engine = await harness.engine()
    batch = [message(0, 17, 100.0), message(1, 18, 104.5), message(2, 19, 50.0, "BABA")]
    result = await engine.process(batch)
    assert [(a.instrument, a.stage, a.session) for a in result.alerts] == [
        ("BIDU", "intraday", date(2025, 9, 18)),
        ("BIDU", "close", date(2025, 9, 18)),
    ]
    # An end-of-day message closes what no later tick did; closing twice does nothing.
    end = SessionEnd(type="session_end", exchange="24/7", session=date(2025, 9, 19))
    ended = Incoming(0, 3, end.model_dump_json().encode())
    assert (await engine.process([ended])).alerts == []
    assert (await harness.store.load(["BABA"])).states["BABA"].state.closed


async def test_unknown_instruments_and_ticks_outside_sessions_are_dead_lettered(
    harness: Harness, settings: Settings
) -> None:
    market = Market(InstrumentsFile.model_validate({"instruments": [
        {"symbol": "0700.HK", "exchange": "XHKG"}]}), MARKET.rules)  # fmt: skip
    engine = await harness.engine(market)
    saturday = Tick(symbol="0700.HK", price=1, ts=datetime(2025, 9, 20, 3, tzinfo=UTC))
    result = await engine.process([Incoming(0, 0, encode(saturday)), message(1, 18, 10.0, "NOPE")])
    assert result.rejected == 2
    letters = read_topic(settings.kafka_bootstrap, settings.topic_dlq)
    assert sorted(dict(m.headers())["reason"] for m in letters) == [
        b"outside_session",
        b"unknown_instrument",
    ]


async def test_a_whole_batch_can_be_dead_lettered_unchanged_with_its_reason(
    harness: Harness, settings: Settings
) -> None:
    engine = await harness.engine()
    batch = [message(3, 18, 10.0), message(4, 18, 11.0)]
    await engine.dead_letter(batch, "internal_error", "KeyError: 'BIDU'")
    letters = read_topic(settings.kafka_bootstrap, settings.topic_dlq)
    assert sorted((m.value(), dict(m.headers())["offset"]) for m in letters) == [
        (batch[0].value, b"3"),
        (batch[1].value, b"4"),
    ]
    assert {(dict(m.headers())["reason"], dict(m.headers())["error"]) for m in letters} == {
        (b"internal_error", b"KeyError: 'BIDU'")
    }


async def test_outbox_entries_left_by_a_crash_are_published_once_on_recovery(
    harness: Harness, settings: Settings
) -> None:
    done = await harness.engine()
    alert = (await done.process(BATCH)).alerts[0]
    await done.close()
    # Worker A committed two alerts, published one, and died before removing either.
    sent = alert.model_copy(update={"instrument": "BABA", "alert_id": "sent"})
    lost = alert.model_copy(update={"instrument": "BABA", "alert_id": "lost"})
    marks = harness.publisher.marks(settings.topic_alerts)
    entries = [OutboxEntry.new(a.model_dump_json().encode(), marks).encoded for a in (sent, lost)]
    await harness.store.commit([Change("BABA", 0, InstrumentState("BABA"), entries)], [],
                               {(settings.topic_ticks, 0): {"BABA"}})  # fmt: skip
    await harness.publisher.publish(
        [Record(settings.topic_alerts, b"BABA", sent.model_dump_json().encode())]
    )
    # Worker B takes partition 0 over: it publishes only what is not on Kafka yet.
    taker = await harness.engine()
    await taker.process([message(5, 18, 104.0, "BABA")])
    await taker.close()
    ids = sorted(a.alert_id for a in alerts_on_kafka(settings))
    assert ids == sorted([alert.alert_id, "sent", "lost"])
    assert (await harness.store.load(["BABA"], with_outboxes=True)).outboxes == {}
