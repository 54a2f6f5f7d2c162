"""The batch step without a server: in one step or in two, redelivered, closing sessions."""

from __future__ import annotations

import copy
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alerts.core.batch import BatchStep, apply_batch
from alerts.core.clock import SessionClock
from alerts.core.decode import Incoming, Rejected, Routed, TickAt, route
from alerts.core.instrument import InstrumentState, seed_closes
from alerts.core.market import Market
from alerts.core.outbox import OutboxEntry
from alerts.core.outgoing import Record
from schemas.indices import IndicesFile
from schemas.instruments import InstrumentsFile
from schemas.ticks import SessionEnd, Tick
from streams.replay import encode
from tests.oracle import oracle
from tests.unit.test_instrument import ALL_RULES, hk_history

MARKET = Market(
    InstrumentsFile.model_validate(
        {
            "default_exchange": "24/7",
            "instruments": [
                {"symbol": "0700.HK", "exchange": "XHKG"},
                {"symbol": "9988.HK", "exchange": "XHKG"},
                {"symbol": "HSTECH", "exchange": "XHKG", "kind": "index"},
                {"symbol": "TECH2", "exchange": "XHKG", "kind": "index"},  # computed
            ],
        }
    ),
    ALL_RULES,
    IndicesFile.model_validate(
        {
            "indices": [
                {
                    "symbol": "TECH2",
                    "exchange": "XHKG",
                    "divisor": 1,
                    "constituents": [
                        {"symbol": "0700.HK", "shares": 10},
                        {"symbol": "9988.HK", "shares": 20},
                    ],
                }
            ]
        }
    ),
)
HK = MARKET.calendar("XHKG")
DAY = MARKET.calendar("24/7")
HK_SESSIONS = [
    s for s in (HK.session(date(2025, 8, 1) + timedelta(days=i)) for i in range(60)) if s
]
EXCHANGE = {"0700.HK": "XHKG", "9988.HK": "XHKG", "BIDU": "24/7", "BABA": "24/7"}
MARKS = {0: 17, 2: 5}


class Worker:
    """What the engine carries between batches (states, clock, members), in memory."""

    def __init__(self, states: dict[str, InstrumentState] | None = None) -> None:
        self.states = dict(states or {})
        self.clock = SessionClock()
        self.members: dict[int, set[str]] = {}

    def apply(self, routed: Sequence[Routed]) -> BatchStep:
        for item in routed:  # the engine loads these; a new instrument starts empty
            if isinstance(item, TickAt) and item.tick.symbol not in self.states:
                self.states[item.tick.symbol] = InstrumentState(item.tick.symbol)
        step = apply_batch(
            routed, self.states, self.clock, self.members, MARKET, MARKS, "constituents"
        )
        for moved in step.moved:
            self.states[moved.symbol] = moved.state
        self.clock = step.clock
        for partition, found in step.registered.items():
            self.members.setdefault(partition, set()).update(found)
        return step


@dataclass(frozen=True)
class Case:
    closes: dict[str, list[tuple[date, float]]]  # seeded, before the ticks
    seeded: dict[str, InstrumentState]
    routed: list[Routed]


def _routed(events: list[tuple[int, int, bytes]]) -> list[Routed]:
    """(ts_ms, partition, message) in time order, at rising offsets per partition."""
    offsets: dict[int, int] = {}
    out: list[Routed] = []
    for _, partition, value in sorted(events, key=lambda e: e[0]):
        offset = offsets[partition] = offsets.get(partition, -1) + 1
        for item in route(Incoming(partition, offset, value), MARKET):
            assert not isinstance(item, Rejected), item
            out.append(item)
    return out


def _end(exchange: str, day: date, symbol: str | None = None) -> tuple[int, bytes]:
    """An end-of-day message, at the instant its session stops taking ticks."""
    calendar = MARKET.calendar(exchange)
    session = calendar.session(day)
    assert session is not None
    end = SessionEnd(type="session_end", exchange=exchange, session=day, symbol=symbol)
    return calendar.accepts_until(session) + 1, end.model_dump_json(exclude_none=True).encode()


