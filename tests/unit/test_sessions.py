"""Exchange sessions: ticks land in the session exchange_calendars says, with auction grace."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta, tzinfo
from functools import cache
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo

import exchange_calendars as xc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import alerts.core.sessions as sessions_module
from alerts.core.sessions import (
    CalendarBuildError,
    ExchangeCalendar,
    Session,
    UnknownExchangeError,
    get_calendar,
)
from schemas.instruments import known_exchanges
from tests.market_data import sessions, unbuildable_calendar

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
        break_start_ms=ms(THURSDAY, 12, 0, HKT),
        break_end_ms=ms(THURSDAY, 13, 0, HKT),
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
    min_value=ms(date(1971, 1, 1), 0, 0, UTC), max_value=ms(date(2027, 12, 31), 0, 0, UTC)
)


@settings(max_examples=200, deadline=None)  # the first pre-2024 instant builds decades
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
    assert hkg.session_at(ms(date(1969, 6, 2), 10, 0, HKT)) is None
    assert hkg.session_at(ms(hkg.last_day + timedelta(days=30), 10, 0, HKT)) is None
    assert hkg.previous_session(date(1969, 6, 2)) is None
    assert hkg.next_session(hkg.last_day + timedelta(days=1)) is None
    assert hkg.previous_session(hkg.first_day) is None


def test_it_says_which_ticks_fall_beyond_the_sessions_it_knows(hkg: ExchangeCalendar) -> None:
    assert hkg.covers(ms(THURSDAY, 10, 0, HKT))
    assert hkg.covers(ms(date(2025, 9, 20), 10, 0, HKT))  # a Saturday: known to be closed
    assert hkg.covers(ms(date(1999, 6, 1), 10, 0, HKT))
    assert not hkg.covers(ms(date(1969, 6, 2), 10, 0, HKT))
    assert not hkg.covers(ms(hkg.last_day + timedelta(days=30), 10, 0, HKT))


def test_a_1999_hkex_tick_is_in_its_session(hkg: ExchangeCalendar) -> None:
    assert day_of(hkg, ms(date(1999, 6, 1), 10, 0, HKT)) == date(1999, 6, 1)
    assert hkg.is_session(date(1997, 10, 28))  # the Hang Seng's worst day of the 1997 crisis
    assert not hkg.is_session(date(1999, 10, 1))  # National Day
    before = hkg.previous_session(date(2000, 1, 3))
    assert before is not None and before.day == date(1999, 12, 30)  # closed on the 31st


def test_black_monday_1987_is_an_xnys_session() -> None:
    nyse = get_calendar("XNYS")
    session = nyse.session_at(ms(date(1987, 10, 19), 15, 59, NEW_YORK))
    assert session is not None and session.day == date(1987, 10, 19)
    assert session.close == datetime(1987, 10, 19, 20, 0, tzinfo=UTC)  # 16:00 EDT
    assert nyse.ended_by(ms(date(1987, 10, 20), 9, 0, NEW_YORK)) == session
    assert nyse.session_at(ms(date(1987, 10, 18), 12, 0, NEW_YORK)) is None  # a Sunday


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


def test_the_range_defaults_to_what_exchange_calendars_knows(hkg: ExchangeCalendar) -> None:
    assert get_calendar("XTKS").first_day == date(1997, 1, 1)  # XTKS's bound_min
    # No bound_min (XNYS), or an earlier one (XHKG, 1960): from the Unix epoch on.
    assert get_calendar("XNYS").first_day == date(1970, 1, 1)
    assert hkg.first_day == date(1970, 1, 1)
    assert abs(hkg.last_day - (date.today() + timedelta(days=730))).days <= 2


def test_only_recent_sessions_are_built_at_start_up(monkeypatch: pytest.MonkeyPatch) -> None:
    built: list[tuple[date, date]] = []
    schedule = sessions_module._schedule

    def spy(factory: Any, start: date, end: date) -> tuple[Session, ...]:
        built.append((start, end))
        return schedule(factory, start, end)

    monkeypatch.setattr(sessions_module, "_schedule", spy)
    nyse = get_calendar("XNYS", open_grace_minutes=7, close_grace_minutes=7)  # not cached yet
    recent = date(date.today().year - 2, 1, 1)
    assert built == [(recent, nyse.last_day)]
    assert nyse.next_session(recent) is not None and len(built) == 1
    assert not nyse.covers(ms(date(1965, 1, 4), 12, 0, UTC))  # before 1970: nothing to build
    assert len(built) == 1
    assert day_of(nyse, ms(date(1987, 10, 19), 12, 0, NEW_YORK)) == date(1987, 10, 19)
    assert built[1] == (date(1980, 1, 1), recent)  # back to the decade needed, at once
    assert day_of(nyse, ms(date(1985, 3, 1), 12, 0, NEW_YORK)) == date(1985, 3, 1)
    assert len(built) == 2


@pytest.mark.parametrize("name", ["XNYS", "XHKG", "24/7"])
def test_sessions_built_late_are_the_sessions_built_at_once(name: str) -> None:
    lazy = get_calendar(name, open_grace_minutes=8, close_grace_minutes=8)
    assert lazy.session(date(1985, 1, 2)) is not None
    whole = get_calendar(name, open_grace_minutes=8, close_grace_minutes=8, start=date(1980, 1, 1))
    days = [
        date(1980, 1, 1) + timedelta(days=n) for n in range((lazy.last_day - date(1980, 1, 1)).days)
    ]
    assert [lazy.session(d) for d in days] == [whole.session(d) for d in days]


def test_sessions_exchange_calendars_cannot_build_are_beyond_the_calendar(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(start: date, end: date) -> list[Session]:
        raise CalendarBuildError("exchange_calendars 9.9 cannot build the XHKG calendar (boom)")

    recent = date(2024, 1, 1)
    rows = [s for s in long_schedule() if s.day >= recent]
    hkex = ExchangeCalendar("XHKG", rows, FIRST, LAST, 30, 15, built_from=recent, earlier=broken)
    assert hkex.session_at(ms(date(2023, 6, 1), 10, 0, HKT)) is None
    assert not hkex.covers(ms(date(2023, 6, 1), 10, 0, HKT))
    assert (hkex.first_day, hkex.last_day) == (recent, LAST)
    assert "XHKG: sessions before 2024-01-01 stay unknown: exchange_calendars 9.9" in caplog.text


def test_where_exchange_calendars_fails_the_calendar_begins_after_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # As exchange_calendars fails on XPHS's 1844-12-31, a day the Philippines skipped.
    bad = date(2010, 6, 15)

    def failing(start: date, end: date) -> list[Session]:
        if start <= bad <= end:
            raise CalendarBuildError(f"cannot build the XHKG calendar (no {bad})")
        return [s for s in long_schedule() if start <= s.day <= end]

    recent = date(2024, 1, 1)
    rows = [s for s in long_schedule() if s.day >= recent]
    hkex = ExchangeCalendar("XHKG", rows, FIRST, LAST, 30, 15, built_from=recent, earlier=failing)
    assert hkex.session(date(2005, 6, 1)) is None
    assert bad < hkex.first_day <= bad + timedelta(days=366)
    assert not hkex.covers(ms(date(2005, 6, 1), 10, 0, HKT))
    whole = ExchangeCalendar("XHKG", long_schedule(), FIRST, LAST, 30, 15)
    assert hkex.session(date(2012, 6, 1)) == whole.session(date(2012, 6, 1)) is not None
    assert caplog.text.count("stay unknown") == 1


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
    schedule = xc.get_calendar("XHKG", start="1994-11-01", end="2027-02-28").schedule
    return [
        (label.date(), row.open.value // 1_000_000, row.close.value // 1_000_000)
        for label, row in schedule.iterrows()
    ]


def oracle(
    ts_ms: int,
    open_grace: int = 30,
    close_grace: int = 15,
    rows: Sequence[tuple[date, int, int]] = (),
) -> date | None:
    rows = rows or oracle_schedule()
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


YEARS_1995_2026 = st.integers(
    min_value=ms(date(1995, 1, 1), 0, 0, UTC), max_value=ms(date(2026, 12, 31), 23, 59, UTC)
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
@given(st.one_of(YEARS_1995_2026, NEAR_AN_EDGE))
def test_hkex_session_at_agrees_with_a_scan_of_the_schedule(ts_ms: int) -> None:
    assert day_of(get_calendar("XHKG"), ts_ms) == oracle(ts_ms)


def test_sessions_are_utc_aware_and_agree_with_their_milliseconds(hkg: ExchangeCalendar) -> None:
    for day in (THURSDAY, date(2025, 12, 24), date(2008, 3, 3)):
        session = hkg.session(day)
        assert session is not None
        assert session.open.tzinfo is UTC and session.close.tzinfo is UTC
        assert session.open.timestamp() * 1000 == session.open_ms
        assert session.close.timestamp() * 1000 == session.close_ms


# A calendar whose older sessions are built on demand must answer every question as one
# built whole does; here both share one exchange_calendars schedule, built once.
FIRST, LAST = date(1988, 11, 1), date(2027, 2, 28)


@cache
def long_schedule() -> tuple[Session, ...]:
    whole = get_calendar("XHKG", start=FIRST, end=LAST)
    return tuple(sessions(whole, FIRST, LAST))


def built_on_demand(built_from: date, asked: list[tuple[date, date]]) -> ExchangeCalendar:
    def earlier(start: date, end: date) -> list[Session]:
        asked.append((start, end))
        return [s for s in long_schedule() if start <= s.day <= end]

    rows = [s for s in long_schedule() if s.day >= built_from]
    return ExchangeCalendar(
        "XHKG", rows, FIRST, LAST, 30, 15, built_from=built_from, earlier=earlier
    )


INSTANTS_1988_2027 = st.integers(
    min_value=ms(date(1988, 6, 1), 0, 0, UTC), max_value=ms(date(2027, 3, 31), 0, 0, UTC)
)
NEAR_A_SESSION_EDGE = st.deferred(
    lambda: st.builds(
        lambda session, at_open, offset: (
            (session.open_ms if at_open else session.close_ms) + offset
        ),
        st.sampled_from(long_schedule()),
        st.booleans(),
        st.integers(min_value=-24 * 60 * MINUTE_MS, max_value=24 * 60 * MINUTE_MS),
    )
)
QUESTIONS = st.lists(
    st.one_of(
        st.tuples(
            st.sampled_from(["session_at", "covers", "ended_by"]),
            st.one_of(INSTANTS_1988_2027, NEAR_A_SESSION_EDGE),
        ),
        st.tuples(
            st.sampled_from(["session", "is_session", "previous_session", "next_session"]),
            st.dates(date(1988, 6, 1), date(2027, 3, 31)),
        ),
    ),
    min_size=1,
    max_size=8,
)


@settings(max_examples=200, deadline=None)
@given(st.dates(FIRST, LAST), QUESTIONS)
def test_building_earlier_sessions_on_demand_changes_no_answer(
    built_from: date, questions: list[tuple[str, object]]
) -> None:
    asked: list[tuple[date, date]] = []
    lazy = built_on_demand(built_from, asked)
    whole = ExchangeCalendar("XHKG", long_schedule(), FIRST, LAST, 30, 15)
    for question, arg in questions:
        answer = getattr(lazy, question)(arg)
        assert answer == getattr(whole, question)(arg), (question, arg)
        if question == "session_at":
            assert isinstance(arg, int)
            assert (answer and answer.day) == oracle(arg, rows=long_rows())
    assert (lazy.first_day, lazy.last_day) == (FIRST, LAST)
    # Each build reaches further back and ends where the sessions built so far begin.
    ends = [built_from] + [start for start, _ in asked]
    assert [end for _, end in asked] == ends[:-1]
    assert all(later > earlier for later, earlier in pairwise(ends))


@cache
def long_rows() -> list[tuple[date, int, int]]:
    return [(s.day, s.open_ms, s.close_ms) for s in long_schedule()]


def test_a_session_knows_its_midday_break(hkg: ExchangeCalendar) -> None:
    session = hkg.session(THURSDAY)
    assert session is not None
    assert session.break_start_ms == ms(THURSDAY, 12, 0, HKT)
    assert session.break_end_ms == ms(THURSDAY, 13, 0, HKT)
    assert session.trading_at(ms(THURSDAY, 11, 59, HKT))
    assert not session.trading_at(ms(THURSDAY, 12, 30, HKT))
    assert session.trading_at(ms(THURSDAY, 13, 0, HKT))
    nasdaq = get_calendar("XNAS").session(THURSDAY)
    assert nasdaq is not None and nasdaq.break_start_ms is None
    assert nasdaq.trading_at(nasdaq.open_ms + 3_600_000)
