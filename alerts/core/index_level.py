"""Index levels from constituent prices: weights, the weight cap, the divisor, attribution.

Pure functions and frozen values over plain mappings; no I/O. A weight here is in shares
(shares * free-float factor * cap factor), so price * weight is the constituent's part of
the index's capitalisation and the level is sum(price * weight) / divisor.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from schemas.indices import ConstituentSpec

RECOMPUTE_EVERY = 1_000
"""Term updates after which IndexLevel recomputes its total from scratch."""

# Rounding errors of the incremental total are relative to the largest total they were made
# at; once the total falls this far below it, they are recomputed away (see with_price).
_DRIFT_RATIO = 16.0

# cap * n may miss 1 by a rounding error (1/3 * 3); capping is still possible then.
_CAP_SLACK = 1e-12


def cap_factors(market_caps: Mapping[str, float], cap: float | None) -> dict[str, float]:
    """Factors in (0, 1] that bring every constituent's weight down to at most `cap`.

    `market_caps` is price * shares * factor per constituent. With the factors applied, a
    constituent that would weigh more than `cap` weighs exactly `cap`, the others keep
    factor 1.0 and their relative proportions (the excess is spread over them pro rata,
    repeatedly, as index providers do), and the largest factor is 1.0. `cap` None gives 1.0
    everywhere. ValueError if a market cap is not a positive finite number, if `cap` is
    outside (0, 1], or if cap * len(market_caps) < 1, when no capping can reach the cap.
    """
    for symbol, value in market_caps.items():
        _check_positive("market cap", symbol, value)
    if cap is None:
        return dict.fromkeys(market_caps, 1.0)
    if not (0 < cap <= 1):
        raise ValueError(f"cap must be in (0, 1], got {cap!r}")
    count = len(market_caps)
    if cap * count < 1 - _CAP_SLACK:
        raise ValueError(f"cap {cap:g} cannot be met by {count} constituents (needs cap * n >= 1)")
    # Largest first: the constituents that end up capped are always a prefix of this order.
    ranked = sorted(market_caps.items(), key=lambda item: (-item[1], item[0]))
    uncapped = _suffix_sums([value for _, value in ranked])
    for capped, (_, largest_left) in enumerate(ranked):
        room = 1 - capped * cap  # weight left to the uncapped ones
        rest = uncapped[capped]
        if largest_left * room <= cap * rest:
            # Capped weight m_i * f_i / total = cap, where total = rest / room.
            scale = cap * rest / room
            return {
                symbol: (scale / value if rank < capped else 1.0)
                for rank, (symbol, value) in enumerate(ranked)
            }
    # Every constituent capped (cap * n == 1 up to rounding): equal weights, 1/n each.
    smallest = ranked[-1][1]
    return {symbol: smallest / value for symbol, value in ranked}


def weights(
    constituents: Sequence[ConstituentSpec], prices: Mapping[str, float], cap: float | None
) -> dict[str, float]:
    """Index weight of each constituent: shares * factor * cap factor.

    The cap factor is the spec's own. If `cap` is set and any constituent has none, every
    constituent's cap factor (explicit ones too) is computed by `cap_factors` from `prices`,
    so that the cap holds at those prices; ValueError then names the constituents without a
    price. With every cap factor given, or no cap, `prices` is not read.
    """
    if cap is None or all(spec.cap_factor is not None for spec in constituents):
        return {
            spec.symbol: spec.shares * spec.factor * (spec.cap_factor or 1.0)
            for spec in constituents
        }
    missing = sorted(spec.symbol for spec in constituents if spec.symbol not in prices)
    if missing:
        raise ValueError(f"no price for {', '.join(missing)}: needed to apply the weight cap")
    _check_prices({spec.symbol: prices[spec.symbol] for spec in constituents})
    factors = cap_factors(
        {spec.symbol: prices[spec.symbol] * spec.shares * spec.factor for spec in constituents},
        cap,
    )
    return {spec.symbol: spec.shares * spec.factor * factors[spec.symbol] for spec in constituents}


@dataclass(frozen=True)
class IndexLevel:
    """A rolling index level: sum(price_i * weight_i) / divisor, updated one term at a time.

    `prices` holds exactly the weighted constituents. `total` is kept incrementally by
    `with_price` and recomputed exactly every RECOMPUTE_EVERY updates, or sooner when the
    total has fallen far below `peak` (the largest total since the last recomputation, to
    which its rounding errors are relative), so `level` stays within about 1e-11 relative
    of `recomputed()` for any price path. Build one with `start`, and check a loaded one
    with `checked`; the constructor does not check, to keep `with_price` cheap.
    """

    weights: Mapping[str, float]
    prices: Mapping[str, float]
    divisor: float
    total: float
    updates: int = 0
    peak: float = 0.0

    @classmethod
    def start(
        cls, weights: Mapping[str, float], prices: Mapping[str, float], divisor: float
    ) -> IndexLevel:
        """The level at `prices`; ValueError names constituents without a price, or a bad value.

        Prices of symbols without a weight are ignored.
        """
        if not weights:
            raise ValueError("an index level needs at least one weighted constituent")
        for symbol, weight in weights.items():
            _check_positive("weight", symbol, weight)
        if not (math.isfinite(divisor) and divisor > 0):
            raise ValueError(f"divisor must be positive and finite, got {divisor!r}")
        own = _prices_for(weights, prices)
        weighted = {symbol: float(weight) for symbol, weight in weights.items()}
        total = _total(weighted, own)
        return cls(weighted, own, float(divisor), total, 0, total)

    @property
    def level(self) -> float:
        return self.total / self.divisor

    def with_price(self, symbol: str, price: float) -> IndexLevel:
        """This level with `symbol` at `price`; itself for a symbol without a weight.

        The total moves by one term, O(1); the prices mapping is copied, O(n), which is what
        an immutable value costs and is small next to a tick's other work for an index of a
        hundred constituents. ValueError if `price` is not positive and finite.
        """
        weight = self.weights.get(symbol)
        if weight is None:
            return self
        _check_positive("price", symbol, price)
        prices = dict(self.prices)
        prices[symbol] = price
        total = self.total + (price - self.prices[symbol]) * weight
        peak = max(self.peak, total)
        updates = self.updates + 1
        if updates >= RECOMPUTE_EVERY or total * _DRIFT_RATIO < peak:
            total = _total(self.weights, prices)
            return IndexLevel(self.weights, prices, self.divisor, total, 0, total)
        return IndexLevel(self.weights, prices, self.divisor, total, updates, peak)

    def recomputed(self) -> float:
        """The level summed from scratch, sum(price * weight) / divisor."""
        return _total(self.weights, self.prices) / self.divisor

    def rebalanced(
        self, new_weights: Mapping[str, float], prices: Mapping[str, float]
    ) -> IndexLevel:
        """The same level over `new_weights` (a composition or share change).

        The divisor absorbs the change, so the level is continuous: new divisor = new total /
        current level. `prices` must cover every symbol of `new_weights` (ValueError names
        those missing); prices of other symbols are ignored.
        """
        return IndexLevel.start(new_weights, prices, 1.0)._with_level(self.level)

    def _with_level(self, level: float) -> IndexLevel:
        divisor = self.total / level
        if not (math.isfinite(divisor) and divisor > 0):
            raise ValueError(f"cannot carry level {level!r} over: divisor would be {divisor!r}")
        return IndexLevel(self.weights, self.prices, divisor, self.total, 0, self.total)

    def checked(self) -> IndexLevel:
        """This level, if it holds what `start` and `with_price` keep; else ValueError names
        what does not. A level loaded from storage is checked so (the constructor is not,
        to keep `with_price` cheap)."""
        checked = IndexLevel.start(self.weights, self.prices, self.divisor)
        if set(self.prices) != set(self.weights):
            raise ValueError("IndexLevel prices must have exactly the symbols of weights")
        updates = self.updates
        if type(updates) is not int or not 0 <= updates < RECOMPUTE_EVERY:
            raise ValueError(f"IndexLevel updates must be an int in [0, 1000), got {updates!r}")
        total, peak = self.total, self.peak
        if not (math.isfinite(total) and total > 0 and math.isfinite(peak) and peak > 0):
            raise ValueError(f"IndexLevel total and peak must be positive, got {total!r}, {peak!r}")
        return IndexLevel(checked.weights, checked.prices, checked.divisor, total, updates, peak)


@dataclass(frozen=True)
class Contribution:
    """One constituent's part in the index's move since the previous closes."""

    symbol: str
    change_pct: float  # price / previous close - 1, in %
    points: float  # (price - previous close) * weight / divisor
    share: float  # points / sum of all points; 0.0 when that sum is 0


def attribution(
    level: IndexLevel, previous_closes: Mapping[str, float], top: int = 5
) -> list[Contribution]:
    """The `top` largest contributions (by |points|, ties by symbol) to the move.

    Every constituent with a previous close contributes; with every constituent having
    one, the points of all of them sum to level.level - sum(close * weight) / divisor, up
    to rounding. ValueError if a previous close is not positive and finite, or top < 0.
    """
    if top < 0:
        raise ValueError(f"top must be >= 0, got {top}")
    moves: list[tuple[str, float, float]] = []
    for symbol, weight in level.weights.items():
        close = previous_closes.get(symbol)
        if close is None:
            continue
        _check_positive("previous close", symbol, close)
        price = level.prices[symbol]
        moves.append((symbol, (price / close - 1) * 100, (price - close) * weight / level.divisor))
    whole = math.fsum(points for _, _, points in moves)
    moves.sort(key=lambda move: (-abs(move[2]), move[0]))
    return [
        Contribution(symbol, change_pct, points, points / whole if whole else 0.0)
        for symbol, change_pct, points in moves[:top]
    ]


def _suffix_sums(values: Sequence[float]) -> list[float]:
    """sum(values[k:]) for each k of descending values, smallest first: a small tail is not
    lost in the rounding of a large head."""
    sums = [0.0] * len(values)
    running = 0.0
    for k in range(len(values) - 1, -1, -1):
        running += values[k]
        sums[k] = running
    return sums


def _total(weights: Mapping[str, float], prices: Mapping[str, float]) -> float:
    return math.fsum(prices[symbol] * weight for symbol, weight in weights.items())


def _check_positive(what: str, symbol: str, value: float) -> None:
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{what} of {symbol!r} must be positive and finite, got {value!r}")


def _check_prices(prices: Mapping[str, float]) -> None:
    for symbol, price in prices.items():
        _check_positive("price", symbol, price)


def _prices_for(weights: Mapping[str, float], prices: Mapping[str, float]) -> dict[str, float]:
    missing = sorted(symbol for symbol in weights if symbol not in prices)
    if missing:
        raise ValueError(f"no price for {', '.join(missing)}")
    own = {symbol: float(prices[symbol]) for symbol in weights}
    _check_prices(own)
    return own
