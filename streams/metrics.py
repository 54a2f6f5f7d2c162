"""What a worker has done, counted once per batch outcome, and where those counts go.

The agents record each batch's outcome here (never inside the state commit); a writer
copies the counts to a Redis hash, `{prefix}:stats:{pid}`, which `tickwatch demo`
sums into its summary and `tickwatch bench` reads; Prometheus reads the same object
at scrape time (streams/metrics_collector.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from redis import Redis as SyncRedis
from redis.asyncio import Redis
from redis.exceptions import RedisError

from alerts.core.decode import Incoming, RejectReason
from alerts.engine.ticks import BatchResult
from streams.gaps import Gap

log = logging.getLogger(__name__)


@dataclass
class WorkerCounts:
    """Totals since the worker started. Counts by label are kept as `name:label` fields."""

    messages: int = 0  # ticks topic messages taken
    ticks: int = 0  # ticks and session ends in them (a batch message holds many)
    applied: int = 0
    duplicates: int = 0
    held: int = 0  # not applied: the partition's state vanished from Redis
    alerts: int = 0
    index_ticks: int = 0  # index levels the index agent published to the ticks topic
    first_ms: int = 0
    last_ms: int = 0
    redis_roundtrips: int = 0  # of the state stores and this writer
    labelled: Counter[str] = field(default_factory=Counter)
    next_offsets: dict[str, int] = field(default_factory=dict)  # "topic:partition"
    # For Prometheus only (not in the stats hash):
    indices: frozenset[str] = frozenset()  # the computed indices' symbols
    alert_stages: Counter[tuple[str, str]] = field(default_factory=Counter)  # kind, stage
    index_alerts: Counter[str] = field(default_factory=Counter)
    event_ms: dict[str, int] = field(default_factory=dict)  # latest tick, by exchange
    lag: dict[tuple[str, int], int] = field(default_factory=dict)  # owned partitions
    assigned: dict[str, int] = field(default_factory=dict)  # partitions owned, by topic

    def ingested(self, topic: str, batch: Sequence[Incoming], result: BatchResult) -> None:
        """A batch of ticks topic messages was applied, with this outcome."""
        self.messages += len(batch)
        self.ticks += result.applied + result.duplicates + result.held + result.rejected
        self.ticks += sum(result.ignored.values())
        self.applied += result.applied
        self.duplicates += result.duplicates
        self.held += result.held
        self.alerts += len(result.alerts)
        self._add("ignored", result.ignored)
        self._add("dead_letters", result.rejected_by)
        if result.alerts:
            self._add("alerts", Counter(alert.kind for alert in result.alerts))
            self.alert_stages.update((alert.kind, alert.stage) for alert in result.alerts)
            self.index_alerts.update(
                a.instrument for a in result.alerts if a.instrument in self.indices
            )
        self._through(topic, batch)

    def seen(self, event_ms: Mapping[str, int]) -> None:
        """The latest tick event times the ingest engine has read, by exchange."""
        for exchange, ts_ms in event_ms.items():
            if ts_ms > self.event_ms.get(exchange, -1):
                self.event_ms[exchange] = ts_ms

    def dead_lettered(self, topic: str, batch: Sequence[Incoming], reason: RejectReason) -> None:
        """A whole batch went to the dead-letter topic (internal_error)."""
        self.messages += len(batch)
        self.ticks += len(batch)
        self._add("dead_letters", {reason: len(batch)})
        self._through(topic, batch)

    def indexed(self, topic: str, batch: Sequence[Incoming], index_ticks: int) -> None:
        """A batch of constituent prices was applied; index_ticks index levels came of it."""
        self.index_ticks += index_ticks
        self._through(topic, batch)

    def _through(self, topic: str, batch: Sequence[Incoming]) -> None:
        """Note how far each partition got, in the same step as the batch's outcome:
        counts written in between (the stats timer runs while a batch waits on Redis)
        would claim a batch they do not hold (see `counted_to`)."""
        now_ms = int(time.time() * 1000)
        self.first_ms = self.first_ms or now_ms
        self.last_ms = now_ms
        self.labelled[f"consumed:{topic}"] += len(batch)
        for message in batch:
            key = f"{topic}:{message.partition}"
            self.next_offsets[key] = max(self.next_offsets.get(key, 0), message.offset + 1)

    def lost(self, gaps: Iterable[Gap]) -> None:
        for gap in gaps:
            self.labelled[f"lost:{gap.topic}"] += gap.count

    def redone(self, reason: str) -> None:
        """A batch redone: its commit refused (`stale_state`, `state_lost`), or Redis or
        Kafka out of reach (`unreachable`)."""
        self.labelled[f"retries:{reason}"] += 1

    def _add(self, name: str, counts: Mapping[str, int]) -> None:
        for label, count in counts.items():
            self.labelled[f"{name}:{label}"] += count

    def fields(self) -> dict[str, int]:
        """The counts as one flat hash."""
        totals = ("messages", "ticks", "applied", "duplicates", "held", "alerts")
        flat = {name: getattr(self, name) for name in (*totals, "index_ticks")}
        flat.update(first_ms=self.first_ms, last_ms=self.last_ms)
        flat["redis_roundtrips"] = self.redis_roundtrips
        flat.update(self.labelled)
        flat.update({f"next:{key}": offset for key, offset in self.next_offsets.items()})
        return flat


class StatsWriter:
    """Copies a worker's counts to Redis, at most every `interval_s`, and on demand."""

    def __init__(
        self,
        redis: Redis,
        key: str,
        counts: WorkerCounts,
        interval_s: float = 0.5,
        ttl_s: int = 86_400,
    ) -> None:
        self._redis = redis
        self.key = key
        self.counts = counts
        self._interval_s = interval_s
        self._ttl_s = ttl_s  # a dead worker's counts go after a day
        self._written: dict[str, int] = {}
        self._at = 0.0
        self._lock = asyncio.Lock()

    async def maybe_write(self) -> None:
        if time.monotonic() - self._at >= self._interval_s:
            await self.write()

    async def write(self) -> None:
        """Write the counts if they changed since the last write."""
        async with self._lock:
            flat = self.counts.fields()
            self._at = time.monotonic()
            # Round trips alone (this write is one) are no reason to write again.
            if {**flat, "redis_roundtrips": 0} == {**self._written, "redis_roundtrips": 0}:
                return
            self.counts.redis_roundtrips += 1
            flat["redis_roundtrips"] = self.counts.redis_roundtrips
            try:
                async with self._redis.pipeline(transaction=False) as pipe:
                    pipe.hset(self.key, mapping=flat)  # type: ignore[arg-type]
                    pipe.expire(self.key, self._ttl_s)
                    await pipe.execute()
            except RedisError as error:  # the counts stay in memory; written next time
                log.debug("worker counts not written: %s", error)
                return
            self._written = flat


