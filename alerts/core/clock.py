"""Event time per partition and exchange: when the sessions of a partition have ended."""

from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass
class SessionClock:
    """Tracks, per (partition, exchange), the latest event time and the next deadline.

    Only ticks of the same partition move its clock: their order is the log's order,
    so a replay closes sessions at exactly the same point as the live run did.
    """

    _now: dict[tuple[int, str], int] = field(default_factory=dict)
    _next_deadline: dict[tuple[int, str], float] = field(default_factory=dict)

    def now(self, partition: int, exchange: str) -> int:
        return self._now.get((partition, exchange), -1)

    def advance(self, partition: int, exchange: str, ts_ms: int) -> bool:
        """Move the clock; True when it has passed the next known deadline."""
        key = (partition, exchange)
        if ts_ms > self._now.get(key, -1):
            self._now[key] = ts_ms
        return self._now[key] > self._next_deadline.get(key, math.inf)

    def expect(self, partition: int, exchange: str, deadline_ms: int) -> None:
        """An open session on this partition ends at deadline_ms."""
        key = (partition, exchange)
        self._next_deadline[key] = min(self._next_deadline.get(key, math.inf), deadline_ms)

    def rearm(self, partition: int, exchange: str, deadline_ms: float) -> None:
        """After closing what had ended: the earliest deadline still open (inf: none)."""
        self._next_deadline[(partition, exchange)] = deadline_ms

    def latest(self) -> dict[str, int]:
        """Each exchange's latest event time (epoch ms) over every partition."""
        found: dict[str, int] = {}
        for (_, exchange), ts_ms in self._now.items():
            if ts_ms > found.get(exchange, -1):
                found[exchange] = ts_ms
        return found

    def forget(self) -> None:
        self._now.clear()
        self._next_deadline.clear()

    def copy(self) -> SessionClock:
        """An independent clock at the same point: a batch moves a copy, which the engine
        keeps only once the batch is committed."""
        return SessionClock(dict(self._now), dict(self._next_deadline))
