"""Messages of the ticks topic, decoded and routed to their instrument and session."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Literal, get_args

import pydantic_core
from pydantic import ValidationError

from alerts.core.market import Market
from alerts.core.sessions import CalendarBuildError, Session, UnknownExchangeError
from schemas.errors import describe
from schemas.instruments import InstrumentSpec
from schemas.ticks import SessionEnd, Tick, TickBatch


@dataclass(frozen=True)
class Incoming:
    """One Kafka message of the ticks topic, as the worker received it."""

    partition: int
    offset: int
    value: bytes | None  # None: a message without a value (a Kafka tombstone)


# A tick's place in the log: its message's offset, then its index in a batch message.
_IN_BATCH = 1 << 16


def position(offset: int, index: int = 0) -> int:
    return offset * _IN_BATCH + index


@dataclass(frozen=True)
class TickAt:
    """A valid tick of a known instrument, inside one of its exchange's sessions."""

    message: Incoming
    tick: Tick
    spec: InstrumentSpec
    session: Session
    position: int  # offset and index in the message: a redelivery repeats it


@dataclass(frozen=True)
class SessionEndAt:
    message: Incoming
    end: SessionEnd


#: The largest value a dead letter carries. A message as large as the ticks topic takes
#: (Kafka's default limit is about 1 MB) would not fit the dead-letter topic with its
#: headers, nor the producer's own limit (librdkafka: 1,000,000 bytes): it would fail
#: every attempt to dead-letter it, and with it its batch.
DEAD_LETTER_MAX_BYTES = 512 * 1024

#: Why a message was dead-lettered: its `reason` header, and a metric label, so a bounded set.
RejectReason = Literal[
    "invalid_json",
    "invalid_tick",
    "unknown_exchange",
    "unknown_instrument",
    "outside_session",
    "beyond_calendar",
    "internal_error",
]
REJECT_REASONS: tuple[RejectReason, ...] = get_args(RejectReason)


@dataclass(frozen=True)
class Rejected:
    """A message that cannot be applied, and why: it goes to the dead-letter topic."""

    message: Incoming
    reason: RejectReason
    detail: str

    def letter(self) -> tuple[bytes | None, tuple[tuple[str, bytes], ...]]:
        """The dead letter's value and headers: the message unchanged, or, beyond
        DEAD_LETTER_MAX_BYTES, its start and a `truncated` header with its full size."""
        value = self.message.value
        headers = [
            ("reason", self.reason.encode()),
            ("error", self.detail.encode()[:1000]),
            ("partition", str(self.message.partition).encode()),
            ("offset", str(self.message.offset).encode()),
        ]
        if value is not None and len(value) > DEAD_LETTER_MAX_BYTES:
            headers.append(("truncated", str(len(value)).encode()))
            value = value[:DEAD_LETTER_MAX_BYTES]
        return value, tuple(headers)


Routed = TickAt | SessionEndAt


def route(message: Incoming, market: Market) -> list[TickAt | SessionEndAt | Rejected]:
    """Decode a message (one tick, a batch, or a session end) and place each tick."""
    value = message.value
    if value is None:
        return [Rejected(message, "invalid_json", "no value (a tombstone); a tick is JSON")]
    try:
        if b'"batch"' in value:
            return _batch(message, value, market)
        if b'"session_end"' in value:
            return [_session_end(message, SessionEnd.model_validate_json(value), market)]
        tick = Tick.model_validate_json(value)
    except ValidationError as error:
        return [_invalid(message, error)]
    except (UnknownExchangeError, CalendarBuildError) as error:  # no calendar to close
        return [Rejected(message, "unknown_exchange", str(error))]
    return [place(message, tick, market, position(message.offset))]


def _session_end(message: Incoming, end: SessionEnd, market: Market) -> SessionEndAt | Rejected:
    """The end of a session of the exchange's calendar (of one of its instruments), or why
    it is none: applied, such a message would change nothing and say nothing."""
    calendar = market.calendar(end.exchange)
    if end.symbol is not None:
        spec = market.instrument(end.symbol)
        if spec is None or spec.exchange != end.exchange:
            known = "not in the instruments file" if spec is None else f"on {spec.exchange}"
            detail = f"session_end of {end.symbol} on {end.exchange}, but {end.symbol} is {known}"
            return Rejected(message, "unknown_instrument", detail)
    if calendar.session(end.session) is None:
        if not calendar.first_day <= end.session <= calendar.last_day:
            detail = (
                f"session_end of {end.session}, beyond the {end.exchange} calendar, which "
                f"knows sessions from {calendar.first_day} to {calendar.last_day}"
            )
            return Rejected(message, "beyond_calendar", detail)
        detail = f"session_end of {end.session}, which is not a {end.exchange} session"
        return Rejected(message, "outside_session", detail)
    return SessionEndAt(message, end)


