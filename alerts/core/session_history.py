"""Closed sessions of one instrument: closes and daily changes as record stacks, YTD base."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date

from alerts.core.record_stacks import RecordStack


def _stack(direction: str) -> RecordStack:
    return RecordStack(direction)  # type: ignore[arg-type]


@dataclass(frozen=True)
class History:
    """What the rules need of an instrument's past, bounded in size.

    `closes_*` answer "highest (lowest) since when?" for a price; `gains`/`losses`
    answer "strongest daily gain (loss) since when?" for a change in %.
    """

    closes_high: RecordStack = field(default_factory=lambda: _stack("high"))
    closes_low: RecordStack = field(default_factory=lambda: _stack("low"))
    gains: RecordStack = field(default_factory=lambda: _stack("high"))
    losses: RecordStack = field(default_factory=lambda: _stack("low"))
    last_session: date | None = None
    last_close: float | None = None
    # The YTD base of last_session's year: the last close of an earlier year.
    year_base: float | None = None

    def ytd_base(self, session: date) -> float | None:
        """The last close of a calendar year before `session`'s (None without one)."""
        if self.last_session is None:
            return None
        if self.last_session.year < session.year:
            return self.last_close
        return self.year_base

    def close_session(self, session: date, close: float) -> History:
        """This history with one more closed session appended."""
        if self.last_session is not None and session <= self.last_session:
            raise ValueError(f"session {session} is not after {self.last_session}")
        gains, losses = self.gains, self.losses
        if self.last_close is not None:
            change = (close / self.last_close - 1.0) * 100.0
            gains, losses = gains.push(session, change), losses.push(session, change)
        return replace(
            self,
            closes_high=self.closes_high.push(session, close),
            closes_low=self.closes_low.push(session, close),
            gains=gains,
            losses=losses,
            last_session=session,
            last_close=close,
            year_base=self.ytd_base(session),
        )
