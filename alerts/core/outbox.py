"""Outbox entries, as plain data: each alert waits in its instrument's outbox until Kafka has it.

An entry is committed with the state that raised its alert, published, then removed;
its bytes in Redis are `"p:o,p:o|" + alert json`, the alerts topic's marks (partition:
offset) when it was written. Whenever the entry gets published, it lands beyond those
offsets: recovery reads the topic from there to learn whether a dead worker had
published it already. Workers of every version read and write this same format.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    """One alert in an outbox: the marks it was written at, its JSON, and both as stored."""

    marks: Mapping[int, int]
    alert_json: bytes
    encoded: bytes  # what Redis holds, and what removing the entry must match exactly

    @classmethod
    def new(cls, alert_json: bytes, marks: Mapping[int, int]) -> OutboxEntry:
        header = ",".join(f"{p}:{o}" for p, o in sorted(marks.items()))
        return cls(marks, alert_json, header.encode() + b"|" + alert_json)

    @classmethod
    def decode(cls, encoded: bytes) -> OutboxEntry:
        """An entry as read back from Redis (written by this worker or another)."""
        header, _, alert_json = encoded.partition(b"|")
        marks = {}
        for item in header.decode().split(","):
            if item:
                partition, _, offset = item.partition(":")
                marks[int(partition)] = int(offset)
        return cls(marks, alert_json, encoded)


def first_marks(entries: Iterable[OutboxEntry]) -> dict[int, int]:
    """Where recovery reads the alerts topic from: per partition, the lowest mark any
    entry carries (no partition at all: entries written before marks were known)."""
    starts: dict[int, int] = {}
    for entry in entries:
        for partition, offset in entry.marks.items():
            starts[partition] = min(starts.get(partition, offset), offset)
    return starts
