"""Versioned hashes in Redis: the one script that commits a batch of states, or nothing.

Both stores commit through it: an instrument's state and outbox, an index's state. A
commit is one script run, so it is atomic and costs one round trip.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.exceptions import NoScriptError

# First the epoch of every partition the batch came from: a partition whose epoch is
# gone lost its state (a flush, a restart without persistence, a failover to an empty
# replica), and nothing may be built on the emptiness. Then every hash's version, then
# write them all: a stale owner (a worker that lost its partitions in a rebalance)
# changes nothing. Entries pushed onto a list (an instrument's outbox) go in the same
# step as the state they belong to, so a crash after this script never loses one, and
# before it never half-applies a batch. Last, entries already delivered leave their
# lists.
#
# KEYS: the epochs, then per write its hash and, if it pushes entries, its list, then
# one list per removal. ARGV: the counts of epochs and writes, the epochs, then per
# write its expected version, its field count, fields and values, its push count and
# entries, then one entry per removal.
_SCRIPT = """
local e = tonumber(ARGV[1])
local n = tonumber(ARGV[2])
for j = 1, e do
  if redis.call('GET', KEYS[j]) ~= ARGV[2 + j] then return -j end
end
local pos, k = 3 + e, e + 1
for i = 1, n do
  local v = redis.call('HGET', KEYS[k], 'v') or '0'
  if v ~= ARGV[pos] then return i end
  local fields = tonumber(ARGV[pos + 1])
  local pushes = tonumber(ARGV[pos + 2 + 2 * fields])
  pos = pos + 3 + 2 * fields + pushes
  if pushes > 0 then k = k + 2 else k = k + 1 end
end
pos, k = 3 + e, e + 1
for i = 1, n do
  local last = pos + 1 + 2 * tonumber(ARGV[pos + 1])
  redis.call('HSET', KEYS[k], 'v', tonumber(ARGV[pos]) + 1, unpack(ARGV, pos + 2, last))
  local pushes = tonumber(ARGV[last + 1])
  if pushes > 0 then
    redis.call('RPUSH', KEYS[k + 1], unpack(ARGV, last + 2, last + 1 + pushes))
    k = k + 2
  else
    k = k + 1
  end
  pos = last + 2 + pushes
end
for r = k, #KEYS do
  redis.call('LREM', KEYS[r], 1, ARGV[pos])
  pos = pos + 1
end
return 0
"""


class StoreWatch(Protocol):
    """Told what the stores do with Redis, for the worker's metrics (kept out of here)."""

    def round_trip(self, seconds: float, commit: bool) -> None:
        """One Redis round trip took `seconds`; `commit`: it ran the commit script."""

    def redone(self, reason: str) -> None:
        """A batch's commit was refused and the batch is redone (`stale_state`,
        `state_lost`)."""


class Unwatched:
    """A StoreWatch that notes nothing (seed runs, tests)."""

    def round_trip(self, seconds: float, commit: bool) -> None:
        pass

    def redone(self, reason: str) -> None:
        pass


UNWATCHED = Unwatched()


@dataclass(frozen=True)
class Refusal:
    """Why a commit wrote nothing: an epoch gone (`position` among the epochs), or a
    version moved (`position` among the writes)."""

    epoch_lost: bool
    position: int


class Commit:
    """One commit: epochs that must still hold, writes to versioned hashes, removals.

    Laid out straight as the script's keys and arguments: one is built for every batch.
    """

    def __init__(self, epochs: Sequence[tuple[str, str]] = ()) -> None:
        """`epochs`: (key, value) pairs that must all still be in Redis."""
        self._epochs = list(epochs)
        self._writes = 0
        self._keys: list[str] = []
        self._args: list[bytes | str | int] = []
        self._removal_keys: list[str] = []
        self._removals: list[bytes] = []

    def write(
        self,
        key: str,
        expected: int,
        fields: Sequence[tuple[str, bytes]],
        push_to: str = "",
        pushes: Sequence[bytes] = (),
    ) -> None:
        """Set `fields` of hash `key`, and move its version 'v' on by one, if the version is
        still `expected` (0: no hash yet); push `pushes` onto list `push_to` with them."""
        self._writes += 1
        self._keys.append(key)
        self._args += [str(expected), len(fields)]
        for name, value in fields:
            self._args += [name, value]
        self._args.append(len(pushes))
        if pushes:
            if not push_to:
                raise ValueError(f"entries to push for {key} but no list to push them to")
            self._keys.append(push_to)
            self._args += pushes

    def remove(self, key: str, entry: bytes) -> None:
        """Remove one `entry` from list `key`, after every write."""
        self._removal_keys.append(key)
        self._removals.append(entry)

    def keys_and_args(self) -> tuple[list[str], list[bytes | str | int]]:
        keys = [key for key, _ in self._epochs] + self._keys + self._removal_keys
        head: list[bytes | str | int] = [len(self._epochs), self._writes]
        return keys, head + [epoch for _, epoch in self._epochs] + self._args + self._removals


class VersionedScript:
    """Runs commits on one Redis, loading the script again after a restart or a flush."""

    def __init__(self, redis: Redis, watch: StoreWatch = UNWATCHED) -> None:
        self._redis = redis
        self._watch = watch
        self._sha: str | None = None

    async def run(
        self, commit: Commit, before: Callable[[Pipeline], object] | None = None
    ) -> Refusal | None:
        """`commit` in one round trip, after the commands `before` queues: None if every
        write was made, else why none was."""
        keys, args = commit.keys_and_args()
        for attempt in (1, 2):
            if self._sha is None:
                self._sha = str(await self._redis.script_load(_SCRIPT))
            async with self._redis.pipeline(transaction=False) as pipe:
                if before is not None:
                    before(pipe)
                pipe.evalsha(self._sha, len(keys), *keys, *args)
                started = time.perf_counter()
                try:
                    results = await pipe.execute()
                    break
                except NoScriptError:
                    # Redis restarted or flushed its scripts: load it again, once.
                    self._sha = None
                    if attempt == 2:
                        raise
                finally:
                    self._watch.round_trip(time.perf_counter() - started, True)
        verdict = int(results[-1])
        if verdict < 0:
            return Refusal(epoch_lost=True, position=-verdict - 1)
        if verdict > 0:
            return Refusal(epoch_lost=False, position=verdict - 1)
        return None
