"""The lag watch against fakes of the consumer and of Kafka's offsets: who is behind."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from alerts.core.decode import Incoming
from alerts.delivery.errors import DeliveryError
from streams.lag import LagWatch


class FakeOffsets:
    """What Kafka says of partitions not read yet; counts the questions."""

    def __init__(self, unread: dict[int, bool]) -> None:
        self.said = unread
        self.asked: list[list[int]] = []
        self.down = False

    def unread(self, topic: str, partitions: Sequence[int]) -> dict[int, bool]:
        if self.down:
            raise DeliveryError("no broker")
        self.asked.append(list(partitions))
        return {p: self.said[p] for p in partitions}


def batch(*offsets: tuple[int, int]) -> list[Incoming]:
    return [Incoming(partition, offset, b"{}") for partition, offset in offsets]


async def test_a_partition_read_is_behind_until_its_last_offset_reaches_the_high_watermark() -> (
    None
):
    highs = {0: 10, 1: 3}
    watch = LagWatch("ticks", None, highs.get)
    assert await watch.behind(batch((0, 4), (1, 2), (0, 5)), [0, 1]) == {0: True, 1: False}
    assert await watch.behind(batch((0, 9)), [0, 1]) == {0: False}
    highs[0] = 12  # the consumer saw more arrive
    assert await watch.behind(batch((0, 10)), [0, 1]) == {0: True}


async def test_an_unknown_high_watermark_says_nothing() -> None:
    watch = LagWatch("ticks", None, lambda p: None)
    assert await watch.behind(batch((0, 4)), [0]) == {}


async def test_an_owned_partition_not_read_yet_is_behind_when_kafka_says_it_holds_messages() -> (
    None
):
    fake: Any = FakeOffsets({1: True, 2: False})
    highs = {0: 5, 2: 0}
    watch = LagWatch("ticks", fake, highs.get)
    # Idle partition 2 is told too: it may undo an earlier owner's word that it was behind.
    assert await watch.behind(batch((0, 4)), [0, 1, 2]) == {0: False, 1: True, 2: False}
    assert fake.asked == [[1, 2]]
    # Told once (the index agent keeps it): partition 1 stays behind until read; 2 is
    # asked again only when the consumer sees its high watermark move.
    assert await watch.behind(batch((0, 4)), [0, 1, 2]) == {0: False}
    assert fake.asked == [[1, 2]]
    highs[2], fake.said[2] = 4, True
    assert await watch.behind(batch((0, 4)), [0, 1, 2]) == {0: False, 2: True}
    assert fake.asked == [[1, 2], [2]]
    # Read at last: its own batches speak for it from now on.
    highs[1] = 8
    assert await watch.behind(batch((1, 7)), [0, 1, 2]) == {1: False}


async def test_kafka_out_of_reach_leaves_the_question_for_the_next_batch() -> None:
    fake: Any = FakeOffsets({1: True})
    fake.down = True
    watch = LagWatch("ticks", fake, {0: 1}.get)
    assert await watch.behind(batch((0, 0)), [0, 1]) == {0: False}
    fake.down = False
    assert await watch.behind(batch((0, 0)), [0, 1]) == {0: False, 1: True}


async def test_a_rebalance_forgets_what_was_read() -> None:
    fake: Any = FakeOffsets({0: True})
    watch = LagWatch("ticks", fake, {0: 5}.get)
    assert await watch.behind(batch((0, 4)), [0]) == {0: False}
    watch.forget()
    assert await watch.behind([], [0]) == {0: True}
