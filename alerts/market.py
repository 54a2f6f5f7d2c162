"""Market state of one instrument and how one tick moves it: the pure core of the flow."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date
from typing import Any

from alerts.rules import DailyMoveRule, Observation, evaluate
from schemas.alerts import Alert
from schemas.ticks import Tick


@dataclass(frozen=True)
class InstrumentState:
    """Everything tickwatch remembers of one instrument between ticks."""

    symbol: str
    session: date | None = None
    open: float | None = None
    high: float | None = None
    low: float | None = None
    last: float | None = None
    volume: float = 0.0
    previous_close: float | None = None
    fired: frozenset[str] = frozenset()
    last_seq: int | None = None
    # Kafka partition -> offset of the last tick applied: a redelivered tick is a no-op.
    offsets: dict[int, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "symbol": self.symbol,
            "session": self.session.isoformat() if self.session else None,
            "open": self.open,
            "high": self.high,
            "low": self.low,
            "last": self.last,
            "volume": self.volume,
            "previous_close": self.previous_close,
            "fired": sorted(self.fired),
            "last_seq": self.last_seq,
            "offsets": {str(p): o for p, o in self.offsets.items()},
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> InstrumentState:
        session = data.get("session")
        return cls(
            symbol=data["symbol"],
            session=date.fromisoformat(session) if session else None,
            open=data.get("open"),
            high=data.get("high"),
            low=data.get("low"),
            last=data.get("last"),
            volume=data.get("volume", 0.0),
            previous_close=data.get("previous_close"),
            fired=frozenset(data.get("fired", ())),
            last_seq=data.get("last_seq"),
            offsets={int(p): int(o) for p, o in data.get("offsets", {}).items()},
        )


@dataclass(frozen=True)
class Step:
    """The outcome of one tick: the new state, its alerts, or why it was ignored."""

    state: InstrumentState
    alerts: list[Alert]
    ignored: str | None = None


def session_of(tick: Tick) -> date:
    """The calendar day of the tick in UTC (exchange calendars come with issue 3)."""
    return tick.ts.astimezone(UTC).date()


def apply_tick(state: InstrumentState, tick: Tick, rules: Sequence[DailyMoveRule]) -> Step:
    """Move the state by one tick and evaluate the rules on the result."""
    if tick.seq is not None and state.last_seq is not None and tick.seq <= state.last_seq:
        return Step(state, [], ignored="duplicate_seq")
    session = session_of(tick)
    if state.session is not None and session < state.session:
        return Step(state, [], ignored="late_tick")
    if state.session is None or session > state.session:
        state = replace(
            state,
            session=session,
            previous_close=state.last if state.session is not None else state.previous_close,
            open=tick.price,
            high=tick.price,
            low=tick.price,
            volume=0.0,
            fired=frozenset(),
        )
    assert state.high is not None and state.low is not None
    state = replace(
        state,
        last=tick.price,
        high=max(state.high, tick.price),
        low=min(state.low, tick.price),
        volume=state.volume + (tick.volume or 0.0),
        last_seq=tick.seq if tick.seq is not None else state.last_seq,
    )
    seen = Observation(tick.symbol, session, tick.ts, tick.price, state.previous_close)
    crossings = evaluate(rules, seen, state.fired)
    if crossings:
        state = replace(state, fired=state.fired | {key for key, _ in crossings})
    return Step(state, [alert for _, alert in crossings])