@st.composite
def cases(draw: st.DrawFn) -> Case:
    """A few instruments on two partitions over a few HKEX sessions: ticks in time order
    per partition, some end-of-day messages (per exchange and per instrument)."""
    symbols = draw(st.lists(st.sampled_from(sorted(EXCHANGE)), min_size=1, max_size=4, unique=True))
    partition_of = {s: draw(st.integers(0, 1)) for s in symbols}
    start = draw(st.integers(5, len(HK_SESSIONS) - 5))
    days = HK_SESSIONS[start : start + draw(st.integers(1, 4))]
    closes = {
        s: [(d.day, 100.0 + i) for i, d in enumerate(HK_SESSIONS[start - 3 : start])]
        for s in symbols
    }
    seeded = {s: seed_closes(InstrumentState(s), closes[s]).state for s in symbols}
    price = dict.fromkeys(symbols, 103.0)
    events: list[tuple[int, int, bytes]] = []
    for session in days:
        span = session.close_ms - session.open_ms
        for symbol in symbols:
            for at in sorted(draw(st.lists(st.integers(0, span), max_size=4))):
                price[symbol] = round(price[symbol] * draw(st.floats(0.95, 1.06)), 3)
                tick = Tick.model_validate(
                    {"symbol": symbol, "price": price[symbol], "ts": session.open_ms + at}
                )
                events.append((tick.ts_ms, partition_of[symbol], encode(tick)))
            if draw(st.integers(0, 5)) == 0:
                exchange = EXCHANGE[symbol]
                day = session.day if exchange == "XHKG" else session.open.date()
                ts_ms, value = _end(exchange, day, symbol)
                events.append((ts_ms, partition_of[symbol], value))
        for exchange in ("XHKG", "24/7"):
            day = session.day if exchange == "XHKG" else session.open.date()
            for partition in draw(st.sets(st.integers(0, 1))):
                ts_ms, value = _end(exchange, day)
                events.append((ts_ms, partition, value))
    return Case(closes, seeded, _routed(events))


def _forwarded(records: Sequence[Record]) -> dict[tuple[bytes, int], list[object]]:
    """Each (index, partition)'s prices and session ends, whatever messages carried them."""
    out: dict[tuple[bytes, int], list[object]] = {}
    for record in records:
        body = orjson.loads(record.value or b"")
        key = (record.key, body["source_partition"])
        if body["type"] == "prices":
            out.setdefault(key, []).extend(tuple(p) for p in body["prices"])
        else:
            out.setdefault(key, []).append(("end", body["session"]))
    return out


def _by_instrument(steps: Sequence[BatchStep]) -> dict[str, list[str]]:
    """Each instrument's alert ids in the order raised (the order between instruments
    closed in one sweep follows a set's, which is arbitrary)."""
    out: dict[str, list[str]] = {}
    for step in steps:
        for alert in step.alerts:
            out.setdefault(alert.instrument, []).append(alert.alert_id)
    return out


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=cases(), data=st.data())
def test_a_batch_in_one_step_equals_it_split_in_two_anywhere(
    case: Case, data: st.DataObject
) -> None:
    cut = data.draw(st.integers(0, len(case.routed)))
    whole = Worker(case.seeded)
    one = whole.apply(case.routed)
    parts = Worker(case.seeded)
    two = [parts.apply(case.routed[:cut]), parts.apply(case.routed[cut:])]
    assert parts.states == whole.states
    assert parts.clock == whole.clock
    assert parts.members == whole.members
    assert _by_instrument(two) == _by_instrument([one])
    assert sum(s.applied for s in two) == one.applied
    assert sum(s.duplicates for s in two) == one.duplicates == 0
    assert sum((Counter(s.ignored) for s in two), Counter()) == Counter(one.ignored)
    forwarded = [r for s in two for r in s.forwards]
    assert _forwarded(forwarded) == _forwarded(one.forwards)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=cases())
