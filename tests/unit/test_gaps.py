"""The gap watch against a fake of Kafka's offsets: which jumps are losses."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from alerts.core.decode import Incoming
from streams.gaps import Gap, GapWatch


class FakeOffsets:
    def __init__(self, committed: dict[int, int | None], starts: dict[int, int]) -> None:
        self._committed = committed
        self.starts = starts

    def committed(self, topic: str, partitions: Sequence[int]) -> dict[int, int | None]:
        return {p: self._committed.get(p) for p in partitions}

    def log_start(self, topic: str, partition: int) -> int:
        return self.starts.get(partition, 0)


def batch(*offsets: tuple[int, int]) -> list[Incoming]:
    return [Incoming(partition, offset, b"{}") for partition, offset in offsets]


async def test_a_first_read_beyond_the_committed_offset_below_the_log_start_is_a_gap() -> None:
    fake: Any = FakeOffsets({0: 10}, {0: 25})
    watch = GapWatch("ticks", fake)
    assert await watch.check(batch((0, 25), (0, 26))) == [Gap("ticks", 0, 10, 25)]
    assert (await watch.check(batch((0, 27))), Gap("ticks", 0, 10, 25).count) == ([], 15)


async def test_a_jump_over_offsets_still_kept_is_no_gap() -> None:
    fake: Any = FakeOffsets({0: 10}, {0: 0})  # transaction markers, compaction
    assert await GapWatch("ticks", fake).check(batch((0, 12))) == []


async def test_falling_behind_the_log_start_while_reading_is_a_gap() -> None:
    offsets = FakeOffsets({}, {})
    fake: Any = offsets
    watch = GapWatch("ticks", fake)
    assert await watch.check(batch((1, 0), (1, 1))) == []  # a new group: no position yet
    offsets.starts[1] = 500
    assert await watch.check(batch((1, 500))) == [Gap("ticks", 1, 2, 500)]


async def test_redeliveries_and_a_forgotten_partition_are_no_gap() -> None:
    fake: Any = FakeOffsets({0: 5}, {0: 100})
    watch = GapWatch("ticks", fake)
    assert await watch.check(batch((0, 5), (0, 6), (0, 5))) == []
    watch.forget()
    assert await watch.check(batch((0, 5))) == []
