"""The pure core: one tick moves an instrument's state and may raise alerts."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from alerts.market import InstrumentState, apply_tick
from alerts.rules import DailyMoveRule
from schemas.alerts import alert_id
from schemas.ticks import Tick

RULE = DailyMoveRule(name="gain4", rungs=(4.0,))
LADDER = DailyMoveRule(name="ladder", rungs=(6.0, 4.0, 5.0))


def tick(day: int, price: float, minute: int = 0, seq: int | None = None) -> Tick:
    ts = datetime(2025, 9, day, 2, 0, tzinfo=UTC) + timedelta(minutes=minute)
    return Tick(symbol="BIDU", price=price, ts=ts, seq=seq)


def run(ticks: list[Tick], rules: list[DailyMoveRule]) -> tuple[InstrumentState, list]:
    state = InstrumentState("BIDU")
    alerts = []
    for t in ticks:
        step = apply_tick(state, t, rules)
        state = step.state
        alerts += step.alerts
    return state, alerts


def test_a_four_percent_gain_over_the_previous_close_alerts_once() -> None:
    state, alerts = run(
        [tick(17, 100.0), tick(17, 101.0, 5), tick(18, 104.0), tick(18, 105.5, 1)], [RULE]
    )
    assert [(a.instrument, a.session, a.price, a.reference_price) for a in alerts] == [
        ("BIDU", date(2025, 9, 18), 105.5, 101.0)
    ]
    alert = alerts[0]
    assert alert.alert_id == alert_id("gain4", "BIDU", date(2025, 9, 18), 4.0, "intraday")
    assert alert.kind == "daily_move" and alert.threshold == 4.0
    assert round(alert.change, 4) == round((105.5 / 101.0 - 1) * 100, 4)
    assert state.previous_close == 101.0 and state.last == 105.5
    assert (state.open, state.high, state.low) == (104.0, 105.5, 104.0)


def test_just_below_the_threshold_is_silent() -> None:
    _, alerts = run([tick(17, 100.0), tick(18, 103.99)], [RULE])
    assert alerts == []


def test_exactly_the_threshold_alerts_despite_binary_rounding() -> None:
    _, alerts = run([tick(17, 1.0), tick(18, 1.04)], [RULE])
    assert len(alerts) == 1


def test_each_rung_of_a_ladder_fires_once_in_order() -> None:
    _, alerts = run(
        [tick(17, 100.0), tick(18, 104.5), tick(18, 107.0, 1), tick(18, 104.0, 2)], [LADDER]
    )
    assert [a.threshold for a in alerts] == [4.0, 5.0, 6.0]
    assert [a.price for a in alerts] == [104.5, 107.0, 107.0]


def test_a_new_session_fires_again() -> None:
    _, alerts = run([tick(16, 100.0), tick(17, 105.0), tick(18, 110.0)], [RULE])
    assert [a.session.day for a in alerts] == [17, 18]


def test_a_late_tick_of_an_earlier_session_changes_nothing() -> None:
    state, _ = run([tick(17, 100.0), tick(18, 101.0)], [RULE])
    step = apply_tick(state, tick(17, 90.0, 30), [RULE])
    assert step.ignored == "late_tick" and step.state == state


def test_a_repeated_sequence_number_is_ignored() -> None:
    state, _ = run([tick(17, 100.0, seq=5)], [RULE])
    step = apply_tick(state, tick(18, 200.0, seq=5), [RULE])
    assert step.ignored == "duplicate_seq" and step.alerts == []


def test_state_survives_its_json_form() -> None:
    state, _ = run([tick(17, 100.0), tick(18, 105.0, seq=9)], [LADDER])
    assert InstrumentState.from_json(state.to_json()) == state


def oracle(ticks: list[Tick], rungs: tuple[float, ...]) -> list[tuple[date, float, float]]:
    """Rescan all history for every tick: (session, rung, price) of each alert."""
    fired = set()
    out = []
    for i, t in enumerate(ticks):
        day = t.ts.date()
        earlier = [u for u in ticks[:i] if u.ts.date() < day]
        if not earlier:
            continue
        last_day = max(u.ts.date() for u in earlier)
        close = [u for u in earlier if u.ts.date() == last_day][-1].price
        for rung in sorted(rungs):
            if (day, rung) not in fired and (t.price / close - 1) * 100 >= rung - 1e-9:
                fired.add((day, rung))
                out.append((day, rung, t.price))
    return out


@settings(max_examples=200, deadline=None)
@given(
    steps=st.lists(
        st.tuples(st.integers(0, 2), st.integers(0, 600), st.floats(0.9, 1.12)),
        min_size=1,
        max_size=40,
    )
)
def test_random_sequences_alert_exactly_as_the_oracle(steps: list) -> None:
    ticks = []
    price, day, minute = 100.0, 1, 0
    for gap, later, factor in steps:
        day += gap
        minute = minute + later if gap == 0 else later
        price = round(price * factor, 4)
        ticks.append(tick(day, price, min(minute, 1200)))
    ticks.sort(key=lambda t: t.ts)
    _, alerts = run(ticks, [LADDER])
    assert [(a.session, a.threshold, a.price) for a in alerts] == oracle(ticks, LADDER.rungs)
