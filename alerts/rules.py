"""Rule evaluation: pure functions from an instrument's state and a tick to alerts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal

from schemas.alerts import Alert, alert_id

# A move that equals a rung in decimal is often a hair below it in binary floating point.
_TOLERANCE_PCT = 1e-9

Direction = Literal["up", "down"]


@dataclass(frozen=True)
class DailyMoveRule:
    """Change against the previous close at or beyond each rung, once per session."""

    name: str
    rungs: tuple[float, ...]
    direction: Direction = "up"
    kind: str = "daily_move"

    def rung_key(self, rung: float) -> str:
        return f"{self.name}@{rung:g}"


@dataclass(frozen=True)
class Observation:
    """What the rules see of one tick: the instrument's state right after it."""

    instrument: str
    session: date
    ts: datetime
    price: float
    previous_close: float | None


def change_pct(price: float, reference: float) -> float:
    return (price / reference - 1.0) * 100.0


def crossed(change: float, rung: float, direction: Direction) -> bool:
    if direction == "up":
        return change >= rung - _TOLERANCE_PCT
    return change <= -rung + _TOLERANCE_PCT


def evaluate_daily_move(
    rule: DailyMoveRule, seen: Observation, fired: frozenset[str]
) -> list[tuple[str, Alert]]:
    """(rung key, alert) for every rung crossed here that has not fired this session."""
    if seen.previous_close is None:
        return []
    change = change_pct(seen.price, seen.previous_close)
    alerts = []
    for rung in sorted(rule.rungs):
        if rule.rung_key(rung) in fired or not crossed(change, rung, rule.direction):
            continue
        word = "gain" if rule.direction == "up" else "loss"
        message = (
            f"{seen.instrument} {change:+.2f}% today at {seen.price:,.2f}, "
            f"a daily {word} beyond {rung:g}% (previous close {seen.previous_close:,.2f})"
        )
        alert = Alert(
            alert_id=alert_id(rule.name, seen.instrument, seen.session, rung, "intraday"),
            rule=rule.name,
            kind=rule.kind,
            instrument=seen.instrument,
            session=seen.session,
            ts=seen.ts,
            price=seen.price,
            threshold=rung if rule.direction == "up" else -rung,
            change=round(change, 6),
            reference_price=seen.previous_close,
            message=message,
        )
        alerts.append((rule.rung_key(rung), alert))
    return alerts


def evaluate(
    rules: Sequence[DailyMoveRule], seen: Observation, fired: frozenset[str]
) -> list[tuple[str, Alert]]:
    alerts: list[tuple[str, Alert]] = []
    for rule in rules:
        alerts.extend(evaluate_daily_move(rule, seen, fired))
    return alerts
