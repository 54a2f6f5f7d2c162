"""Market state in Redis: keys, loads, and the one script that commits a batch."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import orjson
from redis.asyncio import Redis
from redis.exceptions import NoScriptError

from alerts.core.instrument import InstrumentState
from alerts.core.session_history import History

# First the epoch of every partition the batch came from: a partition whose epoch is
# gone lost its state (a flush, a restart without persistence, a failover to an empty
# replica), and nothing may be built on the emptiness. Then every instrument's version,
# then write them all: a stale owner (a worker that lost its partitions in a
# rebalance) changes nothing. Each instrument's alerts enter its outbox in the same
# step as its state, so a crash after this script never loses an alert, and before it
# never half-applies a batch. The history field is written only when it changed (once
# a session).
_COMMIT = """
local e = tonumber(ARGV[1])
for j = 1, e do
  if redis.call('GET', KEYS[j]) ~= ARGV[2 + j] then return -j end
end
local n = tonumber(ARGV[2])
local pos = 3 + e
for i = 1, n do
  local v = redis.call('HGET', KEYS[e + 2 * i - 1], 'v') or '0'
  if v ~= ARGV[pos] then return i end
  pos = pos + 4 + tonumber(ARGV[pos + 3])
end
pos = 3 + e
for i = 1, n do
  local key = KEYS[e + 2 * i - 1]
  redis.call('HSET', key, 'v', tonumber(ARGV[pos]) + 1, 's', ARGV[pos + 1])
  if ARGV[pos + 2] ~= '' then redis.call('HSET', key, 'h', ARGV[pos + 2]) end
  local count = tonumber(ARGV[pos + 3])
  if count > 0 then
    redis.call('RPUSH', KEYS[e + 2 * i], unpack(ARGV, pos + 4, pos + 3 + count))
  end
  pos = pos + 4 + count
end
for k = e + 2 * n + 1, #KEYS do
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
    """One instrument's new state and the outbox entries it adds, to commit together."""

    symbol: str
    expected_version: int
    state: InstrumentState
    alerts: Sequence[bytes]
    history_changed: bool = True


@dataclass(frozen=True)
class Delivered:
    """An outbox entry now safely on Kafka, to be removed at the next commit."""

    symbol: str
    entry: bytes


@dataclass(frozen=True)
class Loaded:
    """States of some instruments, and what their outboxes still hold."""

    states: dict[str, Versioned]
    outboxes: dict[str, list[bytes]]


@dataclass
class Counters:
    """The store's own count of Redis round trips (the worker's counts read it)."""

    redis_roundtrips: int = 0


class StateLostError(Exception):
    """A partition's state epoch is no longer in Redis: its state vanished."""

    def __init__(self, topic: str, partition: int) -> None:
        super().__init__(f"the state epoch of {topic}[{partition}] is gone from Redis")
        self.topic = topic
        self.partition = partition


class StaleStateError(Exception):
    """Another writer changed an instrument since we loaded it; reload and redo."""

    def __init__(self, symbol: str) -> None:
        super().__init__(f"state of {symbol} changed under us")
        self.symbol = symbol


