from pathlib import Path

import pytest

from schemas.errors import InputError
from streams.replay import read_tick_file, read_ticks


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_csv_with_header_optional_columns_and_epoch_ms(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "t.csv",
        "ts,symbol,price,volume,seq\n"
        "2025-09-18T10:00:00+08:00,BIDU,101.5,300,1\n"
        "1758160860000,BABA,120\n",
    )
    ticks = read_ticks(path)
    assert [(t.symbol, t.price, t.volume, t.seq) for t in ticks] == [
        ("BIDU", 101.5, 300.0, 1),
        ("BABA", 120.0, None, None),
    ]
    assert ticks[1].ts_ms == 1758160860000


def test_jsonl(tmp_path: Path) -> None:
    path = write(tmp_path, "t.jsonl", '{"symbol":"BIDU","price":1.5,"ts":1}\n\n')
    assert [t.price for t in read_ticks(path)] == [1.5]


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("t.csv", "ts,symbol,price\n2025-09-18T10:00:00,BIDU,1\n", "t.csv:2: ts"),
        ("t.csv", "ts,symbol,price\n1,BIDU,abc\n", "t.csv:2: price"),
        ("t.csv", "1,BIDU\n", "t.csv:1: expected ts,symbol,price"),
        ("t.jsonl", '{"symbol":"B","price":1,"ts":1}\n{oops\n', "t.jsonl:2: not JSON"),
        ("t.jsonl", "[1]\n", "t.jsonl:1: expected a JSON object"),
    ],
)
def test_a_bad_line_is_named_with_file_and_line(
    tmp_path: Path, name: str, text: str, expected: str
) -> None:
    with pytest.raises(InputError) as caught:
        read_ticks(write(tmp_path, name, text))
    assert expected in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        read_ticks(tmp_path / "nope.csv")


def test_a_messy_capture_is_read_with_its_bad_lines_listed(tmp_path: Path) -> None:
    path = tmp_path / "capture.csv"
    path.write_bytes(
        b"ts,symbol,price\n1,BIDU,10\n2,BIDU,oops\n\xff\xfe garbage\n3,BIDU\n4,BIDU,11\n"
    )
    found = read_tick_file(path, skip_bad=True)
    assert [t.price for t in found.ticks] == [10.0, 11.0]
    assert [(b.line, b.reason.split(":")[0].split(" ")[0]) for b in found.bad] == [
        (3, "price"),
        (4, "not"),
        (5, "expected"),
    ]
    with pytest.raises(InputError, match=r"capture\.csv:3: price"):
        read_tick_file(path)
