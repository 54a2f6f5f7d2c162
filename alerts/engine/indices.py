"""The index agent's shell: constituent messages in, index state in Redis, index ticks out.

Index ticks are published before the state that produced them is committed; a crash
in between replays the same input against the same state, so the same ticks come
again with the same sequence numbers, and the ingest engine drops the repeats.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from pydantic import TypeAdapter, ValidationError

from alerts.core.decode import Incoming
from alerts.core.index_agent import (
    Emitted,
    IndexState,
    on_price,
    on_prices,
    on_session_end,
    on_watermark,
)
from alerts.core.market import Market
from alerts.core.outgoing import Record
from alerts.delivery.kafka import KafkaPublisher
from alerts.store.errors import StaleStateError
from alerts.store.indices import IndexStore
from alerts.store.instruments import StateStore
from alerts.store.retry import redo_until_committed
from schemas.constituents import (
    ConstituentMessage,
    ConstituentPrice,
    ConstituentPrices,
    ConstituentWatermark,
)
from schemas.indices import IndexSpec

log = logging.getLogger(__name__)

_MESSAGE: TypeAdapter[ConstituentMessage] = TypeAdapter(ConstituentMessage)


@dataclass
class IndexResult:
    applied: int = 0
    duplicates: int = 0
    invalid: int = 0
    emitted: list[Emitted] = field(default_factory=list)


async def starting_prices(instruments: StateStore, spec: IndexSpec) -> dict[str, float]:
    """Each constituent's last close (or last price) as Redis knows it."""
    members = {c.symbol for c in spec.constituents}
    members |= {c.symbol for change in spec.changes for c in change.add}
    prices = {}
    for member, versioned in (await instruments.load(sorted(members))).states.items():
        price = versioned.state.history.last_close or versioned.state.last
        if price is not None:
            prices[member] = price
    return prices


class IndexEngine:
    """Keeps the levels of the indices whose constituents topic partitions it owns."""

    def __init__(
        self,
        store: IndexStore,
        instruments: StateStore,
        publisher: KafkaPublisher,
        market: Market,
        ticks_topic: str,
        ticks_partitions: int,
    ) -> None:
        self._partitions = ticks_partitions
        self._store = store
        self._instruments = instruments
        self._publisher = publisher
        self._market = market
        self._ticks_topic = ticks_topic
        self._specs = {spec.symbol: spec for spec in market.indices.indices}
        self._cache: dict[str, tuple[int, IndexState]] = {}

    def forget(self) -> None:
        self._cache.clear()

    def states(self) -> list[tuple[IndexSpec, IndexState]]:
        """The indices this worker has computed since it took its partitions, as last
        committed (a copy: the metrics read it from their own thread)."""
        return [(self._specs[symbol], state) for symbol, (_, state) in list(self._cache.items())]

    async def process(self, batch: Sequence[Incoming]) -> IndexResult:
        decoded = []
        result = IndexResult()
        for message in batch:
            try:
                item = _MESSAGE.validate_json(message.value or b"")
            except ValidationError as error:
                log.error("constituents topic: unreadable message at %d/%d: %s",
                          message.partition, message.offset, error)  # fmt: skip
                result.invalid += 1
                continue
            if item.index not in self._specs:
                log.warning("constituents topic: no index %r in the indices file", item.index)
                result.invalid += 1
                continue
            decoded.append((message, item))

        async def attempt() -> IndexResult:
            await self._load({item.index for _, item in decoded} - self._cache.keys())
            done = IndexResult()
            states = self._step_all(decoded, done)
            await self._publisher.publish(
                [
                    Record(
                        self._ticks_topic,
                        self._ticks_key(e),
                        e.model_dump_json(exclude_none=True).encode(),
                    )
                    for e in done.emitted
                ]
            )
            await self._save(states)
            return done

        async def refused(stale: Exception) -> None:
            self._store.watch.redone(StaleStateError.reason)
            log.info("%s; reloading", stale)
            self._cache.clear()

        done = await redo_until_committed(
            attempt,
            lambda: StaleStateError("(an index batch kept conflicting)"),
            on_refused=refused,
        )
        result.applied += done.applied
        result.duplicates += done.duplicates
        result.emitted += done.emitted
        return result

    def _ticks_key(self, emitted: Emitted) -> bytes:
        symbol = emitted.symbol
        assert symbol is not None
        return symbol.encode()

    def _step_all(self, decoded, result: IndexResult) -> dict[str, IndexState]:  # type: ignore[no-untyped-def]
        states = {symbol: state for symbol, (_, state) in self._cache.items()}
        changed: dict[str, IndexState] = {}
        for message, item in decoded:
            spec: IndexSpec = self._specs[item.index]
            state = states[item.index]
            if state.offsets.get(message.partition, -1) >= message.offset:
                result.duplicates += 1
                continue
            calendar = self._market.calendar(spec.exchange)
            if isinstance(item, ConstituentPrices):
                state, emitted = on_prices(state, spec, calendar, item, self._partitions)
            elif isinstance(item, ConstituentPrice):
                state, emitted = on_price(state, spec, calendar, item, self._partitions)
            elif isinstance(item, ConstituentWatermark):
                state, emitted = on_watermark(state, spec, calendar, item, self._partitions)
            else:
                state, emitted = on_session_end(state, spec, calendar, item, self._partitions)
            state = _at(state, message)
            states[item.index] = changed[item.index] = state
            result.applied += 1
            result.emitted += emitted
        return changed

    async def _load(self, symbols: set[str]) -> None:
        """Index states from Redis; a new index starts from its constituents' last closes."""
        if not symbols:
            return
        for symbol, (version, state) in (await self._store.load(sorted(symbols))).items():
            if state is None:
                prices = await starting_prices(self._instruments, self._specs[symbol])
                state = IndexState(symbol, prices=prices)
            self._cache[symbol] = (version, state)

    async def _save(self, changed: dict[str, IndexState]) -> None:
        await self._store.commit([(self._cache[s][0], state) for s, state in changed.items()])
        for symbol, state in changed.items():
            self._cache[symbol] = (self._cache[symbol][0] + 1, state)


def _at(state: IndexState, message: Incoming) -> IndexState:
    return replace(state, offsets={**state.offsets, message.partition: message.offset})
