"""Minute bars for the trader's chart: placed ticks folded into open, high, low and close.

Beside the flow, not in it: the gateway reads the ticks topic again (streams/gateway/
bars.py) and keeps these bars, so the worker's hot path does not change.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from alerts.core.decode import TickAt
from alerts.core.sessions import exchange_timezone

_MINUTES_A_DAY = 24 * 60
_MINUTE_MS = 60_000


@dataclass(frozen=True)
class Ohlc:
    """One minute's first, highest, lowest and last price."""

    open: float
    high: float
    low: float
    close: float

    @classmethod
    def of(cls, price: float) -> Ohlc:
        return cls(price, price, price, price)

    def then(self, later: Ohlc) -> Ohlc:
        """This minute followed by later ticks of the same minute."""
        return Ohlc(self.open, max(self.high, later.high), min(self.low, later.low), later.close)

    def text(self) -> str:
        """As Redis holds it: "open,high,low,close" (repr: a float read back is the same)."""
        return f"{self.open!r},{self.high!r},{self.low!r},{self.close!r}"

    @classmethod
    def parse(cls, text: str) -> Ohlc:
        """ValueError unless four numbers separated by commas."""
        fields = text.split(",")
        if len(fields) != 4:
            raise ValueError(f"not open,high,low,close: {text!r}")
        o, h, low, c = (float(f) for f in fields)
        return cls(o, h, low, c)


@dataclass(frozen=True)
class BarKey:
    """Whose bars: one instrument in one session of its exchange."""

    instrument: str
    session: date


@dataclass(frozen=True)
class PricedMinute:
    """A tick reduced to what a bar needs: its instrument, session, local minute and price."""

    key: BarKey
    minute: str  # "HH:MM", exchange local time
    price: float


@dataclass(frozen=True)
class SessionClock:
    """How to read a session's minutes: its exchange's time zone, and the local minute
    it starts at (its open less the pre-open grace)."""

    timezone: str
    start: str


Priced = tuple[list[PricedMinute], dict[BarKey, SessionClock]]


def priced(placed: Iterable[TickAt], open_grace_minutes: int) -> Priced:
    """Each tick as its instrument, session, local minute and price, and how to read the
    minutes of each session they reach."""
    ticks: list[PricedMinute] = []
    clocks: dict[BarKey, SessionClock] = {}
    for at in placed:
        zone = exchange_timezone(at.spec.exchange)
        key = BarKey(at.tick.symbol, at.session.day)
        ticks.append(PricedMinute(key, local_minute(at.tick.ts_ms, zone), at.tick.price))
        if key not in clocks:
            start = local_minute(at.session.open_ms - open_grace_minutes * _MINUTE_MS, zone)
            clocks[key] = SessionClock(zone.key, start)
    return ticks, clocks


def local_minute(ts_ms: int, zone: ZoneInfo) -> str:
    """The minute ("HH:MM") of an instant (epoch ms) on the exchange's clocks."""
    return datetime.fromtimestamp(ts_ms / 1000, tz=UTC).astimezone(zone).strftime("%H:%M")


def fold(ticks: Iterable[PricedMinute]) -> dict[BarKey, dict[str, Ohlc]]:
    """The bars these ticks make, taken in the order given (the order of their partition):
    the first tick of a minute opens its bar, the last one closes it."""
    bars: dict[BarKey, dict[str, Ohlc]] = {}
    for tick in ticks:
        minutes = bars.setdefault(tick.key, {})
        bar = Ohlc.of(tick.price)
        before = minutes.get(tick.minute)
        minutes[tick.minute] = bar if before is None else before.then(bar)
    return bars


def in_session_order(bars: Mapping[str, Ohlc], start: str) -> list[tuple[str, Ohlc]]:
    """The minutes of a session in time order, the session starting at `start` ("HH:MM"
    local, its open less the pre-open grace): a session that runs past local midnight
    has its 00:xx minutes after its 23:xx ones."""
    first = _minute_of_day(start)
    return sorted(bars.items(), key=lambda item: (_minute_of_day(item[0]) - first) % _MINUTES_A_DAY)


def _minute_of_day(minute: str) -> int:
    hours, _, minutes = minute.partition(":")
    return int(hours) * 60 + int(minutes)
