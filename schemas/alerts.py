"""Alerts as published on the `alerts` topic: the last stage of the flow."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION = 1

_ALERT_NAMESPACE = uuid.UUID("5d1c3a52-6a3e-4a47-9a43-3f2b1b7e9c10")

Stage = Literal["intraday", "close"]


def alert_id(rule: str, instrument: str, session: date, rung: float, stage: Stage) -> str:
    """The same event always gets the same id, so a replay never makes a second alert."""
    name = f"{rule}|{instrument}|{session.isoformat()}|{rung:g}|{stage}"
    return str(uuid.uuid5(_ALERT_NAMESPACE, name))


class Alert(BaseModel):
    """One market move that matters, said once per rule, instrument, session and rung."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: int = SCHEMA_VERSION
    alert_id: str
    rule: str
    kind: str
    stage: Stage = "intraday"
    instrument: str
    session: date
    ts: datetime
    price: float
    threshold: float = Field(description="The rung crossed, in percent.")
    change: float = Field(description="The move that crossed it, in percent.")
    reference_price: float = Field(description="The price the change is measured from.")
    message: str
