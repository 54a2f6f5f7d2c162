"""Seed: load daily history into market state, so a fresh deployment knows its records."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date
from functools import partial
from pathlib import Path

from redis.asyncio import Redis

from alerts.core.index_agent import IndexState
from alerts.core.instrument import seed_closes
from alerts.core.market import Market
from alerts.engine.indices import starting_prices
from alerts.store.indices import IndexStore
from alerts.store.instruments import Change, StateStore
from alerts.store.retry import redo_until_committed
from schemas.daily_bars import DailyBar
from schemas.errors import InputError
from streams.history_file import read_history

_CHUNK = 200


@dataclass(frozen=True)
class SeedReport:
    instruments: int
    applied: int
    skipped: int
    not_sessions: int


def check_bars(bars: Sequence[DailyBar], market: Market, path: Path) -> int:
    """InputError for a symbol the instruments file does not know; count non-session days."""
    not_sessions = 0
    for bar in bars:
        spec = market.instruments.get(bar.symbol)
        if spec is None:
            raise InputError(f"{path}: {bar.symbol} is not in the instruments file")
        if not market.calendar(spec.exchange).is_session(bar.date):
            not_sessions += 1
    return not_sessions


async def seed_history(store: StateStore, market: Market, path: Path) -> SeedReport:
    """Append each instrument's closes that its state does not have yet (idempotent)."""
    bars = read_history(path)
    not_sessions = check_bars(bars, market, path)
    by_symbol = {
        symbol: [(bar.date, bar.close) for bar in group]
        for symbol, group in itertools.groupby(bars, key=lambda bar: bar.symbol)
    }
    applied = skipped = 0
    symbols = sorted(by_symbol)
    for start in range(0, len(symbols), _CHUNK):
        chunk = symbols[start : start + _CHUNK]
        chunk_applied, chunk_skipped = await redo_until_committed(
            partial(_seed_chunk, store, market, chunk, by_symbol),
            lambda: InputError(f"{path}: state kept changing under the seed; is a replay running?"),
        )
        applied += chunk_applied
        skipped += chunk_skipped
    return SeedReport(len(symbols), applied, skipped, not_sessions)


async def _seed_chunk(
    store: StateStore,
    market: Market,
    chunk: Sequence[str],
    by_symbol: dict[str, list[tuple[date, float]]],
) -> tuple[int, int]:
    """Seed some instruments in one commit: the closes applied and skipped."""
    loaded = (await store.load(chunk)).states
    changes, applied, skipped = [], 0, 0
    for symbol in chunk:
        current = loaded[symbol]
        spec = market.instruments.get(symbol)
        state = current.state
        if spec is not None and state.kind != spec.kind:
            state = replace(state, kind=spec.kind)
        seeded = seed_closes(state, by_symbol[symbol])
        applied += seeded.applied
        skipped += seeded.skipped
        if seeded.applied:
            changes.append(Change(symbol, current.version, seeded.state, []))
    # Refused when a worker moved one of them meanwhile: the chunk is reloaded and redone.
    await store.commit(changes, [])
    return applied, skipped


async def seed_indices(indices: IndexStore, instruments: StateStore, market: Market) -> int:
    """Start each index not started yet from its constituents' seeded closes.

    Done here, before any tick, so the index's first session measures its moves from
    the same closes the seeded history ends with.
    """
    started = 0
    for spec in market.indices.indices:
        _, state = (await indices.load([spec.symbol]))[spec.symbol]
        if state is None:
            prices = await starting_prices(instruments, spec)
            await indices.commit([(0, IndexState(spec.symbol, prices=prices))])
            started += 1
    return started


def run_seed(redis_url: str, prefix: str, market: Market, path: Path) -> SeedReport:
    async def go() -> SeedReport:
        redis = Redis.from_url(redis_url)
        try:
            instruments = StateStore(redis, prefix)
            report = await seed_history(instruments, market, path)
            await seed_indices(IndexStore(redis, prefix), instruments, market)
            return report
        finally:
            await redis.aclose()

    return asyncio.run(go())
