"""Minute bars: ticks folded into open, high, low, close per instrument, session and minute."""

from __future__ import annotations

from datetime import date
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from alerts.core.minute_bars import (
    BarKey,
    Ohlc,
    PricedMinute,
    fold,
    in_session_order,
    local_minute,
)
from alerts.core.sessions import UnknownExchangeError, exchange_timezone

HSTECH = BarKey("HSTECH", date(2025, 9, 18))
BIDU = BarKey("BIDU", date(2025, 9, 18))


def test_a_minute_opens_with_its_first_tick_and_closes_with_its_last() -> None:
    ticks = [
        PricedMinute(HSTECH, "09:30", 100.0),
        PricedMinute(HSTECH, "09:30", 103.5),
        PricedMinute(BIDU, "09:30", 7.0),
        PricedMinute(HSTECH, "09:30", 99.25),
        PricedMinute(HSTECH, "09:31", 101.0),
        PricedMinute(HSTECH, "09:30", 100.5),  # late in its partition: still its minute
    ]
    assert fold(ticks) == {
        HSTECH: {"09:30": Ohlc(100.0, 103.5, 99.25, 100.5), "09:31": Ohlc.of(101.0)},
        BIDU: {"09:30": Ohlc.of(7.0)},
    }


def test_sessions_of_one_instrument_are_bars_of_their_own() -> None:
    friday = BarKey("HSTECH", date(2025, 9, 19))
    bars = fold([PricedMinute(HSTECH, "10:00", 1.0), PricedMinute(friday, "10:00", 2.0)])
    assert bars == {HSTECH: {"10:00": Ohlc.of(1.0)}, friday: {"10:00": Ohlc.of(2.0)}}


prices = st.floats(min_value=0.01, max_value=1e6, allow_nan=False, allow_infinity=False)
ticks_strategy = st.lists(
    st.builds(
        PricedMinute,
        st.sampled_from([HSTECH, BIDU]),
        st.sampled_from(["09:30", "09:31", "16:05"]),
        prices,
    ),
    max_size=40,
)


@given(ticks_strategy, st.lists(st.integers(min_value=0, max_value=40), max_size=4))
def test_polls_merged_make_the_bars_of_one_poll(ticks: list[PricedMinute], cuts: list[int]) -> None:
    """What Redis does with each poll's bars (bar_store's script): the stored bar `then`
    the new one. However the ticks are split into polls, the bars come out the same."""
    bounds = [0, *sorted(min(c, len(ticks)) for c in cuts), len(ticks)]
    stored: dict[BarKey, dict[str, Ohlc]] = {}
    for start, end in pairwise(bounds):
        for key, minutes in fold(ticks[start:end]).items():
            held = stored.setdefault(key, {})
            for minute, bar in minutes.items():
                held[minute] = held[minute].then(bar) if minute in held else bar
    assert stored == fold(ticks)


@given(ticks_strategy)
def test_ticks_delivered_twice_change_no_bar(ticks: list[PricedMinute]) -> None:
    """At least once: after a restart the ticks since the last commit come again."""
    assert fold([*ticks, *ticks]) == fold(ticks)


def test_minutes_are_on_the_exchange_clock() -> None:
    ts_ms = 1758159000000  # 2025-09-18 01:30 UTC
    assert exchange_timezone("XHKG") == ZoneInfo("Asia/Hong_Kong")
    assert exchange_timezone("NASDAQ") == ZoneInfo("America/New_York")  # an alias
    assert exchange_timezone("24/7") == ZoneInfo("UTC")
    assert local_minute(ts_ms, exchange_timezone("XHKG")) == "09:30"
    assert local_minute(ts_ms + 59_999, exchange_timezone("24/7")) == "01:30"
    assert local_minute(ts_ms + 60_000, exchange_timezone("24/7")) == "01:31"
    with pytest.raises(UnknownExchangeError):
        exchange_timezone("XHKK")


def test_a_session_past_midnight_has_its_small_hours_last() -> None:
    bars = {"00:10": Ohlc.of(3.0), "23:59": Ohlc.of(2.0), "18:00": Ohlc.of(1.0)}
    assert [m for m, _ in in_session_order(bars, "17:30")] == ["18:00", "23:59", "00:10"]
    assert [m for m, _ in in_session_order(bars, "00:00")] == ["00:10", "18:00", "23:59"]


def test_stored_text_reads_back_exactly() -> None:
    bar = Ohlc(0.1 + 0.2, 1e-7, 123456.789, 3.0)
    assert Ohlc.parse(bar.text()) == bar
