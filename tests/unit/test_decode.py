"""Decoding and placing the messages of the ticks topic."""

from __future__ import annotations

import json
import math

import orjson

from alerts.core.decode import (
    DEAD_LETTER_MAX_BYTES,
    Incoming,
    Rejected,
    SessionEndAt,
    TickAt,
    position,
    route,
)
from alerts.core.market import Market
from alerts.core.sessions import CalendarBuildError, ExchangeCalendar
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
    assert rejected[1].detail.startswith("ticks.2: 2025-09-20T02:00:00+00:00 is outside")
    # Each dead letter is the tick alone, not the batch with its good ticks.
    assert [orjson.loads(r.message.value or b"") for r in rejected] == [bad, saturday]


def test_a_valid_tick_of_a_batch_that_cannot_be_placed_is_dead_lettered_alone() -> None:
    unknown = {**GOOD, "symbol": "B.HK"}
    hk = Market(InstrumentsFile(instruments=[{"symbol": "A.HK", "exchange": "XHKG"}]), ())
    items = route(message({"type": "batch", "ticks": [GOOD, unknown]}), hk)
    assert [type(i).__name__ for i in items] == ["TickAt", "Rejected"]
    rejected = items[1]
    assert isinstance(rejected, Rejected) and rejected.reason == "unknown_instrument"
    assert rejected.detail.startswith("ticks.1: B.HK is not in the instruments file")
    assert orjson.loads(rejected.message.value or b"") == unknown
    assert (rejected.message.partition, rejected.message.offset) == (1, 7)


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


def test_a_batch_with_nan_or_infinity_keeps_its_good_ticks() -> None:
    good = orjson.dumps(GOOD)
    for bad in (b"NaN", b"Infinity", b"1e309"):
        value = b'{"type":"batch","ticks":[' + good + b',{"symbol":"A.HK","price":' + bad
        value += b',"ts":1}, ' + good + b"]}"
        items = route(Incoming(1, 7, value), MARKET)
        assert [type(i).__name__ for i in items] == ["TickAt", "Rejected", "TickAt"], bad
        rejected = items[1]
        assert isinstance(rejected, Rejected) and rejected.detail.startswith("ticks.1: price")
        # The dead letter says what came, not null.
        assert not math.isfinite(json.loads(rejected.message.value)["price"])


def test_a_batch_whose_envelope_is_wrong_is_rejected_whole() -> None:
    for batch in (
        {"type": "batch", "ticks": [GOOD], "source": "feed-7"},
        {"type": "batch", "ticks": [GOOD] * 10_000 + [{"bad": 1}]},
        {"ticks": [GOOD], "note": "batch"},
    ):
        (item,) = route(message(batch), MARKET)
        assert isinstance(item, Rejected) and item.reason == "invalid_tick"
        assert not item.detail.startswith("ticks."), item.detail


def test_a_message_without_a_value_is_dead_lettered() -> None:
    (item,) = route(Incoming(2, 9, None), MARKET)
    assert isinstance(item, Rejected) and item.reason == "invalid_json"
    assert item.message.value is None  # dead-lettered as it came


def test_a_session_end_that_names_no_session_is_dead_lettered() -> None:
    hk = Market(InstrumentsFile(instruments=[{"symbol": "A.HK", "exchange": "XHKG"}]), ())
    end = {"type": "session_end", "exchange": "XHKG", "session": "2025-09-18"}
    assert isinstance(route(message({**end, "symbol": "A.HK"}), hk)[0], SessionEndAt)
    cases = [
        ({**end, "symbol": "B.HK"}, "unknown_instrument"),
        ({**end, "exchange": "24/7", "symbol": "A.HK"}, "unknown_instrument"),
        ({**end, "session": "2071-09-18"}, "beyond_calendar"),
        ({**end, "session": "2025-09-20"}, "outside_session"),  # a Saturday
    ]
    for value, reason in cases:
        (item,) = route(message(value), hk)
        assert isinstance(item, Rejected) and item.reason == reason, (value, item)


def test_a_dead_letter_is_the_message_unless_too_large_for_kafka() -> None:
    small = Rejected(Incoming(2, 9, b"{nope"), "invalid_json", "value: Invalid JSON")
    value, headers = small.letter()
    assert value == b"{nope"
    assert dict(headers) == {
        "reason": b"invalid_json",
        "error": b"value: Invalid JSON",
        "partition": b"2",
        "offset": b"9",
    }
    huge = b'{"symbol": "A.HK", "pad": "' + b"x" * 1_048_000 + b'"}'
    value, headers = Rejected(Incoming(0, 1, huge), "invalid_tick", "pad: Extra").letter()
    assert value == huge[:DEAD_LETTER_MAX_BYTES] and DEAD_LETTER_MAX_BYTES < 1_000_000 - 2_000
    assert dict(headers)["truncated"] == str(len(huge)).encode()
