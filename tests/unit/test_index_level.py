"""Index level math against direct recomputation and a naive iterative capping oracle."""

from __future__ import annotations

import json
import math
import random
from collections.abc import Mapping

import pytest
from hypothesis import given
from hypothesis import strategies as st

from alerts.core.index_level import (
    RECOMPUTE_EVERY,
    Contribution,
    IndexLevel,
    attribution,
    cap_factors,
    weights,
)
from alerts.store.codec import decode, encode, from_data
from schemas.indices import ConstituentSpec

shares = st.floats(min_value=1e6, max_value=1e10)
factors = st.floats(min_value=0.05, max_value=1.0)
prices = st.floats(min_value=0.01, max_value=1e5)
market_caps = st.floats(min_value=1.0, max_value=1e12)


def direct_level(
    weights_: Mapping[str, float], prices_: Mapping[str, float], divisor: float
) -> float:
    return sum(prices_[symbol] * weight for symbol, weight in weights_.items()) / divisor


def close(a: float, b: float, rel: float) -> bool:
    return abs(a - b) <= rel * max(abs(a), abs(b))


def capped_weights(
    market_caps_: Mapping[str, float], factors_: Mapping[str, float]
) -> dict[str, float]:
    total = math.fsum(market_caps_[s] * factors_[s] for s in market_caps_)
    return {s: market_caps_[s] * factors_[s] / total for s in market_caps_}


def oracle_cap(market_caps_: Mapping[str, float], cap: float) -> dict[str, float]:
    """Capped weights the textbook way: cap whatever exceeds, spread the excess, repeat."""
    fixed: dict[str, float] = {}
    while True:
        free = {s: m for s, m in market_caps_.items() if s not in fixed}
        room = 1 - cap * len(fixed)
        total = math.fsum(free.values())
        share = {s: m / total * room for s, m in free.items()}
        over = {s for s, w in share.items() if w > cap}
        if not over:
            return {**fixed, **share}
        fixed.update(dict.fromkeys(over, cap))
        if len(fixed) == len(market_caps_):
            return fixed


@st.composite
def caps_and_count(draw: st.DrawFn) -> tuple[float | None, int]:
    cap = draw(st.none() | st.floats(min_value=0.08, max_value=0.5))
    least = 5 if cap is None else max(5, math.ceil(1 / cap))
    return cap, draw(st.integers(min_value=least, max_value=40))


@st.composite
def indices(draw: st.DrawFn) -> tuple[list[ConstituentSpec], dict[str, float], float | None]:
    cap, count = draw(caps_and_count())
    specs = [
        ConstituentSpec(symbol=f"S{i:02d}", shares=draw(shares), factor=draw(factors))
        for i in range(count)
    ]
    start_prices = {spec.symbol: draw(prices) for spec in specs}
    return specs, start_prices, cap


@st.composite
def levels(draw: st.DrawFn) -> IndexLevel:
    specs, start_prices, cap = draw(indices())
    divisor = draw(st.floats(min_value=1.0, max_value=1e9))
    level = IndexLevel.start(weights(specs, start_prices, cap), start_prices, divisor)
    for symbol, price in draw(ticks(level)):
        level = level.with_price(symbol, price)
    return level


def ticks(level: IndexLevel, max_size: int = 60) -> st.SearchStrategy[list[tuple[str, float]]]:
    symbols = st.sampled_from([*level.weights, "NOT.IN"])
    return st.lists(st.tuples(symbols, prices), max_size=max_size)


# -- cap_factors ---------------------------------------------------------------------------


@given(caps_and_count(), st.data())
def test_cap_factors_cap_the_largest_and_keep_the_rest_in_proportion(
    cap_count: tuple[float | None, int], data: st.DataObject
) -> None:
    cap, count = cap_count
    caps = {f"S{i:02d}": data.draw(market_caps) for i in range(count)}
    found = cap_factors(caps, cap)
    assert set(found) == set(caps)
    assert all(0 < f <= 1 for f in found.values())
    assert max(found.values()) == 1.0
    if cap is None:
        assert set(found.values()) == {1.0}
        return
    weighed = capped_weights(caps, found)
    assert all(w <= cap + 1e-12 for w in weighed.values())
    uncapped = [s for s, f in found.items() if f == 1.0]
    ratios = [weighed[s] / caps[s] for s in uncapped]
    assert all(close(r, ratios[0], 1e-12) for r in ratios)
    assert all(close(weighed[s], cap, 1e-12) for s, f in found.items() if f < 1.0)
    expected = oracle_cap(caps, cap)
    assert all(abs(weighed[s] - expected[s]) <= 1e-12 for s in caps)


