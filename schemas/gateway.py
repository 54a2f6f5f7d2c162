"""What crosses the gateway's HTTP API: filters, subscriptions, streamed alerts, pages, bars."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from schemas.alerts import Alert, Stage

KINDS = (
    "daily_move",
    "multi_year_high",
    "multi_year_low",
    "record_high",
    "record_low",
    "ytd_change",
)
STAGES: tuple[Stage, ...] = ("intraday", "close")

_MAX_VALUES = 200

Value = Annotated[str, StringConstraints(min_length=1, max_length=64)]


class Filters(BaseModel):
    """Which alerts a client wants: AND across dimensions, OR inside one; empty matches all."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    instruments: list[Value] = Field(default=[], max_length=_MAX_VALUES)
    kinds: list[Value] = Field(default=[], max_length=_MAX_VALUES, description=", ".join(KINDS))
    rules: list[Value] = Field(default=[], max_length=_MAX_VALUES)
    stages: list[Stage] = Field(default=[], max_length=_MAX_VALUES)

    @field_validator("kinds")
    @classmethod
    def _known_kinds(cls, kinds: list[str]) -> list[str]:
        unknown = [kind for kind in kinds if kind not in KINDS]
        if unknown:
            raise ValueError(f"unknown kind {unknown[0]!r}: one of {', '.join(KINDS)}")
        return kinds

    def matches(self, instrument: str, kind: str, rule: str, stage: str) -> bool:
        """True when the alert with these fields passes every non-empty dimension."""
        return (
            _allows(self.instruments, instrument)
            and _allows(self.kinds, kind)
            and _allows(self.rules, rule)
            and _allows(self.stages, stage)
        )


def _allows(wanted: list[str] | list[Stage], value: str) -> bool:
    return not wanted or value in wanted


class Subscription(BaseModel):
    """A user's saved filters, under a name of their choice."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    filters: Filters


class StreamedAlert(BaseModel):
    """An alert with its position in the gateway's stream (the SSE event id)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    position: str = Field(description="Stream position: pass as after= or before= to page.")
    alert: Alert


class AlertPage(BaseModel):
    """A page of history, newest first."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    items: list[StreamedAlert]
    next_cursor: str | None = Field(
        description="Pass as before= for the next, older page; None at the end."
    )


class Bar(BaseModel):
    """One minute of an instrument's level."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    minute: str = Field(pattern=r"^\d{2}:\d{2}$", description="HH:MM, exchange local time.")
    open: float
    high: float
    low: float
    close: float


class Bars(BaseModel):
    """An instrument's minute bars of one session, oldest first."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    instrument: str
    session: date
    timezone: str = Field(description="The exchange's time zone, which the minutes are in.")
    bars: list[Bar]
