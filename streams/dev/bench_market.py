"""The benchmark's synthetic market: its files, a day of history, and random walks of ticks."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from schemas.settings import Settings
from schemas.ticks import Tick


@dataclass(frozen=True)
class Scale:
    instruments: int
    indices: int
    constituents: int
    raw_messages: int
    pipeline_ticks: int
    batch: int
    rate: int
    latency_s: float


def write_market(folder: Path, scale: Scale, hot: Sequence[str]) -> tuple[Path, Path, Path]:
    symbols = [f"B{i:04d}" for i in range(scale.instruments)]
    instruments = folder / "instruments.yaml"
    lines = ["instruments:"] + [f"  - {{symbol: {s}, exchange: '24/7'}}" for s in symbols]
    instruments.write_text("\n".join(lines) + "\n")
    indices = folder / "indices.yaml"
    rows = ["indices:"]
    for n in range(scale.indices):
        members = symbols[n * 7 : n * 7 + scale.constituents]
        rows += [f"  - {{symbol: IDX{n}, exchange: '24/7', divisor: {scale.constituents / 10},"
                 " min_coverage: 0.5, constituents: ["]  # fmt: skip
        rows += [f"      {{symbol: {m}, shares: 1}}," for m in members]
        rows += ["    ]}"]
    indices.write_text("\n".join(rows) + "\n")
    rules = folder / "rules.yaml"
    rules.write_text(
        "rules:\n"
        "  - {name: daily_gain, kind: daily_move, rungs: [4, 5, 6], stages: [intraday, close]}\n"
        "  - {name: daily_loss, kind: daily_move, direction: down, rungs: [4, 5, 6]}\n"
        "  - {name: four_year_high, kind: multi_year_high, years: 4}\n"
        "  - {name: all_time_high, kind: record_high}\n"
        "  - {name: ytd_gain, kind: ytd_change, rungs: [20, 30, 40]}\n"
        "  - name: hot\n    kind: daily_move\n    rungs: ["
        + ", ".join(str(r) for r in range(1, 101))
        + "]\n    applies_to: [" + ", ".join(hot) + "]\n"
    )  # fmt: skip
    return instruments, indices, rules


def write_history(folder: Path, scale: Scale, day: datetime) -> Path:
    """One close per instrument the day before, so daily moves have a reference."""
    history = folder / "history.csv"
    rows = ["date,symbol,close"]
    rows += [f"{(day - timedelta(days=1)).date()},B{i:04d},100" for i in range(scale.instruments)]
    history.write_text("\n".join(rows) + "\n")
    return history


def seed(settings: Settings, history: Path) -> None:
    from streams.market_files import load_market
    from streams.seed import run_seed

    assert settings.redis_url is not None
    run_seed(settings.redis_url, settings.key_prefix, load_market(settings), history)


def walk(scale: Scale, count: int, start: datetime, rng: random.Random) -> list[Tick]:
    """Small moves on every instrument (few alerts, as on most days)."""
    prices = [rng.uniform(10, 500) for _ in range(scale.instruments)]
    step = timedelta(milliseconds=0.5)  # 2,000 ticks a second of event time, as at a busy open
    ticks = []
    for n in range(count):
        i = rng.randrange(scale.instruments)
        prices[i] *= 1 + rng.gauss(0, 0.001)
        ticks.append(Tick(symbol=f"B{i:04d}", price=round(prices[i], 4), ts=start + step * n))
    return ticks