def test_cap_factors_by_hand() -> None:
    # Weights 0.6, 0.3, 0.1 under a 0.5 cap: 0.5 stays with A, B and C share 0.5 as 3:1.
    assert cap_factors({"A": 600.0, "B": 300.0, "C": 100.0}, 0.5) == pytest.approx(
        {"A": 2 / 3, "B": 1.0, "C": 1.0}, rel=1e-15
    )
    # Two rounds: A is capped at 0.4, which pushes B from 0.4 to 0.48; B is capped too.
    found = cap_factors({"A": 50.0, "B": 40.0, "C": 5.0, "D": 5.0}, 0.4)
    assert found == pytest.approx({"A": 0.4, "B": 0.5, "C": 1.0, "D": 1.0}, rel=1e-15)
    assert capped_weights({"A": 50.0, "B": 40.0, "C": 5.0, "D": 5.0}, found) == pytest.approx(
        {"A": 0.4, "B": 0.4, "C": 0.1, "D": 0.1}, rel=1e-15
    )


def test_equal_market_caps_are_capped_together() -> None:
    found = cap_factors({"A": 10.0, "B": 10.0, "C": 1.0}, 0.4)
    assert found == pytest.approx({"A": 0.2, "B": 0.2, "C": 1.0}, rel=1e-15)  # 0.4, 0.4, 0.2


def test_a_cap_of_one_over_n_gives_equal_weights() -> None:
    found = cap_factors({"A": 4.0, "B": 2.0, "C": 1.0}, 1 / 3)
    assert found == pytest.approx({"A": 0.25, "B": 0.5, "C": 1.0}, rel=1e-15)
    assert found["C"] == 1.0


def test_nothing_over_the_cap_keeps_every_factor_at_one() -> None:
    assert cap_factors({"A": 1.0, "B": 1.0}, 0.5) == {"A": 1.0, "B": 1.0}
    assert cap_factors({"A": 3.0, "B": 1.0}, None) == {"A": 1.0, "B": 1.0}
    assert cap_factors({}, None) == {}


