"""Input offsets that vanished before the worker read them, found as each batch arrives.

Kafka drops old messages (retention, deleted records, a truncated topic, the embedded
broker's small log). A consumer whose position falls below a partition's log start is
moved to the oldest message kept and carries on; without this watch the skipped
offsets would pass without a word.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from alerts.core.decode import Incoming
from alerts.delivery.errors import DeliveryError
from alerts.delivery.kafka_offsets import GroupOffsets

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Gap:
    """Offsets [first, end) of a partition that were gone before they were read."""

    topic: str
    partition: int
    first: int
    end: int

    @property
    def count(self) -> int:
        return self.end - self.first

    def describe(self) -> str:
        return (
            f"{self.topic}[{self.partition}]: offsets {self.first} to {self.end - 1} "
            f"({self.count} messages) were deleted by Kafka before this worker read them "
            "(retention, deleted records or a truncated topic); they are lost, replay them "
            "from their source"
        )


class GapWatch:
    """Knows the next offset each partition should deliver; a jump past it is a gap when
    the partition's log now starts beyond the expected offset. (A jump over offsets
    still kept is not: transaction markers and compaction leave such holes.)"""

    def __init__(self, topic: str, offsets: GroupOffsets | None) -> None:
        self.topic = topic
        self._offsets = offsets
        self._next: dict[int, int] = {}
        self._known: set[int] = set()

    def forget(self) -> None:
        """After a rebalance: positions start again from the group's committed offsets."""
        self._next.clear()
        self._known.clear()

    async def check(self, batch: Sequence[Incoming]) -> list[Gap]:
        """The gaps in front of this batch's messages; logs each one as an error."""
        if self._offsets is None:
            return []
        try:
            return await self._check(batch)
        except DeliveryError as error:  # the batch goes on; its gaps cannot be known
            log.warning("%s: cannot look for skipped offsets now: %s", self.topic, error)
            return []

    async def _check(self, batch: Sequence[Incoming]) -> list[Gap]:
        assert self._offsets is not None
        new = sorted({m.partition for m in batch} - self._known)
        if new:
            committed = await asyncio.to_thread(self._offsets.committed, self.topic, new)
            self._next.update({p: c for p, c in committed.items() if c is not None})
            self._known.update(new)
        gaps = []
        for message in batch:
            expected = self._next.get(message.partition)
            if expected is not None and message.offset > expected:
                self._next[message.partition] = message.offset + 1
                gap = await self._gap(message.partition, expected, message.offset)
                if gap is not None:
                    log.error("%s", gap.describe())
                    gaps.append(gap)
            elif expected is None or message.offset == expected:
                self._next[message.partition] = message.offset + 1
        return gaps

    async def _gap(self, partition: int, expected: int, seen: int) -> Gap | None:
        assert self._offsets is not None
        start = await asyncio.to_thread(self._offsets.log_start, self.topic, partition)
        if start <= expected:
            return None
        return Gap(self.topic, partition, expected, min(seen, start))
