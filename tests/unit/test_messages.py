"""Decoding and placing the messages of the ticks topic."""

from __future__ import annotations

import orjson

from alerts.catalog import Market
from alerts.messages import Incoming, Rejected, SessionEndAt, TickAt, position, route
from alerts.sessions import CalendarBuildError, ExchangeCalendar
from schemas.instruments import InstrumentsFile

MARKET = Market(InstrumentsFile(default_exchange="XHKG"), ())
GOOD = {"symbol": "A.HK", "price": 10.0, "ts": "2025-09-18T10:00:00+08:00"}


def message(value: object, offset: int = 7) -> Incoming:
    return Incoming(1, offset, orjson.dumps(value))


def test_a_single_tick_is_placed_at_its_offset() -> None:
    (item,) = route(message(GOOD), MARKET)
    assert isinstance(item, TickAt)
    assert (item.session.day.isoformat(), item.position) == ("2025-09-18", position(7))


def test_a_batch_places_each_tick_after_the_last() -> None:
    batch = {"type": "batch", "ticks": [GOOD, {**GOOD, "symbol": "B.HK"}, GOOD]}
    items = route(message(batch), MARKET)
    assert [i.position for i in items if isinstance(i, TickAt)] == [
        position(7, 0),
        position(7, 1),
        position(7, 2),
    ]
    assert position(7, 2) < position(8, 0)


def test_a_bad_tick_in_a_batch_is_dead_lettered_alone() -> None:
    bad = {**GOOD, "price": -1}
    saturday = {**GOOD, "ts": "2025-09-20T10:00:00+08:00"}
    items = route(message({"type": "batch", "ticks": [GOOD, bad, saturday]}), MARKET)
    assert [type(i).__name__ for i in items] == ["TickAt", "Rejected", "Rejected"]
    rejected = [i for i in items if isinstance(i, Rejected)]
    assert [r.reason for r in rejected] == ["invalid_tick", "outside_session"]
    assert rejected[0].detail.startswith("ticks.1: price")
    assert orjson.loads(rejected[0].message.value) == bad


def test_session_ends_and_garbage() -> None:
    end = {"type": "session_end", "exchange": "XHKG", "session": "2025-09-18"}
    assert isinstance(route(message(end), MARKET)[0], SessionEndAt)
    (garbage,) = route(Incoming(0, 0, b"{nope"), MARKET)
    assert isinstance(garbage, Rejected) and garbage.reason == "invalid_json"
    (empty,) = route(message({"type": "batch", "ticks": []}), MARKET)
    assert isinstance(empty, Rejected) and empty.reason == "invalid_tick"


def test_a_tick_beyond_the_calendar_says_so() -> None:
    # exchange_calendars knows Shanghai from 1990-12-03 (its bound_min) to 2026-12-31.
    shanghai = Market(InstrumentsFile(default_exchange="XSHG"), ())
    last = shanghai.calendar("XSHG").last_day
    after = {**GOOD, "ts": f"{last.year + 1}-06-01T10:00:00+08:00"}
    before = {**GOOD, "ts": "1990-06-01T10:00:00+08:00"}
    for tick in (after, before):
        (item,) = route(message(tick), shanghai)
        assert isinstance(item, Rejected) and item.reason == "beyond_calendar"
        assert f"from 1990-12-03 to {last}" in item.detail, item.detail


def test_a_tick_before_1970_is_beyond_every_calendar() -> None:
    nyse = Market(InstrumentsFile(default_exchange="XNYS"), ())
    (item,) = route(message({**GOOD, "ts": "1969-07-21T14:00:00-04:00"}), nyse)
    assert isinstance(item, Rejected) and item.reason == "beyond_calendar"
    assert "the XNYS calendar, which knows sessions from 1970-01-01 to " in item.detail


def test_a_tick_of_the_1990s_is_placed_in_its_session() -> None:
    (item,) = route(message({**GOOD, "ts": "1997-10-28T10:00:00+08:00"}), MARKET)
    assert isinstance(item, TickAt), item
    assert item.session.day.isoformat() == "1997-10-28"


class NoCalendars(Market):
    def calendar(self, exchange: str) -> ExchangeCalendar:
        raise CalendarBuildError(f"exchange_calendars cannot build the {exchange} calendar")


def test_a_session_end_for_an_exchange_without_a_calendar_is_dead_lettered() -> None:
    end = {"type": "session_end", "exchange": "XTAE", "session": "2025-09-18"}
    (item,) = route(message(end), NoCalendars(InstrumentsFile(), ()))
    assert isinstance(item, Rejected) and item.reason == "unknown_exchange"
    assert item.detail == "exchange_calendars cannot build the XTAE calendar"
