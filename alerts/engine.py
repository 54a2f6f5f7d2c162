"""Applies a batch of raw ticks to market state and publishes the alerts they raise.

decode -> session -> state -> rules -> alert -> delivery, with Redis written once per
batch and every alert going through the instrument's outbox before it reaches Kafka.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from pydantic import ValidationError

from alerts.delivery.kafka import KafkaPublisher, Record
from alerts.market import apply_tick
from alerts.rules import DailyMoveRule
from alerts.state import Change, Delivered, StaleStateError, StateStore, Versioned
from schemas.alerts import Alert
from schemas.errors import describe
from schemas.ticks import Tick

log = logging.getLogger(__name__)

_MAX_ATTEMPTS = 5


@dataclass(frozen=True)
class Incoming:
    """One Kafka message of the ticks topic, as the worker received it."""

    partition: int
    offset: int
    value: bytes


@dataclass
class BatchResult:
    applied: int = 0
    duplicates: int = 0
    ignored: dict[str, int] = field(default_factory=dict)
    rejected: int = 0
    alerts: list[Alert] = field(default_factory=list)


@dataclass(frozen=True)
class Topics:
    alerts: str
    dead_letters: str


@dataclass(frozen=True)
class Rejected:
    message: Incoming
    reason: str
    detail: str


def decode(message: Incoming) -> Tick | Rejected:
    """The tick in a message, or why there is none."""
    try:
        return Tick.model_validate_json(message.value)
    except ValidationError as error:
        reason = "invalid_json" if _is_json_error(error) else "invalid_tick"
        return Rejected(message, reason, describe(error))


def _is_json_error(error: ValidationError) -> bool:
    return any(item["type"] == "json_invalid" for item in error.errors())


class Engine:
    """Owns the state cache of the partitions this worker holds."""

    def __init__(
        self,
        store: StateStore,
        publisher: KafkaPublisher,
        rules: Sequence[DailyMoveRule],
        topics: Topics,
    ) -> None:
        self._store = store
        self._publisher = publisher
        self._rules = list(rules)
        self._topics = topics
        self._cache: dict[str, Versioned] = {}
        self._delivered: list[Delivered] = []

    def forget(self) -> None:
        """Drop cached state: after a rebalance another worker may have moved it."""
        self._cache.clear()

    async def recover(self) -> int:
        """Publish alerts left in outboxes by a worker that died before publishing."""
        pending = await self._store.pending()
        records = [
            Record(self._topics.alerts, symbol.encode(), entry)
            for symbol, entries in pending.items()
            for entry in entries
        ]
        await self._publisher.publish(records)
        done = [Delivered(s, e) for s, entries in pending.items() for e in entries]
        await self._store.commit([], done)
        if records:
            log.warning("recovered %d undelivered alert(s) from the outbox", len(records))
        return len(records)

    async def process(self, batch: Sequence[Incoming]) -> BatchResult:
        result = BatchResult()
        ticks: list[tuple[Incoming, Tick]] = []
        rejected: list[Rejected] = []
        for message in batch:
            decoded = decode(message)
            if isinstance(decoded, Rejected):
                rejected.append(decoded)
            else:
                ticks.append((message, decoded))
        await self._dead_letter(rejected)
        result.rejected = len(rejected)
        changes = await self._apply(ticks, result)
        await self._publish(changes)
        return result

    async def close(self) -> None:
        """Record the last deliveries so that a restart does not publish them again."""
        await self._store.commit([], self._delivered)
        self._delivered = []

    async def _apply(
        self, ticks: Sequence[tuple[Incoming, Tick]], result: BatchResult
    ) -> list[Change]:
        for _ in range(_MAX_ATTEMPTS):
            missing = {t.symbol for _, t in ticks} - self._cache.keys()
            self._cache.update(await self._store.load(missing))
            attempt = BatchResult()
            changes = self._step_all(ticks, attempt)
            try:
                await self._store.commit(changes, self._delivered)
            except StaleStateError as stale:
                log.info("%s; reloading the batch's state", stale)
                for _, tick in ticks:
                    self._cache.pop(tick.symbol, None)
                continue
            self._delivered = []
            for change in changes:
                self._cache[change.symbol] = Versioned(change.expected_version + 1, change.state)
            result.applied += attempt.applied
            result.duplicates += attempt.duplicates
            for reason, count in attempt.ignored.items():
                result.ignored[reason] = result.ignored.get(reason, 0) + count
            result.alerts += attempt.alerts
            return changes
        raise StaleStateError(ticks[0][1].symbol if ticks else "?")

    def _step_all(
        self, ticks: Sequence[tuple[Incoming, Tick]], result: BatchResult
    ) -> list[Change]:
        current = {symbol: v.state for symbol, v in self._cache.items()}
        alerts: dict[str, list[bytes]] = {}
        touched: list[str] = []
        for message, tick in ticks:
            state = current[tick.symbol]
            if state.offsets.get(message.partition, -1) >= message.offset:
                result.duplicates += 1
                continue
            step = apply_tick(state, tick, self._rules)
            offsets = {**step.state.offsets, message.partition: message.offset}
            current[tick.symbol] = replace(step.state, offsets=offsets)
            if tick.symbol not in alerts:
                touched.append(tick.symbol)
                alerts[tick.symbol] = []
            if step.ignored:
                result.ignored[step.ignored] = result.ignored.get(step.ignored, 0) + 1
                continue
            result.applied += 1
            result.alerts += step.alerts
            alerts[tick.symbol] += [a.model_dump_json().encode() for a in step.alerts]
        return [Change(s, self._cache[s].version, current[s], alerts[s]) for s in touched]

    async def _publish(self, changes: Sequence[Change]) -> None:
        records = [
            Record(self._topics.alerts, change.symbol.encode(), entry)
            for change in changes
            for entry in change.alerts
        ]
        await self._publisher.publish(records)
        self._delivered += [Delivered(c.symbol, e) for c in changes for e in c.alerts]

    async def _dead_letter(self, rejected: Sequence[Rejected]) -> None:
        for item in rejected:
            log.warning(
                "rejected tick at partition %d offset %d: %s: %s",
                item.message.partition,
                item.message.offset,
                item.reason,
                item.detail,
            )
        await self._publisher.publish(
            [
                Record(
                    self._topics.dead_letters,
                    b"",
                    item.message.value,
                    (
                        ("reason", item.reason.encode()),
                        ("error", item.detail.encode()[:1000]),
                        ("partition", str(item.message.partition).encode()),
                        ("offset", str(item.message.offset).encode()),
                    ),
                )
                for item in rejected
            ]
        )
