"""The story recomputed from the dataset: each claim checked, StoryError for a broken one."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from tools.demo_data.definition import IndexDefinition
from tools.demo_data.prices import Dataset
from tools.demo_data.story import CONSTITUENTS, HEADLINERS, QUIET_DAY, RALLY_DAY, StoryError


@dataclass(frozen=True)
class Contribution:
    symbol: str
    name: str
    move: float  # % close to close
    points: float


@dataclass(frozen=True)
class Story:
    """The numbers of the story, as recomputed from the dataset."""

    previous_close: float  # LAST_HISTORY_DAY
    quiet_close: float
    rally_close: float
    quiet_change: float  # %
    rally_change: float  # %
    gain_crossed_at: datetime
    strongest_since: date
    four_year_high: float
    four_year_high_day: date
    high_crossed_at: datetime
    highest_since: date
    ytd_base: float
    ytd: float  # %
    ytd_crossed_at: datetime
    contributions: tuple[Contribution, ...]  # by points, largest first


@dataclass(frozen=True)
class _Replay:
    """The index's closes through QUIET_DAY, and its level after each tick of the two days."""

    days: list[date]
    closes: list[float]
    quiet_levels: list[tuple[datetime, float]]
    rally_levels: list[tuple[datetime, float]]
    quiet_closes: list[float]  # per constituent
    rally_closes: list[float]

    @property
    def previous(self) -> float:
        return self.closes[-2]

    @property
    def quiet(self) -> float:
        return self.closes[-1]


def _walk_levels(
    definition: IndexDefinition,
    previous: Sequence[float],
    ticks: Sequence[tuple[datetime, int, float, int]],
) -> tuple[list[tuple[datetime, float]], list[float]]:
    """The index after each tick of a session, and the constituents' closes."""
    prices = list(previous)
    level = definition.level(prices)
    levels = []
    for ts, i, price, _ in ticks:
        level += definition.points(i, price - prices[i])
        prices[i] = price
        levels.append((ts, level))
    return levels, prices


def _replay(data: Dataset) -> _Replay:
    quiet_ticks = [t for t in data.ticks if t[0].date() == QUIET_DAY]
    rally_ticks = [t for t in data.ticks if t[0].date() == RALLY_DAY]
    quiet_levels, quiet_closes = _walk_levels(data.definition, data.closes[-1], quiet_ticks)
    rally_levels, rally_closes = _walk_levels(data.definition, quiet_closes, rally_ticks)
    return _Replay(
        days=[*data.days, QUIET_DAY],
        closes=[*data.index_closes, data.definition.level(quiet_closes)],
        quiet_levels=quiet_levels,
        rally_levels=rally_levels,
        quiet_closes=quiet_closes,
        rally_closes=rally_closes,
    )


def _latest(days: Sequence[date], values: Sequence[float], at_least: float) -> date | None:
    return next(
        (d for d, v in zip(reversed(days), reversed(values), strict=True) if v >= at_least), None
    )


def _first(levels: Sequence[tuple[datetime, float]], at_least: float) -> tuple[datetime, float]:
    found = next((tl for tl in levels if tl[1] >= at_least), None)
    if found is None:
        raise StoryError(f"no {RALLY_DAY} tick reaches {at_least:,.2f}")
    return found


def _require(claim: bool, story: str) -> None:
    if not claim:
        raise StoryError(f"the demo data no longer tell the story: {story}")


def _check_moves(r: _Replay, rally: float) -> tuple[datetime, date]:
    """A quiet day, then +4-4.5%, crossing +4% after lunch: the best day since Nov 2021."""
    quiet_change, rally_change = r.quiet / r.previous - 1, rally / r.quiet - 1
    _require(abs(quiet_change) <= 0.015, f"{QUIET_DAY} moves {quiet_change:+.2%}, not quiet")
    _require(
        all(abs(level / r.previous - 1) <= 0.015 for _, level in r.quiet_levels),
        f"{QUIET_DAY} strays beyond 1.5% intraday",
    )
    _require(0.04 <= rally_change <= 0.045, f"{RALLY_DAY} closes {rally_change:+.2%}, not +4-4.5%")
    gain_at, gain_level = _first(r.rally_levels, r.quiet * 1.04)
    _require(gain_at.hour >= 13, f"+4% is crossed at {gain_at:%H:%M}, not in the afternoon")
    gains = [b / a - 1 for a, b in itertools.pairwise(r.closes)]
    since_dates = []
    for change in (rally_change, gain_level / r.quiet - 1):
        since = _latest(r.days[1:], gains, change)
        _require(
            since is not None and (since.year, since.month) == (2021, 11),
            f"a {change:+.2%} day is the strongest since {since}, not since November 2021",
        )
        since_dates.append(since)
    return gain_at, since_dates[0] or RALLY_DAY


