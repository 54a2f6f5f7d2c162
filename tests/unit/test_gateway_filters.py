"""The gateway's filters and stream positions, pure: what matches, what is refused, id order."""

from __future__ import annotations

from typing import get_args

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from alerts.delivery.stream import position_key, valid_position
from schemas.gateway import KINDS, STAGES, Bar, Filters, Subscription
from schemas.rules import DailyMoveRule, MultiYearRule, RecordRule, YtdRule

INSTRUMENTS = ["HSTECH", "BIDU", "9988.HK"]
RULES = ["move-4", "high-3y"]

alerts = st.tuples(
    st.sampled_from(INSTRUMENTS),
    st.sampled_from(KINDS),
    st.sampled_from(RULES),
    st.sampled_from(STAGES),
)
filters = st.builds(
    Filters,
    instruments=st.lists(st.sampled_from(INSTRUMENTS), max_size=2),
    kinds=st.lists(st.sampled_from(KINDS), max_size=2),
    rules=st.lists(st.sampled_from(RULES), max_size=2),
    stages=st.lists(st.sampled_from(STAGES), max_size=2),
)


def test_kinds_are_the_rule_kinds() -> None:
    models = (DailyMoveRule, MultiYearRule, RecordRule, YtdRule)
    kinds = {kind for model in models for kind in get_args(model.model_fields["kind"].annotation)}
    assert set(KINDS) == kinds


@given(alerts)
def test_empty_filters_match_everything(alert: tuple[str, str, str, str]) -> None:
    assert Filters().matches(*alert)


@given(filters, alerts)
def test_and_across_dimensions_or_inside_one(
    wanted: Filters, alert: tuple[str, str, str, str]
) -> None:
    instrument, kind, rule, stage = alert
    expected = all(
        not values or value in values
        for values, value in (
            (wanted.instruments, instrument),
            (wanted.kinds, kind),
            (wanted.rules, rule),
            (wanted.stages, stage),
        )
    )
    assert wanted.matches(instrument, kind, rule, stage) is expected


def test_one_dimension_narrows() -> None:
    wanted = Filters(instruments=["HSTECH", "BIDU"], stages=["close"])
    assert wanted.matches("BIDU", "daily_move", "move-4", "close")
    assert not wanted.matches("BIDU", "daily_move", "move-4", "intraday")
    assert not wanted.matches("9988.HK", "daily_move", "move-4", "close")


@pytest.mark.parametrize(
    ("given", "field"),
    [
        ({"kinds": ["daily_move", "big_move"]}, "kinds"),
        ({"stages": ["open"]}, "stages"),
        ({"instruments": [""]}, "instruments"),
        ({"rules": ["r" * 65]}, "rules"),
        ({"instruments": [f"I{n}" for n in range(201)]}, "instruments"),
        ({"colour": ["red"]}, "colour"),
    ],
)
def test_bad_filters_are_refused_naming_the_field(given: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as refused:
        Filters.model_validate(given)
    assert [error["loc"][0] for error in refused.value.errors()] == [field]


def test_unknown_kind_is_named_with_the_known_ones() -> None:
    with pytest.raises(ValidationError, match="unknown kind 'big_move': one of daily_move"):
        Filters(kinds=["big_move"])


def test_filters_round_trip_as_json() -> None:
    wanted = Filters(instruments=["HSTECH"], kinds=["record_high"], stages=["close"])
    assert Filters.model_validate_json(wanted.model_dump_json()) == wanted


@pytest.mark.parametrize("name", ["", "a b", "x/y", "n" * 65, "ümlaut"])
def test_subscription_names_are_plain(name: str) -> None:
    with pytest.raises(ValidationError):
        Subscription(name=name, filters=Filters())


def test_bar_minute_is_hh_mm() -> None:
    assert Bar(minute="09:30", open=1, high=2, low=0.5, close=1.5).minute == "09:30"
    with pytest.raises(ValidationError):
        Bar(minute="9:30", open=1, high=2, low=0.5, close=1.5)


@pytest.mark.parametrize("text", ["0", "1-0", "1700000000000-3", "18446744073709551615-0"])
def test_valid_positions(text: str) -> None:
    assert valid_position(text)


@pytest.mark.parametrize(
    "text", ["", "-", "$", "+", "1-", "-1", "1-2-3", "a", "1 ", "18446744073709551616", "1" * 21]
)
def test_invalid_positions(text: str) -> None:
    assert not valid_position(text)


def test_position_without_sequence_is_sequence_zero() -> None:
    assert position_key("17") == (17, 0)
    with pytest.raises(ValueError, match="not a stream position"):
        position_key("x")


ids = st.tuples(st.integers(0, 2**64 - 1), st.integers(0, 2**64 - 1))


@given(ids, ids)
def test_positions_order_as_stream_ids(a: tuple[int, int], b: tuple[int, int]) -> None:
    # Numerically, not as text: "9-0" is before "10-0".
    first, second = f"{a[0]}-{a[1]}", f"{b[0]}-{b[1]}"
    assert valid_position(first) and valid_position(second)
    assert (position_key(first) < position_key(second)) is (a < b)
