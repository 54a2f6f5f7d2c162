"""Index states in Redis: the index agent's versioned state, one hash per index."""

from __future__ import annotations

import time
from collections.abc import Sequence

from redis.asyncio import Redis

from alerts.core.index_agent import IndexState
from alerts.store.codec import decode, encode
from alerts.store.errors import StaleStateError
from alerts.store.versioned import UNWATCHED, Commit, StoreWatch, VersionedScript


class IndexStore:
    """Index states in Redis: `{prefix}:{INDEX}:index`, a hash of version and JSON."""

    def __init__(self, redis: Redis, prefix: str, watch: StoreWatch = UNWATCHED) -> None:
        self._redis = redis
        self._prefix = prefix
        self.watch = watch
        self._script = VersionedScript(redis, watch)

    def key(self, symbol: str) -> str:
        return f"{self._prefix}:{{{symbol}}}:index"

    async def load(self, symbols: Sequence[str]) -> dict[str, tuple[int, IndexState | None]]:
        started = time.perf_counter()
        async with self._redis.pipeline(transaction=False) as pipe:
            for symbol in symbols:
                pipe.hmget(self.key(symbol), "v", "s")
            rows = await pipe.execute()
        self.watch.round_trip(time.perf_counter() - started, False)
        found: dict[str, tuple[int, IndexState | None]] = {}
        for symbol, (version, blob) in zip(symbols, rows, strict=True):
            state = decode(IndexState, blob) if blob is not None else None
            found[symbol] = (int(version or 0), state)
        return found

    async def commit(self, changes: Sequence[tuple[int, IndexState]]) -> None:
        """Write every (expected version, state) or none; StaleStateError if one moved."""
        if not changes:
            return
        commit = Commit()
        for version, state in changes:
            commit.write(self.key(state.symbol), version, [("s", encode(state))])
        refused = await self._script.run(commit)
        if refused is not None:
            raise StaleStateError(changes[refused.position][1].symbol)
