"""The gateway's alert stream in a real Redis: idempotent appends, bounds, exact paging, waiting."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime

import pytest
from redis import Redis as SyncRedis
from redis.asyncio import Redis

from alerts.delivery.stream import (
    AlertStream,
    Appended,
    Entry,
    Incoming,
    SyncAlertStream,
    position_key,
    stream_keys,
)
from schemas.alerts import Alert, Stage

WEEK_S = 7 * 24 * 3600.0


def make_alert(n: int, instrument: str = "HSTECH", stage: Stage = "intraday") -> Alert:
    return Alert(
        alert_id=f"alert-{n}",
        rule=f"rule-{n % 3}",
        kind="daily_move",
        stage=stage,
        instrument=instrument,
        session=date(2025, 9, 18),
        ts=datetime(2025, 9, 18, 2, 0, tzinfo=UTC),
        price=100 + n,
        threshold=4,
        change=4.2,
        reference_price=96,
        message=f"alert {n}",
    )


def message(partition: int, offset: int, n: int) -> tuple[Incoming, Alert]:
    alert = make_alert(n)
    return Incoming(partition, offset, alert.model_dump_json().encode()), alert


def batch(
    partition: int, offsets: range, first_n: int | None = None
) -> list[tuple[Incoming, Alert]]:
    start = offsets.start if first_n is None else first_n
    return [message(partition, offset, start + i) for i, offset in enumerate(offsets)]


def ids(entries: list[Entry]) -> list[str]:
    return [entry.alert_id for entry in entries]


@pytest.fixture
def stream(redis: Redis, key_prefix: str) -> AlertStream:
    return AlertStream(redis, key_prefix, max_len=100_000, max_age_s=WEEK_S)


@pytest.fixture
def sync_redis(redis_url: str) -> Iterator[SyncRedis]:
    client = SyncRedis.from_url(redis_url)
    yield client
    client.close()


async def everything(stream: AlertStream) -> list[Entry]:
    return await stream.after("0", 100_000)


async def test_append_keeps_the_bytes_as_published_and_the_fields_filters_read(
    stream: AlertStream,
) -> None:
    fields = make_alert(1, instrument="9988.HK", stage="close").model_dump(mode="json")
    fields["message"] = "Alibaba \u2191 4%"
    # Not pydantic's own rendering: the stream must not re-encode what the topic carried.
    published = json.dumps(fields, indent=1, ensure_ascii=True).encode()
    assert b"\\u2191" in published
    alert = Alert.model_validate_json(published)
    assert alert.model_dump_json().encode() != published

    assert await stream.append([(Incoming(0, 0, published), alert)]) == Appended(1, 0, 0)

    (entry,) = await everything(stream)
    assert entry.alert == published
    assert (entry.alert_id, entry.instrument, entry.kind, entry.rule, entry.stage) == (
        "alert-1",
        "9988.HK",
        "daily_move",
        "rule-1",
        "close",
    )
    assert await stream.first_position() == await stream.last_position() == entry.position


async def test_the_same_batch_again_changes_nothing(stream: AlertStream) -> None:
    first = batch(0, range(5)) + batch(1, range(3), first_n=10)
    assert await stream.append(first) == Appended(added=8, duplicates=0, old=0)
    kept = await everything(stream)

    assert await stream.append(first) == Appended(added=0, duplicates=0, old=8)
    assert await everything(stream) == kept
    assert await stream.positions() == {0: 5, 1: 3}


async def test_a_batch_overlapping_the_position_adds_only_what_is_new(
    stream: AlertStream,
) -> None:
    await stream.append(batch(0, range(5)))
    assert await stream.append(batch(0, range(3, 8))) == Appended(added=3, duplicates=0, old=2)
    assert ids(await everything(stream)) == [f"alert-{n}" for n in range(8)]
    assert await stream.positions() == {0: 8}


async def test_the_same_alert_at_another_offset_is_a_duplicate_that_moves_the_position(
    stream: AlertStream,
) -> None:
    await stream.append(batch(0, range(3)))
    again = [message(0, 7, 1), message(1, 0, 2), message(1, 1, 3)]
    assert await stream.append(again) == Appended(added=1, duplicates=2, old=0)
    assert ids(await everything(stream)) == ["alert-0", "alert-1", "alert-2", "alert-3"]
    assert await stream.positions() == {0: 8, 1: 2}


async def test_the_same_alert_twice_in_one_batch_is_kept_once(stream: AlertStream) -> None:
    assert await stream.append([message(0, 0, 1), message(1, 4, 1)]) == Appended(1, 1, 0)
    assert ids(await everything(stream)) == ["alert-1"]


async def test_each_partition_has_its_own_position(stream: AlertStream) -> None:
    # A consumer that starts where the log starts (above 0) is not "old".
    await stream.append(batch(0, range(100, 102), first_n=0))
    assert await stream.append(batch(1, range(2), first_n=5)) == Appended(2, 0, 0)
    assert await stream.positions() == {0: 102, 1: 2}


async def test_nothing_to_append_is_no_call(stream: AlertStream) -> None:
    assert await stream.append([]) == Appended(0, 0, 0)
    assert await stream.positions() == {}
    assert await stream.first_position() is None
    assert await stream.last_position() is None


async def test_the_sync_twin_shares_script_keys_and_positions(
    stream: AlertStream, sync_redis: SyncRedis, key_prefix: str
) -> None:
    twin = SyncAlertStream(sync_redis, key_prefix, max_len=100_000, max_age_s=WEEK_S)
    assert twin.append(batch(0, range(4))) == Appended(4, 0, 0)
    assert await stream.append(batch(0, range(4))) == Appended(0, 0, 4)
    assert twin.append([message(1, 0, 2)]) == Appended(0, 1, 0)
    assert twin.positions() == await stream.positions() == {0: 4, 1: 1}
    assert twin.append([]) == Appended(0, 0, 0)


async def appended_slowly(stream: AlertStream, batches: int, size: int) -> list[str]:
    # Batches a few ms apart, so they do not share a stream id's millisecond.
    for b in range(batches):
        await stream.append(batch(0, range(b * size, (b + 1) * size)))
        await asyncio.sleep(0.003)
    return [f"alert-{n}" for n in range(batches * size)]


# A `~` trim removes only whole stream nodes, and a node holds at most 100 entries
# (stream-node-max-entries), so up to 100 more than the bound may stay.
NODE = 100


async def test_trimmed_by_count_keeping_the_newest(redis: Redis, key_prefix: str) -> None:
    stream = AlertStream(redis, key_prefix, max_len=20, max_age_s=WEEK_S)
    appended = await appended_slowly(stream, batches=40, size=10)

    kept = ids(await everything(stream))
    assert 20 <= len(kept) <= 20 + NODE < len(appended)
    assert kept == appended[-len(kept) :]
    assert await stream.positions() == {0: 400}
    seen = {m.decode() for m in await redis.zrange(stream_keys(key_prefix)[2], 0, -1)}
    # Trimmed with the stream: at most the trimmed rest of the first kept entry's batch stays.
    assert set(kept) <= seen
    assert len(seen) < len(kept) + 10


async def test_trimmed_by_age(redis: Redis, key_prefix: str) -> None:
    stream = AlertStream(redis, key_prefix, max_len=100_000, max_age_s=0.3)
    old = await appended_slowly(stream, batches=20, size=10)
    await asyncio.sleep(0.4)
    await stream.append([message(0, 200, 200)])

    kept = ids(await everything(stream))
    assert kept[-1] == "alert-200"
    assert len(kept) <= 1 + NODE < len(old)
    seen = {m.decode() for m in await redis.zrange(stream_keys(key_prefix)[2], 0, -1)}
    assert set(kept) <= seen
    assert len(seen) < len(kept) + 10
    # A trimmed alert arriving again (a new offset) is new again: nothing holds it now.
    assert await stream.append([message(0, 201, 0)]) == Appended(1, 0, 0)


async def test_a_young_stream_is_not_trimmed(stream: AlertStream) -> None:
    appended = await appended_slowly(stream, batches=3, size=50)
    assert ids(await everything(stream)) == appended


@pytest.fixture
async def filled(stream: AlertStream) -> list[Entry]:
    """25 entries over a few milliseconds, so positions differ in both parts."""
    await appended_slowly(stream, batches=5, size=5)
    entries = await everything(stream)
    assert len(entries) == 25
    keys = [position_key(entry.position) for entry in entries]
    assert keys == sorted(keys) and len(set(keys)) == 25
    assert len({ms for ms, _ in keys}) > 1
    return entries


@pytest.mark.parametrize("size", [1, 4, 5, 7, 25, 100])
async def test_paging_after_is_exact(stream: AlertStream, filled: list[Entry], size: int) -> None:
    got: list[Entry] = []
    position = "0"
    while page := await stream.after(position, size):
        assert len(page) <= size
        got += page
        position = page[-1].position
    assert got == filled


@pytest.mark.parametrize("size", [1, 4, 5, 7, 25, 100])
async def test_paging_before_is_exact(stream: AlertStream, filled: list[Entry], size: int) -> None:
    got: list[Entry] = []
    position: str | None = None
    while page := await stream.before(position, size):
        assert len(page) <= size
        got += page
        position = page[-1].position
    assert got == filled[::-1]


async def test_after_and_before_are_strict(stream: AlertStream, filled: list[Entry]) -> None:
    middle = filled[12].position
    assert (await stream.after(middle, 3)) == filled[13:16]
    assert (await stream.before(middle, 3)) == filled[11:8:-1]
    assert await stream.after(filled[-1].position, 10) == []
    assert await stream.before(filled[0].position, 10) == []
    # Positions between and around entries, and the extremes Redis accepts.
    ms, seq = position_key(middle)
    assert (await stream.after(f"{ms}-{seq}", 1)) == (await stream.after(middle, 1))
    assert await stream.after("18446744073709551615-18446744073709551615", 5) == []
    assert await stream.before("0", 5) == []
    assert await stream.before("0-0", 5) == []
    assert (await stream.after("1", 2)) == filled[:2]
    assert await stream.first_position() == filled[0].position
    assert await stream.last_position() == filled[-1].position


async def test_wait_after_returns_what_arrives_while_it_waits(
    stream: AlertStream, redis_url: str, key_prefix: str
) -> None:
    await stream.append(batch(0, range(2)))
    last = await stream.last_position()
    assert last is not None
    started = time.monotonic()
    assert await stream.wait_after(last, block_ms=50, count=10) == []
    assert time.monotonic() - started >= 0.04

    writer_client = Redis.from_url(redis_url)
    writer = AlertStream(writer_client, key_prefix, max_len=100_000, max_age_s=WEEK_S)
    waiting = asyncio.create_task(stream.wait_after(last, block_ms=5_000, count=10))
    await asyncio.sleep(0.1)
    started = time.monotonic()
    await writer.append(batch(0, range(2, 4)))
    arrived = await waiting
    await writer_client.aclose()

    assert time.monotonic() - started < 1
    assert ids(arrived) == ["alert-2", "alert-3"]  # one script call: seen whole
    assert ids(await stream.wait_after("0", block_ms=10, count=3)) == [
        "alert-0",
        "alert-1",
        "alert-2",
    ]
