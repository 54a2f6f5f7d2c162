"""Messages of the ticks topic, decoded and routed to their instrument and session."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import ValidationError

from alerts.catalog import Market
from alerts.sessions import Session, UnknownExchangeError
from schemas.errors import describe
from schemas.instruments import InstrumentSpec
from schemas.ticks import SessionEnd, Tick


@dataclass(frozen=True)
class Incoming:
    """One Kafka message of the ticks topic, as the worker received it."""

    partition: int
    offset: int
    value: bytes


@dataclass(frozen=True)
class TickAt:
    """A valid tick of a known instrument, inside one of its exchange's sessions."""

    message: Incoming
    tick: Tick
    spec: InstrumentSpec
    session: Session


@dataclass(frozen=True)
class SessionEndAt:
    message: Incoming
    end: SessionEnd


@dataclass(frozen=True)
class Rejected:
    """A message that cannot be applied, and why: it goes to the dead-letter topic."""

    message: Incoming
    reason: str
    detail: str


Routed = TickAt | SessionEndAt


def route(message: Incoming, market: Market) -> TickAt | SessionEndAt | Rejected:
    """Decode a message and find its instrument and session, or say why not."""
    try:
        if b'"session_end"' in message.value:
            end = SessionEnd.model_validate_json(message.value)
            market.calendar(end.exchange)
            return SessionEndAt(message, end)
        tick = Tick.model_validate_json(message.value)
    except ValidationError as error:
        invalid_json = any(item["type"] == "json_invalid" for item in error.errors())
        return Rejected(
            message, "invalid_json" if invalid_json else "invalid_tick", describe(error)
        )
    except UnknownExchangeError as error:
        return Rejected(message, "unknown_exchange", str(error))
    spec = market.instruments.get(tick.symbol)
    if spec is None:
        detail = f"{tick.symbol} is not in the instruments file (and it sets no default_exchange)"
        return Rejected(message, "unknown_instrument", detail)
    session = market.calendar(spec.exchange).session_at(tick.ts_ms)
    if session is None:
        detail = f"{tick.ts.isoformat()} is outside every {spec.exchange} session"
        return Rejected(message, "outside_session", detail)
    return TickAt(message, tick, spec, session)
