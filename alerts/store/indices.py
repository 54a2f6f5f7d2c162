"""Index states in Redis: the index agent's versioned state, one hash per index."""

from __future__ import annotations

from collections.abc import Sequence

from redis.asyncio import Redis

from alerts.core.index_agent import IndexState
from alerts.store.codec import decode, encode
from alerts.store.instruments import Counters, StaleStateError

# Check every index's version, then write them all (as for instruments).
_COMMIT = """
local n = #KEYS
for i = 1, n do
  local v = redis.call('HGET', KEYS[i], 'v') or '0'
  if v ~= ARGV[2 * i - 1] then return i end
end
for i = 1, n do
  redis.call('HSET', KEYS[i], 'v', tonumber(ARGV[2 * i - 1]) + 1, 's', ARGV[2 * i])
end
return 0
"""


class IndexStore:
    """Index states in Redis: `{prefix}:{INDEX}:index`, a hash of version and JSON."""

    def __init__(self, redis: Redis, prefix: str, counters: Counters | None = None) -> None:
        self._redis = redis
        self._prefix = prefix
        self._commit = redis.register_script(_COMMIT)
        self.counters = counters or Counters()

    def key(self, symbol: str) -> str:
        return f"{self._prefix}:{{{symbol}}}:index"

    async def load(self, symbols: Sequence[str]) -> dict[str, tuple[int, IndexState | None]]:
        async with self._redis.pipeline(transaction=False) as pipe:
            for symbol in symbols:
                pipe.hmget(self.key(symbol), "v", "s")
            rows = await pipe.execute()
        self.counters.redis_roundtrips += 1
        found: dict[str, tuple[int, IndexState | None]] = {}
        for symbol, (version, blob) in zip(symbols, rows, strict=True):
            state = decode(IndexState, blob) if blob is not None else None
            found[symbol] = (int(version or 0), state)
        return found

    async def commit(self, changes: Sequence[tuple[int, IndexState]]) -> None:
        """Write every (expected version, state) or none; StaleStateError if one moved."""
        if not changes:
            return
        keys: list[str] = []
        args: list[bytes | str] = []
        for version, state in changes:
            keys.append(self.key(state.symbol))
            args += [str(version), encode(state)]
        self.counters.redis_roundtrips += 1
        failed = int(await self._commit(keys=keys, args=args))
        if failed:
            raise StaleStateError(changes[failed - 1][1].symbol)