class StateStore:
    """The Redis side of market state; instrument keys are hash-tagged by instrument."""

    def __init__(self, redis: Redis, prefix: str, counters: Counters | None = None) -> None:
        self._redis = redis
        self._prefix = prefix
        self._commit_sha: str | None = None
        self.counters = counters or Counters()

    def state_key(self, symbol: str) -> str:
        return f"{self._prefix}:{{{symbol}}}:state"

    def outbox_key(self, symbol: str) -> str:
        return f"{self._prefix}:{{{symbol}}}:outbox"

    def members_key(self, topic: str, partition: int) -> str:
        return f"{self._prefix}:members:{{{topic}:{partition}}}"

    def epoch_key(self, topic: str, partition: int) -> str:
        return f"{self._prefix}:epoch:{{{topic}:{partition}}}"

    async def epochs(self, topic: str, partitions: Sequence[int]) -> dict[int, str | None]:
        """Each partition's state epoch; None where Redis has none."""
        if not partitions:
            return {}
        self.counters.redis_roundtrips += 1
        found = await self._redis.mget([self.epoch_key(topic, p) for p in partitions])
        return {
            p: (e.decode() if isinstance(e, bytes) else e)
            for p, e in zip(partitions, found, strict=True)
        }

    async def start_epoch(self, topic: str, partition: int) -> str:
        """The partition's epoch, made now unless another worker made one first."""
        key = self.epoch_key(topic, partition)
        self.counters.redis_roundtrips += 1
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.set(key, uuid.uuid4().hex, nx=True)
            pipe.get(key)
            _, epoch = await pipe.execute()
        return epoch.decode() if isinstance(epoch, bytes) else str(epoch)

    async def members(self, topic: str, partition: int) -> set[str]:
        """Every instrument ever seen on this partition of the ticks topic."""
        self.counters.redis_roundtrips += 1
        raw = await self._redis.smembers(self.members_key(topic, partition))
        return {m.decode() if isinstance(m, bytes) else str(m) for m in raw}

    async def load(self, symbols: Iterable[str], with_outboxes: bool = False) -> Loaded:
        """The stored state of each symbol (fresh for symbols never seen), in one trip."""
        wanted = list(symbols)
        if not wanted:
            return Loaded({}, {})
        async with self._redis.pipeline(transaction=False) as pipe:
            for symbol in wanted:
                pipe.hmget(self.state_key(symbol), "v", "s", "h")
                if with_outboxes:
                    pipe.lrange(self.outbox_key(symbol), 0, -1)
            rows = await pipe.execute()
        self.counters.redis_roundtrips += 1
        states: dict[str, Versioned] = {}
        outboxes: dict[str, list[bytes]] = {}
        step = 2 if with_outboxes else 1
        for i, symbol in enumerate(wanted):
            version, hot, history = rows[i * step]
            if hot is None:
                states[symbol] = Versioned(0, InstrumentState(symbol))
            else:
                past = History.from_json(orjson.loads(history)) if history else History()
                state = InstrumentState.from_json(orjson.loads(hot), past)
                states[symbol] = Versioned(int(version), state)
            if with_outboxes and rows[i * step + 1]:
                outboxes[symbol] = list(rows[i * step + 1])
        return Loaded(states, outboxes)

    async def commit(
        self,
        changes: Sequence[Change],
        delivered: Sequence[Delivered],
        new_members: dict[tuple[str, int], set[str]] | None = None,
        epochs: Mapping[tuple[str, int], str] | None = None,
    ) -> None:
        """Write every change or none, in one round trip; drop delivered outbox entries.

        Nothing is written, and StateLostError raised, when one of `epochs` (topic and
        partition: epoch) is no longer in Redis. New members are registered before the
        script runs, so the registry of a partition is never missing an instrument
        whose state exists.
        """
        if not changes and not delivered and not new_members:
            return
        checked = sorted((epochs or {}).items())
        keys: list[str] = [self.epoch_key(topic, p) for (topic, p), _ in checked]
        args: list[bytes | int | str] = [len(checked), len(changes)]
        args += [epoch for _, epoch in checked]
        for change in changes:
            keys += [self.state_key(change.symbol), self.outbox_key(change.symbol)]
            args += [str(change.expected_version), orjson.dumps(change.state.hot_json())]
            args.append(
                orjson.dumps(change.state.history.to_json()) if change.history_changed else b""
            )
            args.append(len(change.alerts))
            args += list(change.alerts)
        for done in delivered:
            keys.append(self.outbox_key(done.symbol))
            args.append(done.entry)
        for attempt in (1, 2):
            if self._commit_sha is None:
                self._commit_sha = str(await self._redis.script_load(_COMMIT))
            async with self._redis.pipeline(transaction=False) as pipe:
                for (topic, partition), symbols in (new_members or {}).items():
                    if symbols:
                        pipe.sadd(self.members_key(topic, partition), *sorted(symbols))
                pipe.evalsha(self._commit_sha, len(keys), *keys, *args)
                try:
                    self.counters.redis_roundtrips += 1
                    results = await pipe.execute()
                    break
                except NoScriptError:
                    # Redis restarted or flushed its scripts: load it again, once.
                    self._commit_sha = None
                    if attempt == 2:
                        raise
        failed = int(results[-1])
        if failed < 0:
            topic, partition = checked[-failed - 1][0]
            raise StateLostError(topic, partition)
        if failed:
            raise StaleStateError(changes[failed - 1].symbol)