def test_a_redelivered_batch_changes_nothing_and_counts_its_ticks_as_duplicates(
    case: Case,
) -> None:
    worker = Worker(case.seeded)
    first = worker.apply(case.routed)
    states, members = dict(worker.states), copy.deepcopy(worker.members)
    again = worker.apply(case.routed)
    ticks = sum(1 for item in case.routed if isinstance(item, TickAt))
    assert first.applied + sum(first.ignored.values()) == ticks
    assert (again.moved, again.alerts, again.applied, dict(again.ignored)) == ([], [], 0, {})
    assert again.duplicates == ticks
    assert (worker.states, worker.members, again.registered) == (states, members, {})


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=cases(), data=st.data())
def test_each_alert_is_in_exactly_one_outbox_entry_of_its_instrument(
    case: Case, data: st.DataObject
) -> None:
    cut = data.draw(st.integers(0, len(case.routed)))
    worker = Worker(case.seeded)
    for part in (case.routed[:cut], case.routed[cut:]):
        step = worker.apply(part)
        raised = Counter((a.instrument, a.model_dump_json().encode()) for a in step.alerts)
        entries = [(m.symbol, e) for m in step.moved for e in m.outbox]
        assert Counter((symbol, e.alert_json) for symbol, e in entries) == raised
        for _, entry in entries:
            assert entry.marks == MARKS
            assert OutboxEntry.decode(entry.encoded) == entry


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=cases(), data=st.data())
def test_instruments_sharing_partitions_alert_as_the_oracle_has_each_alone(
    case: Case, data: st.DataObject
) -> None:
    ticks: dict[str, list[Tick]] = {}
    last: dict[str, date] = {}
    for item in case.routed:
        if isinstance(item, TickAt):
            ticks.setdefault(item.tick.symbol, []).append(item.tick)
            last[item.spec.exchange] = item.session.day
    ends = [_end(exchange, day) for exchange, day in last.items()]  # every session closes
    routed = case.routed + _routed([(ts_ms, p, end) for ts_ms, end in ends for p in (0, 1)])
    worker = Worker(case.seeded)
    size = data.draw(st.integers(1, max(1, len(routed))))
    steps = [worker.apply(routed[i : i + size]) for i in range(0, len(routed), size)]
    for symbol, closes in case.closes.items():
        calendar = MARKET.calendar(EXCHANGE[symbol])
        expected = oracle(symbol, "stock", calendar, ALL_RULES, closes, ticks.get(symbol, []))
        got = [a.alert_id for step in steps for a in step.alerts if a.instrument == symbol]
        assert got == [e.alert_id for e in expected], symbol


def test_a_tick_past_a_sessions_end_tells_the_indices_after_that_sessions_prices() -> None:
    first, second = HK_SESSIONS[10], HK_SESSIONS[11]
    events = [
        (session.open_ms + 60_000, 0, encode(Tick.model_validate(
            {"symbol": "0700.HK", "price": price, "ts": session.open_ms + 60_000})))
        for session, price in ((first, 10.0), (second, 11.0))
    ]  # fmt: skip
    step = Worker().apply(_routed(events))
    bodies = [orjson.loads(r.value or b"") for r in step.forwards]
    assert [(b["type"], b.get("session"), [p[1] for p in b.get("prices", [])]) for b in bodies] == [
        ("prices", None, [10.0]),
        ("session_end", first.day.isoformat(), []),
        ("prices", None, [11.0]),
    ]


def test_each_forwarded_message_says_whether_its_partition_is_behind() -> None:
    session = HK_SESSIONS[10]
    ts = session.open_ms + 60_000
    tick = Tick.model_validate({"symbol": "0700.HK", "price": 10.0, "ts": ts})
    routed = _routed([(ts, 0, encode(tick))])
    worker = Worker()
    worker.states["0700.HK"] = InstrumentState("0700.HK")
    # Partition 0 was read and has more; 3 was not read yet but holds messages; 5 is idle.
    step = apply_batch(routed, worker.states, worker.clock, {}, MARKET, MARKS, "c",
                       {0: True, 3: True, 5: False})  # fmt: skip
    bodies = [orjson.loads(r.value or b"") for r in step.forwards]
    assert [(b["source_partition"], b["behind"], b["watermark_ms"]) for b in bodies] == [
        (0, True, ts),
        (3, True, 0),
        (5, False, 0),
    ]
    step = apply_batch(routed, worker.states, worker.clock, {}, MARKET, MARKS, "c", {0: False})
    assert [orjson.loads(r.value or b"")["behind"] for r in step.forwards] == [False]
    # Unknown: caught up, as a message from before the field existed reads.
    step = apply_batch(routed, worker.states, worker.clock, {}, MARKET, MARKS, "c")
    assert [orjson.loads(r.value or b"")["behind"] for r in step.forwards] == [False]


