"""The gateway's minute bars: ticks on the embedded broker, bars in a real Redis, exact OHLC."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from redis.asyncio import Redis

from alerts.delivery.kafka import BULK_FEED, producer_for
from alerts.delivery.kafka_offsets import read_to_end
from schemas.attribution import Contributor, IndexSnapshot
from schemas.gateway import Bar, Bars
from schemas.settings import Settings
from schemas.ticks import SessionEnd, Tick, TickBatch
from streams.dev.children import stop_child
from streams.dev.redis_server import free_port, start_redis_server
from streams.dev.workers import wait_until
from streams.gateway.bar_store import read_bars
from streams.gateway.bars import BarsIngest

THURSDAY = date(2025, 9, 18)
INSTRUMENTS = """\
default_exchange: "24/7"
open_grace_minutes: 30
close_grace_minutes: 15
instruments:
  - {symbol: 9888.HK, name: Baidu, exchange: XHKG}
  - {symbol: BIDU, name: Baidu ADR, exchange: "24/7"}
"""


def tick(symbol: str, utc: str, price: float, index: IndexSnapshot | None = None) -> Tick:
    ts = datetime.fromisoformat(f"2025-09-18T{utc}").replace(tzinfo=UTC)
    return Tick(symbol=symbol, price=price, ts=ts, index=index)


def publish(settings: Settings, messages: list[tuple[str, bytes]]) -> None:
    producer = producer_for(BULK_FEED, settings.kafka_bootstrap)
    for key, value in messages:
        producer.produce(settings.topic_ticks, key=key.encode(), value=value)
    assert producer.flush(30) == 0


def single(t: Tick) -> tuple[str, bytes]:
    return t.symbol, t.model_dump_json(exclude_none=True).encode()


@pytest.fixture
def bar_settings(settings: Settings, tmp_path: Path) -> Settings:
    instruments = tmp_path / "instruments.yaml"
    instruments.write_text(INSTRUMENTS)
    return settings.model_copy(update={"instruments_file": instruments})


@pytest.fixture
def ingest(bar_settings: Settings) -> Iterator[BarsIngest]:
    running = BarsIngest(bar_settings)
    running.start()
    yield running
    running.stop()


HSTECH_SNAPSHOT = IndexSnapshot(
    contributors=(Contributor(symbol="BIDU", change_pct=15.1, points=92.0, share=0.4),),
    reported=30,
    constituents=30,
    coverage=1.0,
    complete=True,
)
# Thursday 2025-09-18: HKEX opens at 09:30 Hong Kong time (01:30 UTC), its pre-open grace
# starts at 09:00.
FIRST = [
    single(tick("9888.HK", "01:00:00", 78.0)),  # pre-open: the 09:00 bar, before the open
    single(tick("9888.HK", "01:30:05", 80.0)),
    single(tick("9888.HK", "01:30:40", 83.5)),
    ("9888.HK", TickBatch(type="batch", ticks=[
        tick("9888.HK", "01:30:59", 79.0),
        tick("9888.HK", "01:31:10", 81.0),
        tick("9888.HK", "01:31:50", 82.0),
    ]).model_dump_json(exclude_none=True).encode()),
    single(tick("BIDU", "12:00:10", 100.0)),
    single(tick("BIDU", "12:00:30", 101.0)),
    # An index level as the worker publishes it back: a tick of the index, on 24/7.
    single(tick("HSTECH", "12:00:20", 5900.0, HSTECH_SNAPSHOT)),
    ("XHKG", SessionEnd(type="session_end", exchange="XHKG", session=THURSDAY)
     .model_dump_json().encode()),
    ("junk", b"not json at all"),
    # Saturday: no HKEX session.
    single(Tick(symbol="9888.HK", price=1.0, ts=datetime(2025, 9, 20, 3, 0, tzinfo=UTC))),
]  # fmt: skip
FIRST_TICKS = 9  # the batch counts three


async def test_ticks_become_exact_minute_bars_on_the_exchange_clock(
    bar_settings: Settings, ingest: BarsIngest, redis: Redis
) -> None:
    publish(bar_settings, FIRST)
    wait_until(lambda: ingest.ticks >= FIRST_TICKS and sum(ingest.skipped.values()) >= 2, 30,
               "the bars thread to take the first ticks")  # fmt: skip
    assert ingest.ticks == FIRST_TICKS
    assert ingest.skipped == {"invalid_json": 1, "outside_session": 1}
    prefix = bar_settings.key_prefix

    hk = await read_bars(redis, prefix, "9888.HK", None)
    assert hk == Bars(
        instrument="9888.HK",
        session=THURSDAY,
        timezone="Asia/Hong_Kong",
        bars=[
            Bar(minute="09:00", open=78.0, high=78.0, low=78.0, close=78.0),
            Bar(minute="09:30", open=80.0, high=83.5, low=79.0, close=79.0),
            Bar(minute="09:31", open=81.0, high=82.0, low=81.0, close=82.0),
        ],
    )
    bidu = await read_bars(redis, prefix, "BIDU", THURSDAY)
    assert bidu is not None and bidu.timezone == "UTC"
    assert bidu.bars == [Bar(minute="12:00", open=100.0, high=101.0, low=100.0, close=101.0)]
    index = await read_bars(redis, prefix, "HSTECH", None)
    assert index is not None
    assert index.bars == [Bar(minute="12:00", open=5900.0, high=5900.0, low=5900.0, close=5900.0)]
    assert await read_bars(redis, prefix, "9888.HK", date(2025, 9, 19)) is None
    assert await read_bars(redis, prefix, "TCEHY", None) is None
    ttl = await redis.ttl(f"{prefix}:{{gateway}}:bars:9888.HK:2025-09-18")
    assert 3 * 86_400 - 60 < ttl <= 3 * 86_400

    # A later poll's tick of a minute already written: merged, not overwritten.
    publish(bar_settings, [single(tick("9888.HK", "01:30:50", 90.0))])
    wait_until(lambda: ingest.ticks >= FIRST_TICKS + 1, 30, "the later tick")
    merged = await read_bars(redis, prefix, "9888.HK", THURSDAY)
    assert merged is not None
    assert merged.bars[1] == Bar(minute="09:30", open=80.0, high=90.0, low=79.0, close=90.0)

    # Everything read again from the start (a lost commit, say) changes nothing.
    ingest.stop()
    again = BarsIngest(bar_settings)
    try:
        assert again.apply(
            list(read_to_end(bar_settings.kafka_bootstrap, bar_settings.topic_ticks))
        )
    finally:
        again.stop()
    assert again.ticks == FIRST_TICKS + 1
    assert await read_bars(redis, prefix, "9888.HK", THURSDAY) == merged
    assert await read_bars(redis, prefix, "BIDU", THURSDAY) == bidu


async def test_bars_wait_for_redis_to_come_back_and_lose_nothing(
    bar_settings: Settings, redis_folder: str
) -> None:
    publish(bar_settings, FIRST)
    messages = list(read_to_end(bar_settings.kafka_bootstrap, bar_settings.topic_ticks))
    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    ingest = BarsIngest(bar_settings.model_copy(update={"redis_url": url}))
    outcome: list[bool] = []
    step = threading.Thread(target=lambda: outcome.append(ingest.apply(messages)))
    step.start()
    server = None
    try:
        wait_until(lambda: ingest.redis_errors >= 1, 10, "a refused write")
        assert not outcome  # still trying
        server = start_redis_server(port, redis_folder)
        step.join(10)
        assert outcome == [True]
        redis = Redis.from_url(url)
        bars = await read_bars(redis, bar_settings.key_prefix, "9888.HK", THURSDAY)
        await redis.aclose()
        assert bars is not None and [b.minute for b in bars.bars] == ["09:00", "09:30", "09:31"]
    finally:
        ingest.stop()
        step.join(10)
        if server is not None:
            stop_child(server)
