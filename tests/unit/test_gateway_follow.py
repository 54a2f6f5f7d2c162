"""A client's alerts (streams/gateway/follow.py) over a stand-in stream: exactly once and in
order across the hand-over from Redis to the fan-out, after falling behind, with filters."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from alerts.delivery.stream import Entry, position_key
from schemas.gateway import Filters
from streams.gateway.fanout import Fanout
from streams.gateway.follow import BATCH_ENTRIES, Heartbeat, Item, Truncated, follow


def entry(n: int, instrument: str = "BIDU") -> Entry:
    return Entry(f"{n}-0", f"id-{n}", instrument, "daily_move", "gain", "intraday", b"{}")


class Stream:
    """The reads of AlertStream, over a list; `on_read` runs before each catch-up read."""

    def __init__(self, count: int = 0) -> None:
        self.entries = [entry(n) for n in range(1, count + 1)]
        self.on_read: Callable[[], None] = lambda: None
        self._added = asyncio.Event()

    def add(self, *new: Entry) -> None:
        self.entries += new
        self._added.set()

    async def after(self, position: str, count: int) -> list[Entry]:
        self.on_read()
        await asyncio.sleep(0)  # as a real read, it lets others run (and timeouts fire)
        key = position_key(position)
        return [e for e in self.entries if position_key(e.position) > key][:count]

    async def first_position(self) -> str | None:
        return self.entries[0].position if self.entries else None

    async def last_position(self) -> str | None:
        return self.entries[-1].position if self.entries else None

    async def wait_after(self, position: str, block_ms: int, count: int) -> list[Entry]:
        key = position_key(position)
        while True:
            found = [e for e in self.entries if position_key(e.position) > key][:count]
            if found:
                return found
            self._added.clear()
            try:
                await asyncio.wait_for(self._added.wait(), block_ms / 1000)
            except TimeoutError:
                return []


async def collect(
    stream: Stream,
    fanout: Fanout,
    after: str | None,
    count: int,
    filters: Filters | None = None,
    between: Callable[[int], None] = lambda n: None,
) -> list[Item]:
    """The first `count` entries, one by one (and whatever else came first), `between(n)`
    after the n-th; each batch checked against its bounds."""
    items: list[Item | Entry] = []
    got = 0
    heartbeat = 0.05
    flow = follow(stream, fanout, after, filters or Filters(), heartbeat)  # type: ignore[arg-type]
    async with asyncio.timeout(10):
        async for item in flow:
            if not isinstance(item, list):
                items.append(item)
                continue
            assert 0 < len(item) <= BATCH_ENTRIES
            for entry in item:
                items.append(entry)
                got += 1
                between(got)
                if got == count:
                    break
            if got == count:
                break
    await flow.aclose()
    return items


def positions(items: list[Item | Entry]) -> list[int]:
    return [int(i.position.split("-")[0]) for i in items if isinstance(i, Entry)]


async def started(stream: Stream, queue_size: int = 1000) -> Fanout:
    fanout = Fanout(stream, queue_size)  # type: ignore[arg-type]
    await fanout.start()
    await asyncio.sleep(0.01)  # it has read the newest position
    return fanout


async def test_catching_up_then_live_has_no_gap_and_no_double() -> None:
    stream = Stream(1200)  # three pages of catch-up
    fanout = await started(stream)
    reads = 0

    def publish_while_reading() -> None:
        nonlocal reads
        reads += 1
        if reads <= 3:  # new alerts land between the pages, and reach the fan-out
            stream.add(entry(1200 + reads))

    stream.on_read = publish_while_reading

    def publish_live(n: int) -> None:
        if n == 1203 - 2:
            stream.add(entry(1204), entry(1205))

    items = await collect(stream, fanout, "2-0", 1203, between=publish_live)
    await fanout.stop()
    assert positions(items) == list(range(3, 1206))
    assert fanout.clients == 0


async def test_a_client_that_falls_behind_catches_up_then_goes_live_again() -> None:
    stream = Stream(1)
    fanout = await started(stream, queue_size=3)
    reads = 0

    def count() -> None:
        nonlocal reads
        reads += 1

    stream.on_read = count
    reads_when_caught_up = 0

    def burst(n: int) -> None:
        nonlocal reads_when_caught_up
        if n == 1:  # overflows the client's queue while it is not reading
            stream.add(*(entry(k) for k in range(2, 30)))
        if n == 29:
            reads_when_caught_up = reads
            stream.add(entry(30), entry(31))

    items = await collect(stream, fanout, "0", 31, between=burst)
    await fanout.stop()
    assert positions(items) == list(range(1, 32))
    assert reads_when_caught_up >= 2  # the start, and the catch-up after the overflow
    assert reads == reads_when_caught_up  # then live from the fan-out, not polling Redis


async def test_without_a_position_only_new_alerts() -> None:
    stream = Stream(5)
    fanout = await started(stream)
    flow = follow(stream, fanout, None, Filters(), 0.05)  # type: ignore[arg-type]
    first = asyncio.ensure_future(anext(flow))
    await asyncio.sleep(0.02)  # it is waiting for new ones
    stream.add(entry(6), entry(7))
    items: list[Item | Entry] = []
    item = await first
    async with asyncio.timeout(5):
        while True:
            items += item if isinstance(item, list) else [item]
            if len(positions(items)) >= 2:
                break
            item = await anext(flow)
    await flow.aclose()
    await fanout.stop()
    assert positions(items) == [6, 7]


async def test_a_trimmed_position_is_said_first_and_zero_is_everything() -> None:
    stream = Stream(10)
    stream.entries = stream.entries[4:]  # 1..4 trimmed
    fanout = await started(stream)
    items = await collect(stream, fanout, "2-0", 6)
    assert items[0] == Truncated("5-0") and positions(items) == list(range(5, 11))
    items = await collect(stream, fanout, "0", 6)
    assert not [i for i in items if isinstance(i, Truncated)]
    items = await collect(stream, fanout, "5-0", 5)
    assert not [i for i in items if isinstance(i, Truncated)]
    await fanout.stop()


async def test_filters_leave_out_and_heartbeats_go_on() -> None:
    stream = Stream()
    stream.add(entry(1, "BIDU"), entry(2, "BABA"), entry(3, "BIDU"))
    fanout = await started(stream)
    filters = Filters(instruments=["BIDU"])

    def later(n: int) -> None:
        if n == 2:
            stream.add(entry(4, "BABA"), entry(5, "BIDU"))

    items = await collect(stream, fanout, "0", 3, filters, between=later)
    assert positions(items) == [1, 3, 5]
    quiet = follow(stream, fanout, "5-0", filters, 0.02)  # type: ignore[arg-type]
    async with asyncio.timeout(5):
        beats = [await anext(quiet) for _ in range(3)]
    await quiet.aclose()
    await fanout.stop()
    assert beats == [Heartbeat()] * 3
    assert fanout.clients == 0


async def test_a_burst_comes_in_bounded_batches_in_order() -> None:
    stream = Stream(1)
    fanout = await started(stream)
    flow = follow(stream, fanout, "1-0", Filters(), 5)  # type: ignore[arg-type]
    waiting = asyncio.ensure_future(anext(flow))
    await asyncio.sleep(0.02)  # live, waiting on the fan-out
    stream.add(*(entry(n) for n in range(2, 202)))  # one read, queued all at once
    batches: list[list[Entry]] = []
    async with asyncio.timeout(5):
        item = await waiting
        while True:
            assert isinstance(item, list)
            batches.append(item)
            if sum(map(len, batches)) >= 200:
                break
            item = await anext(flow)
    await flow.aclose()
    await fanout.stop()
    assert [len(b) for b in batches] == [BATCH_ENTRIES] * 3 + [8]  # not one write each
    assert positions([e for b in batches for e in b]) == list(range(2, 202))


class SwallowingStream(Stream):
    """A blocking read that, as redis-py's sometimes does, eats the cancel of its task and
    returns empty when its block ends."""

    async def wait_after(self, position: str, block_ms: int, count: int) -> list[Entry]:
        try:
            await asyncio.sleep(block_ms / 1000)
        except asyncio.CancelledError:
            await asyncio.sleep(block_ms / 1000)
        return []


async def test_the_fanout_stops_even_when_its_read_swallows_the_cancel() -> None:
    fanout = Fanout(SwallowingStream())  # type: ignore[arg-type]
    await fanout.start()
    await asyncio.sleep(0.01)
    stopping = asyncio.create_task(fanout.stop())
    done, _ = await asyncio.wait({stopping}, timeout=3)  # one block of 1 s, not for ever
    assert done and not fanout.running
