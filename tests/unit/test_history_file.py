import datetime as dt
from pathlib import Path

import pytest

from schemas.errors import InputError
from streams.history_file import read_history


def write(tmp_path: Path, text: str, name: str = "history.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_bars_without_a_header_are_sorted_by_symbol_then_date(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "# closes from the vendor\n"
        "2025-09-18,BIDU,101.5,100,102,99.5,3000\n"
        "\n"
        "2025-09-17,BIDU,100\n"
        "2025-09-17,BABA,120,,,,0\n",
    )
    bars = read_history(path)
    assert [(b.symbol, b.date, b.close) for b in bars] == [
        ("BABA", dt.date(2025, 9, 17), 120.0),
        ("BIDU", dt.date(2025, 9, 17), 100.0),
        ("BIDU", dt.date(2025, 9, 18), 101.5),
    ]
    assert (bars[0].open, bars[0].volume) == (None, 0.0)
    assert (bars[2].open, bars[2].high, bars[2].low, bars[2].volume) == (100, 102, 99.5, 3000)


def test_a_header_may_name_the_columns_in_another_order(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "\ufeff# a spreadsheet export\nSymbol,Date,Open,High,Low,Close,Volume\n"
        "BIDU,2025-09-18,100,102,99.5,101.5,3000\n",
    )
    (bar,) = read_history(path)
    assert (bar.symbol, bar.date, bar.open, bar.close) == ("BIDU", dt.date(2025, 9, 18), 100, 101.5)


def test_an_empty_file_has_no_bars(tmp_path: Path) -> None:
    assert read_history(write(tmp_path, "date,symbol,close\n")) == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-09-18,BIDU,0\n", "history.csv:1: close: Input should be greater than 0 (got '0')"),
        ("2025-09-18,BIDU,nan\n", "history.csv:1: close: Input should be a finite number"),
        ("2025-09-18,BIDU,1,inf\n", "history.csv:1: open: Input should be a finite number"),
        ("2025-09-18,BIDU,1,,,,-5\n", "history.csv:1: volume: Input should be greater than or"),
        ("# c\n18/09/2025,BIDU,1\n", "history.csv:2: date: Input should be a valid date"),
        ("2025-09-18,A{B},1\n", "history.csv:1: symbol: String should match pattern"),
        ("2025-09-18,,1\n", "history.csv:1: symbol: Field required"),
        ("2025-09-18,BIDU\n", "history.csv:1: expected date,symbol,close[,open,high,low,volume]"),
        ("2025-09-18,BIDU,1,1,1,1,1,1\n", "history.csv:1: expected date,symbol,close["),
        ("date,symbol,close,adj close\n", "history.csv:1: unknown column 'adj close'"),
        ("date,symbol,open\n", "history.csv:1: no 'close' column"),
        ("date,symbol,close,close\n", "history.csv:1: column 'close' is named twice"),
        ("date,symbol,close\n2025-09-18,BIDU\n", "history.csv:2: the header names 3 fields, got 2"),
        (
            "2025-09-17,BIDU,1\n2025-09-18,BIDU,2\n\n2025-09-17,BIDU,3\n",
            "history.csv:4: date: BIDU 2025-09-17 is already on line 1",
        ),
    ],
)
def test_the_first_bad_line_is_named(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(InputError) as caught:
        read_history(write(tmp_path, text))
    assert expected in str(caught.value)
    assert str(caught.value).startswith(str(tmp_path))
    assert "\n" not in str(caught.value)


def test_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"nope\.csv: no such file"):
        read_history(tmp_path / "nope.csv")


def test_a_file_that_is_not_text(tmp_path: Path) -> None:
    path = tmp_path / "history.csv"
    path.write_bytes(b"date,symbol,close\n2025-09-18,BIDU,1\n\xff\xfe\x00\x01\n")
    with pytest.raises(InputError, match=r"history\.csv: not UTF-8 text"):
        read_history(path)
