"""The prices: daily closes through every anchor, then two days of ticks (the dataset)."""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from alerts.core.sessions import Session, get_calendar
from tools.demo_data.definition import IndexDefinition, define_index, to_tick
from tools.demo_data.story import (
    ANCHORS,
    BASE_DAY,
    BASE_LEVEL,
    CONSTITUENTS,
    DAY_MINUTES,
    EXCHANGE,
    GAIN_CAPPED_AFTER,
    HEADLINERS,
    HKT,
    LAST_HISTORY_DAY,
    MAX_GAIN,
    MAX_LOSS,
    MORNING_MINUTES,
    QUIET_DAY,
    QUIET_SHAPE,
    RALLY_DAY,
    RALLY_GAIN,
    RALLY_SHAPE,
    RALLY_YTD,
    SEED,
    VOLATILITY,
)


def _fill(steps: list[float], lows: Sequence[float], highs: Sequence[float]) -> list[float]:
    """The steps clipped to their bounds, what clipping took spread over the others."""
    total = sum(steps)
    for _ in range(500):
        steps = [min(max(s, lo), hi) for s, lo, hi in zip(steps, lows, highs, strict=True)]
        gap = total - sum(steps)
        if abs(gap) < 1e-13:
            return steps
        free = [k for k, s in enumerate(steps) if (s < highs[k] if gap > 0 else s > lows[k])]
        if not free:
            break
        for k in free:
            steps[k] += gap / len(free)
    raise ValueError(f"cannot fit a move of {total:.4f} within the daily bounds")


def walk(
    rng: random.Random,
    total: float,
    sigma: float,
    lows: Sequence[float],
    highs: Sequence[float],
    band: float,
) -> list[float]:
    """len(lows) log returns adding up to total, each within its bounds, whose running sum
    strays at most band from the straight line (a bounded Brownian bridge)."""
    n = len(lows)
    if n == 1:
        return [total]  # an event: the anchors give the move
    drift = total / n
    noise = [rng.gauss(0.0, sigma) for _ in range(n)]
    mean = sum(noise) / n
    steps = _fill([drift + z - mean for z in noise], lows, highs)
    deviation = worst = 0.0
    for step in steps:
        deviation += step - drift
        worst = max(worst, abs(deviation))
    scale = 1.0 if worst <= band else band / worst
    # Each step moves toward the drift, so it stays within bounds the drift is within.
    return [drift + scale * (step - drift) for step in steps]


def index_path(days: Sequence[date], rng: random.Random) -> list[float]:
    """The index's target close on each session, through every anchor."""
    position = {day: i for i, day in enumerate(days)}
    levels = [BASE_LEVEL] * len(days)
    for (start, a, _), (end, b, band) in itertools.pairwise(ANCHORS):
        if start not in position or end not in position:
            raise ValueError(f"anchor {start} or {end} is not an {EXCHANGE} session")
        span = range(position[start] + 1, position[end] + 1)
        highs = [
            math.log1p(rng.uniform(0.029, 0.037)) if days[k] > GAIN_CAPPED_AFTER else MAX_GAIN
            for k in span
        ]
        lows = [MAX_LOSS] * len(span)
        steps = walk(rng, math.log(b / a), VOLATILITY[start.year], lows, highs, band)
        level = math.log(a)
        for k, step in zip(span, steps, strict=True):
            level += step
            levels[k] = math.exp(level)
    return levels


@dataclass(frozen=True)
class Dataset:
    """Everything the files hold, as the numbers written."""

    definition: IndexDefinition
    days: tuple[date, ...]  # history sessions
    closes: tuple[tuple[float, ...], ...]  # per session, per constituent
    index_closes: tuple[float, ...]  # per session, rounded to 0.01
    ticks: tuple[tuple[datetime, int, float, int], ...]  # (ts, constituent, price, volume)


