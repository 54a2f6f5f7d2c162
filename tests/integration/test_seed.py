"""Seeding daily history into market state in a real Redis."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from redis.asyncio import Redis

from alerts.core.instrument import InstrumentState
from alerts.core.market import Market
from alerts.store.instruments import Change, StateStore
from schemas.errors import InputError
from schemas.instruments import load_instruments
from schemas.rules import load_rules
from streams.market_files import bundled
from streams.seed import SeedReport, seed_history

INSTRUMENTS = """\
instruments:
  - {symbol: 0700.HK, name: Tencent, exchange: XHKG}
  - {symbol: 9988.HK, name: Alibaba, exchange: XHKG}
  - {symbol: HSI, name: Hang Seng Index, exchange: XHKG, kind: index}
"""

# Every date is an XHKG session (checked below), over four years.
TENCENT = [
    ("2021-06-01", 600.0),
    ("2022-06-01", 400.0),
    ("2023-06-01", 350.0),
    ("2024-06-03", 500.0),
    ("2024-12-02", 420.0),
]
ALIBABA = [("2021-06-01", 210.0), ("2022-06-01", 100.0), ("2023-06-01", 80.0)]
HSI = [("2022-06-01", 21000.0), ("2024-06-03", 18400.0)]
SYMBOLS = ("0700.HK", "9988.HK", "HSI")


@pytest.fixture
def market(tmp_path: Path) -> Market:
    path = tmp_path / "instruments.yaml"
    path.write_text(INSTRUMENTS)
    rules = load_rules(bundled("rules.yaml"))
    return Market(load_instruments(path), tuple(rules.rules))


def history_file(tmp_path: Path, name: str, rows: dict[str, list[tuple[str, float]]]) -> Path:
    """A CSV with a header, rows interleaved across symbols (the file need not be sorted)."""
    lines = [f"{day},{symbol},{close}" for symbol, closes in rows.items() for day, close in closes]
    lines.sort(key=lambda line: line.split(",")[0])
    path = tmp_path / name
    path.write_text("\n".join(["date,symbol,close", *lines]) + "\n")
    return path


def full_history(tmp_path: Path) -> Path:
    return history_file(
        tmp_path, "history.csv", {"0700.HK": TENCENT, "9988.HK": ALIBABA, "HSI": HSI}
    )


def test_the_sample_dates_are_xhkg_sessions(market: Market) -> None:
    calendar = market.calendar("XHKG")
    for day, _ in TENCENT + ALIBABA + HSI:
        assert calendar.is_session(date.fromisoformat(day)), day


async def test_seeding_sets_each_instruments_history(
    tmp_path: Path, store: StateStore, market: Market
) -> None:
    report = await seed_history(store, market, full_history(tmp_path))

    assert report == SeedReport(instruments=3, applied=10, skipped=0, not_sessions=0)
    states = (await store.load(SYMBOLS)).states
    assert {symbol: states[symbol].version for symbol in SYMBOLS} == dict.fromkeys(SYMBOLS, 1)

    tencent = states["0700.HK"].state
    assert tencent.session is None  # seeding adds history, not a live session
    assert (tencent.history.last_session, tencent.history.last_close) == (date(2024, 12, 2), 420.0)
    assert tencent.history.closes_high.count == 5
    # Highest since: 450 was last reached on 2024-06-03 (500), 550 only on 2021-06-01 (600).
    assert tencent.history.closes_high.since(450.0) == date(2024, 6, 3)
    assert tencent.history.closes_high.since(550.0) == date(2021, 6, 1)
    assert tencent.history.closes_high.since(600.01) is None  # a record
    assert tencent.history.closes_low.since(380.0) == date(2023, 6, 1)
    assert tencent.history.closes_high.extreme_since(date(2022, 1, 1)) == 500.0
    # YTD base of 2024: the last close of 2023.
    assert tencent.history.ytd_base(date(2024, 12, 3)) == 350.0

    alibaba = states["9988.HK"].state
    assert (alibaba.history.last_session, alibaba.history.last_close) == (date(2023, 6, 1), 80.0)
    assert alibaba.history.closes_low.since(79.0) is None
    assert alibaba.history.closes_high.since(150.0) == date(2021, 6, 1)

    hsi = states["HSI"].state
    assert hsi.kind == "index"  # from the instruments file
    assert (hsi.history.last_session, hsi.history.last_close) == (date(2024, 6, 3), 18400.0)


async def test_seeding_twice_changes_nothing(
    tmp_path: Path, store: StateStore, market: Market
) -> None:
    path = full_history(tmp_path)
    await seed_history(store, market, path)
    before = await store.load(SYMBOLS)

    again = await seed_history(store, market, path)

    assert again == SeedReport(instruments=3, applied=0, skipped=10, not_sessions=0)
    after = await store.load(SYMBOLS)
    assert after == before
    assert {symbol: after.states[symbol].version for symbol in SYMBOLS} == dict.fromkeys(SYMBOLS, 1)


async def test_a_later_file_appends_only_its_new_dates(
    tmp_path: Path, store: StateStore, market: Market
) -> None:
    await seed_history(store, market, full_history(tmp_path))
    later = history_file(
        tmp_path,
        "later.csv",
        {
            # 2020-06-01 is older than the history and 2024-12-02 is in it: both skipped.
            "0700.HK": [
                ("2020-06-01", 900.0),
                ("2024-12-02", 999.0),
                ("2025-01-02", 430.0),
                ("2025-03-03", 520.0),
            ],
            "9988.HK": [("2023-06-01", 80.0)],
        },
    )

    report = await seed_history(store, market, later)

    assert report == SeedReport(instruments=2, applied=2, skipped=3, not_sessions=0)
    states = (await store.load(SYMBOLS)).states
    tencent = states["0700.HK"]
    assert tencent.version == 2
    history = tencent.state.history
    assert (history.last_session, history.last_close) == (date(2025, 3, 3), 520.0)
    assert history.closes_high.count == 7
    assert history.closes_high.since(510.0) == date(2025, 3, 3)
    assert history.closes_high.since(550.0) == date(2021, 6, 1)  # not the skipped 900
    assert history.ytd_base(date(2025, 3, 4)) == 420.0  # the kept 2024-12-02 close
    assert states["9988.HK"].version == 1  # nothing new: not written
    assert states["HSI"].version == 1


async def test_dates_at_or_after_the_live_session_are_skipped(
    tmp_path: Path, store: StateStore, market: Market
) -> None:
    live = InstrumentState(
        "0700.HK", session=date(2024, 6, 3), open=495.0, high=512.0, low=490.0, last=510.0
    )
    await store.commit([Change("0700.HK", 0, live, [])], [])

    path = history_file(tmp_path, "h.csv", {"0700.HK": TENCENT})
    report = await seed_history(store, market, path)

    # 2024-06-03 (the live session) and 2024-12-02 (after it) lose to live data.
    assert report == SeedReport(instruments=1, applied=3, skipped=2, not_sessions=0)
    loaded = (await store.load(["0700.HK"])).states["0700.HK"]
    assert loaded.version == 2
    state = loaded.state
    assert (state.session, state.closed, state.last, state.high) == (
        date(2024, 6, 3),
        False,
        510.0,
        512.0,
    )
    assert (state.history.last_session, state.history.last_close) == (date(2023, 6, 1), 350.0)
    assert state.previous_close == 350.0


async def test_a_symbol_missing_from_the_instruments_file_writes_nothing(
    tmp_path: Path, store: StateStore, market: Market, redis: Redis, key_prefix: str
) -> None:
    path = history_file(
        tmp_path,
        "h.csv",
        {"0700.HK": TENCENT, "BABA": [("2024-06-03", 80.0)], "HSI": HSI},
    )

    with pytest.raises(InputError, match=r"h\.csv: BABA is not in the instruments file"):
        await seed_history(store, market, path)

    for symbol in ("0700.HK", "BABA", "HSI"):
        assert not await redis.exists(store.state_key(symbol)), symbol
    assert [key async for key in redis.scan_iter(match=f"{key_prefix}:*")] == []


async def test_dates_that_are_not_sessions_are_kept_and_counted(
    tmp_path: Path, store: StateStore, market: Market
) -> None:
    closes = [("2024-05-31", 100.0), ("2024-06-01", 103.0), ("2024-06-03", 101.0)]
    assert not market.calendar("XHKG").is_session(date(2024, 6, 1))  # a Saturday

    report = await seed_history(store, market, history_file(tmp_path, "h.csv", {"HSI": closes}))

    assert report == SeedReport(instruments=1, applied=3, skipped=0, not_sessions=1)
    history = (await store.load(["HSI"])).states["HSI"].state.history
    assert history.closes_high.count == 3
    assert history.closes_high.since(102.0) == date(2024, 6, 1)
    assert (history.last_session, history.last_close) == (date(2024, 6, 3), 101.0)


async def test_closes_of_the_1990s_are_sessions_of_their_calendar(
    tmp_path: Path, store: StateStore, market: Market
) -> None:
    closes = [("1997-10-23", 10426.3), ("1997-10-28", 9059.9), ("1999-12-30", 16962.1)]
    path = history_file(tmp_path, "h.csv", {"HSI": closes})

    report = await seed_history(store, market, path)

    assert report == SeedReport(instruments=1, applied=3, skipped=0, not_sessions=0)
    history = (await store.load(["HSI"])).states["HSI"].state.history
    assert (history.last_session, history.closes_high.since(10000.0)) == (
        date(1999, 12, 30),
        date(1999, 12, 30),
    )
