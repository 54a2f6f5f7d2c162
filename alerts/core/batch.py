"""One batch of routed ticks through the market state: session -> state -> rules -> alert.

The decisions of the ingest worker, as plain data in and out (the engine loads,
commits and publishes around them): which sessions have ended and close (an
end-of-day message, or a partition's event time past a session's deadline), how each
tick moves its instrument, which alerts enter which outbox, which prices and session
ends the index agent hears, and which instruments a partition sees for the first time.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, replace
from itertools import chain

from alerts.core.clock import SessionClock
from alerts.core.decode import Routed, SessionEndAt
from alerts.core.forwarding import Forwarding
from alerts.core.instrument import InstrumentState, Step, apply_tick, close_session
from alerts.core.market import Market
from alerts.core.outbox import OutboxEntry
from alerts.core.outgoing import Record
from schemas.alerts import Alert
from schemas.ticks import SessionEnd

_NO_MEMBERS: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Moved:
    """An instrument the batch changed: its new state and the entries its outbox gains."""

    symbol: str
    state: InstrumentState
    history_changed: bool  # its history (written once a session) needs writing too
    outbox: Sequence[OutboxEntry]  # one per alert, in the order they were raised


@dataclass(frozen=True)
class BatchStep:
    """What a batch did, to commit as one: nothing of it holds until then."""

    moved: Sequence[Moved]
    alerts: Sequence[Alert]  # every alert raised, in order
    forwards: Sequence[Record]  # for the index agent, on the constituents topic
    applied: int
    duplicates: int  # at or before a position their instrument had applied: redeliveries
    ignored: Mapping[str, int]  # seen but not applied, by reason
    registered: Mapping[int, AbstractSet[str]]  # instruments new to a partition
    clock: SessionClock  # the session clock once the batch is applied


def apply_batch(
    routed: Sequence[Routed],
    states: Mapping[str, InstrumentState],
    clock: SessionClock,
    members: Mapping[int, AbstractSet[str]],
    market: Market,
    marks: Mapping[int, int],
    constituents_topic: str,
    behind: Mapping[int, bool] | None = None,
) -> BatchStep:
    """Apply the batch, in order, to `states` (every instrument of its ticks, and every
    member of its partitions whose session may close), without changing any argument.

    `clock` is each partition's event time, `members` the instruments each partition
    has seen, `marks` the alerts topic's marks that outbox entries carry, `behind`
    whether the batch leaves each partition with more to read (for the index agent).
    """
    batch = _Batch(states, clock.copy(), members, market)
    forwarding = Forwarding(market, constituents_topic, behind)
    applied = duplicates = 0
    ignored: dict[str, int] = {}
    changed = batch.changed
    for item in routed:
        partition = item.message.partition
        if isinstance(item, SessionEndAt):
            batch.end_session(item)
            forwarding.session_end(item.end, partition)
            continue
        tick, spec = item.tick, item.spec
        if batch.clock.advance(partition, spec.exchange, tick.ts_ms):
            batch.close_ended(partition, spec.exchange)
            batch.forward_clock(forwarding, partition, spec.exchange)
        state = changed.get(tick.symbol)
        if state is None:
            state = states[tick.symbol]
        if state.offsets.get(partition, -1) >= item.position:
            duplicates += 1
            forwarding.price(tick, partition, item.position)
            continue
        batch.register(partition, tick.symbol)
        if state.kind != spec.kind:
            state = replace(state, kind=spec.kind)
        calendar = market.calendar(spec.exchange)
        at = (partition, item.position)
        step = apply_tick(state, tick, item.session, calendar, market.rules, at)
        if step.ignored:  # not applied, but seen: a redelivery must not count it again
            offsets = {**step.state.offsets, partition: item.position}
            step = replace(step, state=replace(step.state, offsets=offsets))
        batch.record(tick.symbol, step)
        if step.state.session != state.session:
            expect_close(batch.clock, market, partition, step.state)
        if step.ignored:
            ignored[step.ignored] = ignored.get(step.ignored, 0) + 1
        else:
            applied += 1
            forwarding.price(tick, partition, item.position)
    return BatchStep(
        batch.moved(marks),
        batch.alerts,
        forwarding.records(),
        applied,
        duplicates,
        ignored,
        batch.registered,
        batch.clock,
    )


def held_apart(
    batch: Sequence[Routed], lost: AbstractSet[int]
) -> tuple[Sequence[Routed], list[Routed]]:
    """The batch's items to apply, and those of partitions whose state vanished."""
    if not lost:  # the usual case: no copy of the batch
        return batch, []
    return (
        [r for r in batch if r.message.partition not in lost],
        [r for r in batch if r.message.partition in lost],
    )