def history(
    definition: IndexDefinition, days: Sequence[date], seed: int
) -> tuple[list[tuple[float, ...]], list[float]]:
    """Daily closes of every constituent, rescaled each day so the index is on its path."""
    target = index_path(days, random.Random(f"{seed}:index"))
    n = len(days) - 1
    raw: list[list[float]] = []
    for c in CONSTITUENTS:
        rng = random.Random(f"{seed}:history:{c.symbol}")
        steps = walk(rng, c.drift, c.vol, [-0.09] * n, [0.09] * n, 0.5)
        path, log_price = [c.price], math.log(c.price)
        for step in steps:
            log_price += step
            path.append(math.exp(log_price))
        raw.append(path)
    closes, index_closes = [], []
    for t in range(len(days)):
        prices = [path[t] for path in raw]
        scale = target[t] / definition.level(prices)
        day = tuple(to_tick(p * scale) for p in prices)
        closes.append(day)
        index_closes.append(round(definition.level(day), 2))
    return closes, index_closes


def fit_closes(
    definition: IndexDefinition,
    previous: Sequence[float],
    moves: Sequence[float],
    adjustable: Sequence[bool],
    target: float,
) -> list[float]:
    """Closes at previous * exp(move), the adjustable moves shifted alike so that the
    index closes as near target as the tick grid allows."""

    def closes(shift: float) -> list[float]:
        return [
            to_tick(p * math.exp(m + (shift if a else 0.0)))
            for p, m, a in zip(previous, moves, adjustable, strict=True)
        ]

    low, high = -0.05, 0.05
    for _ in range(60):
        middle = (low + high) / 2
        if definition.level(closes(middle)) < target:
            low = middle
        else:
            high = middle
    best = min((low, high), key=lambda s: abs(definition.level(closes(s)) - target))
    return closes(best)


def _shape(rng: random.Random, knots: Sequence[tuple[int, float]], close: float) -> list[float]:
    """Log change against the previous close at each trading minute, ending at close."""
    points = [(m, math.log1p(pct / 100)) for m, pct in knots] + [(DAY_MINUTES, close)]
    line = []
    for minute in range(DAY_MINUTES + 1):
        (m0, v0), (m1, v1) = next((a, b) for a, b in itertools.pairwise(points) if minute <= b[0])
        line.append(v0 + (v1 - v0) * (minute - m0) / (m1 - m0) if minute >= m0 else v0)
    return [v + e for v, e in zip(line, _bridge(rng, 0.0, 0.00025), strict=True)]


def _bridge(rng: random.Random, start_sd: float, sd: float) -> list[float]:
    """Noise over the trading minutes: a random start, a walk, back to 0 at the close."""
    path = [rng.gauss(0.0, start_sd)]
    for _ in range(DAY_MINUTES):
        path.append(path[-1] + rng.gauss(0.0, sd))
    return [v - path[-1] * minute / DAY_MINUTES for minute, v in enumerate(path)]


def minute_prices(
    definition: IndexDefinition,
    rng: random.Random,
    previous: Sequence[float],
    closes: Sequence[float],
    knots: Sequence[tuple[int, float]],
) -> list[list[float]]:
    """Each constituent's price at each trading minute, the index on the day's shape."""
    before, after = definition.level(previous), definition.level(closes)
    shape = _shape(rng, knots, math.log(after / before))
    grid = []
    for p, c in zip(previous, closes, strict=True):
        own = math.log(c / p) - shape[-1]
        noise = _bridge(rng, 0.003, 0.0007)
        grid.append(
            [p * math.exp(shape[m] + own * m / DAY_MINUTES + noise[m]) for m in range(DAY_MINUTES)]
        )
    for m in range(DAY_MINUTES):
        scale = before * math.exp(shape[m]) / definition.level([row[m] for row in grid])
        for row in grid:
            row[m] *= scale
    for row, c in zip(grid, closes, strict=True):
        row.append(c)
    return grid


