"""Seeding: a daily history file (CSV) read into the bars `tickwatch seed` stores."""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Iterator
from pathlib import Path

from pydantic import ValidationError

from schemas.daily_bars import DailyBar
from schemas.errors import InputError, describe

COLUMNS = ("date", "symbol", "close", "open", "high", "low", "volume")
_REQUIRED = COLUMNS[:3]
_SHAPE = "date,symbol,close[,open,high,low,volume]"


def read_history(path: Path) -> list[DailyBar]:
    """Every bar of the file, sorted by (symbol, date), or InputError naming the first bad line.

    Columns are date,symbol,close[,open,high,low,volume]; a header row may name them in
    another order. Blank lines and lines starting with # are skipped.
    """
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    first_line: dict[tuple[str, dt.date], int] = {}
    bars = []
    for line, row in _csv_rows(path):
        try:
            bar = DailyBar.model_validate(row)
        except ValidationError as error:
            raise InputError(f"{path}:{line}: {describe(error)}") from None
        key = (bar.symbol, bar.date)
        if key in first_line:
            raise InputError(
                f"{path}:{line}: date: {bar.symbol} {bar.date} is already on line {first_line[key]}"
            )
        first_line[key] = line
        bars.append(bar)
    return sorted(bars, key=lambda bar: (bar.symbol, bar.date))


def _csv_rows(path: Path) -> Iterator[tuple[int, dict[str, str]]]:
    columns: tuple[str, ...] | None = None
    header = False
    # utf-8-sig: spreadsheets often start a CSV with a byte-order mark.
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        try:
            for line, raw in enumerate(reader, start=1):
                cells = [cell.strip() for cell in raw]
                if not any(cells) or cells[0].startswith("#"):
                    continue
                if columns is None:
                    header = "date" in (cell.lower() for cell in cells)
                    columns = _header(path, line, cells) if header else COLUMNS
                    if header:
                        continue
                _check_width(path, line, len(cells), columns, header)
                yield line, {name: cell for name, cell in zip(columns, cells, strict=False) if cell}
        except UnicodeDecodeError:
            raise InputError(f"{path}: not UTF-8 text") from None
        except csv.Error as error:
            raise InputError(f"{path}:{reader.line_num}: {error}") from None


def _header(path: Path, line: int, cells: list[str]) -> tuple[str, ...]:
    names = tuple(cell.lower() for cell in cells)
    for name in names:
        if name not in COLUMNS:
            raise InputError(f"{path}:{line}: unknown column {name!r}; expected {_SHAPE}")
        if names.count(name) > 1:
            raise InputError(f"{path}:{line}: column {name!r} is named twice")
    missing = [name for name in _REQUIRED if name not in names]
    if missing:
        raise InputError(f"{path}:{line}: no {missing[0]!r} column; expected {_SHAPE}")
    return names


def _check_width(path: Path, line: int, width: int, columns: tuple[str, ...], header: bool) -> None:
    if header and width != len(columns):
        raise InputError(f"{path}:{line}: the header names {len(columns)} fields, got {width}")
    if not header and not len(_REQUIRED) <= width <= len(COLUMNS):
        raise InputError(f"{path}:{line}: expected {_SHAPE}, got {width} fields")
