"""Who moved an index: its top contributors and how much of it has reported."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class Contributor(BaseModel):
    """One constituent's part in the index's move since the previous close."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    symbol: str
    name: str | None = None
    change_pct: float = Field(description="Constituent's change since its previous close, %.")
    points: float = Field(description="Index points it added (negative: took away).")
    share: float = Field(description="Its points over the index's whole move (1.0 = all).")


class IndexSnapshot(BaseModel):
    """What an index tick carries besides its level: attribution and data quality."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    contributors: tuple[Contributor, ...] = Field(
        default=(), description="Top contributors to the move since the previous close."
    )
    reported: int = Field(ge=0, description="Constituents that have ticked this session.")
    constituents: int = Field(ge=0, description="Constituents in the index.")
    coverage: float = Field(
        ge=0, le=1, description="Share of the index weight that has reported this session."
    )
    stale: tuple[str, ...] = Field(
        default=(), description="Constituents without a recent tick (at most 10 listed)."
    )
    complete: bool = Field(
        description="Coverage reached the index's min_coverage: moves may raise alerts."
    )

    def led_by(self, count: int = 2) -> str:
        """'led by Baidu (+15.1%, +92 pts) and Alibaba (+8.0%, +61 pts)', or ''."""
        leaders = [c for c in self.contributors[:count] if c.points != 0]
        if not leaders:
            return ""
        parts = [
            f"{c.name or c.symbol} ({c.change_pct:+.1f}%, {c.points:+,.0f} pts)" for c in leaders
        ]
        return "led by " + " and ".join(parts)
