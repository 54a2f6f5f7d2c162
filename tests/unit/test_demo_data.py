"""The bundled demo dataset: deterministic, never edited by hand, and telling its story.

The story is recomputed here from the files alone (indices.yaml, history.csv, ticks.csv),
with plain Python and none of the generator's own arithmetic.
"""

from __future__ import annotations

import csv
import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from alerts.core.sessions import get_calendar
from schemas.instruments import load_instruments
from tools.demo_data.files import DEFAULT_OUT, FILES, generate

QUIET = dt.date(2025, 9, 17)
RALLY = dt.date(2025, 9, 18)
BAIDU, ALIBABA = "9888.HK", "9988.HK"
RERUN = "do not edit it by hand: change tools/demo_data/ and run `python -m tools.demo_data`"


@dataclass(frozen=True)
class Index:
    """indices.yaml's one index: level = sum(price * shares * factor * cap_factor) / divisor."""

    terms: dict[str, float]
    names: dict[str, str]
    divisor: float
    weight_cap: float

    def level(self, prices: dict[str, float]) -> float:
        return sum(prices[symbol] * term for symbol, term in self.terms.items()) / self.divisor

    def points(self, symbol: str, change: float) -> float:
        return change * self.terms[symbol] / self.divisor


@dataclass(frozen=True)
class Market:
    """The files, and the index level after each tick of the two tick days."""

    index: Index
    days: list[dt.date]  # history sessions, then QUIET
    closes: list[float]  # the index's close on each of days
    history: dict[dt.date, dict[str, float]]
    quiet_closes: dict[str, float]
    rally_closes: dict[str, float]
    quiet_levels: list[tuple[dt.datetime, float]]
    rally_levels: list[tuple[dt.datetime, float]]

    @property
    def rally(self) -> float:
        return self.index.level(self.rally_closes)


def load_index(folder: Path) -> Index:
    (spec,) = yaml.safe_load((folder / "indices.yaml").read_text())["indices"]
    assert (spec["symbol"], spec["exchange"]) == ("HSTECH", "XHKG")
    members = spec["constituents"]
    return Index(
        terms={c["symbol"]: c["shares"] * c["factor"] * c["cap_factor"] for c in members},
        names={c["symbol"]: c["name"] for c in members},
        divisor=spec["divisor"],
        weight_cap=spec["weight_cap"],
    )


def read_ticks(folder: Path) -> list[tuple[dt.datetime, str, float]]:
    with (folder / "ticks.csv").open(newline="") as handle:
        return [
            (dt.datetime.fromisoformat(row["ts"]), row["symbol"], float(row["price"]))
            for row in csv.DictReader(handle)
        ]


def walk(
    index: Index, opening: dict[str, float], ticks: list[tuple[dt.datetime, str, float]]
) -> tuple[list[tuple[dt.datetime, float]], dict[str, float]]:
    prices, levels = dict(opening), []
    for ts, symbol, price in ticks:
        prices[symbol] = price
        levels.append((ts, index.level(prices)))
    return levels, prices


def load_market(folder: Path) -> Market:
    index = load_index(folder)
    history: dict[dt.date, dict[str, float]] = {}
    with (folder / "history.csv").open(newline="") as handle:
        for row in csv.DictReader(handle):
            history.setdefault(dt.date.fromisoformat(row["date"]), {})[row["symbol"]] = float(
                row["close"]
            )
    ticks = read_ticks(folder)
    last_day = max(history)
    quiet_levels, quiet_closes = walk(
        index, history[last_day], [t for t in ticks if t[0].date() == QUIET]
    )
    rally_levels, rally_closes = walk(
        index, quiet_closes, [t for t in ticks if t[0].date() == RALLY]
    )
    days = sorted(history)
    return Market(
        index=index,
        days=[*days, QUIET],
        closes=[history[day]["HSTECH"] for day in days] + [index.level(quiet_closes)],
        history=history,
        quiet_closes=quiet_closes,
        rally_closes=rally_closes,
        quiet_levels=quiet_levels,
        rally_levels=rally_levels,
    )


