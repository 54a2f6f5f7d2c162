"""Messages of the `constituents` topic: what the ingest worker tells the index agent."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class ConstituentPrice(BaseModel):
    """A constituent's tick, for one index that contains it (keyed by the index)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    type: Literal["price"] = "price"
    index: str
    symbol: str
    price: float = Field(gt=0)
    ts: datetime
    source_partition: int = Field(ge=0, description="The ticks partition it came from.")


class ConstituentSessionEnd(BaseModel):
    """A ticks partition has seen its exchange's session end (one per partition)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    type: Literal["session_end"] = "session_end"
    index: str
    exchange: str
    session: date
    source_partition: int = Field(ge=0)
    behind: bool = Field(
        default=False,
        description="Its reader had more of the partition to read: hold the index back for it.",
    )


class ConstituentWatermark(BaseModel):
    """A ticks partition's event time: no earlier price will come from it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    type: Literal["watermark"] = "watermark"
    index: str
    source_partition: int = Field(ge=0)
    ts_ms: int = Field(ge=0)
    behind: bool = Field(
        default=False,
        description="Its reader had more of the partition to read: hold the index back for it.",
    )


class ConstituentPrices(BaseModel):
    """A batch's prices for one index from one ticks partition, then its event time.

    One message per index and partition per batch: far fewer messages than one per
    tick. `prices` are [symbol, price, epoch ms, position in the ticks partition], in
    the partition's order; a price at or before a symbol's last position is a replay.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    type: Literal["prices"] = "prices"
    index: str
    source_partition: int = Field(ge=0)
    prices: list[tuple[str, float, int, int]]
    watermark_ms: int = Field(ge=0, description="The partition's event time after them.")
    behind: bool = Field(
        default=False,
        description="Its reader had more of the partition to read: hold the index back for it.",
    )


ConstituentMessage = (
    ConstituentPrice | ConstituentPrices | ConstituentSessionEnd | ConstituentWatermark
)