@pytest.mark.parametrize(
    ("caps", "cap", "message"),
    [
        ({"A": 1.0, "B": 1.0}, 0.4, "cap 0.4 cannot be met by 2 constituents"),
        ({}, 0.5, "cannot be met by 0 constituents"),
        ({"A": 1.0}, 0.0, "cap must be in (0, 1]"),
        ({"A": 1.0}, 1.5, "cap must be in (0, 1]"),
        ({"A": 1.0, "B": 0.0}, None, "market cap of 'B' must be positive and finite"),
        ({"A": math.nan}, 1.0, "market cap of 'A' must be positive and finite"),
    ],
)
def test_cap_factors_refuse(caps: dict[str, float], cap: float, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        cap_factors(caps, cap)


# -- weights -------------------------------------------------------------------------------

A = ConstituentSpec(symbol="A", shares=60)
B = ConstituentSpec(symbol="B", shares=100, factor=0.5)
C = ConstituentSpec(symbol="C", shares=50)
HAND_PRICES = {"A": 10.0, "B": 6.0, "C": 2.0}  # market caps 600, 300, 100


def test_weights_by_hand_with_a_computed_cap() -> None:
    found = weights([A, B, C], HAND_PRICES, 0.5)
    assert found == pytest.approx({"A": 40.0, "B": 50.0, "C": 50.0}, rel=1e-15)
    level = IndexLevel.start(found, HAND_PRICES, 8.0)
    assert level.level == pytest.approx(100.0, rel=1e-15)  # (400 + 300 + 100) / 8
    level = level.with_price("A", 11.0)
    assert level.level == pytest.approx(105.0, rel=1e-15)  # A adds 1 * 40 / 8 = 5 points
    assert attribution(level, HAND_PRICES) == [
        Contribution("A", pytest.approx(10.0), pytest.approx(5.0), 1.0),  # type: ignore[arg-type]
        Contribution("B", 0.0, 0.0, 0.0),
        Contribution("C", 0.0, 0.0, 0.0),
    ]
    assert attribution(level, HAND_PRICES, top=1)[0].symbol == "A"
    assert attribution(level, {}, top=3) == []


def test_explicit_cap_factors_are_used_as_given_without_prices() -> None:
    given_ = [A.model_copy(update={"cap_factor": 0.5}), B.model_copy(update={"cap_factor": 1.0})]
    assert weights(given_, {}, 0.5) == {"A": 30.0, "B": 50.0}
    assert weights([A, B], {}, None) == {"A": 60.0, "B": 50.0}
    # Without a cap an explicit factor still applies; the others count as 1.0.
    assert weights([given_[0], B], {}, None) == {"A": 30.0, "B": 50.0}


def test_any_missing_cap_factor_computes_them_all_from_prices() -> None:
    mixed = [A.model_copy(update={"cap_factor": 0.1}), B, C]
    assert weights(mixed, HAND_PRICES, 0.5) == weights([A, B, C], HAND_PRICES, 0.5)


def test_weights_name_the_constituents_without_a_price() -> None:
    with pytest.raises(ValueError, match="no price for B, C: needed to apply the weight cap"):
        weights([A, B, C], {"A": 1.0}, 0.5)
    with pytest.raises(ValueError, match="price of 'A' must be positive"):
        weights([A, B, C], {**HAND_PRICES, "A": -1.0}, 0.5)


@given(indices())
def test_computed_weights_respect_the_cap_at_their_prices(
    index: tuple[list[ConstituentSpec], dict[str, float], float | None],
) -> None:
    specs, at, cap = index
    found = weights(specs, at, cap)
    total = math.fsum(found[s] * at[s] for s in found)
    assert all(found[s] * at[s] / total <= (cap or 1.0) + 1e-12 for s in found)


# -- IndexLevel ----------------------------------------------------------------------------


@given(indices(), st.floats(min_value=1.0, max_value=1e9), st.data())
def test_the_rolling_level_equals_a_direct_recomputation_after_every_tick(
    index: tuple[list[ConstituentSpec], dict[str, float], float | None],
    divisor: float,
    data: st.DataObject,
) -> None:
    specs, current, cap = index
    weighted = weights(specs, current, cap)
    level = IndexLevel.start(weighted, current, divisor)
    current = dict(current)
    for symbol, price in data.draw(ticks(level, max_size=300)):
        level = level.with_price(symbol, price)
        if symbol in current:
            current[symbol] = price
        assert close(level.level, direct_level(weighted, current, divisor), 1e-9)
        assert level.prices == current


def test_the_total_is_recomputed_every_thousand_updates() -> None:
    level = IndexLevel.start({"A": 1.0, "B": 2.0}, {"A": 10.0, "B": 10.0}, 3.0)
    for n in range(1, 2 * RECOMPUTE_EVERY + 1):
        level = level.with_price("A", 10.0 + n % 7 / 10)
        assert level.updates == n % RECOMPUTE_EVERY
    assert level.with_price("NOT.IN", 5.0) is level


def test_no_drift_when_fat_fingers_on_the_heaviest_constituent_come_and_go() -> None:
    # Each fat finger leaves a rounding error relative to a total a billion times the usual
    # one; without the peak guard these add up to ~1e-9 of the level within 1,000 updates.
    rng = random.Random(20250918)
    symbols = [f"S{i:02d}" for i in range(30)]
    weighted = {s: 10 ** rng.uniform(3, 9) for s in symbols}
    current = dict.fromkeys(symbols, 1.0)
    heaviest = max(symbols, key=weighted.__getitem__)
    level = IndexLevel.start(weighted, current, 1e6)
    worst = 0.0
    for n in range(RECOMPUTE_EVERY - 1):
        if n % 2 == 0:
            symbol, price = heaviest, rng.choice([1e6, 1e-3])
        else:
            symbol, price = rng.choice(symbols), rng.uniform(0.9, 1.1)
        level = level.with_price(symbol, price)
        current[symbol] = price
        expected = math.fsum(current[s] * weighted[s] for s in symbols) / 1e6
        worst = max(worst, abs(level.level - expected) / expected)
    assert worst < 1e-12


def test_start_names_the_constituents_without_a_price() -> None:
    with pytest.raises(ValueError, match="no price for B, C"):
        IndexLevel.start({"A": 1.0, "B": 1.0, "C": 1.0}, {"A": 1.0, "X": 2.0}, 1.0)
    with pytest.raises(ValueError, match="at least one weighted constituent"):
        IndexLevel.start({}, {}, 1.0)
    with pytest.raises(ValueError, match="divisor must be positive"):
        IndexLevel.start({"A": 1.0}, {"A": 1.0}, 0.0)
    with pytest.raises(ValueError, match="weight of 'A' must be positive"):
        IndexLevel.start({"A": -1.0}, {"A": 1.0}, 1.0)
    level = IndexLevel.start({"A": 1.0}, {"A": 1.0, "X": 2.0}, 1.0)
    assert level.prices == {"A": 1.0}
    with pytest.raises(ValueError, match="price of 'A' must be positive and finite"):
        level.with_price("A", math.inf)


@given(levels(), st.data())
def test_a_rebalance_keeps_the_level_continuous(level: IndexLevel, data: st.DataObject) -> None:
    members = sorted(level.weights)
    kept = data.draw(st.lists(st.sampled_from(members), min_size=1, unique=True))
    added = data.draw(
        st.lists(st.tuples(st.floats(min_value=1e3, max_value=1e10), prices), max_size=5)
    )
    new_weights = {s: level.weights[s] * data.draw(factors) for s in kept}
    new_prices = dict(level.prices)
    for number, (weight, price) in enumerate(added):
        new_weights[f"NEW{number}"] = weight
        new_prices[f"NEW{number}"] = price
    after = level.rebalanced(new_weights, new_prices)
    assert close(after.level, level.level, 1e-12)
    assert close(after.recomputed(), level.level, 1e-12)
    assert after.weights == new_weights
    assert set(after.prices) == set(new_weights)
    assert after.updates == 0


def test_a_rebalance_needs_a_price_for_every_new_constituent() -> None:
    level = IndexLevel.start({"A": 1.0}, {"A": 5.0}, 1.0)
    with pytest.raises(ValueError, match="no price for B"):
        level.rebalanced({"A": 1.0, "B": 2.0}, level.prices)


@given(levels(), st.data())
def test_attribution_points_add_up_to_the_move_since_the_previous_closes(
    level: IndexLevel, data: st.DataObject
) -> None:
    closes = {s: data.draw(prices) for s in level.weights}
    everything = attribution(level, closes, top=len(closes))
    assert [c.symbol for c in everything] == sorted(
        closes, key=lambda s: (-abs(_points(level, closes, s)), s)
    )
    before = math.fsum(closes[s] * w for s, w in level.weights.items()) / level.divisor
    move = level.recomputed() - before
    points = math.fsum(c.points for c in everything)
    assert abs(points - move) <= 1e-9 * max(level.level, before)
    if points != 0:
        assert math.fsum(c.share for c in everything) == pytest.approx(1.0, rel=1e-9)
    top = attribution(level, closes)
    assert top == everything[:5]
    for c in top:
        assert c.change_pct == pytest.approx((level.prices[c.symbol] / closes[c.symbol] - 1) * 100)


def _points(level: IndexLevel, closes: Mapping[str, float], symbol: str) -> float:
    return (level.prices[symbol] - closes[symbol]) * level.weights[symbol] / level.divisor


@given(levels())
def test_the_json_round_trip_is_exact(level: IndexLevel) -> None:
    text = encode(level)
    back = decode(IndexLevel, text)
    assert back == level
    assert encode(back) == encode(level)
    assert back.level == level.level


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"weights": None}, "weights must be a mapping"),
        ({"prices": {"A": 1.0}}, "no price for B"),
        ({"prices": {"A": 1.0, "B": 2.0, "C": 3.0}}, "exactly the symbols of weights"),
        ({"divisor": "1"}, "divisor must be a number"),
        ({"total": -1.0}, "total and peak must be positive"),
        ({"updates": 1000}, "updates must be an int"),
        ({"updates": True}, "updates must be an int"),
        ({"weights": {"A": 1.0, "B": "x"}}, "weights of B must be a number"),
    ],
)
def test_from_json_refuses_a_bad_field(change: dict[str, object], message: str) -> None:
    good = json.loads(encode(IndexLevel.start({"A": 1.0, "B": 2.0}, {"A": 3.0, "B": 4.0}, 5.0)))
    with pytest.raises(ValueError, match=message):
        from_data(IndexLevel, {**good, **change})


def test_attribution_refuses_a_bad_close_or_top() -> None:
    level = IndexLevel.start({"A": 1.0}, {"A": 3.0}, 1.0)
    with pytest.raises(ValueError, match="previous close of 'A' must be positive"):
        attribution(level, {"A": 0.0})
    with pytest.raises(ValueError, match="top must be >= 0"):
        attribution(level, {"A": 1.0}, top=-1)
