"""Exchange sessions: ticks land in the session exchange_calendars says, with auction grace."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, tzinfo
from functools import cache
from zoneinfo import ZoneInfo

import exchange_calendars as xc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alerts.sessions import (
    CalendarBuildError,
    ExchangeCalendar,
    Session,
    UnknownExchangeError,
    get_calendar,
    known_exchanges,
)
from tests.market_data import unbuildable_calendar

HKT = ZoneInfo("Asia/Hong_Kong")
NEW_YORK = ZoneInfo("America/New_York")
THURSDAY = date(2025, 9, 18)
MINUTE_MS = 60_000


def ms(day: date, hour: int, minute: int, tz: tzinfo) -> int:
    return int(datetime(day.year, day.month, day.day, hour, minute, tzinfo=tz).timestamp() * 1000)


def day_of(hkg: ExchangeCalendar, ts_ms: int) -> date | None:
    session = hkg.session_at(ts_ms)
    return session.day if session else None


@pytest.fixture(scope="module")
def hkg() -> ExchangeCalendar:
    return get_calendar("XHKG")


@pytest.mark.parametrize(
    ("hour", "minute", "why"),
    [
        (10, 0, "continuous trading"),
        (12, 30, "lunch break belongs to the session"),
        (16, 0, "the close itself"),
        (16, 5, "closing auction, within 15 min grace"),
        (16, 15, "last instant of the close grace"),
        (9, 10, "pre-open auction, within 30 min grace"),
        (9, 0, "first instant of the open grace"),
    ],
)
def test_a_hkex_tick_belongs_to_its_session(
    hkg: ExchangeCalendar, hour: int, minute: int, why: str
) -> None:
    assert day_of(hkg, ms(THURSDAY, hour, minute, HKT)) == THURSDAY, why


@pytest.mark.parametrize(
    ("day", "hour", "minute", "why"),
    [
        (THURSDAY, 16, 30, "after the close grace"),
        (THURSDAY, 8, 59, "before the open grace"),
        (THURSDAY, 23, 0, "overnight"),
        (date(2025, 9, 20), 11, 0, "Saturday"),
        (date(2025, 10, 1), 11, 0, "National Day"),
    ],
)
def test_a_hkex_tick_outside_every_session_has_none(
    hkg: ExchangeCalendar, day: date, hour: int, minute: int, why: str
) -> None:
    assert hkg.session_at(ms(day, hour, minute, HKT)) is None, why


def test_holidays_and_weekends_are_not_sessions(hkg: ExchangeCalendar) -> None:
    assert hkg.is_session(THURSDAY)
    assert not hkg.is_session(date(2025, 9, 20))
    assert not hkg.is_session(date(2025, 10, 1))
    assert hkg.session(date(2025, 10, 1)) is None


def test_a_session_carries_its_utc_open_and_close(hkg: ExchangeCalendar) -> None:
    session = hkg.session(THURSDAY)
    assert session == Session(
        day=THURSDAY,
        open=datetime(2025, 9, 18, 1, 30, tzinfo=UTC),
        close=datetime(2025, 9, 18, 8, 0, tzinfo=UTC),
        open_ms=ms(THURSDAY, 9, 30, HKT),
        close_ms=ms(THURSDAY, 16, 0, HKT),
    )


def test_nasdaq_before_the_close_is_that_session_in_utc() -> None:
    nasdaq = get_calendar("XNAS")
    session = nasdaq.session_at(ms(THURSDAY, 15, 59, NEW_YORK))
    assert nasdaq.name == "XNAS"
    assert session is not None
    assert session.day == THURSDAY
    assert session.open == datetime(2025, 9, 18, 13, 30, tzinfo=UTC)
    assert session.close == datetime(2025, 9, 18, 20, 0, tzinfo=UTC)


def test_nasdaq_opens_an_hour_later_in_utc_in_winter() -> None:
    session = get_calendar("XNAS").session(date(2025, 1, 17))
    assert session is not None
    assert session.open == datetime(2025, 1, 17, 14, 30, tzinfo=UTC)


ANY_INSTANT = st.integers(
    min_value=ms(date(2001, 1, 1), 0, 0, UTC), max_value=ms(date(2027, 12, 31), 0, 0, UTC)
)


@settings(max_examples=200)
@given(ANY_INSTANT)
def test_on_24_7_every_tick_is_in_the_session_of_its_utc_date(ts_ms: int) -> None:
    expected = datetime.fromtimestamp(ts_ms / 1000, UTC).date()
    assert day_of(get_calendar("24/7"), ts_ms) == expected


def test_on_24_7_midnight_opens_the_new_day() -> None:
    assert day_of(get_calendar("24/7"), ms(THURSDAY, 0, 0, UTC)) == THURSDAY


@pytest.mark.parametrize(
    ("day", "previous", "following"),
    [
        (date(2025, 9, 22), date(2025, 9, 19), date(2025, 9, 23)),  # Monday
        (date(2025, 9, 20), date(2025, 9, 19), date(2025, 9, 22)),  # Saturday
        (date(2025, 9, 19), date(2025, 9, 18), date(2025, 9, 22)),  # Friday
        (date(2025, 10, 1), date(2025, 9, 30), date(2025, 10, 2)),  # National Day
    ],
)
def test_previous_and_next_session_skip_weekends_and_holidays(
    hkg: ExchangeCalendar, day: date, previous: date, following: date
) -> None:
    before, after = hkg.previous_session(day), hkg.next_session(day)
    assert (before and before.day, after and after.day) == (previous, following)


def test_beyond_the_range_nothing_is_known(hkg: ExchangeCalendar) -> None:
    assert hkg.session_at(ms(date(1999, 6, 1), 10, 0, HKT)) is None
    assert hkg.session_at(ms(hkg.last_day + timedelta(days=30), 10, 0, HKT)) is None
    assert hkg.previous_session(date(1999, 6, 1)) is None
    assert hkg.next_session(hkg.last_day + timedelta(days=1)) is None
    assert hkg.previous_session(hkg.first_day) is None


def test_it_says_which_ticks_fall_beyond_the_sessions_it_knows(hkg: ExchangeCalendar) -> None:
    assert hkg.covers(ms(THURSDAY, 10, 0, HKT))
    assert hkg.covers(ms(date(2025, 9, 20), 10, 0, HKT))  # a Saturday: known to be closed
    assert not hkg.covers(ms(date(1999, 6, 1), 10, 0, HKT))
    assert not hkg.covers(ms(hkg.last_day + timedelta(days=30), 10, 0, HKT))


@pytest.mark.parametrize("name", xc.get_calendar_names(include_aliases=False))
def test_every_calendar_of_exchange_calendars_builds(name: str) -> None:
    # Five of them fail on pandas 3 (hence pandas<3 in pyproject.toml).
    calendar = get_calendar(name, start=date(2024, 1, 2), end=date(2025, 12, 31))
    assert calendar.first_day <= date(2025, 1, 2) <= calendar.last_day


def test_a_calendar_exchange_calendars_cannot_build_is_one_clear_error() -> None:
    error = NotImplementedError("implemented by subclasses")
    with unbuildable_calendar("XBROKEN-TEST", error), pytest.raises(CalendarBuildError) as raised:
        get_calendar("XBROKEN-TEST")
    assert str(raised.value) == (
        f"exchange_calendars {xc.__version__} cannot build the XBROKEN-TEST calendar "
        "(NotImplementedError: implemented by subclasses)"
    )


def test_the_range_defaults_to_2000_through_two_years_ahead(hkg: ExchangeCalendar) -> None:
    assert hkg.first_day == date(2000, 1, 3)
    assert abs(hkg.last_day - (date.today() + timedelta(days=730))).days <= 2


def test_the_range_is_clipped_to_the_calendars_bounds() -> None:
    tadawul = get_calendar("XSAU", start=date(2015, 1, 1), end=date(2040, 1, 1))
    assert (tadawul.first_day, tadawul.last_day) == (date(2021, 1, 1), date(2029, 12, 31))


def test_an_unknown_exchange_says_which_names_exist() -> None:
    with pytest.raises(UnknownExchangeError) as raised:
        get_calendar("XHKK")
    message = str(raised.value)
    assert isinstance(raised.value, ValueError)
    assert message.startswith("unknown exchange 'XHKK' (known: XHKG, ")
    assert "XNYS" in message and "exchange_calendars.get_calendar_names()" in message


def test_aliases_are_accepted_and_listed() -> None:
    assert get_calendar("HKEX").is_session(THURSDAY)
    assert {"XHKG", "HKEX", "XNAS", "XNYS", "24/7"} <= set(known_exchanges())


def test_a_calendar_is_built_once_per_arguments() -> None:
    assert get_calendar("XHKG") is get_calendar("XHKG")


def test_grace_can_be_turned_off() -> None:
    strict = get_calendar("XHKG", open_grace_minutes=0, close_grace_minutes=0)
    assert strict.session_at(ms(THURSDAY, 16, 5, HKT)) is None
    assert strict.session_at(ms(THURSDAY, 9, 10, HKT)) is None


def test_the_close_grace_wins_over_the_next_open_grace() -> None:
    generous = get_calendar("XHKG", open_grace_minutes=20 * 60, close_grace_minutes=20 * 60)
    assert day_of(generous, ms(THURSDAY, 23, 0, HKT)) == THURSDAY


def test_negative_grace_is_refused() -> None:
    with pytest.raises(ValueError, match="grace"):
        get_calendar("XHKG", open_grace_minutes=-1)


# The oracle: a linear scan of exchange_calendars' own schedule, with the rule spelled out.
@cache
def oracle_schedule() -> list[tuple[date, int, int]]:
    schedule = xc.get_calendar("XHKG", start="2019-11-01", end="2027-02-28").schedule
    return [
        (label.date(), row.open.value // 1_000_000, row.close.value // 1_000_000)
        for label, row in schedule.iterrows()
    ]


def oracle(ts_ms: int, open_grace: int = 30, close_grace: int = 15) -> date | None:
    rows = oracle_schedule()
    containing = [day for day, open_, close in rows if open_ <= ts_ms <= close]
    if containing:
        return containing[-1]
    closed = [(day, close) for day, _, close in rows if close < ts_ms]
    if closed and ts_ms - closed[-1][1] <= close_grace * MINUTE_MS:
        return closed[-1][0]
    opening = [(day, open_) for day, open_, _ in rows if open_ > ts_ms]
    if opening and opening[0][1] - ts_ms <= open_grace * MINUTE_MS:
        return opening[0][0]
    return None


YEARS_2020_2026 = st.integers(
    min_value=ms(date(2020, 1, 1), 0, 0, UTC), max_value=ms(date(2026, 12, 31), 23, 59, UTC)
)
# Most random instants are far from any edge; these land within two hours of one.
NEAR_AN_EDGE = st.deferred(
    lambda: st.builds(
        lambda row, at_open, offset: (row[1] if at_open else row[2]) + offset,
        st.sampled_from(oracle_schedule()[40:-40]),
        st.booleans(),
        st.integers(min_value=-120 * MINUTE_MS, max_value=120 * MINUTE_MS),
    )
)


@settings(max_examples=300, deadline=None)
@given(st.one_of(YEARS_2020_2026, NEAR_AN_EDGE))
def test_hkex_session_at_agrees_with_a_scan_of_the_schedule(ts_ms: int) -> None:
    assert day_of(get_calendar("XHKG"), ts_ms) == oracle(ts_ms)


def test_sessions_are_utc_aware_and_agree_with_their_milliseconds(hkg: ExchangeCalendar) -> None:
    for day in (THURSDAY, date(2025, 12, 24), date(2008, 3, 3)):
        session = hkg.session(day)
        assert session is not None
        assert session.open.tzinfo is UTC and session.close.tzinfo is UTC
        assert session.open.timestamp() * 1000 == session.open_ms
        assert session.close.timestamp() * 1000 == session.close_ms