def test_arguments_are_not_changed() -> None:
    worker = Worker({"BIDU": InstrumentState("BIDU")})
    day = date(2025, 9, 18)
    ts_ms, end = _end("24/7", day)
    tick = Tick.model_validate({"symbol": "BIDU", "price": 1.0, "ts": ts_ms - 3_600_000})
    routed = _routed([(ts_ms - 3_600_000, 0, encode(tick)), (ts_ms, 0, end)])
    states, clock, members = dict(worker.states), worker.clock.copy(), {0: {"BABA"}}
    step = apply_batch(routed, worker.states, worker.clock, members, MARKET, MARKS, "c")
    assert (worker.states, worker.clock, members) == (states, clock, {0: {"BABA"}})
    assert step.registered == {0: {"BIDU"}} and step.clock != clock
    assert [m.state.closed for m in step.moved] == [True]


# -- an end-of-day message -----------------------------------------------------------


@st.composite
def open_sessions(draw: st.DrawFn) -> dict[str, tuple[str, int, bool, bool]]:
    """Instruments of partition 0: exchange, session (relative to the day ending),
    closed, has a price."""
    symbols = ["0700.HK", "9988.HK", "HSTECH", "BIDU", "BABA", "TECH2", "NTES"]
    return {
        s: (
            "XHKG" if s in ("0700.HK", "9988.HK", "HSTECH", "TECH2") else "24/7",
            draw(st.integers(-2, 1)),
            draw(st.booleans()),
            draw(st.booleans()),
        )
        for s in draw(st.lists(st.sampled_from(symbols), unique=True))
    }


@settings(max_examples=100, deadline=None)
@given(found=open_sessions(), index=st.integers(3, len(HK_SESSIONS) - 3))
def test_an_end_of_day_message_closes_exactly_the_open_sessions_that_ended(
    found: dict[str, tuple[str, int, bool, bool]], index: int
) -> None:
    ending = HK_SESSIONS[index]
    states = {}
    for symbol, (exchange, shift, closed, priced) in found.items():
        day = HK_SESSIONS[index + shift].day
        if exchange == "24/7":
            day = ending.day + timedelta(days=shift)
        state = InstrumentState(symbol, session=day, closed=closed, last=100.0 if priced else None)
        states[symbol] = state
    worker = Worker(states)
    worker.members = {0: set(found), 1: {"0700.HK"}}
    ts_ms, end = _end("XHKG", ending.day)
    step = worker.apply(_routed([(ts_ms, 0, end)]))
    should_close = {
        symbol
        for symbol, (exchange, shift, closed, priced) in found.items()
        if exchange == "XHKG" and symbol != "TECH2" and shift <= 0 and not closed and priced
    }
    assert {m.symbol for m in step.moved} == should_close
    for moved in step.moved:
        assert moved.state.closed and moved.history_changed
        assert moved.state.history.last_session == states[moved.symbol].session
    assert worker.clock.now(0, "XHKG") == ts_ms and worker.clock.now(1, "XHKG") == -1
    ends = [orjson.loads(r.value or b"") for r in step.forwards]
    assert [(e["index"], e["session"], e["source_partition"]) for e in ends] == [
        ("TECH2", ending.day.isoformat(), 0)
    ]


# -- against the oracle --------------------------------------------------------------


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=hk_history(), data=st.data())
def test_alerts_in_batches_of_any_size_are_the_oracles(
    case: tuple[list[tuple[date, float]], list[Tick]], data: st.DataObject
) -> None:
    seeded, ticks = case
    state = seed_closes(InstrumentState("HSTECH", kind="index"), seeded).state
    last = HK.session_at(ticks[-1].ts_ms)
    assert last is not None
    end_ms, end = _end("XHKG", last.day)  # closes the last session, as the oracle does
    routed = _routed([(t.ts_ms, 0, encode(t)) for t in ticks] + [(end_ms, 0, end)])
    worker = Worker({"HSTECH": state})
    size = data.draw(st.integers(1, max(1, len(routed))))
    steps = [worker.apply(routed[i : i + size]) for i in range(0, len(routed), size)]
    got = [
        (a.alert_id, a.rule, a.instrument, a.session, a.stage, a.ts, round(a.price, 9),
         round(a.threshold, 9), round(a.reference_price, 9), a.since, a.record)
        for step in steps for a in step.alerts
    ]  # fmt: skip
    assert got == [e.key() for e in oracle("HSTECH", "index", HK, ALL_RULES, seeded, ticks)]
    assert worker.states["HSTECH"].closed
