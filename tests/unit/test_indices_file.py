"""The indices file: loading, one-line errors naming file and field, compositions over time."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from schemas.errors import ConfigError
from schemas.indices import ConstituentSpec, IndexSpec, IndicesFile, load_indices
from schemas.ticks import Tick

HSTECH = """\
indices:
  - symbol: HSTECH
    name: Hang Seng TECH Index
    exchange: XHKG
    divisor: 1234567.0
    weight_cap: 0.5
    constituents:
      - {symbol: "9988.HK", name: Alibaba, shares: 19.3e9, factor: 0.9}
      - {symbol: "1024.HK", name: Kuaishou, shares: 4.3e9}
      - {symbol: "0700.HK", name: Tencent, shares: 9.1e9, factor: 0.7}
    changes:
      - effective: 2025-06-09
        add: [{symbol: "0020.HK", name: SenseTime, shares: 3.0e10}]
        remove: ["1024.HK"]
      - effective: 2025-09-08
        add: [{symbol: "1024.HK", shares: 4.4e9}]
  - symbol: HSI
    exchange: XHKG
    divisor: 1.0e6
    constituents:
      - {symbol: "0700.HK", shares: 9.1e9, cap_factor: 0.4}
"""

# One valid index; each bad case below replaces a piece of it.
BASE = """\
indices:
  - symbol: IDX
    exchange: XHKG
    divisor: 100
    {extra}
    constituents:
      - {{symbol: A, shares: 1}}
      - {{symbol: B, shares: 2}}
