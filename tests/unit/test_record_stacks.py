"""Record stacks against a brute-force oracle that keeps every session and rescans."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from alerts.core.record_stacks import Direction, RecordStack
from alerts.store.codec import decode, encode, from_data

D1, D2, D3, D4 = (date(2025, 9, 15) + timedelta(days=i) for i in range(4))
ORIGIN = date(2025, 1, 1)

History = list[tuple[date, float]]


def reaches(direction: Direction, value: float, level: float) -> bool:
    return value >= level if direction == "high" else value <= level


def oracle_since(direction: Direction, history: History, level: float) -> date | None:
    hits = [session for session, value in history if reaches(direction, value, level)]
    return max(hits) if hits else None


def oracle_extreme_since(direction: Direction, history: History, start: date) -> float | None:
    values = [value for session, value in history if session >= start]
    if not values:
        return None
    return max(values) if direction == "high" else min(values)


def oracle_stack(direction: Direction, history: History) -> History:
    """The sessions no later session equalled or beat: what an uncapped stack must hold."""
    return [
        (session, value)
        for i, (session, value) in enumerate(history)
        if not any(reaches(direction, later, value) for _, later in history[i + 1 :])
    ]


def build(direction: Direction, history: History, capacity: int = 20_000) -> RecordStack:
    stack = RecordStack(direction, capacity=capacity)
    for session, value in history:
        stack = stack.push(session, value)
    return stack


# Few distinct values so that ties and repeats are common, plus arbitrary finite floats.
values = st.one_of(
    st.sampled_from([-1.0, 0.0, 1.0, 2.0, 3.0, 100.0, 100.5]),
    st.floats(allow_nan=False, allow_infinity=False),
)
levels = st.one_of(values, st.sampled_from([math.inf, -math.inf]))
directions = st.sampled_from(["high", "low"])


@st.composite
def histories(draw: st.DrawFn, max_size: int = 40) -> History:
    gaps = draw(st.lists(st.integers(min_value=1, max_value=4), max_size=max_size))
    history = []
    session = ORIGIN
    for gap in gaps:
        session += timedelta(days=gap)
        history.append((session, draw(values)))
    return history


def starts(history: Sequence[tuple[date, float]]) -> st.SearchStrategy[date]:
    """Dates from before the first session to after the last, hitting sessions and gaps."""
    last = history[-1][0] if history else ORIGIN
    return st.dates(min_value=ORIGIN - timedelta(days=2), max_value=last + timedelta(days=2))


# ---- examples ---------------------------------------------------------------------------


def closes() -> RecordStack:
    return build("high", [(D1, 100.0), (D2, 120.0), (D3, 110.0), (D4, 105.0)])


def test_since_names_the_latest_session_that_reached_the_level() -> None:
    stack = closes()
    assert stack.since(108) == D3
    assert stack.since(115) == D2
    assert stack.since(105) == D4
    assert stack.since(121) is None


def test_extreme_since_is_the_highest_close_on_or_after_the_start() -> None:
    stack = closes()
    assert stack.extreme_since(D3) == 110
    assert stack.extreme_since(D1) == 120
    assert stack.extreme_since(D4) == 105
    assert stack.extreme_since(D4 + timedelta(days=1)) is None


def test_the_stack_keeps_only_the_unbeaten_sessions() -> None:
    assert closes().entries == ((D2, 120.0), (D3, 110.0), (D4, 105.0))


def test_a_tie_replaces_the_older_session() -> None:
    stack = build("high", [(D1, 100.0), (D2, 100.0)])
    assert stack.entries == ((D2, 100.0),)
    assert stack.since(100) == D2


def test_low_mirrors_high() -> None:
    stack = build("low", [(D1, 100.0), (D2, 80.0), (D3, 90.0), (D4, 95.0)])
    assert stack.since(92) == D3
    assert stack.since(85) == D2
    assert stack.since(79) is None
    assert stack.extreme_since(D3) == 90
    assert stack.extreme_since(D1) == 80
    assert stack.entries == ((D2, 80.0), (D3, 90.0), (D4, 95.0))


def test_an_empty_stack_answers_none() -> None:
    stack = RecordStack("high")
    assert stack.since(-math.inf) is None
    assert stack.extreme_since(D1) is None
    assert decode(RecordStack, encode(stack)) == stack


def test_push_leaves_the_original_unchanged() -> None:
    stack = closes()
    stack.push(D4 + timedelta(days=1), 200.0)
    assert stack == closes()


def test_push_counts_sessions_even_when_entries_are_dropped() -> None:
    stack = closes()
    assert (stack.first_session, stack.last_session, stack.count) == (D1, D4, 4)


def test_capacity_drops_the_oldest_entries_and_marks_the_stack_truncated() -> None:
    stack = build("high", [(D1, 100.0), (D2, 90.0), (D3, 80.0)], capacity=2)
    assert stack.entries == ((D2, 90.0), (D3, 80.0))
    assert stack.truncated
    assert stack.first_session == D1
    assert stack.since(95) is None  # D1 reached it, but D1 was dropped
    assert stack.extreme_since(D2) == 90


@pytest.mark.parametrize("session", [D3, D4 - timedelta(days=5), D4])
def test_push_rejects_a_session_not_after_the_last(session: date) -> None:
    stack = build("high", [(D3, 1.0), (D4, 2.0)])
    with pytest.raises(ValueError, match="not after"):
        stack.push(session, 3.0)


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_push_rejects_a_value_that_is_not_finite(value: float) -> None:
    with pytest.raises(ValueError, match="not finite"):
        RecordStack("low").push(D1, value)


def test_since_rejects_nan() -> None:
    with pytest.raises(ValueError, match="NaN"):
        closes().since(math.nan)


@pytest.mark.parametrize(
    "change",
    [
        {"direction": "up"},
        {"entries": [["2025-09-16", 120.0], ["2025-09-17", 130.0], ["2025-09-18", 105.0]]},
        {"entries": [["2025-09-17", 120.0], ["2025-09-16", 110.0], ["2025-09-18", 105.0]]},
        {"entries": [["2025-09-16", 120.0], ["2025-09-17", 110.0], ["2025-09-19", 105.0]]},
        {"entries": [["2025-09-16", 120.0], ["2025-09-17", "110"], ["2025-09-18", 105.0]]},
        {"entries": [["2025-09-16", 120.0], ["2025-09-17", 110.0], ["2025-13-18", 105.0]]},
        {"count": 2},
        {"count": True},
        {"capacity": 2},
        {"capacity": 0},
        {"truncated": "no"},
        {"first_session": "2025-09-17"},
        {"last_session": None},
    ],
)
def test_from_json_rejects_what_push_could_not_have_built(change: dict[str, object]) -> None:
    data = json.loads(encode(closes())) | change
    with pytest.raises(ValueError, match="RecordStack"):
        from_data(RecordStack, data)


def test_the_json_form_is_compact_and_readable() -> None:
    assert json.loads(encode(closes())) == {
        "direction": "high",
        "entries": [["2025-09-16", 120.0], ["2025-09-17", 110.0], ["2025-09-18", 105.0]],
        "first_session": "2025-09-15",
        "last_session": "2025-09-18",
        "count": 4,
        "truncated": False,
        "capacity": 20_000,
    }


# ---- properties against the oracle ------------------------------------------------------


@given(direction=directions, history=histories(), data=st.data())
def test_queries_equal_the_oracle(
    direction: Direction, history: History, data: st.DataObject
) -> None:
    stack = build(direction, history)
    for level in data.draw(st.lists(levels, max_size=10)):
        assert stack.since(level) == oracle_since(direction, history, level)
    for start in data.draw(st.lists(starts(history), max_size=10)):
        assert stack.extreme_since(start) == oracle_extreme_since(direction, history, start)
    # Every stored value must also be a level the oracle agrees on exactly.
    for session, value in stack.entries:
        assert stack.since(value) == session == oracle_since(direction, history, value)


@given(direction=directions, history=histories())
def test_the_stack_is_exactly_the_unbeaten_sessions(direction: Direction, history: History) -> None:
    stack = build(direction, history)
    assert list(stack.entries) == oracle_stack(direction, history)
    assert stack.count == len(history)
    assert stack.first_session == (history[0][0] if history else None)
    assert stack.last_session == (history[-1][0] if history else None)
    assert not stack.truncated


@given(direction=directions, history=histories())
def test_json_round_trips_exactly(direction: Direction, history: History) -> None:
    stack = build(direction, history)
    restored = decode(RecordStack, encode(stack))
    assert restored == stack
    assert [(s, math.copysign(1, v)) for s, v in restored.entries] == [
        (s, math.copysign(1, v)) for s, v in stack.entries
    ]


@given(
    direction=directions,
    history=histories(),
    capacity=st.integers(min_value=1, max_value=5),
    data=st.data(),
)
def test_capacity_keeps_the_newest_entries_and_stays_exact_where_they_reach(
    direction: Direction, history: History, capacity: int, data: st.DataObject
) -> None:
    stack = build(direction, history, capacity)
    full = oracle_stack(direction, history)
    ever_over = any(
        len(oracle_stack(direction, history[:n])) > capacity for n in range(len(history) + 1)
    )
    assert stack.truncated == ever_over
    assert len(stack.entries) <= capacity
    assert list(stack.entries) == full[len(full) - len(stack.entries) :]
    assert stack.count == len(history)
    assert stack.first_session == (history[0][0] if history else None)
    assert decode(RecordStack, encode(stack)) == stack
    if not history:
        return
    assert stack.entries[-1] == history[-1]

    for level in data.draw(st.lists(levels, max_size=10)):
        found = stack.since(level)
        expected = oracle_since(direction, history, level)
        # A date is always exact; None is only trustworthy while nothing was dropped.
        assert found == expected or (found is None and stack.truncated)
    oldest_kept = stack.entries[0][0]
    for start in data.draw(st.lists(starts(history), max_size=10)):
        if start >= oldest_kept:
            assert stack.extreme_since(start) == oracle_extreme_since(direction, history, start)
        else:
            # Older starts see the oldest kept value: a bound, exact only if nothing was lost.
            got = stack.extreme_since(start)
            want = oracle_extreme_since(direction, history, start)
            assert got is not None and want is not None
            assert reaches(direction, want, got)
            if not stack.truncated:
                assert got == want


@given(direction=directions, history=histories(max_size=10), data=st.data())
def test_push_rejects_non_increasing_sessions(
    direction: Direction, history: History, data: st.DataObject
) -> None:
    if not history:
        return
    stack = build(direction, history)
    session = data.draw(st.dates(max_value=history[-1][0]))
    with pytest.raises(ValueError):
        stack.push(session, 1.0)
