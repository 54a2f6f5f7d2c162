"""Daily bars of a history file: the closes `tickwatch seed` puts behind the live state."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict, Field

from schemas.instruments import Symbol


class DailyBar(BaseModel):
    """One instrument's one session, as a data vendor reports it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    date: dt.date = Field(description="The session, YYYY-MM-DD.")
    symbol: Symbol
    close: float = Field(gt=0, allow_inf_nan=False)
    open: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    high: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    low: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    volume: float | None = Field(default=None, ge=0, allow_inf_nan=False)
