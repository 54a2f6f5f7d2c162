"""Exchange sessions: which trading session a tick belongs to, from exchange_calendars.

The session step of decode -> session -> state -> rules -> alert -> delivery. A calendar
is built per exchange (slow, pandas) into sorted lists of epoch milliseconds; every tick
is then placed by bisection, without touching exchange_calendars again. Only recent
sessions are built at start-up: older decades, back to the earliest day exchange_calendars
knows, are built the first time a tick, a session end or a seeded date reaches them.
"""

from __future__ import annotations

import difflib
import logging
import warnings
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import cache, partial
from zoneinfo import ZoneInfo

import exchange_calendars as xc

from schemas.instruments import known_exchanges

log = logging.getLogger(__name__)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MINUTE_MS = 60_000
_DAY_MS = 86_400_000
# exchange_calendars declares no earliest day for most calendars and computes them back to
# 1679 (pandas' nanosecond timestamps start in 1677), but tickwatch's event-time clocks
# (alerts/core/clock.py, forwarding.py, index_agent.py) take -1 ms for "no time yet": a tick before
# the Unix epoch would end its session at once. Until they do not, calendars begin here.
_EARLIEST = date(1970, 1, 1)
_DEFAULT_HORIZON = timedelta(days=2 * 365)
# How exchange_calendars' nanosecond arrays say "no break": pandas' NaT.
_NAT = -(2**63)
# Shown in UnknownExchangeError after the closest matches to the unknown name.
_FAMILIAR = ("XHKG", "XNAS", "XNYS", "XLON", "XTKS", "24/7")


@dataclass(frozen=True)
class Session:
    """One trading session: its label and its open and close, UTC-aware and in epoch ms;
    its midday break in epoch ms (HKEX's lunch), None where it has none."""

    day: date
    open: datetime
    close: datetime
    open_ms: int
    close_ms: int
    break_start_ms: int | None = None
    break_end_ms: int | None = None

    def trading_at(self, ts_ms: int) -> bool:
        """Whether the market trades at ts: open to close, its break aside."""
        if not self.open_ms <= ts_ms <= self.close_ms:
            return False
        if self.break_start_ms is None or self.break_end_ms is None:
            return True
        return not self.break_start_ms <= ts_ms < self.break_end_ms


class UnknownExchangeError(ValueError):
    """The exchange is not a calendar name or alias known to exchange_calendars."""

    def __init__(self, exchange: str, known: Sequence[str]) -> None:
        self.exchange = exchange
        close = difflib.get_close_matches(exchange.upper(), known, n=3, cutoff=0.5)
        shown = list(dict.fromkeys([*close, *(name for name in _FAMILIAR if name in known)]))
        super().__init__(
            f"unknown exchange {exchange!r} (known: {', '.join(shown)}, ... "
            "see exchange_calendars.get_calendar_names())"
        )


class CalendarBuildError(ValueError):
    """exchange_calendars could not build an exchange's calendar."""


# The sessions labelled start..end (both included), oldest first.
SessionsBetween = Callable[[date, date], Sequence[Session]]