def _batch(
    message: Incoming, value: bytes, market: Market
) -> list[TickAt | SessionEndAt | Rejected]:
    try:
        batch = TickBatch.model_validate_json(value)
    except ValidationError as error:
        return _batch_by_tick(message, value, market, error)
    placed = [
        place(message, tick, market, position(message.offset, i))
        for i, tick in enumerate(batch.ticks)
    ]
    if not any(isinstance(item, Rejected) for item in placed):
        return list(placed)
    items = pydantic_core.from_json(value)["ticks"]
    return [_alone(p, i, items[i]) if isinstance(p, Rejected) else p for i, p in enumerate(placed)]


def _batch_by_tick(
    message: Incoming, value: bytes, market: Market, error: ValidationError
) -> list[TickAt | SessionEndAt | Rejected]:
    """A batch with bad ticks: apply the good ones, dead-letter each bad one alone.

    Only when every error lies inside a tick: a batch that is not JSON, lacks its type,
    carries an unknown field or too many ticks is rejected whole, like a bad single tick.
    """
    if not all(_in_a_tick(item["loc"]) for item in error.errors()):
        return [_invalid(message, error)]
    # pydantic's own parser: it reads NaN, Infinity and 1e309 as model_validate_json did.
    items = pydantic_core.from_json(value)["ticks"]
    out: list[TickAt | SessionEndAt | Rejected] = []
    for i, item in enumerate(items):
        try:
            tick = Tick.model_validate(item)
        except ValidationError as bad:
            out.append(_alone(Rejected(message, "invalid_tick", describe(bad)), i, item))
            continue
        placed = place(message, tick, market, position(message.offset, i))
        out.append(_alone(placed, i, item) if isinstance(placed, Rejected) else placed)
    return out


def _alone(rejected: Rejected, index: int, item: object) -> Rejected:
    """A tick of a batch message, rejected by itself: the dead letter is that tick (at
    the batch's partition and offset), its error starts with its index in the batch."""
    # The stdlib writes NaN and Infinity back as they came; orjson would write null.
    value = json.dumps(item).encode()
    single = Incoming(rejected.message.partition, rejected.message.offset, value)
    return Rejected(single, rejected.reason, f"ticks.{index}: {rejected.detail}")


def _in_a_tick(loc: tuple[int | str, ...]) -> bool:
    return len(loc) >= 2 and loc[0] == "ticks" and isinstance(loc[1], int)


def _invalid(message: Incoming, error: ValidationError) -> Rejected:
    invalid_json = any(item["type"] == "json_invalid" for item in error.errors())
    reason: RejectReason = "invalid_json" if invalid_json else "invalid_tick"
    return Rejected(message, reason, describe(error))


def place(message: Incoming, tick: Tick, market: Market, at: int) -> TickAt | Rejected:
    """The tick's instrument and session, or why it has none."""
    spec = market.instrument(tick.symbol)
    if spec is None:
        detail = f"{tick.symbol} is not in the instruments file (and it sets no default_exchange)"
        return Rejected(message, "unknown_instrument", detail)
    calendar = market.calendar(spec.exchange)
    session = calendar.session_at(tick.ts_ms)
    if session is None:
        if not calendar.covers(tick.ts_ms):
            detail = (
                f"{tick.ts.isoformat()} is beyond the {spec.exchange} calendar, which knows "
                f"sessions from {calendar.first_day} to {calendar.last_day} "
                "(a later exchange_calendars may know more)"
            )
            return Rejected(message, "beyond_calendar", detail)
        detail = f"{tick.ts.isoformat()} is outside every {spec.exchange} session"
        return Rejected(message, "outside_session", detail)
    return TickAt(message, tick, spec, session, at)