@pytest.fixture(scope="module")
def fresh(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("demo_data")
    generate(out)
    return out


@pytest.fixture(scope="module")
def market() -> Market:
    return load_market(DEFAULT_OUT)


def test_generating_twice_gives_the_same_bytes(fresh: Path, tmp_path: Path) -> None:
    generate(tmp_path)
    for name in FILES:
        same = (tmp_path / name).read_bytes() == (fresh / name).read_bytes()
        assert same, f"{name} differs between two generations"


def test_the_bundled_files_are_a_fresh_generation(fresh: Path) -> None:
    for name in FILES:
        bundled = DEFAULT_OUT / name
        assert bundled.is_file(), f"{bundled} is missing; run `python -m tools.demo_data`"
        same = bundled.read_bytes() == (fresh / name).read_bytes()
        assert same, f"{bundled} differs from a fresh generation; {RERUN}"


def test_the_files_are_labelled_synthetic_and_load() -> None:
    for name in ("instruments.yaml", "indices.yaml"):
        assert (DEFAULT_OUT / name).read_text().startswith("# SYNTHETIC prices, illustrative only")
    instruments = load_instruments(DEFAULT_OUT / "instruments.yaml")
    assert instruments.default_exchange is None
    assert {i.exchange for i in instruments.instruments} == {"XHKG"}
    kinds = {i.symbol: i.kind for i in instruments.instruments}
    assert kinds.pop("HSTECH") == "index"
    assert set(kinds.values()) == {"stock"}
    assert set(kinds) == set(load_index(DEFAULT_OUT).terms)
    assert len(kinds) >= 28


def test_the_cap_factors_hold_every_weight_to_the_cap_at_the_base_date(market: Market) -> None:
    base = market.history[market.days[0]]
    terms = market.index.terms
    total = sum(base[s] * t for s, t in terms.items())
    weights = {s: base[s] * t / total for s, t in terms.items()}
    assert max(weights.values()) <= market.index.weight_cap
    assert sum(1 for w in weights.values() if w > market.index.weight_cap - 1e-6) >= 5
    assert market.closes[0] == pytest.approx(7000, abs=1)


def test_history_covers_every_session_and_its_index_closes_add_up(market: Market) -> None:
    calendar = get_calendar("XHKG")
    span = (dt.date(2025, 9, 16) - dt.date(2020, 7, 27)).days + 1
    sessions = [
        day
        for n in range(span)
        if calendar.is_session(day := dt.date(2020, 7, 27) + dt.timedelta(days=n))
    ]
    assert sorted(market.history) == sessions
    for day in sessions:
        closes = market.history[day]
        assert set(closes) == {*market.index.terms, "HSTECH"}, day
        assert closes["HSTECH"] == pytest.approx(market.index.level(closes), abs=0.006), day


def test_ticks_are_in_order_within_hkex_hours_and_close_each_day() -> None:
    ticks = read_ticks(DEFAULT_OUT)
    assert (DEFAULT_OUT / "ticks.csv").stat().st_size < 2_000_000
    assert [t[0] for t in ticks] == sorted(t[0] for t in ticks)
    assert {t[0].date() for t in ticks} == {QUIET, RALLY}
    assert "HSTECH" not in {t[1] for t in ticks}
    for ts, _, _ in ticks:
        assert ts.utcoffset() == dt.timedelta(hours=8)
        assert dt.time(9, 30) <= ts.time() <= dt.time(12) or dt.time(13) <= ts.time() <= dt.time(16)
    for day in (QUIET, RALLY):
        last: dict[str, dt.datetime] = {}
        for ts, symbol, _ in ticks:
            if ts.date() == day:
                last[symbol] = ts
        assert len(last) == len(load_index(DEFAULT_OUT).terms)
        assert min(last.values()).time() >= dt.time(15, 59), day


def gain_since(market: Market, change: float) -> dt.date | None:
    """The latest session before RALLY whose close-to-close gain is at least change."""
    pairs = list(zip(market.days[1:], market.closes[:-1], market.closes[1:], strict=True))
    return next((day for day, a, b in reversed(pairs) if b / a - 1 >= change), None)


def close_since(market: Market, price: float) -> dt.date | None:
    pairs = zip(market.days, market.closes, strict=True)
    return next((day for day, close in reversed(list(pairs)) if close >= price), None)


def test_a_quiet_day_then_the_best_day_since_november_2021(market: Market) -> None:
    previous, quiet = market.closes[-2], market.closes[-1]
    assert abs(quiet / previous - 1) <= 0.015
    assert all(abs(level / previous - 1) <= 0.015 for _, level in market.quiet_levels)
    change = market.rally / quiet - 1
    assert 0.04 <= change <= 0.045
    crossed_at, crossed = next((ts, lv) for ts, lv in market.rally_levels if lv >= quiet * 1.04)
    assert crossed_at.time() >= dt.time(13), "+4% is crossed in the afternoon"
    for move in (change, crossed / quiet - 1):
        since = gain_since(market, move)
        assert since is not None and (since.year, since.month) == (2021, 11), since


def test_a_four_year_high_on_the_rally_day_only(market: Market) -> None:
    since_2021 = [
        c for day, c in zip(market.days, market.closes, strict=True) if day >= dt.date(2021, 9, 18)
    ]
    assert market.rally > max(since_2021)
    quiet_window = [
        c
        for day, c in zip(market.days[:-1], market.closes[:-1], strict=True)
        if day >= dt.date(2021, 9, 17)
    ]
    assert max(level for _, level in market.quiet_levels) <= max(quiet_window)
    since = close_since(market, market.rally)
    assert since is not None and dt.date(2021, 8, 1) <= since <= dt.date(2021, 11, 30), since


def test_about_41_percent_year_to_date_crossing_40_on_the_rally_day(market: Market) -> None:
    base = market.history[dt.date(2024, 12, 31)]["HSTECH"]
    assert 0.405 <= market.rally / base - 1 <= 0.415
    before = [c for day, c in zip(market.days, market.closes, strict=True) if day.year == 2025]
    before += [level for _, level in market.quiet_levels]
    assert max(before) < base * 1.4
    assert max(level for _, level in market.rally_levels) >= base * 1.4


def test_baidu_and_alibaba_lead_most_rise_a_few_fall(market: Market) -> None:
    quiet, rally = market.quiet_closes, market.rally_closes
    points = {s: market.index.points(s, rally[s] - quiet[s]) for s in market.index.terms}
    leaders = sorted(points, key=points.__getitem__, reverse=True)[:2]
    assert leaders == [BAIDU, ALIBABA], [market.index.names[s] for s in leaders]
    moves = {s: rally[s] / quiet[s] - 1 for s in market.index.terms}
    assert moves[BAIDU] >= 0.12 and moves[ALIBABA] >= 0.06
    falling = sum(1 for m in moves.values() if m < 0)
    assert 2 <= falling <= len(moves) // 4
