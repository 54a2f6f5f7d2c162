"""The ingest shell: a batch of ticks-topic messages -> the batch step -> Redis -> alerts on Kafka.

decode -> session -> state -> rules -> alert -> delivery, with Redis written once per
batch and every alert going through its instrument's outbox before it reaches Kafka.
The decisions are alerts/core/batch.py's; this shell loads, commits and publishes.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import orjson

from alerts.core.batch import BatchStep, Moved, apply_batch, expect_close, held_apart
from alerts.core.clock import SessionClock
from alerts.core.decode import Incoming, Rejected, RejectReason, Routed, TickAt, route
from alerts.core.instrument import InstrumentState
from alerts.core.market import Market
from alerts.core.outbox import OutboxEntry, first_marks
from alerts.core.outgoing import Record
from alerts.delivery.kafka import KafkaPublisher
from alerts.delivery.kafka_offsets import GroupOffsets, alert_ids_from
from alerts.store.errors import StaleStateError, StateLostError
from alerts.store.instruments import Change, Delivered, StateStore, Versioned
from alerts.store.retry import MAX_ATTEMPTS, redo_until_committed
from schemas.alerts import Alert

log = logging.getLogger(__name__)


@dataclass
class BatchResult:
    """What became of a batch's ticks (and session ends), each counted once."""

    applied: int = 0
    duplicates: int = 0
    held: int = 0  # not applied: their partition's state vanished from Redis
    ignored: dict[str, int] = field(default_factory=dict)
    rejected_by: dict[str, int] = field(default_factory=dict)  # dead-lettered, by reason
    alerts: list[Alert] = field(default_factory=list)

    @property
    def rejected(self) -> int:
        return sum(self.rejected_by.values())


@dataclass(frozen=True)
class Topics:
    ticks: str
    alerts: str
    dead_letters: str
    constituents: str = "constituents"


