"""The index agent's core: an index's level through its sessions, and when to publish it.

Pure: constituent prices, watermarks and session ends move an IndexState and may emit
index ticks (and, after the closing level, a session_end for the index) for the ticks
topic, where the index is an instrument like any other.

Prices come from every ticks partition, each at its own pace. They wait in a buffer
until every partition's watermark has passed them, and are then applied in event-time
order, so the level at any moment (and each close) is the same however the partitions
were interleaved: a replay gives the live run's index ticks. A partition whose reader
has nothing left to read (idle) holds the others back at most rollover_wait_s of event
time; one whose reader said it has more to read (behind) holds them back until it
catches up, however far.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime

from alerts.core.index_level import IndexLevel, attribution, weights
from alerts.core.sessions import ExchangeCalendar
from schemas.attribution import Contributor, IndexSnapshot
from schemas.constituents import (
    ConstituentPrice,
    ConstituentPrices,
    ConstituentSessionEnd,
    ConstituentWatermark,
)
from schemas.indices import IndexSpec
from schemas.ticks import SessionEnd, Tick

_TOP = 5
_STALE_LISTED = 10
# ts_ms, source partition, arrival, symbol, price, position in the source partition
Pending = tuple[int, int, int, str, float, int]

Emitted = Tick | SessionEnd


@dataclass(frozen=True)
class IndexState:
    """Everything the index agent remembers of one index between messages."""

    symbol: str
    prices: dict[str, float] = field(default_factory=dict)  # latest known, by constituent
    level: IndexLevel | None = None  # None until every constituent has a price
    composition_day: date | None = None  # the day whose constituents `level` weighs
    session: date | None = None
    closed: bool = False
    previous_closes: dict[str, float] = field(default_factory=dict)
    last_ts: dict[str, int] = field(default_factory=dict)  # ms, by constituent
    # Position (in its ticks partition) of each constituent's last price: a price at or
    # before it is a replay after an ingest crash, and must not set the price back.
    last_position: dict[str, int] = field(default_factory=dict)
    reported: frozenset[str] = frozenset()  # constituents that ticked this session
    watermarks: dict[int, int] = field(default_factory=dict)  # ms, by ticks partition
    pending: tuple[Pending, ...] = ()  # prices not yet passed by every watermark, sorted
    arrivals: int = 0  # prices received, to order equal timestamps of one partition
    next_emit_ms: int = 0
    seq: int = 0
    offsets: dict[int, int] = field(default_factory=dict)  # constituents topic
    # Ticks partitions whose last word said their reader had more to read. Stored only
    # when not empty, so that a state without it is the bytes written before it existed.
    behind: frozenset[int] = field(default=frozenset(), metadata={"stored": "when set"})


def on_price(
    state: IndexState,
    spec: IndexSpec,
    calendar: ExchangeCalendar,
    update: ConstituentPrice,
    partitions: int,
) -> tuple[IndexState, list[Emitted]]:
    """One constituent price: a batch of one, with no position (never taken as a replay)."""
    ts_ms = int(update.ts.timestamp() * 1000)
    batch = ConstituentPrices(
        index=update.index,
        source_partition=update.source_partition,
        prices=[(update.symbol, update.price, ts_ms, -1)],
        watermark_ms=ts_ms,
        behind=update.source_partition in state.behind,  # a lone price does not say
    )
    return on_prices(state, spec, calendar, batch, partitions)


def on_prices(
    state: IndexState,
    spec: IndexSpec,
    calendar: ExchangeCalendar,
    batch: ConstituentPrices,
    partitions: int,
) -> tuple[IndexState, list[Emitted]]:
    """A batch of one partition's prices, then its watermark: buffer, then release once."""
    arrival = state.arrivals
    items = [
        (ts_ms, batch.source_partition, arrival + n, symbol, price, position)
        for n, (symbol, price, ts_ms, position) in enumerate(batch.prices)
    ]
    newest = max([batch.watermark_ms, *(item[0] for item in items)])
    state = replace(
        state,
        pending=tuple(sorted((*state.pending, *items))),
        arrivals=arrival + len(items),
        watermarks=_raised(state.watermarks, batch.source_partition, newest),
        behind=_flagged(state.behind, batch.source_partition, batch.behind),
    )
    return _release(state, spec, calendar, partitions)