def read_counts(redis: SyncRedis, prefix: str) -> dict[int, dict[str, int]]:
    """Each worker's counts under this prefix, by process id, as written by StatsWriter."""
    found = {}
    for key in redis.scan_iter(match=f"{prefix}:stats:*"):
        name = key.decode() if isinstance(key, bytes) else str(key)
        raw: dict[bytes, bytes] = redis.hgetall(name)  # type: ignore[assignment]
        found[int(name.rsplit(":", 1)[1])] = {k.decode(): int(v) for k, v in raw.items()}
    return found


def counted_to(counts: Mapping[str, int], highs: Mapping[tuple[str, int], int]) -> bool:
    """Whether (summed) counts include every message below these offsets, by topic and
    partition."""
    return all(
        counts.get(f"next:{topic}:{partition}", 0) >= high
        for (topic, partition), high in highs.items()
        if high > 0
    )


def summed(hashes: Iterable[Mapping[str, int]]) -> dict[str, int]:
    """Several workers' counts as one: totals summed, `next:` offsets by maximum."""
    total: dict[str, int] = {}
    for counts in hashes:
        for name, value in counts.items():
            if name.startswith("next:"):
                total[name] = max(total.get(name, 0), value)
            elif name not in ("first_ms", "last_ms"):
                total[name] = total.get(name, 0) + value
    return total