class ExchangeCalendar:
    """The sessions of one exchange between first_day and last_day, ready for bisection.

    A tick at ts (epoch ms) belongs, in this order of precedence, to:

    1. the session S with open_S <= ts <= close_S (lunch breaks are ignored: a tick during
       HKEX's lunch belongs to its session). Where sessions touch, as on "24/7" where one
       UTC day closes at the instant the next opens, the later session wins;
    2. else the latest session that closed before ts, if ts <= close + close_grace
       (closing auctions, e.g. HKEX's runs to 16:10 after its 16:00 close);
    3. else the next session, if ts >= open - open_grace (pre-open auctions);
    4. else no session (weekend, holiday, overnight).

    Outside the range covered (ticks before the first session's grace window or after the
    last session's, days before first_day or after last_day) the answer is None: sessions
    there are unknown, not absent.

    `sessions` may start later than first_day, at built_from: `earlier` then builds the
    sessions before, a decade at a time, the first time a question reaches them. A tick
    of a day already built pays nothing for this. Should `earlier` fail, first_day moves
    up to the sessions built (and is logged).
    """

    __slots__ = (
        "_built_from",
        "_by_day",
        "_close_grace_ms",
        "_closes",
        "_days",
        "_earlier",
        "_ends",
        "_first_day",
        "_last_day",
        "_open_grace_ms",
        "_opens",
        "_sessions",
        "name",
    )

    def __init__(
        self,
        name: str,
        sessions: Sequence[Session],
        first_day: date,
        last_day: date,
        open_grace_minutes: int,
        close_grace_minutes: int,
        *,
        built_from: date | None = None,
        earlier: SessionsBetween | None = None,
    ) -> None:
        _check_grace(open_grace_minutes, close_grace_minutes)
        self.name = name
        self._first_day = first_day
        self._last_day = last_day
        self._built_from = max(first_day, built_from or first_day)
        self._earlier = earlier if self._built_from > first_day else None
        self._open_grace_ms = open_grace_minutes * _MINUTE_MS
        self._close_grace_ms = close_grace_minutes * _MINUTE_MS
        self._set_sessions(sessions)

    def __repr__(self) -> str:
        return f"ExchangeCalendar({self.name!r}, {self._first_day} .. {self._last_day})"

    @property
    def first_day(self) -> date:
        """First day of the range covered (a session or not)."""
        return self._first_day

    @property
    def last_day(self) -> date:
        """Last day of the range covered (a session or not)."""
        return self._last_day

    def session_at(self, ts_ms: int) -> Session | None:
        """The session a tick at ts_ms (epoch ms) belongs to, by the rule in the class doc."""
        i = bisect_right(self._opens, ts_ms) - 1
        if i >= 0:
            if ts_ms <= self._ends[i]:
                return self._sessions[i]
        elif self._earlier is not None and self._build_earlier_at(ts_ms):
            # A session before those built may hold it, or be the one closed before it.
            return self.session_at(ts_ms)
        nxt = i + 1
        if nxt < len(self._opens) and self._opens[nxt] - ts_ms <= self._open_grace_ms:
            return self._sessions[nxt]
        return None

    def covers(self, ts_ms: int) -> bool:
        """Whether ts_ms is within the sessions known (grace windows included); beyond
        them a tick's session is unknown, not absent."""
        while self._earlier is not None and (
            not self._opens or ts_ms < self._opens[0] - self._open_grace_ms
        ):
            if not self._build_earlier_at(ts_ms):
                break
        if not self._sessions:
            return False
        return self._opens[0] - self._open_grace_ms <= ts_ms <= self._ends[-1]

    def session(self, day: date) -> Session | None:
        """The session labelled day; None when day is not a session or is out of range."""
        found = self._by_day.get(day)
        if found is None and self._first_day <= day < self._built_from and self._build_earlier(day):
            return self._by_day.get(day)
        return found

    def is_session(self, day: date) -> bool:
        """Whether day is a session (False out of range)."""
        return self.session(day) is not None

    def previous_session(self, day: date) -> Session | None:
        """Latest session strictly before day (a session or not); None out of range."""
        if not self._first_day <= day <= self._last_day:
            return None
        i = bisect_left(self._days, day) - 1
        if i < 0 and self._build_earlier(min(day, self._built_from) - timedelta(days=1)):
            return self.previous_session(day)
        return self._sessions[i] if i >= 0 else None

    @property
    def close_grace_ms(self) -> int:
        return self._close_grace_ms

    def accepts_until(self, session: Session) -> int:
        """The last instant (epoch ms) a tick still belongs to the session: its close plus
        the close grace. Event time beyond it means the session has ended."""
        return session.close_ms + self._close_grace_ms

    def last_ended(self, ts_ms: int) -> Session | None:
        """The latest session whose ticks were accepted until ts_ms at the latest (None:
        none in range)."""
        return self.ended_by(ts_ms - self._close_grace_ms)

    def ended_by(self, ts_ms: int) -> Session | None:
        """The latest session that closed at or before ts_ms (None: none in range)."""
        i = bisect_right(self._closes, ts_ms) - 1
        if i < 0 and self._earlier is not None and self._build_earlier_at(ts_ms):
            return self.ended_by(ts_ms)
        return self._sessions[i] if i >= 0 else None

    def next_session(self, day: date) -> Session | None:
        """Earliest session strictly after day (a session or not); None out of range."""
        if not self._first_day <= day <= self._last_day:
            return None
        if day < self._built_from:
            self._build_earlier(day)
        i = bisect_right(self._days, day)
        return self._sessions[i] if i < len(self._sessions) else None

    def _set_sessions(self, sessions: Sequence[Session]) -> None:
        _check_ordered(self.name, sessions)
        self._sessions = tuple(sessions)
        self._days = [s.day for s in sessions]
        self._opens = [s.open_ms for s in sessions]
        self._closes = [s.close_ms for s in sessions]
        self._ends = [self.accepts_until(s) for s in sessions]
        self._by_day = {s.day: s for s in sessions}

    def _build_earlier(self, day: date) -> bool:
        """Build the sessions from day's decade (first_day at the earliest) to those built;
        False when none were left to build."""
        if self._earlier is None:
            return False
        start = max(self._first_day, date(max(1, day.year // 10 * 10), 1, 1))
        return self._build_from(min(start, self._built_from - timedelta(days=1)))

    def _build_from(self, start: date) -> bool:
        """Build the sessions from start to those built. Where exchange_calendars fails
        (4.13 cannot compute XPHS's 1844-12-31, a day the Philippines skipped), keep the
        latest it can build, to within a year, and move first_day up to them."""
        assert self._earlier is not None
        try:
            older = [s for s in self._earlier(start, self._built_from) if s.day < self._built_from]
        except CalendarBuildError as error:
            middle = start + (self._built_from - start) / 2
            if middle - start > timedelta(days=183):
                if not self._build_from(middle):
                    return False
                if self._earlier is not None:
                    self._build_from(start)
                return True
            log.warning(
                "%s: sessions before %s stay unknown: %s", self.name, self._built_from, error
            )
            self._first_day, self._earlier = self._built_from, None
            return False
        self._set_sessions([*older, *self._sessions])
        self._built_from = start
        if start <= self._first_day:
            self._earlier = None
        return True

    def _build_earlier_at(self, ts_ms: int) -> bool:
        """_build_earlier for a question about instant ts_ms (UTC epoch ms)."""
        # No session labelled first_day or later opens two days before first_day in UTC.
        if ts_ms + self._open_grace_ms < _midnight_ms(self._first_day) - 2 * _DAY_MS:
            return False
        return self._build_earlier(_utc(ts_ms).date())


@cache
def get_calendar(
    exchange: str,
    open_grace_minutes: int = 30,
    close_grace_minutes: int = 15,
    start: date | None = None,
    end: date | None = None,
) -> ExchangeCalendar:
    """The calendar of an exchange (a name or alias of exchange_calendars), built once.

    start defaults to the earliest day exchange_calendars knows for that calendar (its
    bound_min), but not before 1970-01-01; without a start, sessions before January 1st of the year
    before last are only built when first needed. end defaults to about two years from
    today. start and end are clipped to the bounds exchange_calendars guarantees for that
    calendar (first_day/last_day say what was kept). Raises UnknownExchangeError for an
    unknown name, CalendarBuildError when exchange_calendars fails, ValueError for an
    empty range.
    """
    _check_grace(open_grace_minutes, close_grace_minutes)
    canonical, factory = _calendar_class(exchange)
    first, last = _clip(factory, start or _EARLIEST, end or date.today() + _DEFAULT_HORIZON)
    built_from = first
    if start is None and _recent_start() < last:
        built_from = max(first, _recent_start())
    build = partial(_build, factory, canonical)
    return ExchangeCalendar(
        exchange,
        build(built_from, last),
        first,
        last,
        open_grace_minutes,
        close_grace_minutes,
        built_from=built_from,
        earlier=build,
    )


@cache
def exchange_timezone(exchange: str) -> ZoneInfo:
    """The exchange's own time zone (UTC for "24/7"), without building its calendar;
    UnknownExchangeError for an unknown name."""
    zone = _calendar_class(exchange)[1].tz
    return zone if isinstance(zone, ZoneInfo) else ZoneInfo(str(zone))


def _calendar_class(exchange: str) -> tuple[str, type[xc.ExchangeCalendar]]:
    """The exchange's canonical name and calendar class; UnknownExchangeError if none.
    The class, not an instance: its bounds and time zone are known before building it."""
    try:
        canonical = xc.resolve_alias(exchange)
    except xc.errors.InvalidCalendarName:
        raise UnknownExchangeError(exchange, sorted(known_exchanges())) from None
    factory = xc.calendar_utils.global_calendar_dispatcher._calendar_factories.get(canonical)
    if factory is None:
        raise UnknownExchangeError(exchange, sorted(known_exchanges()))
    return canonical, factory


def _clip(factory: type[xc.ExchangeCalendar], start: date, end: date) -> tuple[date, date]:
    bound_min, bound_max = factory.bound_min(), factory.bound_max()
    if bound_min is not None:
        start = max(start, bound_min.date())
    if bound_max is not None:
        end = min(end, bound_max.date())
    if start >= end:
        raise ValueError(f"empty calendar range {start} .. {end} for {factory.__name__}")
    return start, end


def _recent_start() -> date:
    """Where a calendar built at start-up begins: what a live feed and its restarts need."""
    return date(date.today().year - 2, 1, 1)


def _build(
    factory: Callable[..., xc.ExchangeCalendar], name: str, start: date, end: date
) -> list[Session]:
    """The sessions labelled start..end; CalendarBuildError when exchange_calendars fails."""
    try:
        return list(_schedule(factory, start, end))
    except xc.errors.NoSessionsError:
        return []
    except Exception as error:  # its own bug, or a pandas it does not support
        raise CalendarBuildError(
            f"exchange_calendars {xc.__version__} cannot build the {name} calendar "
            f"({type(error).__name__}: {str(error)[:120]})"
        ) from None


@cache
def _schedule(
    factory: Callable[..., xc.ExchangeCalendar], start: date, end: date
) -> tuple[Session, ...]:
    # Cached by class: XNAS is XNYS's class, and each grace setting is its own calendar.
    with warnings.catch_warnings():
        # exchange_calendars warns of pandas deprecations; not ours to fix.
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        return tuple(_sessions_of(factory(start=start.isoformat(), end=end.isoformat())))


def _sessions_of(calendar: xc.ExchangeCalendar) -> list[Session]:
    opens_ms: list[int] = (calendar.opens_nanos // 1_000_000).tolist()
    closes_ms: list[int] = (calendar.closes_nanos // 1_000_000).tolist()
    breaks: zip[tuple[int, int]] = zip(
        calendar.break_starts_nanos.tolist(), calendar.break_ends_nanos.tolist(), strict=True
    )
    days: list[date] = [label.date() for label in calendar.sessions]
    return [
        Session(day, _utc(open_ms), _utc(close_ms), open_ms, close_ms, *_break_ms(*pause))
        for day, open_ms, close_ms, pause in zip(days, opens_ms, closes_ms, breaks, strict=True)
    ]


def _break_ms(start_ns: int, end_ns: int) -> tuple[int | None, int | None]:
    """A session's break in epoch ms; (None, None) for none (NaT, pandas' smallest int)."""
    if start_ns == _NAT or end_ns == _NAT:
        return None, None
    return start_ns // 1_000_000, end_ns // 1_000_000


def _utc(ms: int) -> datetime:
    return _EPOCH + timedelta(milliseconds=ms)


def _midnight_ms(day: date) -> int:
    return (day - _EPOCH.date()).days * _DAY_MS


def _check_grace(open_grace_minutes: int, close_grace_minutes: int) -> None:
    if open_grace_minutes < 0 or close_grace_minutes < 0:
        raise ValueError(
            f"grace minutes must be >= 0, got open {open_grace_minutes}, "
            f"close {close_grace_minutes}"
        )


def _check_ordered(name: str, sessions: Sequence[Session]) -> None:
    # Bisection on opens alone is only right if sessions never overlap.
    previous_close: int | None = None
    for s in sessions:
        if s.open_ms >= s.close_ms or (previous_close is not None and s.open_ms < previous_close):
            raise ValueError(f"{name}: session {s.day} overlaps or is empty")
        previous_close = s.close_ms
