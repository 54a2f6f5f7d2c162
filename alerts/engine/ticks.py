"""Applies a batch of ticks topic messages to market state and publishes the alerts.

decode -> session -> state -> rules -> alert -> delivery, with Redis written once per
batch and every alert going through its instrument's outbox before it reaches Kafka.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import orjson

from alerts.core.clock import SessionClock
from alerts.core.decode import Incoming, Rejected, Routed, SessionEndAt, TickAt, route
from alerts.core.forwarding import Forwarding
from alerts.core.instrument import InstrumentState, Step, apply_tick, close_session
from alerts.core.market import Market
from alerts.delivery.kafka import KafkaPublisher, Record
from alerts.delivery.kafka_offsets import GroupOffsets, alert_ids_from
from alerts.store.instruments import (
    Change,
    Delivered,
    StaleStateError,
    StateLostError,
    StateStore,
    Versioned,
    outbox_entry,
    parse_outbox_entry,
)
from schemas.alerts import Alert
from schemas.ticks import SessionEnd

log = logging.getLogger(__name__)

_MAX_ATTEMPTS = 5


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

    def count(self, reason: str) -> None:
        self.ignored[reason] = self.ignored.get(reason, 0) + 1


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
        self._cache: dict[str, Versioned] = {}
        self._members: dict[int, set[str]] = {}
        self._unregistered: dict[tuple[str, int], set[str]] = {}
        self._clock = SessionClock()
        self._delivered: list[Delivered] = []

    async def start(self) -> None:
        """Learn where the alerts topic ends, before the first batch."""
        await asyncio.to_thread(self._publisher.track, self._topics.alerts)

    def forget(self) -> None:
        """Drop everything cached: after a rebalance another worker may own it."""
        self._cache.clear()
        self._members.clear()
        self._clock.forget()
        self._epochs.clear()
        self.lost.clear()

    async def process(self, batch: Sequence[Incoming]) -> BatchResult:
        result = BatchResult()
        routed = [item for message in batch for item in route(message, self._market)]
        rejected = [r for r in routed if isinstance(r, Rejected)]
        result.rejected_by = dict(Counter(r.reason for r in rejected))
        accepted = [r for r in routed if not isinstance(r, Rejected)]
        await self._warm_up({r.message.partition for r in accepted})
        changes, forwards = await self._apply(accepted, result)
        await self._publish(changes)
        # Prices for the index agent: after the alerts, and again on redelivery, so that
        # a crash before this line is repaired by the replay (the agent dedupes).
        await self._publisher.publish(forwards)
        # Last: a batch retried while Redis is away does not dead-letter its rejects again.
        await self._dead_letter(rejected)
        return result

    async def dead_letter(self, batch: Sequence[Incoming], reason: str, detail: str) -> None:
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
        loaded = await self._store.load(members - self._cache.keys(), with_outboxes=True)
        self._cache.update(loaded.states)
        for partition in new:
            for symbol in self._members.get(partition, ()):
                self._expect_close(partition, self._cache[symbol].state)
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
        self._cache.clear()

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
        entries = [(s, e) for s, found in outboxes.items() for e in found]
        starts: dict[int, int] = {}
        for _, entry in entries:
            marks = parse_outbox_entry(entry)[0]
            for partition, offset in marks.items():
                starts[partition] = min(starts.get(partition, offset), offset)
        if not starts:  # written by a worker that knew no marks: read everything
            starts = dict.fromkeys(self._publisher.marks(self._topics.alerts), 0)
        published = await asyncio.to_thread(
            alert_ids_from, self._publisher.bootstrap, self._topics.alerts, starts
        )
        missing = []
        for symbol, entry in entries:
            alert_json = parse_outbox_entry(entry)[1]
            if orjson.loads(alert_json)["alert_id"] not in published:
                missing.append(Record(self._topics.alerts, symbol.encode(), alert_json))
        await self._publisher.publish(missing)
        self._delivered += [Delivered(s, e) for s, e in entries]
        log.warning(
            "outbox recovery: %d alert(s) left by a stopped worker, %d already on %s, "
            "%d published now",
            len(entries),
            len(entries) - len(missing),
            self._topics.alerts,
            len(missing),
        )

    async def _apply(
        self, batch: Sequence[Routed], result: BatchResult
    ) -> tuple[list[Change], list[Record]]:
        for _ in range(_MAX_ATTEMPTS + len(self._epochs)):
            routed, held = _held_apart(batch, self.lost)
            symbols = {r.tick.symbol for r in routed if isinstance(r, TickAt)}
            loaded = await self._store.load(symbols - self._cache.keys())
            self._cache.update(loaded.states)
            attempt = BatchResult()
            clock = self._clock.snapshot()
            changes, forwards = self._step_all(routed, attempt)
            partitions = {r.message.partition for r in routed}
            epochs = {(self._topics.ticks, p): self._epochs[p] for p in partitions}
            try:
                await self._store.commit(changes, self._delivered, self._unregistered, epochs)
            except StateLostError:
                self._clock.restore(clock)
                await self._recheck_epochs()
                self._unregistered = {
                    key: symbols
                    for key, symbols in self._unregistered.items()
                    if key[1] not in self.lost
                }
                continue
            except StaleStateError as stale:
                log.info("%s; reloading the batch's state", stale)
                self._clock.restore(clock)
                self._cache.pop(stale.symbol, None)
                for change in changes:
                    self._cache.pop(change.symbol, None)
                continue
            self._delivered = []
            self._unregistered = {}
            for change in changes:
                self._cache[change.symbol] = Versioned(change.expected_version + 1, change.state)
            result.applied += attempt.applied
            result.duplicates += attempt.duplicates
            result.held += sum(1 for r in held if isinstance(r, TickAt))
            for reason, count in attempt.ignored.items():
                result.ignored[reason] = result.ignored.get(reason, 0) + count
            result.alerts += attempt.alerts
            return changes, forwards
        raise StaleStateError("(a batch kept conflicting)")

    def _step_all(
        self, routed: Sequence[Routed], result: BatchResult
    ) -> tuple[list[Change], list[Record]]:
        current = {symbol: v.state for symbol, v in self._cache.items()}
        forwarding = Forwarding(self._market, self._topics.constituents)
        alerts: dict[str, list[Alert]] = {}
        marks = self._publisher.marks(self._topics.alerts)

        def record(symbol: str, step: Step) -> None:
            current[symbol] = step.state
            alerts.setdefault(symbol, []).extend(step.alerts)
            result.alerts += step.alerts

        for item in routed:
            partition = item.message.partition
            if isinstance(item, SessionEndAt):
                self._end_session(item, current, record)
                forwarding.session_end(item.end, partition)
                continue
            tick, spec = item.tick, item.spec
            if self._clock.advance(partition, spec.exchange, tick.ts_ms):
                self._close_ended(partition, spec.exchange, current, record)
                self._forward_clock(forwarding, partition, spec.exchange)
            state = current[tick.symbol]
            if state.offsets.get(partition, -1) >= item.position:
                result.duplicates += 1
                forwarding.price(tick, partition, item.position)
                continue
            members = self._members.setdefault(partition, set())
            if tick.symbol not in members:
                members.add(tick.symbol)
                key = (self._topics.ticks, partition)
                self._unregistered.setdefault(key, set()).add(tick.symbol)
            if state.kind != spec.kind:
                state = replace(state, kind=spec.kind)
            calendar = self._market.calendar(spec.exchange)
            at = (partition, item.position)
            step = apply_tick(state, tick, item.session, calendar, self._market.rules, at)
            if step.ignored:  # not applied, but seen: a redelivery must not count it again
                offsets = {**step.state.offsets, partition: item.position}
                step = replace(step, state=replace(step.state, offsets=offsets))
            record(tick.symbol, step)
            if step.state.session != state.session:
                self._expect_close(partition, step.state)
            if step.ignored:
                result.count(step.ignored)
            else:
                result.applied += 1
                forwarding.price(tick, partition, item.position)
        changes = []
        for symbol, state in current.items():
            before = self._cache[symbol]
            if state is before.state:
                continue
            entries = [
                outbox_entry(a.model_dump_json().encode(), marks) for a in alerts.get(symbol, [])
            ]
            changed = state.history is not before.state.history
            changes.append(Change(symbol, before.version, state, entries, changed))
        return changes, list(forwarding.records())

    def _end_session(self, item: SessionEndAt, current, record) -> None:  # type: ignore[no-untyped-def]
        """An end-of-day message: for one instrument, or for the whole exchange."""
        partition, end = item.message.partition, item.end
        if end.symbol is not None:
            state = current.get(end.symbol)
            if state is not None and state.session is not None and state.session <= end.session:
                calendar = self._market.calendar(end.exchange)
                record(end.symbol, close_session(state, calendar, self._market.rules))
            return
        session = self._market.calendar(end.exchange).session(end.session)
        if session is not None:
            deadline = session.close_ms + self._market.close_grace_ms
            self._clock.advance(partition, end.exchange, deadline + 1)
        self._close_ended(partition, end.exchange, current, record)

    def _forward_clock(self, forwarding: Forwarding, partition: int, exchange: str) -> None:
        """This partition's clock passed a session's end: tell the exchange's indices."""
        ended = self._market.calendar(exchange).ended_by(
            self._clock.now(partition, exchange) - self._market.close_grace_ms
        )
        if ended is not None:
            end = SessionEnd(type="session_end", exchange=exchange, session=ended.day)
            forwarding.session_end(end, partition)

    def _expect_close(self, partition: int, state: InstrumentState) -> None:
        spec = self._market.instrument(state.symbol)
        if spec is None or self._market.computed(spec.symbol):
            return
        if state.session is None or state.closed:
            return
        session = self._market.calendar(spec.exchange).session(state.session)
        if session is not None:
            deadline = session.close_ms + self._market.close_grace_ms
            self._clock.expect(partition, spec.exchange, deadline)

    def _close_ended(self, partition: int, exchange: str, current, record) -> None:  # type: ignore[no-untyped-def]
        """Close every open session of this partition and exchange that has ended."""
        now = self._clock.now(partition, exchange)
        calendar = self._market.calendar(exchange)
        next_deadline = math.inf
        for symbol in self._members.get(partition, ()):
            spec = self._market.instrument(symbol)
            state = current.get(symbol)
            # An index closes with its own session_end, sent after its closing level.
            if spec is None or spec.exchange != exchange or state is None:
                continue
            if self._market.computed(symbol):
                continue
            if state.session is None or state.closed:
                continue
            session = calendar.session(state.session)
            deadline = (session.close_ms if session else 0) + self._market.close_grace_ms
            if deadline < now:
                record(symbol, close_session(state, calendar, self._market.rules))
            else:
                next_deadline = min(next_deadline, deadline)
        self._clock.rearm(partition, exchange, next_deadline)

    async def _publish(self, changes: Sequence[Change]) -> None:
        records = [
            Record(self._topics.alerts, change.symbol.encode(), parse_outbox_entry(entry)[1])
            for change in changes
            for entry in change.alerts
        ]
        await self._publisher.publish(records)
        self._delivered += [Delivered(c.symbol, e) for c in changes for e in c.alerts]

    async def _dead_letter(self, rejected: Sequence[Rejected]) -> None:
        for item in rejected:
            log.warning(
                "rejected message at partition %d offset %d: %s: %s",
                item.message.partition,
                item.message.offset,
                item.reason,
                item.detail,
            )
        await self._publisher.publish(
            [Record(self._topics.dead_letters, b"", *item.letter()) for item in rejected]
        )


def _held_apart(batch: Sequence[Routed], lost: set[int]) -> tuple[Sequence[Routed], list[Routed]]:
    """The batch's items to apply, and those of partitions whose state vanished."""
    if not lost:  # the usual case: no copy of the batch
        return batch, []
    return (
        [r for r in batch if r.message.partition not in lost],
        [r for r in batch if r.message.partition in lost],
    )