def expect_close(
    clock: SessionClock, market: Market, partition: int, state: InstrumentState
) -> None:
    """Arm the partition's clock for the end of the instrument's open session."""
    spec = market.instrument(state.symbol)
    if spec is None or market.computed(spec.symbol):
        return
    if state.session is None or state.closed:
        return
    calendar = market.calendar(spec.exchange)
    session = calendar.session(state.session)
    if session is not None:
        clock.expect(partition, spec.exchange, calendar.accepts_until(session))


class _Batch:
    """The working state of one apply_batch call: states moved so far, over `states`."""

    def __init__(
        self,
        states: Mapping[str, InstrumentState],
        clock: SessionClock,
        members: Mapping[int, AbstractSet[str]],
        market: Market,
    ) -> None:
        self.states = states
        self.changed: dict[str, InstrumentState] = {}
        self.clock = clock
        self.members = members
        self.registered: dict[int, set[str]] = {}
        self.market = market
        self.alerts: list[Alert] = []
        self.alerts_of: dict[str, list[Alert]] = {}

    def current(self, symbol: str) -> InstrumentState | None:
        state = self.changed.get(symbol)
        return self.states.get(symbol) if state is None else state

    def record(self, symbol: str, step: Step) -> None:
        self.changed[symbol] = step.state
        if step.alerts:
            self.alerts_of.setdefault(symbol, []).extend(step.alerts)
            self.alerts += step.alerts

    def register(self, partition: int, symbol: str) -> None:
        if symbol in self.members.get(partition, _NO_MEMBERS):
            return
        self.registered.setdefault(partition, set()).add(symbol)

    def members_of(self, partition: int) -> Iterable[str]:
        return chain(
            self.members.get(partition, _NO_MEMBERS), self.registered.get(partition, _NO_MEMBERS)
        )

    def end_session(self, item: SessionEndAt) -> None:
        """An end-of-day message: for one instrument, or for the whole exchange."""
        partition, end = item.message.partition, item.end
        calendar = self.market.calendar(end.exchange)
        if end.symbol is not None:
            state = self.current(end.symbol)
            if state is not None and state.session is not None and state.session <= end.session:
                self.record(end.symbol, close_session(state, calendar, self.market.rules))
            return
        session = calendar.session(end.session)
        if session is not None:
            self.clock.advance(partition, end.exchange, calendar.accepts_until(session) + 1)
        self.close_ended(partition, end.exchange)

    def close_ended(self, partition: int, exchange: str) -> None:
        """Close every open session of this partition and exchange that has ended."""
        now = self.clock.now(partition, exchange)
        calendar = self.market.calendar(exchange)
        next_deadline = math.inf
        for symbol in self.members_of(partition):
            spec = self.market.instrument(symbol)
            state = self.current(symbol)
            # An index closes with its own session_end, sent after its closing level.
            if spec is None or spec.exchange != exchange or state is None:
                continue
            if self.market.computed(symbol):
                continue
            if state.session is None or state.closed:
                continue
            session = calendar.session(state.session)
            # A session the calendar no longer knows counts as closed at the epoch.
            deadline = calendar.accepts_until(session) if session else calendar.close_grace_ms
            if deadline < now:
                self.record(symbol, close_session(state, calendar, self.market.rules))
            else:
                next_deadline = min(next_deadline, deadline)
        self.clock.rearm(partition, exchange, next_deadline)

    def forward_clock(self, forwarding: Forwarding, partition: int, exchange: str) -> None:
        """This partition's clock passed a session's end: tell the exchange's indices."""
        ended = self.market.calendar(exchange).last_ended(self.clock.now(partition, exchange))
        if ended is not None:
            end = SessionEnd(type="session_end", exchange=exchange, session=ended.day)
            forwarding.session_end(end, partition)

    def moved(self, marks: Mapping[int, int]) -> list[Moved]:
        out = []
        for symbol, state in self.changed.items():
            before = self.states[symbol]
            if state is before:
                continue
            entries = [
                OutboxEntry.new(a.model_dump_json().encode(), marks)
                for a in self.alerts_of.get(symbol, ())
            ]
            out.append(Moved(symbol, state, state.history is not before.history, entries))
        return out
