"""Market state in Redis: keys, the load, and the one script that commits a batch."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import orjson
from redis.asyncio import Redis

from alerts.market import InstrumentState

# Check every instrument's version first, then write them all: a stale owner (a
# worker that lost its partitions in a rebalance) changes nothing. Each instrument's
# alerts enter its outbox in the same step as its state, so a crash after this
# script never loses an alert, and before it never half-applies a batch.
_COMMIT = """
local n = tonumber(ARGV[1])
local pos = 2
for i = 1, n do
  local v = redis.call('HGET', KEYS[2 * i - 1], 'v') or '0'
  if v ~= ARGV[pos] then return i end
  pos = pos + 3 + tonumber(ARGV[pos + 2])
end
pos = 2
for i = 1, n do
  redis.call('HSET', KEYS[2 * i - 1], 'v', tonumber(ARGV[pos]) + 1, 's', ARGV[pos + 1])
  local count = tonumber(ARGV[pos + 2])
  if count > 0 then
    redis.call('RPUSH', KEYS[2 * i], unpack(ARGV, pos + 3, pos + 2 + count))
  end
  pos = pos + 3 + count
end
for k = 2 * n + 1, #KEYS do
  redis.call('LREM', KEYS[k], 1, ARGV[pos])
  pos = pos + 1
end
return 0
"""


@dataclass(frozen=True)
class Versioned:
    """A state as loaded, with the version a commit must still find to succeed."""

    version: int
    state: InstrumentState


@dataclass(frozen=True)
class Change:
    """One instrument's new state and the alerts (JSON) it raised, to commit together."""

    symbol: str
    expected_version: int
    state: InstrumentState
    alerts: Sequence[bytes]


@dataclass(frozen=True)
class Delivered:
    """An outbox entry now safely on Kafka, to be removed at the next commit."""

    symbol: str
    entry: bytes


class StaleStateError(Exception):
    """Another writer changed an instrument since we loaded it; reload and redo."""

    def __init__(self, symbol: str) -> None:
        super().__init__(f"state of {symbol} changed under us")
        self.symbol = symbol


class StateStore:
    """The Redis side of market state; every key is hash-tagged by instrument."""

    def __init__(self, redis: Redis, prefix: str) -> None:
        self._redis = redis
        self._prefix = prefix
        self._commit = redis.register_script(_COMMIT)

    def state_key(self, symbol: str) -> str:
        return f"{self._prefix}:{{{symbol}}}:state"

    def outbox_key(self, symbol: str) -> str:
        return f"{self._prefix}:{{{symbol}}}:outbox"

    async def load(self, symbols: Iterable[str]) -> dict[str, Versioned]:
        """The stored state of each symbol, a fresh one for symbols never seen."""
        wanted = list(symbols)
        if not wanted:
            return {}
        async with self._redis.pipeline(transaction=False) as pipe:
            for symbol in wanted:
                pipe.hmget(self.state_key(symbol), "v", "s")
            rows = await pipe.execute()
        loaded = {}
        for symbol, (version, blob) in zip(wanted, rows, strict=True):
            if blob is None:
                loaded[symbol] = Versioned(0, InstrumentState(symbol))
            else:
                state = InstrumentState.from_json(orjson.loads(blob))
                loaded[symbol] = Versioned(int(version), state)
        return loaded

    async def commit(self, changes: Sequence[Change], delivered: Sequence[Delivered]) -> None:
        """Write every change or none; also drop outbox entries already delivered."""
        if not changes and not delivered:
            return
        keys: list[str] = []
        args: list[bytes | int | str] = [len(changes)]
        for change in changes:
            keys += [self.state_key(change.symbol), self.outbox_key(change.symbol)]
            args += [str(change.expected_version), orjson.dumps(change.state.to_json())]
            args.append(len(change.alerts))
            args += list(change.alerts)
        for done in delivered:
            keys.append(self.outbox_key(done.symbol))
            args.append(done.entry)
        failed = int(await self._commit(keys=keys, args=args))
        if failed:
            raise StaleStateError(changes[failed - 1].symbol)

    async def pending(self) -> dict[str, list[bytes]]:
        """Outbox entries written but not yet known to be delivered (after a crash)."""
        found: dict[str, list[bytes]] = {}
        pattern = f"{self._prefix}:{{*}}:outbox"
        async for key in self._redis.scan_iter(match=pattern, count=1000):
            entries = await self._redis.lrange(key, 0, -1)
            if entries:
                name = key.decode() if isinstance(key, bytes) else key
                symbol = name[len(self._prefix) + 2 : name.rindex("}")]
                found[symbol] = entries
        return found
