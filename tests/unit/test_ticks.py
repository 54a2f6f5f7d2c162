from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from schemas.ticks import Tick


def test_iso_timestamp_with_offset_is_normalised_to_utc() -> None:
    tick = Tick.model_validate(
        {"symbol": "0700.HK", "price": 500.5, "ts": "2025-09-18T10:00:00+08:00"}
    )
    assert tick.ts == datetime(2025, 9, 18, 2, 0, tzinfo=UTC)


@pytest.mark.parametrize("ts", [1758160800000, "1758160800000"])
def test_epoch_milliseconds_are_accepted(ts: object) -> None:
    tick = Tick.model_validate({"symbol": "BIDU", "price": 1, "ts": ts})
    assert tick.ts == datetime(2025, 9, 18, 2, 0, tzinfo=UTC)
    assert tick.ts_ms == 1758160800000


def test_json_round_trip() -> None:
    tick = Tick(symbol="BIDU", price=101.5, ts=datetime(2025, 9, 18, tzinfo=UTC), volume=10, seq=3)
    assert Tick.model_validate_json(tick.model_dump_json()) == tick


@pytest.mark.parametrize(
    ("row", "field"),
    [
        ({"symbol": "BIDU", "price": 1, "ts": "2025-09-18T10:00:00"}, "ts"),
        ({"symbol": "BIDU", "price": 0, "ts": 1}, "price"),
        ({"symbol": "BIDU", "price": -3, "ts": 1}, "price"),
        ({"symbol": "BIDU", "price": "nan", "ts": 1}, "price"),
        ({"symbol": "", "price": 1, "ts": 1}, "symbol"),
        ({"symbol": "A{B}", "price": 1, "ts": 1}, "symbol"),
        ({"symbol": "BIDU", "price": 1, "ts": 1, "volume": -1}, "volume"),
        ({"symbol": "BIDU", "price": 1, "ts": True}, "ts"),
        ({"symbol": "BIDU", "price": 1, "ts": 1, "colour": "red"}, "colour"),
        # pydantic alone would read true as 1 and false as 0.
        ({"symbol": "BIDU", "price": True, "ts": 1}, "price"),
        ({"symbol": "BIDU", "price": 1, "ts": 1, "volume": False}, "volume"),
        ({"symbol": "BIDU", "price": 1, "ts": 1, "seq": True}, "seq"),
        # Beyond a Kafka/Java long, and beyond what the state store can write.
        ({"symbol": "BIDU", "price": 1, "ts": 1, "seq": 2**63}, "seq"),
    ],
)
def test_bad_ticks_are_rejected_naming_the_field(row: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        Tick.model_validate(row)
    assert field in str(caught.value.errors()[0]["loc"])


@pytest.mark.parametrize(
    "ts", ["1e20", '"99999999999999999999"', "Infinity", "NaN", "-1e300", '"' + "9" * 5000 + '"']
)
def test_epoch_milliseconds_out_of_range_are_a_field_error(ts: str) -> None:
    # The platform refuses these with OSError or OverflowError, which pydantic lets through.
    with pytest.raises(ValidationError) as caught:
        Tick.model_validate_json(f'{{"symbol": "BIDU", "price": 1, "ts": {ts}}}')
    assert caught.value.errors()[0]["loc"] == ("ts",)
