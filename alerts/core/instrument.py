"""Market state of one instrument and how a tick or a session close moves it (pure)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import date

from alerts.core.evaluation import Crossing, Observation, evaluate
from alerts.core.session_history import History
from alerts.core.sessions import ExchangeCalendar, Session
from schemas.alerts import Alert
from schemas.attribution import IndexSnapshot
from schemas.instruments import InstrumentKind
from schemas.rules import Rule
from schemas.ticks import Tick


@dataclass(frozen=True)
class InstrumentState:
    """Everything tickwatch remembers of one instrument between ticks."""

    symbol: str
    kind: InstrumentKind = "stock"
    session: date | None = None  # the latest session that had a tick
    closed: bool = False  # that session has closed and entered the history
    open: float | None = None
    high: float | None = None
    low: float | None = None
    last: float | None = None
    volume: float = 0.0
    fired: frozenset[str] = frozenset()  # rungs fired this session
    fired_year: frozenset[str] = frozenset()  # yearly rungs (YTD) fired this year
    last_seq: int | None = None
    # Kafka partition -> position (offset, index in a batch) of the last tick applied:
    # a redelivery is a no-op.
    offsets: dict[int, int] = field(default_factory=dict)
    history: History = field(default_factory=History)
    snapshot: IndexSnapshot | None = None  # an index's latest attribution and coverage

    @property
    def previous_close(self) -> float | None:
        return self.history.last_close


@dataclass(frozen=True)
class Step:
    """The outcome of a tick or a close: the new state, its alerts, or why nothing."""

    state: InstrumentState
    alerts: list[Alert]
    ignored: str | None = None


def close_session(
    state: InstrumentState, calendar: ExchangeCalendar, rules: Sequence[Rule]
) -> Step:
    """Close the current session: evaluate close-stage rules, then add it to history."""
    if state.session is None or state.closed or state.last is None:
        return Step(state, [])
    if state.history.last_session is not None and state.session <= state.history.last_session:
        # Seeded history already holds this session: nothing left to close.
        return Step(replace(state, closed=True), [])
    day, close = state.session, state.last
    session = calendar.session(day)
    alerts: list[Alert] = []
    if session is not None and _may_alert(state.snapshot):
        seen = Observation(
            state.symbol,
            state.kind,
            day,
            "close",
            session.close,
            close,
            state.history,
            state.snapshot,
        )
        state, alerts = _fire(state, evaluate(rules, seen, state.fired, state.fired_year))
    history = state.history.close_session(day, close)
    return Step(replace(state, closed=True, history=history), alerts)


def apply_tick(
    state: InstrumentState,
    tick: Tick,
    session: Session,
    calendar: ExchangeCalendar,
    rules: Sequence[Rule],
    at: tuple[int, int] | None = None,
) -> Step:
    """Move the state by one tick of `session` and evaluate intraday rules on the result.

    `at` (partition, position) is recorded as applied, so a redelivery is a no-op.
    """
    if tick.seq is not None and state.last_seq is not None and tick.seq <= state.last_seq:
        return Step(state, [], ignored="duplicate_seq")
    day = session.day
    if state.session is not None and (
        day < state.session or (day == state.session and state.closed)
    ):
        return Step(state, [], ignored="late_tick")
    closing: list[Alert] = []
    # Every intraday rule fires at a price at or beyond a level fixed for the session, so
    # a price inside the range already evaluated this session fires nothing new. An
    # index's range may include levels that went unevaluated (too few constituents), so
    # its ticks are always evaluated.
    within_range = (
        state.snapshot is None
        and tick.index is None
        and state.session == day
        and state.low is not None
        and state.high is not None
        and state.low <= tick.price <= state.high
    )
    if state.session is None or day > state.session:
        closed = close_session(state, calendar, rules)
        state, closing = closed.state, closed.alerts
        if state.history.last_session is not None and day <= state.history.last_session:
            return Step(state, closing, ignored="late_tick")
        new_year = state.session is None or state.session.year != day.year
        state = replace(
            state,
            session=day,
            closed=False,
            open=tick.price,
            high=tick.price,
            low=tick.price,
            volume=0.0,
            fired=frozenset(),
            fired_year=frozenset() if new_year else state.fired_year,
        )
    assert state.high is not None and state.low is not None
    state = replace(
        state,
        last=tick.price,
        high=max(state.high, tick.price),
        low=min(state.low, tick.price),
        volume=state.volume + (tick.volume or 0.0),
        last_seq=tick.seq if tick.seq is not None else state.last_seq,
        snapshot=tick.index if tick.index is not None else state.snapshot,
        offsets=state.offsets if at is None else {**state.offsets, at[0]: at[1]},
    )
    if within_range or not _may_alert(state.snapshot):
        return Step(state, closing)  # nothing new, or an index level built on too few prices
    seen = Observation(
        state.symbol,
        state.kind,
        day,
        "intraday",
        tick.ts,
        tick.price,
        state.history,
        state.snapshot,
    )
    state, alerts = _fire(state, evaluate(rules, seen, state.fired, state.fired_year))
    return Step(state, closing + alerts)


def _may_alert(snapshot: IndexSnapshot | None) -> bool:
    return snapshot is None or snapshot.complete


def _fire(
    state: InstrumentState, crossings: Sequence[Crossing]
) -> tuple[InstrumentState, list[Alert]]:
    if not crossings:
        return state, []
    daily = {c.key for c in crossings if not c.yearly}
    yearly = {c.key for c in crossings if c.yearly}
    state = replace(state, fired=state.fired | daily, fired_year=state.fired_year | yearly)
    return state, [c.alert for c in crossings]


@dataclass(frozen=True)
class Seeded:
    state: InstrumentState
    applied: int
    skipped: int


def seed_closes(state: InstrumentState, closes: Sequence[tuple[date, float]]) -> Seeded:
    """Append daily closes (ascending dates) the history does not have yet.

    A close at or before the last closed session, or at or after the live session,
    is skipped: seeding twice changes nothing, and live data wins over a file.
    """
    history, applied, skipped = state.history, 0, 0
    for day, close in closes:
        if (history.last_session is not None and day <= history.last_session) or (
            state.session is not None and day >= state.session
        ):
            skipped += 1
        else:
            history = history.close_session(day, close)
            applied += 1
    return Seeded(replace(state, history=history), applied, skipped)
