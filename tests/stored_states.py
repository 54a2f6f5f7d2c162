"""Realistic stored states, the same on every run: for the codec's tests and benchmark."""

from __future__ import annotations

import random
from datetime import date, timedelta

from alerts.core.index_agent import IndexState
from alerts.core.index_level import IndexLevel
from alerts.core.instrument import InstrumentState, seed_closes
from alerts.core.record_stacks import RecordStack
from alerts.core.session_history import History
from alerts.core.sessions import get_calendar
from schemas.attribution import Contributor, IndexSnapshot

HK = get_calendar("XHKG")


def hk_sessions(start: date, end: date) -> list[date]:
    days, day = [], start
    while day <= end:
        if HK.session(day) is not None:
            days.append(day)
        day += timedelta(days=1)
    return days


def closes(years: int, seed: int) -> list[tuple[date, float]]:
    """A random walk of daily closes up to 2025-09-17, `years` long."""
    rng = random.Random(seed)
    price, found = 100.0, []
    for day in hk_sessions(date(2025 - years, 9, 1), date(2025, 9, 17)):
        price *= 1 + rng.gauss(0.0003, 0.022)
        found.append((day, round(price, 3)))
    return found


def stock(years: int = 5, seed: int = 7) -> InstrumentState:
    """A stock mid-session, with `years` of seeded history and rungs fired."""
    history = seed_closes(InstrumentState("9888.HK"), closes(years, seed)).state.history
    return InstrumentState(
        symbol="9888.HK",
        kind="stock",
        session=date(2025, 9, 18),
        closed=False,
        open=101.5,
        high=112.3,
        low=100.9,
        last=111.8,
        volume=18_234_500.0,
        fired=frozenset({"gain:4", "gain:5", "gain:6", "high:1y", "high:3y"}),
        fired_year=frozenset({"ytd:20", "ytd:30", "ytd:40"}),
        last_seq=88_231,
        offsets={2: 1_234_567},
        history=history,
    )


def index_instrument(years: int = 5) -> InstrumentState:
    """An index as an instrument: its ticks carry attribution."""
    base = stock(years, seed=11)
    snapshot = IndexSnapshot(
        contributors=tuple(
            Contributor(
                symbol=f"{9000 + i}.HK",
                name=f"Company {i}",
                change_pct=15.1 - i,
                points=92.4 - 10 * i,
                share=0.31 - 0.05 * i,
            )
            for i in range(5)
        ),
        reported=29,
        constituents=30,
        coverage=0.981234,
        stale=("0241.HK",),
        complete=True,
    )
    return InstrumentState(
        symbol="HSTECH",
        kind="index",
        session=base.session,
        open=base.open,
        high=base.high,
        low=base.low,
        last=base.last,
        fired=base.fired,
        fired_year=base.fired_year,
        last_seq=4_512,
        offsets={0: 99_812},
        history=base.history,
        snapshot=snapshot,
    )


def truncated_history() -> History:
    """A history whose stacks hit a small capacity and dropped their oldest entries."""
    history = History(
        RecordStack("high", capacity=3),
        RecordStack("low", capacity=3),
        RecordStack("high", capacity=3),
        RecordStack("low", capacity=3),
    )
    for day, close in closes(1, seed=5):
        history = history.close_session(day, close)
    return history


def truncated() -> InstrumentState:
    """A stock whose history outgrew its stacks' capacity."""
    return InstrumentState(
        "9618.HK",
        session=date(2025, 9, 18),
        open=100.0,
        high=100.0,
        low=100.0,
        last=100.0,
        history=truncated_history(),
    )


def index_state(constituents: int = 30, seed: int = 3) -> IndexState:
    """An index mid-session: a level over its constituents, prices waiting to be applied."""
    rng = random.Random(seed)
    symbols = [f"{1000 + 37 * i:04d}.HK" for i in range(constituents)]
    prices = {s: round(rng.uniform(5, 500), 3) for s in symbols}
    previous = {s: round(p * rng.uniform(0.9, 1.1), 3) for s, p in prices.items()}
    weights = {s: rng.uniform(1e8, 2e10) * rng.uniform(0.3, 1.0) for s in symbols}
    level = IndexLevel.start(weights, previous, 542_074_302.3)
    for symbol, price in prices.items():
        level = level.with_price(symbol, price)
    t0 = 1_758_160_800_000
    pending = tuple(
        sorted(
            (t0 + 1000 * i, i % 3, 4_000 + i, symbols[i], prices[symbols[i]], 50_000 + i)
            for i in range(8)
        )
    )
    return IndexState(
        symbol="HSTECH",
        prices=prices,
        level=level,
        composition_day=date(2025, 9, 8),
        session=date(2025, 9, 18),
        closed=False,
        previous_closes=previous,
        last_ts={s: t0 - rng.randrange(0, 600_000) for s in symbols},
        last_position={s: rng.randrange(0, 2_000_000) for s in symbols},
        reported=frozenset(symbols[:-2]),
        watermarks={0: t0 - 500, 1: t0 - 200, 2: t0},
        pending=pending,
        arrivals=4_008,
        next_emit_ms=t0 + 2000,
        seq=12_345,
        offsets={0: 123_456, 1: 123_001, 2: 122_950},
    )


def seeded_index() -> IndexState:
    """An index as `tickwatch seed` leaves it: starting prices, no level yet."""
    return IndexState("HSTECH", prices={"0700.HK": 600.5, "9988.HK": 150.25, "3690.HK": 98.0})