def on_watermark(
    state: IndexState,
    spec: IndexSpec,
    calendar: ExchangeCalendar,
    mark: ConstituentWatermark,
    partitions: int,
) -> tuple[IndexState, list[Emitted]]:
    """A ticks partition has reached this event time: nothing earlier will come from it."""
    batch = ConstituentPrices(
        index=mark.index, source_partition=mark.source_partition, prices=[],
        watermark_ms=mark.ts_ms, behind=mark.behind,
    )  # fmt: skip
    return on_prices(state, spec, calendar, batch, partitions)


def on_session_end(
    state: IndexState,
    spec: IndexSpec,
    calendar: ExchangeCalendar,
    end: ConstituentSessionEnd,
    partitions: int,
) -> tuple[IndexState, list[Emitted]]:
    """A ticks partition has seen the session end: its watermark is past the close."""
    session = calendar.session(end.session)
    if session is None:
        return state, []
    passed = calendar.accepts_until(session) + 1
    state = replace(
        state,
        watermarks=_raised(state.watermarks, end.source_partition, passed),
        behind=_flagged(state.behind, end.source_partition, end.behind),
    )
    return _release(state, spec, calendar, partitions)


def _raised(marks: dict[int, int], partition: int, ts_ms: int) -> dict[int, int]:
    if marks.get(partition, -1) >= ts_ms:
        return marks
    return {**marks, partition: ts_ms}


def _flagged(behind: frozenset[int], partition: int, is_behind: bool) -> frozenset[int]:
    if (partition in behind) == is_behind:
        return behind
    return behind | {partition} if is_behind else behind - {partition}


def _release(
    state: IndexState, spec: IndexSpec, calendar: ExchangeCalendar, partitions: int
) -> tuple[IndexState, list[Emitted]]:
    """Apply, in event-time order, the prices every partition's watermark has passed."""
    marks = [state.watermarks.get(p, -1) for p in range(partitions)]
    # A partition that is idle (its reader caught up) or never heard from may lag at
    # most rollover_wait_s; one that is behind holds the others back however far, or
    # its late prices would miss a close (a replay's fetch may run a partition ahead).
    floor = max(marks) - int(spec.rollover_wait_s * 1000)
    low = min(m if p in state.behind else max(m, floor) for p, m in enumerate(marks))
    emitted: list[Emitted] = []
    cut = bisect_right([item[0] for item in state.pending], low)
    released, state = state.pending[:cut], replace(state, pending=state.pending[cut:])
    for ts_ms, source, _, symbol, price, position in released:
        if 0 <= position <= state.last_position.get(symbol, -1):
            continue  # already applied before the ingest worker restarted
        state, more = _apply(state, spec, calendar, symbol, price, ts_ms, source)
        if position >= 0:
            state = replace(state, last_position={**state.last_position, symbol: position})
        emitted += more
    if state.session is not None and not state.closed:
        session = calendar.session(state.session)
        if session is not None and low > calendar.accepts_until(session):
            state, more = close(state, spec, calendar)
            emitted += more
    return state, emitted


def _apply(
    state: IndexState,
    spec: IndexSpec,
    calendar: ExchangeCalendar,
    symbol: str,
    price: float,
    ts_ms: int,
    source: int,
) -> tuple[IndexState, list[Emitted]]:
    session = calendar.session_at(ts_ms)
    if session is None:
        return state, []
    emitted: list[Emitted] = []
    if state.session is not None and (
        session.day < state.session or (session.day == state.session and state.closed)
    ):
        return state, []  # late for a session this index has already closed
    if state.session is None or session.day > state.session:
        state, emitted = close(state, spec, calendar)
        state = start_session(state, spec, session.day)
    level = state.level
    if level is not None:
        level = level.with_price(symbol, price)
    state = replace(
        state,
        prices={**state.prices, symbol: price},
        level=level,
        reported=state.reported | {symbol},
        last_ts={**state.last_ts, symbol: ts_ms},
    )
    state = _start_level(state, spec) if state.level is None else _rebalance_if_due(state, spec)
    if state.level is not None and ts_ms >= state.next_emit_ms:
        interval_ms = int(spec.publish_interval_s * 1000)
        state = replace(state, next_emit_ms=ts_ms + interval_ms, seq=state.seq + 1)
        emitted.append(_tick(state, spec, ts_ms))
    return state, emitted


def close(
    state: IndexState, spec: IndexSpec, calendar: ExchangeCalendar
) -> tuple[IndexState, list[Emitted]]:
    """The closing level at the session's close time, then the index's session_end."""
    day = state.session
    if day is None or state.closed:
        return state, []
    state = replace(state, closed=True)
    session = calendar.session(day)
    if state.level is None or session is None:
        return state, []
    state = replace(state, seq=state.seq + 1)
    end = SessionEnd(type="session_end", exchange=spec.exchange, session=day, symbol=spec.symbol)
    return state, [_tick(state, spec, session.close_ms), end]


