"""Whether each ticks partition's reader is behind, for the index agent (see agents.py).

The index agent waits for a partition that is behind however far, and rolls over only
one whose reader has nothing left to read (Flink's idleness, Kafka Streams'
max.task.idle). A partition read in a batch is behind when the batch's last offset + 1
is below its high watermark as the consumer last saw it. A partition the worker owns but
has not read from yet is asked of Kafka, and the answer told once: a fetch may run one
partition far ahead before another's first batch arrives (a partition never heard from
is rolled over), and after a rebalance an idle partition must undo its last owner's
word that it was behind.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Collection, Sequence

import faust
from faust.types import TP

from alerts.core.decode import Incoming
from alerts.delivery.errors import DeliveryError
from alerts.delivery.kafka_offsets import GroupOffsets

log = logging.getLogger(__name__)

Highwater = Callable[[int], int | None]


class LagWatch:
    """Each owned partition's last offset read, and what Kafka said of those not read."""

    def __init__(self, topic: str, offsets: GroupOffsets | None, highwater: Highwater) -> None:
        self.topic = topic
        self._offsets = offsets
        self._highwater = highwater
        self._done: dict[int, int] = {}  # last offset processed, since the assignment
        # Of partitions not read yet: whether Kafka said they hold unread messages, and
        # the high watermark the consumer knew then (a new one is worth asking again).
        self._asked: dict[int, tuple[bool, int | None]] = {}

    def forget(self) -> None:
        """After a rebalance: the owned partitions may change."""
        self._done.clear()
        self._asked.clear()

    async def behind(self, batch: Sequence[Incoming], owned: Collection[int]) -> dict[int, bool]:
        """For the batch's partitions, whether their reader has more to read after it;
        for owned partitions not read yet, what Kafka says, when newly asked."""
        found: dict[int, bool] = {}
        for message in batch:
            p = message.partition
            self._done[p] = max(self._done.get(p, -1), message.offset)
        for p in {m.partition for m in batch}:
            high = self._highwater(p)
            if high is not None:
                found[p] = self._done[p] + 1 < high
        found.update(await self._unread(sorted(set(owned) - self._done.keys())))
        return found

    async def _unread(self, partitions: list[int]) -> dict[int, bool]:
        """Kafka's answers for the partitions not asked yet, or idle when last asked and
        since seen to grow: whether each holds messages the group has not read."""
        ask = [
            p
            for p in partitions
            if p not in self._asked
            or (not self._asked[p][0] and self._asked[p][1] != self._highwater(p))
        ]
        if ask and self._offsets is not None:
            try:
                said = await asyncio.to_thread(self._offsets.unread, self.topic, ask)
            except DeliveryError as error:  # asked again with the next batch
                log.warning("%s: cannot learn which partitions are behind: %s", self.topic, error)
                said = {}
            for p, has in said.items():
                self._asked[p] = (has, self._highwater(p))
            return said
        return {}


def consumer_highwater(app: faust.App, topic: str) -> Callable[[int], int | None]:
    """The Faust consumer's high watermark of a partition of `topic`, None if unknown
    (not fetched yet, or no longer assigned)."""

    def highwater(partition: int) -> int | None:
        try:
            high = app.consumer.highwater(TP(topic, partition))
        except (AssertionError, KeyError, AttributeError):  # aiokafka asserts assignment
            return None
        return high if isinstance(high, int) else None

    return highwater
