"""The index agent's core: levels in event-time order, publishing, closing, attribution."""

from __future__ import annotations

from datetime import UTC, date, datetime

from alerts.core.index_agent import IndexState, close, on_price, on_session_end, on_watermark
from alerts.core.sessions import get_calendar
from alerts.store.codec import decode, encode
from schemas.constituents import ConstituentPrice, ConstituentSessionEnd, ConstituentWatermark
from schemas.indices import IndexSpec
from schemas.ticks import SessionEnd, Tick

HK = get_calendar("XHKG")
SPEC = IndexSpec.model_validate(
    {
        "symbol": "IDX",
        "exchange": "XHKG",
        "divisor": 10.0,
        "publish_interval_s": 2.0,
        "min_coverage": 0.5,
        "constituents": [
            {"symbol": "A", "name": "Alpha", "shares": 10},
            {"symbol": "B", "name": "Beta", "shares": 20},
            {"symbol": "C", "name": "Gamma", "shares": 30},
        ],
        "changes": [
            {"effective": "2025-09-19", "add": [{"symbol": "D", "shares": 5}], "remove": ["C"]}
        ],
    }
)
START = IndexState("IDX", prices={"A": 10.0, "B": 10.0, "C": 10.0, "D": 40.0})


def ms(hkt: str, day: int = 18) -> int:
    return int(datetime.fromisoformat(f"2025-09-{day}T{hkt}+08:00").timestamp() * 1000)


def price(symbol: str, value: float, hkt: str, day: int = 18, source: int = 0) -> ConstituentPrice:
    ts = datetime.fromtimestamp(ms(hkt, day) / 1000, tz=UTC)
    return ConstituentPrice(index="IDX", symbol=symbol, price=value, ts=ts, source_partition=source)


def mark(hkt: str, source: int, day: int = 18) -> ConstituentWatermark:
    return ConstituentWatermark(index="IDX", source_partition=source, ts_ms=ms(hkt, day))


def feed(state: IndexState, *messages: object, partitions: int = 1) -> tuple[IndexState, list]:
    out: list = []
    for m in messages:
        if isinstance(m, ConstituentPrice):
            state, emitted = on_price(state, SPEC, HK, m, partitions)
        elif isinstance(m, ConstituentWatermark):
            state, emitted = on_watermark(state, SPEC, HK, m, partitions)
        else:
            assert isinstance(m, ConstituentSessionEnd)
            state, emitted = on_session_end(state, SPEC, HK, m, partitions)
        out += emitted
    return state, out


def test_the_level_follows_each_price_and_publishes_at_most_every_interval() -> None:
    state, out = feed(START, price("A", 12.0, "10:00:00"), price("B", 11.0, "10:00:01"))
    assert [(t.price, t.seq) for t in out] == [((12 * 10 + 10 * 20 + 10 * 30) / 10, 1)]
    state, out = feed(state, price("C", 9.0, "10:00:02"))
    assert [(t.price, t.seq) for t in out] == [((12 * 10 + 11 * 20 + 9 * 30) / 10, 2)]


def test_prices_wait_for_every_partition_and_apply_in_event_time_order() -> None:
    # Partition 1 runs ahead: its 11:00 price waits until partition 0 passes 11:00.
    state, out = feed(START, price("B", 20.0, "11:00:00", source=1), partitions=2)
    assert out == [] and len(state.pending) == 1
    state, out = feed(state, price("A", 30.0, "10:00:00"), partitions=2)
    assert [(t.ts.hour, t.price) for t in out] == [(2, (30 * 10 + 10 * 20 + 10 * 30) / 10)]
    state, out = feed(state, mark("11:30:00", source=0), partitions=2)
    assert [(t.ts.hour, t.price) for t in out] == [(3, (30 * 10 + 20 * 20 + 10 * 30) / 10)]
    assert state.pending == ()


def test_attribution_names_who_moved_the_index_and_what_has_reported() -> None:
    _, out = feed(START, price("B", 13.0, "10:00:00"), price("A", 9.0, "10:00:05"))
    snapshot = out[-1].index
    assert snapshot is not None
    assert [(c.symbol, c.points) for c in snapshot.contributors] == [
        ("B", 6.0),  # (13 - 10) * 20 / 10
        ("A", -1.0),
        ("C", 0.0),
    ]
    assert (snapshot.reported, snapshot.constituents, snapshot.stale) == (2, 3, ("C",))
    assert snapshot.coverage == 0.5 and snapshot.complete
    assert snapshot.led_by() == "led by Beta (+30.0%, +6 pts) and Alpha (-10.0%, -1 pts)"


def test_too_little_coverage_is_flagged_incomplete() -> None:
    _, out = feed(START, price("A", 11.0, "10:00:00"))
    assert out[0].index is not None and not out[0].index.complete