def _check_high(r: _Replay, rally: float) -> tuple[float, date, datetime, date]:
    """Above every close of four years first on the rally day, highest since late 2021."""
    start = RALLY_DAY.replace(year=RALLY_DAY.year - 4)
    high, high_day = max((c, day) for day, c in zip(r.days, r.closes, strict=True) if day >= start)
    _require(rally > high, f"{RALLY_DAY} closes at {rally:,.2f}, not above {high:,.2f}")
    quiet_start = QUIET_DAY.replace(year=QUIET_DAY.year - 4)
    quiet_high = max(
        c for day, c in zip(r.days[:-1], r.closes[:-1], strict=True) if day >= quiet_start
    )
    _require(
        max(level for _, level in r.quiet_levels) <= quiet_high,
        f"the four-year high is already reached on {QUIET_DAY}",
    )
    high_at, high_level = _first(r.rally_levels, math.nextafter(high, math.inf))
    since_dates = []
    for price in (rally, high_level):
        since = _latest(r.days, r.closes, price)
        _require(
            since is not None and date(2021, 8, 1) <= since <= date(2021, 11, 30),
            f"{RALLY_DAY} at {price:,.2f} is the highest since {since}, not since late 2021",
        )
        since_dates.append(since)
    return high, high_day, high_at, since_dates[0] or RALLY_DAY


def _check_ytd(r: _Replay, rally: float) -> tuple[float, datetime]:
    """About +41% year to date at the close, +40% first crossed on the rally day."""
    base = r.closes[max(t for t, day in enumerate(r.days) if day.year < RALLY_DAY.year)]
    ytd = rally / base - 1
    _require(0.405 <= ytd <= 0.415, f"{RALLY_DAY} is {ytd:+.2%} year to date, not about +41%")
    before = [c for day, c in zip(r.days, r.closes, strict=True) if day.year == RALLY_DAY.year]
    before += [level for _, level in r.quiet_levels]
    _require(max(before) < base * 1.4, "+40% year to date is reached before the rally day")
    ytd_at, _ = _first(r.rally_levels, base * 1.4)
    return base, ytd_at


def _check_contributions(d: IndexDefinition, r: _Replay) -> tuple[Contribution, ...]:
    """Baidu and Alibaba lead in index points; a few constituents fall."""
    contributions = sorted(
        (
            Contribution(c.symbol, c.name, (b / a - 1) * 100, d.points(i, b - a))
            for i, (c, a, b) in enumerate(
                zip(CONSTITUENTS, r.quiet_closes, r.rally_closes, strict=True)
            )
        ),
        key=lambda x: -x.points,
    )
    leaders = tuple(x.symbol for x in contributions[:2])
    _require(leaders == HEADLINERS, f"the top two contributors are {leaders}, not {HEADLINERS}")
    decliners = sum(1 for x in contributions if x.move < 0)
    _require(
        2 <= decliners <= len(contributions) // 4,
        f"{decliners} of {len(contributions)} constituents fall; the story wants a few",
    )
    return tuple(contributions)


def check_story(data: Dataset) -> Story:
    """The story's numbers, or StoryError naming the first claim the data break."""
    r = _replay(data)
    rally = data.definition.level(r.rally_closes)
    gain_at, strongest_since = _check_moves(r, rally)
    high, high_day, high_at, highest_since = _check_high(r, rally)
    ytd_base, ytd_at = _check_ytd(r, rally)
    return Story(
        previous_close=r.previous,
        quiet_close=r.quiet,
        rally_close=rally,
        quiet_change=(r.quiet / r.previous - 1) * 100,
        rally_change=(rally / r.quiet - 1) * 100,
        gain_crossed_at=gain_at,
        strongest_since=strongest_since,
        four_year_high=high,
        four_year_high_day=high_day,
        high_crossed_at=high_at,
        highest_since=highest_since,
        ytd_base=ytd_base,
        ytd=(rally / ytd_base - 1) * 100,
        ytd_crossed_at=ytd_at,
        contributions=_check_contributions(data.definition, r),
    )
