"""Deterministic synthetic market data for tests: daily closes, then ticks, per session."""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta

import exchange_calendars as xc

from alerts.core.sessions import ExchangeCalendar, Session
from schemas.instruments import known_exchanges
from schemas.ticks import Tick


@dataclass(frozen=True)
class Story:
    """One instrument's seeded daily closes and the ticks that follow them."""

    symbol: str
    seeded: list[tuple[date, float]]
    ticks: list[Tick]


def sessions(calendar: ExchangeCalendar, start: date, end: date) -> list[Session]:
    found = []
    day = start
    while day <= end:
        session = calendar.session(day)
        if session is not None:
            found.append(session)
        day += timedelta(days=1)
    return found


def story(
    symbol: str,
    calendar: ExchangeCalendar,
    seed_until: date,
    daily_until: date,
    intraday_until: date,
    rng: random.Random,
    start: date = date(2019, 1, 2),
) -> Story:
    """Seeded closes to seed_until; one tick a session to daily_until; then several.

    The walk has regimes (falls, rallies, calm), so that multi-year highs and lows,
    4% days and year-to-date milestones all happen.
    """
    price = 100.0
    seeded: list[tuple[date, float]] = []
    ticks: list[Tick] = []
    drift, vol = 0.0, 0.02
    for session in sessions(calendar, start, intraday_until):
        if rng.random() < 0.02:
            drift, vol = rng.choice([(-0.004, 0.02), (0.004, 0.02), (0.0, 0.01), (0.002, 0.035)])
        if session.day <= seed_until:
            price *= 1 + rng.gauss(drift, vol)
            seeded.append((session.day, round(price, 3)))
            continue
        count = 1 if session.day <= daily_until else rng.randint(2, 6)
        span = session.close_ms - session.open_ms
        stamps = sorted(rng.randint(0, span) for _ in range(count))
        for offset in stamps:
            price *= 1 + rng.gauss(drift, vol) / count**0.5
            ts = session.open + timedelta(milliseconds=offset)
            ticks.append(Tick(symbol=symbol, price=round(price, 3), ts=ts))
    return Story(symbol, seeded, ticks)


def interleave(stories: list[Story]) -> list[Tick]:
    """Every story's ticks in time order (ties keep story order)."""
    tagged = [(t.ts, i, n, t) for i, s in enumerate(stories) for n, t in enumerate(s.ticks)]
    return [t for *_, t in sorted(tagged, key=lambda x: x[:3])]


@contextmanager
def unbuildable_calendar(name: str, error: Exception) -> Iterator[str]:
    """An exchange_calendars name, known while the block runs, whose calendar raises
    `error` when built (as five did on pandas 3)."""
    hkex = xc.calendar_utils.global_calendar_dispatcher._calendar_factories["XHKG"]

    class Broken(hkex):  # type: ignore[misc,valid-type]
        def __init__(self, *args: object, **kwargs: object) -> None:
            raise error

    xc.register_calendar_type(name, Broken, force=True)
    known_exchanges.cache_clear()
    try:
        yield name
    finally:
        xc.deregister_calendar(name)
        known_exchanges.cache_clear()