def test_the_session_closes_once_every_partition_is_past_the_close() -> None:
    end = ConstituentSessionEnd(index="IDX", exchange="XHKG", session=date(2025, 9, 18),
                                source_partition=0)  # fmt: skip
    state, out = feed(
        START,
        price("A", 11.0, "10:00:00"),
        mark("10:00:00", source=1),
        end,
        price("C", 9.0, "15:59:00", source=1),  # partition 1's last price of the day
        partitions=2,
    )
    assert not state.closed
    state, out = feed(state, end.model_copy(update={"source_partition": 1}), partitions=2)
    *_, tick, session_end = out
    assert isinstance(tick, Tick) and isinstance(session_end, SessionEnd)
    assert tick.ts == datetime(2025, 9, 18, 8, 0, tzinfo=UTC)  # 16:00 HKT
    assert tick.price == (11 * 10 + 10 * 20 + 9 * 30) / 10
    assert session_end.symbol == "IDX" and state.closed
    # A late price for the closed session changes nothing.
    assert feed(state, price("B", 50.0, "16:05:00"), partitions=2)[0].prices["B"] == 10.0


def test_a_new_session_closes_the_last_and_a_constituent_change_keeps_the_level() -> None:
    state, _ = feed(START, price("A", 11.0, "10:00:00"))
    before = state.level.level if state.level else 0.0
    state, out = feed(state, price("A", 11.0, "10:00:00", day=19))
    closing, end_of_day, opening = out
    assert closing.price == before and end_of_day.session == date(2025, 9, 18)
    # On the 19th C leaves and D joins: same level, new divisor.
    assert state.level is not None and set(state.level.weights) == {"A", "B", "D"}
    assert abs(opening.price - before) < 1e-9
    assert state.previous_closes["C"] == 10.0 and state.pending == ()


def test_a_silent_partition_holds_prices_at_most_the_rollover_wait() -> None:
    state, out = feed(START, price("A", 11.0, "10:00:00"), partitions=2)
    assert out == []
    state, out = feed(state, price("A", 11.5, "10:14:00"), partitions=2)
    assert out == []
    state, out = feed(state, price("B", 11.5, "10:16:00"), partitions=2)
    assert [t.ts.minute for t in out] == [0]  # 15 minutes behind partition 0 is released


def test_state_survives_its_json_form() -> None:
    state, _ = feed(START, price("A", 11.0, "10:00:00"), price("B", 9.0, "11:00:00", source=1),
                    partitions=2)  # fmt: skip
    assert decode(IndexState, encode(state)) == state
    closed, _ = close(state, SPEC, HK)
    assert decode(IndexState, encode(closed)) == closed


# -- the same index ticks however the partitions interleave ---------------------------

import pytest  # noqa: E402
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from schemas.constituents import ConstituentPrices  # noqa: E402


@st.composite
def partition_streams(draw: st.DrawFn) -> list[list[ConstituentPrices]]:
    """Three partitions' batches of prices over two sessions, each in its own order."""
    streams = []
    for source, symbols in enumerate((["A"], ["B"], ["C"])):
        t = ms("09:30:00")
        batches = []
        for day in (18, 19):
            t = max(t, ms("09:30:00", day))
            for _ in range(draw(st.integers(1, 4))):
                prices = []
                for _ in range(draw(st.integers(0, 4))):
                    t += draw(st.integers(1, 3_600_000))
                    t = min(t, ms("15:59:00", day))
                    prices.append((symbols[0], draw(st.floats(5, 15)), t, t))
                batches.append(ConstituentPrices(index="IDX", source_partition=source,
                                                 prices=prices, watermark_ms=t))  # fmt: skip
        batches.append(ConstituentPrices(index="IDX", source_partition=source, prices=[],
                                         watermark_ms=ms("17:00:00", 19)))  # fmt: skip
        streams.append(batches)
    return streams


# Within the rollover wait; beyond it a lagging partition no longer holds the
# index back, and its late prices may miss a close (the documented trade-off).
PATIENT = SPEC.model_copy(update={"rollover_wait_s": 10 * 86_400})


def replay(
    streams: list[list[ConstituentPrices]], order: list[int], spec: IndexSpec = PATIENT
) -> list[tuple]:
    from alerts.core.index_agent import on_prices

    state, out, cursor = START, [], [0, 0, 0]
    for source in order:
        if cursor[source] < len(streams[source]):
            state, emitted = on_prices(state, spec, HK, streams[source][cursor[source]], 3)
            cursor[source] += 1
            out += emitted
    return [(m.ts, round(m.price, 9)) if isinstance(m, Tick) else ("end", m.session) for m in out]


@settings(max_examples=60, deadline=None)
@given(streams=partition_streams(), seed=st.randoms(use_true_random=False))
def test_the_index_ticks_do_not_depend_on_how_partitions_interleave(streams, seed) -> None:  # type: ignore[no-untyped-def]
    in_turn = [s for round_ in range(20) for s in (0, 1, 2)]
    shuffled = [s for s, batches in enumerate(streams) for _ in batches]
    seed.shuffle(shuffled)
    assert replay(streams, shuffled) == replay(streams, in_turn)