def start_session(state: IndexState, spec: IndexSpec, day: date) -> IndexState:
    """A new session: today's moves count from here; the composition may change."""
    state = replace(
        state,
        session=day,
        closed=False,
        previous_closes=dict(state.prices),
        reported=frozenset(),
        next_emit_ms=0,
    )
    if state.level is None or state.composition_day is None:
        return _start_level(replace(state, composition_day=day), spec)
    return _rebalance_if_due(state, spec)


def _rebalance_if_due(state: IndexState, spec: IndexSpec) -> IndexState:
    """Apply a constituent change that has taken effect, once its newcomers have prices.

    The divisor absorbs the change, so the level is the same just before and after.
    """
    if state.level is None or state.session is None or state.composition_day is None:
        return state
    composition = spec.constituents_on(state.session)
    if composition is spec.constituents_on(state.composition_day):  # one tuple per change
        return state
    if any(c.symbol not in state.prices for c in composition):
        return state  # wait for the newcomers' first prices
    new_weights = weights(composition, state.prices, spec.weight_cap)
    level = state.level.rebalanced(new_weights, state.prices)
    return replace(state, level=level, composition_day=state.session)


def _start_level(state: IndexState, spec: IndexSpec) -> IndexState:
    day = state.composition_day or state.session
    if day is None:
        return state
    composition = spec.constituents_on(day)
    if any(c.symbol not in state.prices for c in composition):
        return state
    prices = {c.symbol: state.prices[c.symbol] for c in composition}
    level = IndexLevel.start(weights(composition, prices, spec.weight_cap), prices, spec.divisor)
    return replace(state, level=level, composition_day=day)


def snapshot(state: IndexState, spec: IndexSpec, now_ms: int) -> IndexSnapshot:
    """Who moved the index since the previous close, and how much of it has reported."""
    assert state.level is not None
    names = {c.symbol: c.name for c in spec.constituents_on(state.composition_day or date.min)}
    contributors = tuple(
        Contributor(
            symbol=c.symbol,
            name=names.get(c.symbol),
            change_pct=round(c.change_pct, 4),
            points=round(c.points, 4),
            share=round(c.share, 4),
        )
        for c in attribution(state.level, state.previous_closes, top=_TOP)
    )
    members = list(state.level.weights)
    coverage, stale = freshness(state, spec, now_ms)
    return IndexSnapshot(
        contributors=contributors,
        reported=sum(1 for s in members if s in state.reported),
        constituents=len(members),
        coverage=round(coverage, 6),
        stale=tuple(stale[:_STALE_LISTED]),
        complete=coverage >= spec.min_coverage,
    )


def freshness(state: IndexState, spec: IndexSpec, now_ms: int) -> tuple[float, list[str]]:
    """How much of the index has reported this session (by weight, 0..1), and its stale
    constituents, sorted: no price this session, or none for stale_after_s. Before the
    index has a level, every constituent without a price is stale."""
    if state.level is None:
        day = state.composition_day or state.session or date.min
        return 0.0, sorted(
            c.symbol for c in spec.constituents_on(day) if c.symbol not in state.prices
        )
    coverage = _coverage(state.level.weights, state.previous_closes or state.prices, state.reported)
    stale_ms = int(spec.stale_after_s * 1000)
    stale = sorted(
        s
        for s in state.level.weights
        if s not in state.reported or now_ms - state.last_ts.get(s, 0) > stale_ms
    )
    return coverage, stale


def _coverage(
    weights_: Mapping[str, float], prices: Mapping[str, float], reported: frozenset[str]
) -> float:
    total = sum(w * prices.get(s, 0.0) for s, w in weights_.items())
    if total <= 0:
        return 0.0
    return min(
        1.0, sum(w * prices.get(s, 0.0) for s, w in weights_.items() if s in reported) / total
    )


def _tick(state: IndexState, spec: IndexSpec, ts_ms: int) -> Tick:
    assert state.level is not None
    return Tick(
        symbol=spec.symbol,
        price=round(state.level.level, 6),
        ts=datetime.fromtimestamp(ts_ms / 1000, tz=UTC),
        seq=state.seq,
        index=snapshot(state, spec, ts_ms),
    )