def tick_times(rng: random.Random, session: Session) -> list[tuple[datetime, int]]:
    """A constituent's tick times (HKT) and trading minutes: every 1-3 minutes, none at lunch,
    the last in the closing minute."""
    open_ = session.open.astimezone(HKT)
    lunch = open_ + timedelta(minutes=MORNING_MINUTES)
    afternoon = lunch + timedelta(hours=1)
    close = session.close.astimezone(HKT)
    if close - afternoon != timedelta(minutes=DAY_MINUTES - MORNING_MINUTES):
        raise ValueError(f"{session.day} is not a full HKEX trading day")
    times, t = [], open_ + timedelta(seconds=rng.randint(0, 50))
    while t < close - timedelta(minutes=1):
        times.append(t)
        t += timedelta(seconds=rng.randint(60, 180))
        if lunch < t < afternoon:
            t = afternoon + timedelta(seconds=rng.randint(0, 50))
    times.append(close - timedelta(seconds=rng.randint(0, 50)))

    def minute(t: datetime) -> int:
        if t <= lunch:
            return int((t - open_).total_seconds() // 60)
        return MORNING_MINUTES + int((t - afternoon).total_seconds() // 60)

    return [(t, minute(t)) for t in times]


def session_ticks(
    session: Session, grid: Sequence[Sequence[float]], seed: int
) -> list[tuple[datetime, int, float, int]]:
    """The day's ticks of every constituent, in time order; each one's last is its close."""
    ticks = []
    for i, c in enumerate(CONSTITUENTS):
        rng = random.Random(f"{seed}:ticks:{session.day}:{c.symbol}")
        times = tick_times(rng, session)
        for number, (t, minute) in enumerate(times):
            last = number == len(times) - 1
            price = grid[i][DAY_MINUTES] if last else to_tick(grid[i][minute])
            ticks.append((t, i, price, 100 * rng.randint(1, 60)))
    return sorted(ticks, key=lambda tick: (tick[0], tick[1]))


def build(seed: int = SEED) -> Dataset:
    """The whole dataset, in memory."""
    calendar = get_calendar(EXCHANGE)
    span = (LAST_HISTORY_DAY - BASE_DAY).days + 1
    days = [s.day for d in range(span) if (s := calendar.session(BASE_DAY + timedelta(days=d)))]
    quiet, rally = calendar.session(QUIET_DAY), calendar.session(RALLY_DAY)
    if quiet is None or rally is None or days[-1] != LAST_HISTORY_DAY:
        raise ValueError(f"{QUIET_DAY}, {RALLY_DAY} and {LAST_HISTORY_DAY} must be sessions")
    definition = define_index(CONSTITUENTS)
    closes, index_closes = history(definition, days, seed)
    ytd_base = index_closes[max(t for t, day in enumerate(days) if day.year < RALLY_DAY.year)]
    rally_target = ytd_base * RALLY_YTD

    rng = random.Random(f"{seed}:quiet")
    quiet_closes = fit_closes(
        definition,
        closes[-1],
        [rng.gauss(0.008, 0.012) for _ in CONSTITUENTS],
        [True] * len(CONSTITUENTS),
        rally_target / RALLY_GAIN,
    )
    rally_closes = fit_closes(
        definition,
        quiet_closes,
        [math.log1p(c.move / 100) for c in CONSTITUENTS],
        [c.symbol not in HEADLINERS and c.move > 0 for c in CONSTITUENTS],
        rally_target,
    )
    ticks = []
    for session, previous, day_closes, knots in (
        (quiet, closes[-1], quiet_closes, QUIET_SHAPE),
        (rally, quiet_closes, rally_closes, RALLY_SHAPE),
    ):
        rng = random.Random(f"{seed}:minutes:{session.day}")
        grid = minute_prices(definition, rng, previous, day_closes, knots)
        ticks += session_ticks(session, grid, seed)
    return Dataset(definition, tuple(days), tuple(closes), tuple(index_closes), tuple(ticks))