class Engine:
    """Owns the market state of the partitions this worker holds, cached in memory."""

    def __init__(
        self,
        store: StateStore,
        publisher: KafkaPublisher,
        market: Market,
        topics: Topics,
        offsets: GroupOffsets | None = None,
    ) -> None:
        self._store = store
        self._publisher = publisher
        self._market = market
        self._topics = topics
        self._offsets = offsets  # None: the group is taken to be new on every partition
        self._epochs: dict[int, str] = {}  # each owned partition's state epoch in Redis
        self.lost: set[int] = set()  # partitions whose state vanished: held, not applied
        self._states: dict[str, InstrumentState] = {}
        self._versions: dict[str, int] = {}  # of each cached state, as Redis has it
        self._members: dict[int, set[str]] = {}
        self._clock = SessionClock()
        self._delivered: list[Delivered] = []
        # Alerts committed to outboxes and not yet on Kafka, for the metrics: above
        # zero for long only while Kafka refuses them.
        self.outbox_pending = 0

    async def start(self) -> None:
        """Learn where the alerts topic ends, before the first batch."""
        await asyncio.to_thread(self._publisher.track, self._topics.alerts)

    def event_times(self) -> dict[str, int]:
        """The latest tick event time (epoch ms) of each exchange, as far as this worker
        has read since it took its partitions."""
        return self._clock.latest()

    def forget(self) -> None:
        """Drop everything cached: after a rebalance another worker may own it."""
        self._forget_states()
        self._members.clear()
        self._clock.forget()
        self._epochs.clear()
        self.lost.clear()

    async def process(
        self, batch: Sequence[Incoming], behind: Mapping[int, bool] | None = None
    ) -> BatchResult:
        """The batch applied, committed and published; `behind` says, by partition,
        whether the reader had more to read after it (unknown: caught up)."""
        routed = [item for message in batch for item in route(message, self._market)]
        rejected = [r for r in routed if isinstance(r, Rejected)]
        accepted = [r for r in routed if not isinstance(r, Rejected)]
        await self._warm_up({r.message.partition for r in accepted})
        step, held = await self._apply(accepted, behind)
        await self._publish(step.moved)
        # Prices for the index agent: after the alerts, and again on redelivery, so that
        # a crash before this line is repaired by the replay (the agent dedupes).
        await self._publisher.publish(step.forwards)
        # Last: a batch retried while Redis is away does not dead-letter its rejects again.
        await self._dead_letter(rejected)
        rejected_by: dict[str, int] = dict(Counter(r.reason for r in rejected))
        return BatchResult(
            step.applied, step.duplicates, held, dict(step.ignored), rejected_by, [*step.alerts]
        )

    async def dead_letter(
        self, batch: Sequence[Incoming], reason: RejectReason, detail: str
    ) -> None:
        """Send every message of a batch to the dead-letter topic, unchanged, with why."""
        await self._dead_letter([Rejected(message, reason, detail) for message in batch])

    async def close(self) -> None:
        """Record the last deliveries so that a restart does not publish them again."""
        await self._store.commit([], self._delivered)
        self._delivered = []

    async def _warm_up(self, partitions: set[int]) -> None:
        """Load every instrument of newly owned partitions; publish what a crash left."""
        new = sorted(partitions - self._members.keys() - self.lost)
        if not new:
            return
        members: set[str] = set()
        for partition in new:
            self._members[partition] = await self._store.members(self._topics.ticks, partition)
        await self._check_epochs(new)
        for partition in new:
            members |= self._members.get(partition, set())  # none once lost
        loaded = await self._store.load(members - self._states.keys(), with_outboxes=True)
        self._cache_loaded(loaded.states)
        for partition in new:
            for symbol in self._members.get(partition, ()):
                expect_close(self._clock, self._market, partition, self._states[symbol])
        if loaded.outboxes:
            await self._recover(loaded.outboxes)

    async def _check_epochs(self, partitions: Sequence[int]) -> None:
        """Learn each partition's state epoch; start one where the group is new to the
        partition (or state predates epochs); else the state this worker's committed
        offsets stand on is gone, and the partition is held."""
        topic = self._topics.ticks
        epochs = await self._store.epochs(topic, partitions)
        committed: dict[int, int | None] = {}
        if self._offsets is not None and any(e is None for e in epochs.values()):
            committed = await asyncio.to_thread(self._offsets.committed, topic, partitions)
        for partition in partitions:
            epoch = epochs[partition]
            known = committed.get(partition)
            if epoch is None and known is not None and not self._members[partition]:
                self._lose(partition, f"the group's committed offset is {known}")
                continue
            if epoch is None:
                epoch = await self._store.start_epoch(topic, partition)
            self._epochs[partition] = epoch

    async def _recheck_epochs(self) -> None:
        """After a commit refused for a changed epoch: hold every partition whose epoch
        Redis no longer has, and forget what was cached."""
        found = await self._store.epochs(self._topics.ticks, sorted(self._epochs))
        for partition, epoch in found.items():
            if epoch != self._epochs[partition]:
                self._lose(partition, "its epoch vanished while this worker ran")
        self._forget_states()

    def _lose(self, partition: int, evidence: str) -> None:
        self.lost.add(partition)
        self._epochs.pop(partition, None)
        self._members.pop(partition, None)
        log.error(
            "%s[%d]: the market state in Redis for this partition is gone (%s): Redis was "
            "flushed, restarted without persistence, or failed over to an empty replica. "
            "Its ticks are held, not applied, so that no alert is raised from empty state. "
            "To recover, stop the workers, seed the daily history (tickwatch seed), and "
            "replay the ticks since under a new TICKWATCH_APP_ID (README: Recovering lost state).",
            self._topics.ticks, partition, evidence,
        )  # fmt: skip

    async def _recover(self, outboxes: dict[str, list[bytes]]) -> None:
        entries = [(s, OutboxEntry.decode(e)) for s, found in outboxes.items() for e in found]
        starts = first_marks(entry for _, entry in entries)
        if not starts:  # written by a worker that knew no marks: read everything
            starts = dict.fromkeys(self._publisher.marks(self._topics.alerts), 0)
        published = await asyncio.to_thread(
            alert_ids_from, self._publisher.bootstrap, self._topics.alerts, starts
        )
        missing = [
            Record(self._topics.alerts, symbol.encode(), entry.alert_json)
            for symbol, entry in entries
            if orjson.loads(entry.alert_json)["alert_id"] not in published
        ]
        self.outbox_pending = len(missing)
        await self._publisher.publish(missing)
        self.outbox_pending = 0
        self._delivered += [Delivered(s, e.encoded) for s, e in entries]
        log.warning("outbox recovery: %d alert(s) left by a stopped worker, %d already on %s, "
                    "%d published now", len(entries), len(entries) - len(missing),
                    self._topics.alerts, len(missing))  # fmt: skip

    async def _apply(
        self, batch: Sequence[Routed], behind: Mapping[int, bool] | None
    ) -> tuple[BatchStep, int]:
        """The batch applied and committed (redone from Redis while a commit is refused),
        and how many of its ticks were held."""
        tried: list[BatchStep] = []
        held: list[Routed] = []

        async def attempt() -> BatchStep:
            nonlocal held
            routed, held = held_apart(batch, self.lost)
            symbols = {r.tick.symbol for r in routed if isinstance(r, TickAt)}
            self._cache_loaded((await self._store.load(symbols - self._states.keys())).states)
            marks = self._publisher.marks(self._topics.alerts)
            step = apply_batch(
                routed, self._states, self._clock, self._members, self._market, marks,
                self._topics.constituents, _kept(behind, self.lost),
            )  # fmt: skip
            tried.append(step)
            ticks = self._topics.ticks
            epochs = {(ticks, p): self._epochs[p] for p in {r.message.partition for r in routed}}
            changes = [
                Change(m.symbol, self._versions[m.symbol], m.state,
                       [e.encoded for e in m.outbox], m.history_changed)
                for m in step.moved
            ]  # fmt: skip
            registered = {(ticks, p): set(found) for p, found in step.registered.items()}
            await self._store.commit(changes, self._delivered, registered, epochs)
            return step

        async def refused(error: Exception) -> None:
            self._store.watch.redone(getattr(error, "reason", "stale_state"))
            if isinstance(error, StateLostError):
                await self._recheck_epochs()
                return
            log.info("%s; reloading the batch's state", error)
            assert isinstance(error, StaleStateError)
            for symbol in [error.symbol, *(m.symbol for m in tried[-1].moved)]:
                self._states.pop(symbol, None)
                self._versions.pop(symbol, None)

        step = await redo_until_committed(
            attempt,
            lambda: StaleStateError("(a batch kept conflicting)"),
            attempts=MAX_ATTEMPTS + len(self._epochs),
            refused=(StateLostError, StaleStateError),
            on_refused=refused,
        )
        # Only now: a refused attempt leaves nothing behind, its redo starts from Redis.
        self._delivered = []
        self.outbox_pending += sum(len(m.outbox) for m in step.moved)
        self._clock = step.clock
        for partition, found in step.registered.items():
            self._members.setdefault(partition, set()).update(found)
        for moved in step.moved:
            self._states[moved.symbol] = moved.state
            self._versions[moved.symbol] += 1
        return step, sum(1 for r in held if isinstance(r, TickAt))

    def _cache_loaded(self, loaded: Mapping[str, Versioned]) -> None:
        for symbol, versioned in loaded.items():
            self._states[symbol] = versioned.state
            self._versions[symbol] = versioned.version

    def _forget_states(self) -> None:
        self._states.clear()
        self._versions.clear()

    async def _publish(self, moved: Sequence[Moved]) -> None:
        records = [
            Record(self._topics.alerts, m.symbol.encode(), entry.alert_json)
            for m in moved
            for entry in m.outbox
        ]
        await self._publisher.publish(records)
        self.outbox_pending = 0
        self._delivered += [Delivered(m.symbol, e.encoded) for m in moved for e in m.outbox]

    async def _dead_letter(self, rejected: Sequence[Rejected]) -> None:
        for item in rejected:
            log.warning("rejected message at partition %d offset %d: %s: %s",
                        item.message.partition, item.message.offset, item.reason,
                        item.detail)  # fmt: skip
        await self._publisher.publish(
            [Record(self._topics.dead_letters, b"", *item.letter()) for item in rejected]
        )


def _kept(behind: Mapping[int, bool] | None, lost: set[int]) -> Mapping[int, bool] | None:
    """A held partition says nothing of its lag: its ticks are not applied either way."""
    if behind is None or not lost:
        return behind
    return {p: is_behind for p, is_behind in behind.items() if p not in lost}
