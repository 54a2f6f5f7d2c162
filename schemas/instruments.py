"""The instruments file: which exchange calendar gives each symbol its sessions."""

from __future__ import annotations

import difflib
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator

from schemas.loading import check_unique, load_config_file

# The same constraint as schemas.ticks.Tick.symbol; a unit test keeps the two equal.
Symbol = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:\-^]+$")]

InstrumentKind = Literal["stock", "index"]


@cache
def known_exchanges() -> frozenset[str]:
    """Every exchange name tickwatch accepts: exchange_calendars' calendar names and
    aliases. The one list, for the instruments file and for alerts.core.sessions; a
    calendar registered later is known after `known_exchanges.cache_clear()`."""
    # Imported here: it pulls in pandas, which most importers of this module never need.
    import exchange_calendars

    return frozenset(exchange_calendars.get_calendar_names())


def known_exchange(value: str) -> str:
    """The exchange name if exchange_calendars knows it; else a ValueError with a hint."""
    names = known_exchanges()
    if value in names:
        return value
    close = difflib.get_close_matches(value, sorted(names), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise ValueError(
        f"unknown exchange {value!r}{hint}; use an exchange_calendars name "
        "such as XHKG, XNYS, XNAS, XLON or 24/7"
    )


class InstrumentSpec(BaseModel):
    """One symbol and the exchange whose calendar decides its sessions."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    symbol: Symbol
    name: str | None = None
    exchange: str = Field(description="exchange_calendars name, e.g. XHKG, XNAS or 24/7.")
    kind: InstrumentKind = "stock"

    @field_validator("exchange")
    @classmethod
    def _exchange(cls, value: str) -> str:
        return known_exchange(value)


class InstrumentsFile(BaseModel):
    """Every instrument tickwatch knows, and what to do with a symbol it does not."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    default_exchange: str | None = Field(
        default=None,
        description="Exchange of symbols not listed; unset: ticks of such symbols are rejected.",
    )
    open_grace_minutes: int = Field(
        default=30,
        ge=0,
        le=720,
        description="Ticks this long before an open (pre-open auction) belong to that session.",
    )
    close_grace_minutes: int = Field(
        default=15,
        ge=0,
        le=720,
        description="Ticks this long after a close (closing auction) belong to that session.",
    )
    instruments: list[InstrumentSpec] = Field(default_factory=list)

    _by_symbol: dict[str, InstrumentSpec] = PrivateAttr(default_factory=dict)

    @field_validator("default_exchange")
    @classmethod
    def _default_exchange(cls, value: str | None) -> str | None:
        return None if value is None else known_exchange(value)

    @field_validator("instruments")
    @classmethod
    def _unique(cls, value: list[InstrumentSpec]) -> list[InstrumentSpec]:
        check_unique([spec.symbol for spec in value], "instruments")
        return value

    def model_post_init(self, context: Any, /) -> None:
        self._by_symbol = {spec.symbol: spec for spec in self.instruments}

    def get(self, symbol: str) -> InstrumentSpec | None:
        """The symbol's spec; for an unlisted symbol one on default_exchange, or None."""
        spec = self._by_symbol.get(symbol)
        if spec is None and self.default_exchange is not None:
            return InstrumentSpec(symbol=symbol, exchange=self.default_exchange)
        return spec


def load_instruments(path: Path) -> InstrumentsFile:
    """The instruments file, or ConfigError naming the file and field in one line."""
    return load_config_file(path, InstrumentsFile, example="instruments: []")
