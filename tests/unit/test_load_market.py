"""Loading the market at start-up: calendars built once, and their limits said plainly."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import exchange_calendars as xc
import pytest

from schemas.errors import ConfigError
from schemas.settings import Settings
from streams import market_files
from tests.market_data import unbuildable_calendar


def instruments(tmp_path: Path, exchange: str) -> Settings:
    path = tmp_path / "instruments.yaml"
    path.write_text(f"instruments:\n  - {{symbol: A, exchange: {exchange}}}\n")
    return Settings(instruments_file=path)


@pytest.fixture
def broken_exchange() -> Iterator[str]:
    with unbuildable_calendar("XBROKEN-LOAD", ValueError("Special dates overlap")) as name:
        yield name


def test_a_calendar_that_ends_soon_is_a_warning_at_start_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    settings = instruments(tmp_path, "XHKG")
    last = market_files.load_market(settings).calendar("XHKG").last_day
    monkeypatch.setattr(market_files, "CALENDAR_NOTICE", timedelta(0))
    with caplog.at_level(logging.WARNING, logger="streams.market_files"):
        market_files.load_market(settings)
    assert caplog.records == []
    monkeypatch.setattr(market_files, "CALENDAR_NOTICE", timedelta(days=36_500))
    with caplog.at_level(logging.WARNING, logger="streams.market_files"):
        market_files.load_market(settings)
    (record,) = caplog.records
    assert record.getMessage() == (
        f"the XHKG calendar of exchange_calendars {xc.__version__} ends on {last}: ticks after "
        "it will be dead-lettered as beyond_calendar until exchange_calendars is upgraded"
    )


def test_a_calendar_that_cannot_be_built_names_the_file_and_exchange(
    tmp_path: Path, broken_exchange: str
) -> None:
    settings = instruments(tmp_path, broken_exchange)
    with pytest.raises(ConfigError) as raised:
        market_files.load_market(settings)
    assert str(raised.value) == (
        f"{settings.instruments_file}: exchange {broken_exchange}: exchange_calendars "
        f"{xc.__version__} cannot build the {broken_exchange} calendar "
        "(ValueError: Special dates overlap)"
    )
