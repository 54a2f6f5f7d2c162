"""The market as configured: instruments, their exchange calendars, and the rules."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from alerts.core.sessions import ExchangeCalendar, get_calendar
from schemas.indices import IndicesFile
from schemas.instruments import InstrumentsFile, InstrumentSpec
from schemas.rules import Rule


@dataclass(frozen=True)
class Market:
    """What the engine knows of the market, built once from the configuration files."""

    instruments: InstrumentsFile
    rules: Sequence[Rule]
    indices: IndicesFile = field(default_factory=IndicesFile)
    _computed: frozenset[str] = field(init=False, repr=False, compare=False)
    _specs: dict[str, InstrumentSpec | None] = field(init=False, repr=False, compare=False)
    _containing: dict[str, tuple[str, ...]] = field(init=False, repr=False, compare=False)

    def calendar(self, exchange: str) -> ExchangeCalendar:
        return get_calendar(
            exchange,
            open_grace_minutes=self.instruments.open_grace_minutes,
            close_grace_minutes=self.instruments.close_grace_minutes,
        )

    def computed(self, symbol: str) -> bool:
        """An index tickwatch computes: it closes with its own session_end."""
        return symbol in self._computed

    def instrument(self, symbol: str) -> InstrumentSpec | None:
        """The instrument's spec (a plain dict lookup: this runs for every tick)."""
        spec = self._specs.get(symbol)
        if spec is None and symbol not in self._specs:
            spec = self._specs[symbol] = self.instruments.get(symbol)
        return spec

    def indices_of(self, symbol: str) -> tuple[str, ...]:
        """The computed indices that contain this constituent."""
        found = self._containing.get(symbol)
        if found is None:
            found = self._containing[symbol] = self.indices.containing(symbol)
        return found

    def __post_init__(self) -> None:
        object.__setattr__(self, "_computed", frozenset(i.symbol for i in self.indices.indices))
        object.__setattr__(self, "_specs", {})
        object.__setattr__(self, "_containing", {})
