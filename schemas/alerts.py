"""Alerts as published on the `alerts` topic: the last stage of the flow."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.attribution import IndexSnapshot

SCHEMA_VERSION = 1

_ALERT_NAMESPACE = uuid.UUID("5d1c3a52-6a3e-4a47-9a43-3f2b1b7e9c10")

Stage = Literal["intraday", "close"]


def alert_id(rule: str, instrument: str, session: date, rung: float, stage: Stage) -> str:
    """The same event always gets the same id, so a replay never makes a second alert."""
    name = f"{rule}|{instrument}|{session.isoformat()}|{rung:g}|{stage}"
    return str(uuid.uuid5(_ALERT_NAMESPACE, name))


class Alert(BaseModel):
    """One market move that matters, said once per rule, instrument, session, rung and stage."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: int = SCHEMA_VERSION
    alert_id: str = Field(description="UUID of (rule, instrument, session, rung, stage).")
    rule: str = Field(description="Name of the rule, from the rules file.")
    kind: str = Field(
        description="daily_move, multi_year_high, multi_year_low, record_high, "
        "record_low or ytd_change."
    )
    stage: Stage = Field(
        default="intraday",
        description="intraday: a tick crossed; close: the session closed beyond.",
    )
    instrument: str
    session: date = Field(description="Trading session (exchange calendar) of the move.")
    ts: datetime = Field(description="The tick's time; for a close alert, the session close.")
    price: float = Field(description="The tick's price; for a close alert, the close.")
    threshold: float = Field(
        description="The rung crossed: % for daily_move and ytd_change (negative for "
        "losses), years for multi_year_*, 0 for record_*."
    )
    change: float = Field(description="Change from reference_price, in %.")
    reference_price: float = Field(
        description="Previous close (daily_move), last close of the previous year "
        "(ytd_change), or the extreme close beaten (multi_year_*, record_*)."
    )
    since: date | None = Field(
        default=None,
        description="daily_move: latest earlier session with a move at least as strong; "
        "other kinds: latest earlier session whose close was at or beyond the price. "
        "None when there is none (a record).",
    )
    record: bool = Field(default=False, description="Beyond everything in history.")
    index: IndexSnapshot | None = Field(
        default=None, description="For an index: who drove the move, and its coverage."
    )
    message: str = Field(description="One line for a person.")
