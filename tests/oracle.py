"""A plain oracle: the alerts a tick history should raise, found by rescanning history.

Deliberately naive (lists and linear scans, no record stacks, no state store) so that
it shares no logic with the code under test beyond the calendars and the alert ids.
Assumes ticks come in time order per instrument and that every session that has
ticks is eventually closed (a later session, or an end-of-day message).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from alerts.core.sessions import ExchangeCalendar
from schemas.alerts import Alert, alert_id
from schemas.rules import DailyMoveRule, MultiYearRule, RecordRule, Rule, YtdRule
from schemas.ticks import Tick

TOLERANCE = 1e-9


@dataclass(frozen=True)
class Expected:
    alert_id: str
    rule: str
    instrument: str
    session: date
    stage: str
    ts: datetime
    price: float
    threshold: float
    reference_price: float
    since: date | None
    record: bool

    def key(self) -> tuple[object, ...]:
        return (
            self.alert_id, self.rule, self.instrument, self.session, self.stage,
            self.ts, round(self.price, 9), round(self.threshold, 9),
            round(self.reference_price, 9), self.since, self.record,
        )  # fmt: skip


def back(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:
        return day.replace(year=day.year - years, day=28)


def oracle(
    symbol: str,
    kind: str,
    calendar: ExchangeCalendar,
    rules: Sequence[Rule],
    seeded: Sequence[tuple[date, float]],
    ticks: Sequence[Tick],
) -> list[Expected]:
    """Every alert of one instrument, in the order they should be raised."""
    closes: list[tuple[date, float]] = list(seeded)
    fired: set[tuple[object, ...]] = set()
    out: list[Expected] = []
    by_session: dict[date, list[Tick]] = {}
    for tick in ticks:
        session = calendar.session_at(tick.ts_ms)
        assert session is not None
        if closes and session.day <= closes[-1][0]:
            continue  # a late tick for a session already in history
        by_session.setdefault(session.day, []).append(tick)
    for day in sorted(by_session):
        for tick in by_session[day]:
            out += _check(symbol, kind, rules, closes, fired, day, "intraday", tick.ts, tick.price)
        last = by_session[day][-1].price
        close = calendar.session(day)
        assert close is not None
        out += _check(symbol, kind, rules, closes, fired, day, "close", close.close, last)
        closes.append((day, last))
    return out


def compare(got: list[Alert], expected: list[Expected]) -> dict[str, list[str]]:
    """Alerts of a real run against the oracle's, by id: missing, duplicate, unexpected,
    mismatched (as Kafka's streams_eos_test and Jepsen check)."""
    counts = Counter(a.alert_id for a in got)
    want = {e.alert_id: e for e in expected}
    by_id = {a.alert_id: a for a in got}
    mismatched = []
    for id_, e in want.items():
        a = by_id.get(id_)
        if a is None:
            continue
        key = (id_, a.rule, a.instrument, a.session, a.stage, a.ts, round(a.price, 9),
               round(a.threshold, 9), round(a.reference_price, 9), a.since, a.record)  # fmt: skip
        if key != e.key():
            mismatched.append(f"{key} != {e.key()}")
    return {
        "missing": [i for i in want if i not in counts],
        "duplicate": [i for i, n in counts.items() if n > 1],
        "unexpected": [i for i in counts if i not in want],
        "mismatched": mismatched,
    }


def _check(symbol, kind, rules, closes, fired, day, stage, ts, price):  # type: ignore[no-untyped-def]
    out = []
    changes = [(d, (c / closes[i - 1][1] - 1) * 100) for i, (d, c) in enumerate(closes) if i]

    def emit(rule, rung, yearly, threshold, reference, since=None, record=False):  # type: ignore[no-untyped-def]
        key = (rule.name, rung, stage, day.year if yearly else day)
        if key in fired:
            return
        fired.add(key)
        id_ = alert_id(rule.name, symbol, day, rung, stage)
        out.append(
            Expected(
                id_, rule.name, symbol, day, stage, ts, price, threshold, reference, since, record
            )
        )

    for rule in rules:
        if stage not in rule.stages or not rule.applies(symbol, kind):
            continue
        if isinstance(rule, DailyMoveRule) and closes:
            previous = closes[-1][1]
            change = (price / previous - 1) * 100
            up = rule.direction == "up"
            for rung in rule.rungs:
                if (up and change >= rung - TOLERANCE) or (not up and change <= -rung + TOLERANCE):
                    beaten = [d for d, c in changes if (c >= change if up else c <= change)]
                    since = beaten[-1] if beaten else None
                    covered = bool(changes) and changes[0][0] <= back(day, 1)
                    record = since is None and covered
                    emit(rule, rung, False, rung if up else -rung, previous, since, record)
        elif isinstance(rule, YtdRule):
            before = [c for d, c in closes if d.year < day.year]
            if not before:
                continue
            base = before[-1]
            change = (price / base - 1) * 100
            up = rule.direction == "up"
            this_year = [c for d, c in closes if d.year == day.year]
            was = (this_year[-1] / base - 1) * 100 if this_year else 0.0
            for rung in rule.rungs:
                if (up and was >= rung - TOLERANCE) or (not up and was <= -rung + TOLERANCE):
                    continue  # already beyond it at the previous close: not a crossing
                if (up and change >= rung - TOLERANCE) or (not up and change <= -rung + TOLERANCE):
                    emit(rule, rung, True, rung if up else -rung, base)
        elif isinstance(rule, MultiYearRule) and closes:
            start = back(day, rule.years)
            window = [c for d, c in closes if d >= start]
            if closes[0][0] > start or not window:
                continue
            high = rule.kind == "multi_year_high"
            extreme = max(window) if high else min(window)
            if price > extreme if high else price < extreme:
                beaten = [d for d, c in closes if (c >= price if high else c <= price)]
                since = beaten[-1] if beaten else None
                emit(rule, rule.years, False, rule.years, extreme, since, since is None)
        elif isinstance(rule, RecordRule) and closes:
            if closes[0][0] > back(day, rule.min_years):
                continue
            high = rule.kind == "record_high"
            extreme = max(c for _, c in closes) if high else min(c for _, c in closes)
            if price > extreme if high else price < extreme:
                emit(rule, 0, False, 0, extreme, None, True)
    return out
