"""Rule evaluation: pure functions from what an instrument did to the alerts it raises."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from alerts.core.record_stacks import RecordStack
from alerts.core.session_history import History
from schemas.alerts import Alert, Stage, alert_id
from schemas.attribution import IndexSnapshot
from schemas.instruments import InstrumentKind
from schemas.rules import DailyMoveRule, MultiYearRule, RecordRule, Rule, YtdRule

# A move that equals a rung in decimal is often a hair below it in binary floating point.
_TOLERANCE_PCT = 1e-9


@dataclass(frozen=True)
class Observation:
    """A price of an instrument at a stage of a session, beside its closed history."""

    instrument: str
    kind: InstrumentKind
    session: date
    stage: Stage
    ts: datetime
    price: float
    history: History  # sessions closed before `session`
    snapshot: IndexSnapshot | None = None  # an index's attribution and coverage


@dataclass(frozen=True)
class Crossing:
    """An alert and the key that stops it firing twice (per session, or per year)."""

    key: str
    yearly: bool
    alert: Alert


def change_pct(price: float, reference: float) -> float:
    return (price / reference - 1.0) * 100.0


def crossed(change: float, rung: float, up: bool) -> bool:
    return change >= rung - _TOLERANCE_PCT if up else change <= -rung + _TOLERANCE_PCT


def fired_key(rule: Rule, rung: float, stage: Stage) -> str:
    return f"{rule.name}@{rung:g}/{stage}"


def years_before(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February
        return day.replace(year=day.year - years, day=28)


def _covers_a_year(stack: RecordStack, session: date) -> bool:
    """Enough history to call a move the strongest on record."""
    first = stack.first_session
    return first is not None and not stack.truncated and first <= years_before(session, 1)


def evaluate(
    rules: Sequence[Rule], seen: Observation, fired: frozenset[str], fired_year: frozenset[str]
) -> list[Crossing]:
    """Every rule crossing of this observation that has not fired in its period."""
    out: list[Crossing] = []
    for rule in rules:
        if seen.stage not in rule.stages or not rule.applies(seen.instrument, seen.kind):
            continue
        if isinstance(rule, DailyMoveRule):
            out += _daily_move(rule, seen, fired)
        elif isinstance(rule, YtdRule):
            out += _ytd(rule, seen, fired_year)
        elif isinstance(rule, MultiYearRule):
            out += _multi_year(rule, seen, fired)
        elif isinstance(rule, RecordRule):
            out += _record(rule, seen, fired)
    return out


def _alert(rule: Rule, seen: Observation, rung: float, **fields: object) -> Alert:
    if seen.snapshot is not None:
        fields["index"] = seen.snapshot
        led_by = seen.snapshot.led_by()
        if led_by:
            fields["message"] = f"{fields['message']}; {led_by}"
        if seen.snapshot.stale:
            fields["message"] = (
                f"{fields['message']} ({seen.snapshot.reported}/"
                f"{seen.snapshot.constituents} constituents reported; stale: "
                f"{', '.join(seen.snapshot.stale)})"
            )
    return Alert(
        alert_id=alert_id(rule.name, seen.instrument, seen.session, rung, seen.stage),
        rule=rule.name,
        kind=rule.kind,
        stage=seen.stage,
        instrument=seen.instrument,
        session=seen.session,
        ts=seen.ts,
        price=seen.price,
        **fields,  # type: ignore[arg-type]
    )


def _daily_move(rule: DailyMoveRule, seen: Observation, fired: frozenset[str]) -> list[Crossing]:
    reference = seen.history.last_close
    if reference is None:
        return []
    change = change_pct(seen.price, reference)
    up = rule.direction == "up"
    out = []
    for rung in rule.rungs:
        key = fired_key(rule, rung, seen.stage)
        if key in fired or not crossed(change, rung, up):
            continue
        stack = seen.history.gains if up else seen.history.losses
        since = stack.since(change)
        record = since is None and _covers_a_year(stack, seen.session)
        strongest = "strongest daily gain" if up else "steepest daily loss"
        if seen.stage == "close":
            strongest = "strongest close-to-close gain" if up else "steepest close-to-close loss"
        tail = (
            f", its {strongest} since {since}"
            if since
            else (f", its {strongest} on record" if record else "")
        )
        verb = "closed" if seen.stage == "close" else "today"
        message = (
            f"{seen.instrument} {verb} {change:+.2f}% at {seen.price:,.2f}, beyond "
            f"{'+' if up else '-'}{rung:g}% (previous close {reference:,.2f}){tail}"
        )
        alert = _alert(
            rule,
            seen,
            rung,
            threshold=rung if up else -rung,
            change=round(change, 6),
            reference_price=reference,
            since=since,
            record=record,
            message=message,
        )
        out.append(Crossing(key, False, alert))
    return out


def _ytd(rule: YtdRule, seen: Observation, fired_year: frozenset[str]) -> list[Crossing]:
    base = seen.history.ytd_base(seen.session)
    if base is None:
        return []
    change = change_pct(seen.price, base)
    up = rule.direction == "up"
    # Where this year's previous close already stood: a rung it was beyond is not crossed.
    last = seen.history.last_close
    same_year = seen.history.last_session is not None and (
        seen.history.last_session.year == seen.session.year
    )
    before = change_pct(last, base) if same_year and last is not None else 0.0
    out = []
    for rung in rule.rungs:
        key = fired_key(rule, rung, seen.stage)
        if key in fired_year or not crossed(change, rung, up) or crossed(before, rung, up):
            continue
        verb = "closed" if seen.stage == "close" else "at"
        message = (
            f"{seen.instrument} {change:+.2f}% year to date ({verb} {seen.price:,.2f}; "
            f"last close of {seen.session.year - 1} or before: {base:,.2f}), "
            f"beyond {'+' if up else '-'}{rung:g}%"
        )
        alert = _alert(
            rule,
            seen,
            rung,
            threshold=rung if up else -rung,
            change=round(change, 6),
            reference_price=base,
            message=message,
        )
        out.append(Crossing(key, True, alert))
    return out


def _multi_year(rule: MultiYearRule, seen: Observation, fired: frozenset[str]) -> list[Crossing]:
    key = fired_key(rule, rule.years, seen.stage)
    high = rule.kind == "multi_year_high"
    stack = seen.history.closes_high if high else seen.history.closes_low
    start = years_before(seen.session, rule.years)
    # Without closes reaching back N years, "highest in N years" cannot be claimed.
    if key in fired or stack.first_session is None or stack.first_session > start:
        return []
    extreme = stack.extreme_since(start)
    if extreme is None or not (seen.price > extreme if high else seen.price < extreme):
        return []
    since = stack.since(seen.price)
    record = since is None and not stack.truncated
    word = "highest" if high else "lowest"
    where = f"its {word} since {since}" if since else f"its {word} on record"
    verb = "closed at" if seen.stage == "close" else "at"
    message = (
        f"{seen.instrument} {verb} {seen.price:,.2f}, {where} "
        f"({'above' if high else 'below'} every close of the last {rule.years} years, "
        f"{word} {extreme:,.2f})"
    )
    alert = _alert(
        rule,
        seen,
        rule.years,
        threshold=rule.years,
        change=round(change_pct(seen.price, extreme), 6),
        reference_price=extreme,
        since=since,
        record=record,
        message=message,
    )
    return [Crossing(key, False, alert)]


def _record(rule: RecordRule, seen: Observation, fired: frozenset[str]) -> list[Crossing]:
    key = fired_key(rule, 0, seen.stage)
    high = rule.kind == "record_high"
    stack = seen.history.closes_high if high else seen.history.closes_low
    if key in fired or stack.truncated or stack.first_session is None:
        return []
    if stack.first_session > years_before(seen.session, rule.min_years):
        return []
    extreme = stack.extreme_since(stack.first_session)
    if extreme is None or not (seen.price > extreme if high else seen.price < extreme):
        return []
    word = "high" if high else "low"
    verb = "closed at" if seen.stage == "close" else "at"
    message = (
        f"{seen.instrument} {verb} {seen.price:,.2f}, a record {word} "
        f"(previous record close {extreme:,.2f})"
    )
    alert = _alert(
        rule,
        seen,
        0,
        threshold=0,
        change=round(change_pct(seen.price, extreme), 6),
        reference_price=extreme,
        record=True,
        message=message,
    )
    return [Crossing(key, False, alert)]
