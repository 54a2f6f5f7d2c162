"""Market state in Redis: instruments' keys, loads, and commits of state with outbox."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from alerts.core.instrument import InstrumentState
from alerts.core.session_history import History
from alerts.store.codec import decode, encode
from alerts.store.errors import StaleStateError, StateLostError
from alerts.store.versioned import UNWATCHED, Commit, StoreWatch, VersionedScript

# The history changes once a session, the rest on every tick: each has its own field.
_APART = ("history",)


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


class StateStore:
    """The Redis side of market state; instrument keys are hash-tagged by instrument."""

    def __init__(self, redis: Redis, prefix: str, watch: StoreWatch = UNWATCHED) -> None:
        self._redis = redis
        self._prefix = prefix
        self.watch = watch
        self._script = VersionedScript(redis, watch)

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
        started = time.perf_counter()
        found = await self._redis.mget([self.epoch_key(topic, p) for p in partitions])
        self.watch.round_trip(time.perf_counter() - started, False)
        return {
            p: (e.decode() if isinstance(e, bytes) else e)
            for p, e in zip(partitions, found, strict=True)
        }

    async def start_epoch(self, topic: str, partition: int) -> str:
        """The partition's epoch, made now unless another worker made one first."""
        key = self.epoch_key(topic, partition)
        started = time.perf_counter()
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.set(key, uuid.uuid4().hex, nx=True)
            pipe.get(key)
            _, epoch = await pipe.execute()
        self.watch.round_trip(time.perf_counter() - started, False)
        return epoch.decode() if isinstance(epoch, bytes) else str(epoch)

    async def members(self, topic: str, partition: int) -> set[str]:
        """Every instrument ever seen on this partition of the ticks topic."""
        started = time.perf_counter()
        raw = await self._redis.smembers(self.members_key(topic, partition))
        self.watch.round_trip(time.perf_counter() - started, False)
        return {m.decode() if isinstance(m, bytes) else str(m) for m in raw}

    async def load(self, symbols: Iterable[str], with_outboxes: bool = False) -> Loaded:
        """The stored state of each symbol (fresh for symbols never seen), in one trip."""
        wanted = list(symbols)
        if not wanted:
            return Loaded({}, {})
        started = time.perf_counter()
        async with self._redis.pipeline(transaction=False) as pipe:
            for symbol in wanted:
                pipe.hmget(self.state_key(symbol), "v", "s", "h")
                if with_outboxes:
                    pipe.lrange(self.outbox_key(symbol), 0, -1)
            rows = await pipe.execute()
        self.watch.round_trip(time.perf_counter() - started, False)
        states: dict[str, Versioned] = {}
        outboxes: dict[str, list[bytes]] = {}
        step = 2 if with_outboxes else 1
        for i, symbol in enumerate(wanted):
            version, hot, history = rows[i * step]
            if hot is None:
                states[symbol] = Versioned(0, InstrumentState(symbol))
            else:
                past = decode(History, history) if history else History()
                state = decode(InstrumentState, hot, history=past)
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
        commit = Commit([(self.epoch_key(topic, p), epoch) for (topic, p), epoch in checked])
        for change in changes:
            fields = [("s", encode(change.state, omit=_APART))]
            if change.history_changed:
                fields.append(("h", encode(change.state.history)))
            key, outbox = self.state_key(change.symbol), self.outbox_key(change.symbol)
            commit.write(key, change.expected_version, fields, outbox, change.alerts)
        for done in delivered:
            commit.remove(self.outbox_key(done.symbol), done.entry)

        def register(pipe: Pipeline) -> None:
            for (topic, partition), symbols in (new_members or {}).items():
                if symbols:
                    pipe.sadd(self.members_key(topic, partition), *sorted(symbols))

        refused = await self._script.run(commit, before=register)
        if refused is not None and refused.epoch_lost:
            topic, partition = checked[refused.position][0]
            raise StateLostError(topic, partition)
        if refused is not None:
            raise StaleStateError(changes[refused.position].symbol)
