"""Ticks as they arrive on the `ticks` topic: the first stage of the flow."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from schemas.attribution import IndexSnapshot


def _parse_ts(value: Any) -> Any:
    """Accept epoch milliseconds (int, or a string of digits) beside ISO-8601."""
    if isinstance(value, bool):
        raise ValueError("ts must be ISO-8601 with an offset or epoch milliseconds")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("ts must be a finite number")
    digits = isinstance(value, str) and value.strip().isdigit()
    if not digits and not isinstance(value, int | float):
        return value
    try:
        return datetime.fromtimestamp((int(value) if digits else value) / 1000.0, tz=UTC)
    except (OverflowError, OSError, ValueError):
        # OverflowError and OSError (time_t) would escape pydantic as crashes, not errors.
        raise ValueError("ts in epoch milliseconds is out of range") from None


Timestamp = Annotated[datetime, BeforeValidator(_parse_ts, json_schema_input_type=datetime | int)]


class Tick(BaseModel):
    """One trade or quote of one instrument."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    symbol: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:\-^]+$")
    price: float = Field(gt=0, allow_inf_nan=False)
    ts: Timestamp
    volume: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    seq: int | None = Field(default=None, ge=0, le=2**63 - 1)  # a Kafka/Java long, as stored
    index: IndexSnapshot | None = Field(
        default=None, description="Set on the ticks tickwatch computes for an index."
    )

    @field_validator("price", "volume", "seq", mode="before")
    @classmethod
    def _not_bool(cls, value: Any) -> Any:
        # pydantic would read true as 1 and false as 0.
        if isinstance(value, bool):
            raise ValueError("must be a number, not true or false")
        return value

    @field_validator("ts")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("ts needs a UTC offset, e.g. 2025-09-18T10:00:00+08:00")
        return value.astimezone(UTC)

    @property
    def ts_ms(self) -> int:
        return int(self.ts.timestamp() * 1000)


class SessionEnd(BaseModel):
    """A feed's end-of-day message: this exchange's session is over on this partition.

    Publish it to every partition of the ticks topic; it closes the session of every
    instrument of the exchange without waiting for the next day's first tick.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    type: Literal["session_end"]
    exchange: str = Field(min_length=1, max_length=32)
    session: date
    symbol: str | None = Field(
        default=None, description="End only this instrument's session (an index's, say)."
    )


class TickBatch(BaseModel):
    """Up to 10,000 ticks in one Kafka message, as feed handlers publish them.

    Every instrument in a batch must always travel in the same partition as its
    single ticks (tickwatch replay --batch sends each batch to the partition Kafka's
    default partitioner gives its symbols).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    type: Literal["batch"]
    ticks: list[Tick] = Field(min_length=1, max_length=10_000)
