"""The synthetic index's definition: the HKEX tick grid, shares, capped weights, divisor."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from tools.demo_data.story import BASE_LEVEL, WEIGHT_CAP, Constituent

# HKEX spread table: (price below which, tick size).
TICK_SIZES = (
    (0.25, 0.001),
    (0.5, 0.005),
    (10.0, 0.01),
    (20.0, 0.02),
    (100.0, 0.05),
    (200.0, 0.1),
    (500.0, 0.2),
    (1000.0, 0.5),
    (math.inf, 1.0),
)


def to_tick(price: float) -> float:
    """The price rounded to its HKEX tick size."""
    size = next(size for below, size in TICK_SIZES if price < below)
    return round(round(price / size) * size, 3)


@dataclass(frozen=True)
class IndexDefinition:
    """What indices.yaml says: level = sum(price * shares * factor * cap_factor) / divisor."""

    shares: tuple[float, ...]
    factors: tuple[float, ...]
    cap_factors: tuple[float, ...]
    divisor: float

    def level(self, prices: Sequence[float]) -> float:
        terms = zip(prices, self.shares, self.factors, self.cap_factors, strict=True)
        return sum(p * s * f * c for p, s, f, c in terms) / self.divisor

    def points(self, i: int, change: float) -> float:
        """Index points a price change of constituent i is worth."""
        return change * self.shares[i] * self.factors[i] * self.cap_factors[i] / self.divisor


def cap_factors(values: Sequence[float], limit: float) -> list[float]:
    """Cap factors holding every weight (value * factor / sum) to at most limit; max 1.

    Caps the largest weight above limit, spreads its excess over the uncapped in
    proportion to their values, and repeats; then rounds to 6 decimals, nudging a factor
    down where rounding would lift its weight above limit.
    """
    total = sum(values)
    capped: set[int] = set()
    while True:
        free_total = sum(v for i, v in enumerate(values) if i not in capped)
        room = 1.0 - limit * len(capped)
        target = [limit if i in capped else v / free_total * room for i, v in enumerate(values)]
        over = [i for i in range(len(values)) if i not in capped and target[i] > limit]
        if not over:
            break
        capped.add(max(over, key=lambda i: target[i]))
    raw = [target[i] / (v / total) for i, v in enumerate(values)]
    factors = [round(f / max(raw), 6) for f in raw]
    while True:
        weighted = [v * f for v, f in zip(values, factors, strict=True)]
        over = [i for i, w in enumerate(weighted) if w / sum(weighted) > limit]
        if not over:
            return factors
        for i in over:
            factors[i] = round(factors[i] - 1e-6, 6)


def define_index(constituents: Sequence[Constituent]) -> IndexDefinition:
    """Shares, free float and cap factors at BASE_DAY, and a divisor putting it at BASE_LEVEL."""
    prices = [to_tick(c.price) for c in constituents]
    shares = [round(c.mcap * 1e9 / p, -6) for c, p in zip(constituents, prices, strict=True)]
    floats = [p * s * c.factor for c, p, s in zip(constituents, prices, shares, strict=True)]
    factors = cap_factors(floats, WEIGHT_CAP)
    total = sum(f * cf for f, cf in zip(floats, factors, strict=True))
    return IndexDefinition(
        shares=tuple(shares),
        factors=tuple(c.factor for c in constituents),
        cap_factors=tuple(factors),
        divisor=round(total / BASE_LEVEL, 1),
    )
