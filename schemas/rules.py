"""The rules file: which moves of which instruments become alerts."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Annotated, Any, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    field_validator,
    model_validator,
)

from schemas.alerts import Stage
from schemas.instruments import InstrumentKind, Symbol
from schemas.loading import check_unique, load_config_file

Direction = Literal["up", "down"]
Group = Literal["all", "indices", "stocks"]
Rung = Annotated[float, Field(gt=0, le=1000, allow_inf_nan=False)]

STAGES: tuple[Stage, ...] = ("intraday", "close")


def _applies_to_tag(value: Any) -> str:
    return "group" if isinstance(value, str) else "symbols"


# Tagged so that a bad value gets one error under its own name, not one per alternative.
AppliesTo = Annotated[
    Annotated[Group, Tag("group")]
    | Annotated[frozenset[Symbol], Field(json_schema_extra={"minItems": 1}), Tag("symbols")],
    Discriminator(_applies_to_tag),
]


def _kind_required(schema: dict[str, Any]) -> None:
    # In a file `kind` picks the model, so it is required even where Python has a default.
    required = schema.setdefault("required", [])
    if "kind" not in required:
        required.append("kind")


class RuleBase(BaseModel):
    """What every rule has: a name, the stages it speaks at, and the instruments it watches."""

    model_config = ConfigDict(frozen=True, extra="forbid", json_schema_extra=_kind_required)

    name: str = Field(
        min_length=1,
        max_length=64,
        pattern=r"^[a-z0-9_]+$",
        description="Unique; becomes the alert's `rule` and part of its id.",
    )
    stages: tuple[Stage, ...] = Field(
        default=("intraday",),
        json_schema_extra={"minItems": 1},
        description="intraday: alert when a tick crosses; close: when a session closes beyond.",
    )
    applies_to: AppliesTo = Field(
        default="all",
        description="all, indices, stocks, or a list of symbols.",
    )

    # Emptiness is checked by validators, not min_length, which also reports a list
    # whose only items are wrong as "should have at least 1 item".
    @field_validator("stages")
    @classmethod
    def _stages(cls, value: tuple[Stage, ...]) -> tuple[Stage, ...]:
        twice = [stage for stage, count in Counter(value).items() if count > 1]
        if not value:
            raise ValueError("needs at least one of intraday, close")
        if twice:
            raise ValueError(f"stage {twice[0]!r} given twice")
        return tuple(stage for stage in STAGES if stage in value)

    @field_validator("applies_to")
    @classmethod
    def _some_symbols(cls, value: Group | frozenset[str]) -> Group | frozenset[str]:
        if isinstance(value, frozenset) and not value:
            raise ValueError("needs at least one symbol, or one of all, indices, stocks")
        return value

    def applies(self, symbol: str, kind: InstrumentKind) -> bool:
        """Whether this rule watches the instrument."""
        if isinstance(self.applies_to, frozenset):
            return symbol in self.applies_to
        if self.applies_to == "indices":
            return kind == "index"
        if self.applies_to == "stocks":
            return kind == "stock"
        return True


class MoveRule(RuleBase):
    """A change in % against a reference close, alerted at each rung it reaches."""

    direction: Direction = "up"
    rungs: tuple[Rung, ...] = Field(
        json_schema_extra={"minItems": 1},
        description="Thresholds in %, each > 0 and <= 1000; kept in ascending order.",
    )

    @field_validator("rungs")
    @classmethod
    def _rungs(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        twice = [rung for rung, count in Counter(value).items() if count > 1]
        if not value:
            raise ValueError("needs at least one rung")
        if twice:
            raise ValueError(f"rung {twice[0]:g} given twice")
        return tuple(sorted(value))

    @model_validator(mode="after")
    def _losses_below_100(self) -> Self:
        if self.direction == "down" and self.rungs[-1] >= 100:
            raise ValueError(
                f"a loss of {self.rungs[-1]:g}% would take the price to zero or below; "
                "loss rungs must be below 100"
            )
        return self


class DailyMoveRule(MoveRule):
    """Change against the previous session's close."""

    kind: Literal["daily_move"] = "daily_move"


class YtdRule(MoveRule):
    """Change against the last close of the previous calendar year."""

    kind: Literal["ytd_change"] = "ytd_change"


class MultiYearRule(RuleBase):
    """A close beyond every close of the last `years` years."""

    kind: Literal["multi_year_high", "multi_year_low"]
    years: int = Field(ge=1, le=50)


class RecordRule(RuleBase):
    """A close beyond every close in the instrument's history."""

    kind: Literal["record_high", "record_low"]
    min_years: int = Field(
        default=1,
        ge=0,
        le=100,
        description="History must reach back this many years before a record is claimed.",
    )


Rule = Annotated[DailyMoveRule | MultiYearRule | RecordRule | YtdRule, Field(discriminator="kind")]


class RulesFile(BaseModel):
    """Every rule tickwatch evaluates, in the order of the file."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    rules: list[Rule]

    @field_validator("rules")
    @classmethod
    def _unique(cls, value: list[Rule]) -> list[Rule]:
        check_unique([rule.name for rule in value], "rules", "rule name")
        return value


def load_rules(path: Path) -> RulesFile:
    """The rules file, or ConfigError naming the file and field in one line."""
    return load_config_file(path, RulesFile, example="rules: []")