"""


def write(tmp_path: Path, text: str, name: str = "indices.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def config_error(path: Path) -> str:
    with pytest.raises(ConfigError) as caught:
        load_indices(path)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: ")
    return message


def symbols(specs: tuple[ConstituentSpec, ...]) -> list[str]:
    return [spec.symbol for spec in specs]


def test_an_indices_file_loads_with_its_defaults(tmp_path: Path) -> None:
    hstech, hsi = load_indices(write(tmp_path, HSTECH)).indices
    assert (hstech.symbol, hstech.name, hstech.exchange) == (
        "HSTECH",
        "Hang Seng TECH Index",
        "XHKG",
    )
    assert (hstech.divisor, hstech.weight_cap) == (1234567.0, 0.5)
    assert (hstech.publish_interval_s, hstech.min_coverage, hstech.stale_after_s) == (2.0, 0.9, 300)
    # YAML 1.1 reads 19.3e9 (no exponent sign) as a string; the model still takes it as a number.
    assert hstech.constituents[0] == ConstituentSpec(
        symbol="9988.HK", name="Alibaba", shares=19.3e9, factor=0.9
    )
    assert hstech.constituents[1].factor == 1.0
    assert hstech.constituents[1].cap_factor is None
    assert hstech.changes[0].effective == date(2025, 6, 9)
    assert (hsi.weight_cap, hsi.constituents[0].cap_factor, hsi.changes) == (None, 0.4, ())


def test_an_empty_indices_list_is_allowed(tmp_path: Path) -> None:
    empty = load_indices(write(tmp_path, "indices: []\n"))
    assert empty == IndicesFile(indices=[]) == IndicesFile()
    assert empty.containing("0700.HK") == ()


def test_constituents_on_applies_every_change_effective_by_that_day(tmp_path: Path) -> None:
    hstech = load_indices(write(tmp_path, HSTECH)).indices[0]
    first = ["9988.HK", "1024.HK", "0700.HK"]
    assert symbols(hstech.constituents_on(date(2000, 1, 1))) == first
    assert symbols(hstech.constituents_on(date(2025, 6, 8))) == first
    second = ["9988.HK", "0700.HK", "0020.HK"]
    assert symbols(hstech.constituents_on(date(2025, 6, 9))) == second
    assert symbols(hstech.constituents_on(date(2025, 9, 7))) == second
    third = [*second, "1024.HK"]
    assert symbols(hstech.constituents_on(date(2025, 9, 8))) == third
    assert hstech.constituents_on(date(2030, 1, 1))[-1].shares == 4.4e9


def test_a_change_may_remove_and_re_add_a_symbol_to_revise_its_spec(tmp_path: Path) -> None:
    text = BASE.format(
        extra="changes: [{effective: 2025-03-10, remove: [B], add: [{symbol: B, shares: 3}]}]"
    )
    spec = load_indices(write(tmp_path, text)).indices[0]
    assert [(c.symbol, c.shares) for c in spec.constituents_on(date(2025, 3, 10))] == [
        ("A", 1),
        ("B", 3),
    ]


def test_containing_lists_every_index_that_ever_includes_a_symbol(tmp_path: Path) -> None:
    indices = load_indices(write(tmp_path, HSTECH))
    assert indices.containing("0700.HK") == ("HSTECH", "HSI")
    assert indices.containing("1024.HK") == ("HSTECH",)  # removed, then added back
    assert indices.containing("0020.HK") == ("HSTECH",)  # added by a change
    assert indices.containing("HSTECH") == ()
    assert indices.containing("BIDU") == ()


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ("exchange2: XHKG", "indices.0.exchange2: Extra inputs are not permitted"),
        ("divisor2: 0", "indices.0.divisor2: Extra inputs"),
        ("weight_cap: 0", "indices.0.weight_cap: Input should be greater than 0 (got 0)"),
        ("weight_cap: 1.5", "indices.0.weight_cap: Input should be less than or equal to 1"),
        (
            "weight_cap: 0.4",
            "indices.0.constituents: weight_cap 0.4 needs at least 3 constituents, there are 2",
        ),
        ("publish_interval_s: 0", "indices.0.publish_interval_s: Input should be greater than 0"),
        ("min_coverage: 1.1", "indices.0.min_coverage: Input should be less than or equal to 1"),
        ("stale_after_s: -5", "indices.0.stale_after_s: Input should be greater than 0"),
        ("stale_after_s: .inf", "indices.0.stale_after_s: Input should be a finite number"),
        ("name: [x]", "indices.0.name: Input should be a valid string"),
        (
            "changes: [{effective: 2025-01-02, remove: [C]}]",
            "indices.0.changes: changes.0 (2025-01-02): removes 'C', which is not a constituent",
        ),
        (
            "changes: [{effective: 2025-01-02, add: [{symbol: A, shares: 1}]}]",
            "indices.0.changes: changes.0 (2025-01-02): adds 'A', which is already a constituent",
        ),
        (
            "changes: [{effective: 2025-01-02, add: [{symbol: IDX, shares: 1}]}]",
            "indices.0.changes: changes.0 (2025-01-02): adds 'IDX', the index itself",
        ),
        (
            "changes: [{effective: 2025-01-02, remove: [A, B]}]",
            "indices.0.changes: changes.0 (2025-01-02): leaves no constituents",
        ),
        (
            "changes: [{effective: 2025-01-02, remove: [A]}, {effective: 2025-01-02, remove: [B]}]",
            "indices.0.changes: changes.1 (2025-01-02): effective dates must strictly increase",
        ),
        (
            "changes: [{effective: 2025-01-02, remove: [A]}, {effective: 2025-01-03, remove: [A]}]",
            "indices.0.changes: changes.1 (2025-01-03): removes 'A', which is not a constituent",
        ),
        (
            "weight_cap: 0.5\n    changes: [{effective: 2025-01-02, remove: [A]}]",
            "changes.0 (2025-01-02): weight_cap 0.5 needs at least 2 constituents, there are 1",
        ),
        (
            "changes: [{effective: 2025-01-02}]",
            "indices.0.changes.0: a change must add or remove at least one constituent",
        ),
        (
            "changes: [{effective: 2025-01-02, remove: [A, A]}]",
            "indices.0.changes.0.remove: duplicate symbol 'A' (remove.0 and remove.1)",
        ),
        (
            "changes: [{effective: 2025-01-02,"
            " add: [{symbol: C, shares: 1}, {symbol: C, shares: 2}]}]",
            "indices.0.changes.0.add: duplicate symbol 'C' (add.0 and add.1)",
        ),
        (
            "changes: [{effective: '2025-01-02T10:00:00', remove: [A]}]",
            "indices.0.changes.0.effective: Datetimes provided to dates should have zero time",
        ),
        ("changes: [{effective: soon, remove: [A]}]", "indices.0.changes.0.effective: Input"),
    ],
)
def test_a_bad_index_field_is_one_line_naming_file_and_field(
    tmp_path: Path, extra: str, expected: str
) -> None:
    assert expected in config_error(write(tmp_path, BASE.format(extra=extra)))


@pytest.mark.parametrize(
    ("constituents", "expected"),
    [
        ("[]", "indices.0.constituents: needs at least one constituent"),
        (
            "[{symbol: A, shares: 1}, {symbol: B, shares: 1}, {symbol: A, shares: 2}]",
            "indices.0.constituents: duplicate symbol 'A' (constituents.0 and constituents.2)",
        ),
        (
            "[{symbol: A, shares: 1}, {symbol: IDX, shares: 1}]",
            "indices.0.constituents: 'IDX' is the index itself (constituents.1)",
        ),
        (
            "[{symbol: A, shares: 0}]",
            "indices.0.constituents.0.shares: Input should be greater than 0",
        ),
        (
            "[{symbol: A, shares: .nan}]",
            "indices.0.constituents.0.shares: Input should be a finite",
        ),
        ("[{symbol: A}]", "indices.0.constituents.0.shares: Field required"),
        (
            "[{symbol: A, shares: 1, factor: 0}]",
            "indices.0.constituents.0.factor: Input should be greater than 0",
        ),
        (
            "[{symbol: A, shares: 1, factor: 1.01}]",
            "indices.0.constituents.0.factor: Input should be less",
        ),
        (
            "[{symbol: A, shares: 1, cap_factor: 2}]",
            "indices.0.constituents.0.cap_factor: Input should be",
        ),
        (
            "[{symbol: 'A B', shares: 1}]",
            "indices.0.constituents.0.symbol: String should match pattern",
        ),
        ("[{symbol: A, shares: 1, weight: 3}]", "indices.0.constituents.0.weight: Extra inputs"),
        ("A", "indices.0.constituents: Input should be a valid tuple"),
    ],
)
def test_a_bad_constituent_is_one_line_naming_file_and_field(
    tmp_path: Path, constituents: str, expected: str
) -> None:
    text = (
        f"indices:\n  - {{symbol: IDX, exchange: XHKG, divisor: 1, constituents: {constituents}}}\n"
    )
    assert expected in config_error(write(tmp_path, text))


@pytest.mark.parametrize(
    ("index", "expected"),
    [
        (
            "{exchange: XHKG, divisor: 1, constituents: [{symbol: A, shares: 1}]}",
            "indices.0.symbol: Field required",
        ),
        (
            "{symbol: I, divisor: 1, constituents: [{symbol: A, shares: 1}]}",
            "indices.0.exchange: Field required",
        ),
        (
            "{symbol: I, exchange: XHKK, divisor: 1, constituents: [{symbol: A, shares: 1}]}",
            "indices.0.exchange: unknown exchange 'XHKK' (did you mean 'XHKG'?)",
        ),
        (
            "{symbol: I, exchange: XHKG, constituents: [{symbol: A, shares: 1}]}",
            "indices.0.divisor: Field required",
        ),
        (
            "{symbol: I, exchange: XHKG, divisor: 0, constituents: [{symbol: A, shares: 1}]}",
            "indices.0.divisor: Input should be greater than 0 (got 0)",
        ),
        (
            "{symbol: I, exchange: XHKG, divisor: .inf, constituents: [{symbol: A, shares: 1}]}",
            "indices.0.divisor: Input should be a finite number",
        ),
        ("{symbol: I, exchange: XHKG, divisor: 1}", "indices.0.constituents: Field required"),
        (
            "{symbol: I, exchange: XHKG, divisor: 1, weight_cap: 0.5, constituents: "
            "[{symbol: A, shares: 1, cap_factor: 0.5}, {symbol: B, shares: 1}]}",
            "indices.0.constituents: with weight_cap, give cap_factor for every constituent "
            "or for none (1 of 2 have one)",
        ),
    ],
)
def test_a_bad_index_is_one_line_naming_file_and_field(
    tmp_path: Path, index: str, expected: str
) -> None:
    assert expected in config_error(write(tmp_path, f"indices:\n  - {index}\n"))


def test_two_indices_with_one_symbol_are_an_error(tmp_path: Path) -> None:
    one = "{symbol: I, exchange: XHKG, divisor: 1, constituents: [{symbol: A, shares: 1}]}"
    text = f"indices:\n  - {one}\n  - {one}\n"
    assert "indices: duplicate index symbol 'I' (indices.0 and indices.1)" in config_error(
        write(tmp_path, text)
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "empty; expected a YAML mapping such as `indices: []`"),
        ("- 1\n", "expected a YAML mapping such as `indices: []`, got a list"),
        ("indices: []\nindices: []\n", "line 2, column 1: key 'indices' given twice"),
        ("indexes: []\n", "indexes: Extra inputs are not permitted"),
        ("indices: {}\n", "indices: Input should be a valid list"),
    ],
)
def test_a_file_that_is_not_an_indices_mapping(tmp_path: Path, text: str, expected: str) -> None:
    assert expected in config_error(write(tmp_path, text))


def test_a_missing_file(tmp_path: Path) -> None:
    assert config_error(tmp_path / "nope.yaml").endswith(": no such file")


def test_the_cap_may_be_met_exactly_despite_rounding() -> None:
    three = tuple(ConstituentSpec(symbol=s, shares=1) for s in "ABC")
    spec = IndexSpec(symbol="I", exchange="XHKG", divisor=1, weight_cap=1 / 3, constituents=three)
    assert spec.weight_cap == 1 / 3


def test_an_index_and_constituent_symbol_are_constrained_exactly_like_a_tick_symbol() -> None:
    tick = Tick.model_json_schema()["properties"]["symbol"]
    assert IndexSpec.model_json_schema()["properties"]["symbol"]["pattern"] == tick["pattern"]
    constituent = ConstituentSpec.model_json_schema()["properties"]["symbol"]
    assert constituent == tick
