"""Start-up: the market (instruments, indices, rules) from its files, or the bundled ones.

Read by the worker, and by `replay` and `seed`, which need the calendars but not Faust.
"""

from __future__ import annotations

import logging
from datetime import date, timedelta
from importlib import resources
from pathlib import Path

import exchange_calendars as xc

from alerts.core.market import Market
from alerts.core.sessions import CalendarBuildError
from schemas.errors import ConfigError
from schemas.indices import IndicesFile, load_indices
from schemas.instruments import InstrumentsFile, InstrumentSpec, load_instruments
from schemas.rules import load_rules
from schemas.settings import Settings

#: A calendar ending sooner than this is worth a warning at start-up.
CALENDAR_NOTICE = timedelta(days=90)

log = logging.getLogger(__name__)


def bundled(name: str) -> Path:
    """A file shipped with tickwatch in streams/data/."""
    return Path(str(resources.files("streams") / "data" / name))


def with_indices(instruments: InstrumentsFile, indices: IndicesFile) -> InstrumentsFile:
    """The instruments, plus every index not listed there (an index is an instrument)."""
    listed = {spec.symbol for spec in instruments.instruments}
    extra = [
        InstrumentSpec(symbol=i.symbol, name=i.name, exchange=i.exchange, kind="index")
        for i in indices.indices
        if i.symbol not in listed
    ]
    if not extra:
        return instruments
    fields = instruments.model_dump(exclude={"instruments"})
    return InstrumentsFile(**fields, instruments=[*instruments.instruments, *extra])


def load_market(settings: Settings) -> Market:
    """Instruments and rules from their files (or the bundled ones); ConfigError if bad."""
    instruments_file = settings.instruments_file or bundled("instruments.yaml")
    instruments = load_instruments(instruments_file)
    rules = load_rules(settings.rules_file or bundled("rules.yaml"))
    indices = load_indices(settings.indices_file) if settings.indices_file else IndicesFile()
    market = Market(with_indices(instruments, indices), tuple(rules.rules), indices)
    exchanges = {spec.exchange for spec in market.instruments.instruments}
    if instruments.default_exchange:
        exchanges.add(instruments.default_exchange)
    for exchange in sorted(exchanges):
        try:
            calendar = market.calendar(exchange)  # built now, not on the first tick
        except CalendarBuildError as error:
            raise ConfigError(f"{instruments_file}: exchange {exchange}: {error}") from None
        if calendar.last_day < date.today() + CALENDAR_NOTICE:
            log.warning(
                "the %s calendar of exchange_calendars %s ends on %s: ticks after it will "
                "be dead-lettered as beyond_calendar until exchange_calendars is upgraded",
                exchange, xc.__version__, calendar.last_day,
            )  # fmt: skip
    return market