def test_a_price_replayed_after_an_ingest_crash_does_not_set_the_price_back() -> None:
    from alerts.core.index_agent import on_prices

    first = ConstituentPrices(index="IDX", source_partition=0, watermark_ms=ms("10:00:01"),
                              prices=[("A", 10.5, ms("10:00:00"), 7),
                                      ("A", 11.0, ms("10:00:01"), 8)])  # fmt: skip
    state, _ = on_prices(START, PATIENT, HK, first, 1)
    assert state.prices["A"] == 11.0
    # The ingest worker restarts and forwards offset 7's price again, then a new one.
    again = ConstituentPrices(index="IDX", source_partition=0, watermark_ms=ms("10:00:05"),
                              prices=[("A", 10.5, ms("10:00:00"), 7),
                                      ("B", 12.0, ms("10:00:05"), 9)])  # fmt: skip
    state, out = on_prices(state, PATIENT, HK, again, 1)
    assert state.prices["A"] == 11.0
    assert [t.price for t in out] == [(11.0 * 10 + 12.0 * 20 + 10.0 * 30) / 10]


# -- a partition behind holds the others back however far; an idle one does not --------


def prices(
    source: int, *items: tuple[str, float, int], upto: int, behind: bool
) -> ConstituentPrices:
    listed = [(symbol, value, ts, ts) for symbol, value, ts in items]
    return ConstituentPrices(index="IDX", source_partition=source, prices=listed,
                             watermark_ms=upto, behind=behind)  # fmt: skip


def run(state: IndexState, *batches: ConstituentPrices) -> tuple[IndexState, list]:
    from alerts.core.index_agent import on_prices

    out: list = []
    for batch in batches:
        state, emitted = on_prices(state, SPEC, HK, batch, 2)
        out += emitted
    return state, out


def test_a_partition_behind_by_more_than_the_rollover_wait_holds_prices_until_it_catches_up() -> (
    None
):
    assert SPEC.rollover_wait_s < 86_400
    # Partition 1's reader has more to read; partition 0's fetch runs a day ahead.
    state, out = run(
        START,
        prices(1, upto=ms("09:30:00"), behind=True),
        prices(0, ("A", 11.0, ms("10:00:00")), upto=ms("10:00:00"), behind=True),
        prices(0, ("A", 12.0, ms("10:00:00", 19)), upto=ms("17:00:00", 19), behind=False),
    )
    assert out == [] and len(state.pending) == 2 and state.behind == frozenset({1})
    # Partition 1 catches up: its late price of the 18th makes that day's close.
    state, out = run(
        state,
        prices(1, ("C", 9.0, ms("15:59:00")), upto=ms("15:59:00"), behind=True),
        prices(1, upto=ms("17:00:00", 19), behind=False),
    )
    closing = next(t for t in out if isinstance(t, Tick) and t.ts.hour == 8 and t.ts.day == 18)
    assert closing.price == (11 * 10 + 10 * 20 + 9 * 30) / 10
    assert state.pending == () and state.behind == frozenset()


@pytest.mark.parametrize("behind", [False, True])
def test_an_idle_partition_stops_holding_back_after_the_rollover_wait(behind: bool) -> None:
    # Partition 1 has read everything it has (idle), or says it has more (behind).
    state, out = run(
        START,
        prices(1, ("B", 11.0, ms("10:00:00")), upto=ms("10:00:00"), behind=behind),
        prices(0, ("A", 11.0, ms("10:01:00")), upto=ms("10:01:00"), behind=True),
    )
    assert [t.ts.minute for t in out] == [0]  # B at 10:00 is passed by both
    state, out = run(
        state, prices(0, ("A", 12.0, ms("10:17:00")), upto=ms("10:17:00"), behind=True)
    )
    # 10:01 is more than the 15-minute wait behind 10:17: released only past an idle one.
    assert [t.ts.minute for t in out] == ([] if behind else [1])


def flagged(streams: list[list[ConstituentPrices]]) -> list[list[ConstituentPrices]]:
    """Each partition's batches as a reader fetched far behind would send them: every
    batch but the last says behind, after a first word (at the epoch) that it is."""
    return [
        [
            ConstituentPrices(
                index="IDX", source_partition=source, prices=[], watermark_ms=0, behind=True
            ),
            *(b.model_copy(update={"behind": n < len(batches) - 1}) for n, b in enumerate(batches)),
        ]
        for source, batches in enumerate(streams)
    ]


@settings(max_examples=60, deadline=None)
@given(streams=partition_streams(), seed=st.randoms(use_true_random=False))
def test_partitions_that_say_they_are_behind_hold_the_index_however_far(streams, seed) -> None:  # type: ignore[no-untyped-def]
    """With a 15-minute rollover wait, partitions hours or a day apart give the ticks of
    a wait longer than any lag: the rollover never applies to a partition behind."""
    in_turn = [s for round_ in range(20) for s in (0, 1, 2)]
    shuffled = [s for s, batches in enumerate(streams) for _ in batches]
    seed.shuffle(shuffled)
    order = [0, 1, 2, *shuffled]  # each reader's first word comes first
    assert replay(flagged(streams), order, SPEC) == replay(streams, in_turn)
