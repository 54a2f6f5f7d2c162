"""The indices file: which constituents, shares and caps make up each index tickwatch computes."""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Iterator, Sequence
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from schemas.instruments import Symbol, known_exchange
from schemas.loading import check_unique, load_config_file

Positive = Annotated[float, Field(gt=0, allow_inf_nan=False)]
Fraction = Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)]

# weight_cap * n may miss 1 by a rounding error (1/3 * 3); capping is still possible then.
_CAP_SLACK = 1e-12


class ConstituentSpec(BaseModel):
    """One constituent: its issued shares and the factors that scale them into index weight."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    symbol: Symbol
    name: str | None = None
    shares: Positive = Field(description="Issued shares, > 0.")
    factor: Fraction = Field(default=1.0, description="Free-float adjustment, in (0, 1].")
    cap_factor: Fraction | None = Field(
        default=None,
        description="In (0, 1]; unset with the index's weight_cap set: computed from prices.",
    )


class ConstituentChange(BaseModel):
    """A change of composition, effective from the first session on or after `effective`.

    Removals apply before additions, so removing and adding one symbol in the same change
    replaces its spec (a revised share count, say).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    effective: date
    add: tuple[ConstituentSpec, ...] = ()
    remove: tuple[Symbol, ...] = ()

    @field_validator("add")
    @classmethod
    def _unique_adds(cls, value: tuple[ConstituentSpec, ...]) -> tuple[ConstituentSpec, ...]:
        check_unique([spec.symbol for spec in value], "add")
        return value

    @field_validator("remove")
    @classmethod
    def _unique_removes(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        check_unique(value, "remove")
        return value

    @model_validator(mode="after")
    def _not_empty(self) -> Self:
        if not self.add and not self.remove:
            raise ValueError("a change must add or remove at least one constituent")
        return self


Composition = tuple[ConstituentSpec, ...]


class IndexSpec(BaseModel):
    """An index: its constituents over time and how its level is published."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    symbol: Symbol = Field(description="The index's own instrument symbol.")
    name: str | None = None
    exchange: str = Field(description="exchange_calendars name whose sessions the index follows.")
    divisor: Positive = Field(description="Level = sum(price * weight) / divisor; > 0.")
    weight_cap: Fraction | None = Field(
        default=None, description="Largest weight of any constituent, in (0, 1]; unset: none."
    )
    publish_interval_s: Positive = Field(
        default=2.0, description="Index ticks are published at most this often (event time)."
    )
    min_coverage: float = Field(
        default=0.9,
        ge=0,
        le=1,
        description="Share of the index weight that must have reported before moves alert.",
    )
    stale_after_s: Positive = Field(
        default=300, description="A constituent without a tick this long (event time) is stale."
    )
    rollover_wait_s: Positive = Field(
        default=900,
        description="Prices of a new session wait until every ticks partition has seen the "
        "last one end, at most this long in event time (for a partition that is idle).",
    )
    constituents: Composition = Field(
        json_schema_extra={"minItems": 1}, description="The composition before any change."
    )
    changes: tuple[ConstituentChange, ...] = Field(
        default=(), description="Composition changes, effective dates strictly increasing."
    )

    _dates: tuple[date, ...] = PrivateAttr(default=())
    _compositions: tuple[Composition, ...] = PrivateAttr(default=())

    @field_validator("exchange")
    @classmethod
    def _exchange(cls, value: str) -> str:
        return known_exchange(value)

    # Emptiness is checked here, not by min_length, which also reports a list whose only
    # items are wrong as "should have at least 1 item".
    @field_validator("constituents")
    @classmethod
    def _constituents(cls, value: Composition, info: ValidationInfo) -> Composition:
        if not value:
            raise ValueError("needs at least one constituent")
        symbols = [spec.symbol for spec in value]
        check_unique(symbols, "constituents")
        index = info.data.get("symbol")
        if index in symbols:
            raise ValueError(f"{index!r} is the index itself (constituents.{symbols.index(index)})")
        problem = _capping_problem(value, info.data.get("weight_cap"))
        if problem:
            raise ValueError(problem)
        return value

    @field_validator("changes")
    @classmethod
    def _changes(
        cls, value: tuple[ConstituentChange, ...], info: ValidationInfo
    ) -> tuple[ConstituentChange, ...]:
        initial = info.data.get("constituents")
        if initial is None:  # already reported under constituents
            return value
        for number in range(1, len(value)):
            if value[number].effective <= value[number - 1].effective:
                where = f"changes.{number} ({value[number].effective.isoformat()})"
                raise ValueError(f"{where}: effective dates must strictly increase")
        cap = info.data.get("weight_cap")
        index = info.data.get("symbol")
        for number, (change, composition) in enumerate(
            zip(value, _apply(initial, value), strict=True)
        ):
            where = f"changes.{number} ({change.effective.isoformat()})"
            if any(spec.symbol == index for spec in change.add):
                raise ValueError(f"{where}: adds {index!r}, the index itself")
            problem = _capping_problem(composition, cap)
            if problem:
                raise ValueError(f"{where}: {problem}")
        return value

    def model_post_init(self, context: Any, /) -> None:
        self._dates = tuple(change.effective for change in self.changes)
        self._compositions = (self.constituents, *_apply(self.constituents, self.changes))

    def constituents_on(self, day: date) -> Composition:
        """The composition after every change effective on or before `day`."""
        if not self.changes:  # most indices; and pydantic's private attributes are slow
            return self.constituents
        return self._compositions[bisect_right(self._dates, day)]

    def ever_included(self) -> frozenset[str]:
        """Every symbol that is a constituent at some point in time."""
        return frozenset(spec.symbol for c in self._compositions for spec in c)


def _apply(initial: Composition, changes: Sequence[ConstituentChange]) -> Iterator[Composition]:
    """The composition after each change in turn; ValueError for an impossible change."""
    current = {spec.symbol: spec for spec in initial}
    for number, change in enumerate(changes):
        where = f"changes.{number} ({change.effective.isoformat()})"
        for symbol in change.remove:
            if current.pop(symbol, None) is None:
                raise ValueError(f"{where}: removes {symbol!r}, which is not a constituent then")
        for spec in change.add:
            if spec.symbol in current:
                raise ValueError(f"{where}: adds {spec.symbol!r}, which is already a constituent")
            current[spec.symbol] = spec
        if not current:
            raise ValueError(f"{where}: leaves no constituents")
        yield tuple(current.values())


def _capping_problem(composition: Composition, cap: float | None) -> str | None:
    if cap is None:
        return None
    if cap * len(composition) < 1 - _CAP_SLACK:
        needed = math.ceil((1 - _CAP_SLACK) / cap)
        return (
            f"weight_cap {cap:g} needs at least {needed} constituents, there are {len(composition)}"
        )
    given = sum(1 for spec in composition if spec.cap_factor is not None)
    if 0 < given < len(composition):
        # The computed factors are computed for all constituents or none; a partial list
        # would be silently ignored.
        return (
            f"with weight_cap, give cap_factor for every constituent or for none "
            f"({given} of {len(composition)} have one)"
        )
    return None


class IndicesFile(BaseModel):
    """Every index tickwatch computes from its constituents' ticks."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    indices: list[IndexSpec] = Field(default_factory=list)

    _containing: dict[str, tuple[str, ...]] = PrivateAttr(default_factory=dict)

    @field_validator("indices")
    @classmethod
    def _unique(cls, value: list[IndexSpec]) -> list[IndexSpec]:
        check_unique([spec.symbol for spec in value], "indices", "index symbol")
        return value

    def model_post_init(self, context: Any, /) -> None:
        containing: dict[str, list[str]] = {}
        for spec in self.indices:
            for symbol in sorted(spec.ever_included()):
                containing.setdefault(symbol, []).append(spec.symbol)
        self._containing = {symbol: tuple(found) for symbol, found in containing.items()}

    def containing(self, symbol: str) -> tuple[str, ...]:
        """The symbols of the indices that ever include `symbol`, in file order."""
        return self._containing.get(symbol, ())


def load_indices(path: Path) -> IndicesFile:
    """The indices file, or ConfigError naming the file and field in one line."""
    return load_config_file(path, IndicesFile, example="indices: []")
