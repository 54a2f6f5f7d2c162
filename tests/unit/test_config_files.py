from importlib import resources
from pathlib import Path

import pytest

from schemas.errors import ConfigError
from schemas.instruments import InstrumentsFile, InstrumentSpec, load_instruments
from schemas.rules import (
    DailyMoveRule,
    MultiYearRule,
    RecordRule,
    RulesFile,
    YtdRule,
    load_rules,
)
from schemas.ticks import Tick

BUNDLED = Path(str(resources.files("streams") / "data"))


def write(tmp_path: Path, text: str, name: str = "config.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def config_error(load: object, path: Path) -> str:
    with pytest.raises(ConfigError) as caught:
        load(path)  # type: ignore[operator]
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: ")
    return message


def test_the_bundled_rules_load() -> None:
    rules = load_rules(BUNDLED / "rules.yaml").rules
    assert [(r.name, r.kind) for r in rules] == [
        ("daily_gain", "daily_move"),
        ("daily_loss", "daily_move"),
        ("four_year_high", "multi_year_high"),
        ("four_year_low", "multi_year_low"),
        ("all_time_high", "record_high"),
        ("all_time_low", "record_low"),
        ("ytd_gain", "ytd_change"),
        ("ytd_loss", "ytd_change"),
    ]
    daily_loss = rules[1]
    assert isinstance(daily_loss, DailyMoveRule)
    assert daily_loss.direction == "down"
    assert daily_loss.rungs == (4, 5, 6)
    assert daily_loss.stages == ("intraday", "close")


def test_the_bundled_instruments_load() -> None:
    instruments = load_instruments(BUNDLED / "instruments.yaml")
    assert instruments.default_exchange == "24/7"
    assert [(i.symbol, i.exchange) for i in instruments.instruments] == [
        ("BIDU", "24/7"),
        ("BABA", "24/7"),
        ("TCEHY", "24/7"),
    ]


def test_each_rule_kind_parses_with_its_defaults(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "rules:\n"
        "  - {name: gain, kind: daily_move, rungs: [6, 4, 5.5]}\n"
        "  - {name: high, kind: multi_year_high, years: 4, applies_to: indices}\n"
        "  - {name: low, kind: multi_year_low, years: 50, stages: [close, intraday]}\n"
        "  - {name: ath, kind: record_high, applies_to: [BIDU, 0700.HK]}\n"
        "  - {name: atl, kind: record_low, applies_to: stocks}\n"
        "  - {name: ytd, kind: ytd_change, direction: down, rungs: [20]}\n",
    )
    gain, high, low, ath, atl, ytd = load_rules(path).rules
    assert gain == DailyMoveRule(name="gain", kind="daily_move", rungs=(4, 5.5, 6))
    assert (gain.direction, gain.stages, gain.applies_to) == ("up", ("intraday",), "all")
    assert isinstance(high, MultiYearRule) and high.years == 4
    assert isinstance(low, MultiYearRule) and low.stages == ("intraday", "close")
    assert isinstance(ath, RecordRule) and ath.applies_to == frozenset({"BIDU", "0700.HK"})
    assert isinstance(atl, RecordRule) and atl.kind == "record_low"
    assert isinstance(ytd, YtdRule) and (ytd.direction, ytd.rungs) == ("down", (20,))


def test_an_empty_rules_list_is_allowed(tmp_path: Path) -> None:
    assert load_rules(write(tmp_path, "rules: []\n")) == RulesFile(rules=[])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "rules:\n  - {name: a, kind: daily_jump, rungs: [4]}\n",
            "rules.0: Input tag 'daily_jump' found using 'kind' does not match",
        ),
        (
            "rules:\n  - {name: a, kind: daily_move, rungs: [4]}\n"
            "  - {name: b, kind: daily_move, rungs: [-4]}\n",
            "rules.1.daily_move.rungs.0: Input should be greater than 0 (got -4)",
        ),
        (
            "rules:\n  - {name: a, kind: record_high}\n  - {name: a, kind: record_low}\n",
            "rules: duplicate rule name 'a' (rules.0 and rules.1)",
        ),
        ("rules:\n  - {name: a, kind: daily_move, rungs: [4, 4]}\n", "rungs: rung 4 given twice"),
        ("rules:\n  - {name: a, kind: daily_move, rungs: []}\n", "rungs: needs at least one"),
        ("rules:\n  - {name: a, kind: daily_move}\n", "daily_move.rungs: Field required"),
        (
            "rules:\n  - {name: a, kind: ytd_change, direction: down, rungs: [50, 100]}\n",
            "rules.0.ytd_change: a loss of 100% would take the price to zero",
        ),
        ("rules:\n  - {name: a, kind: multi_year_high, years: 0}\n", "years: Input should be"),
        ("rules:\n  - {name: a, kind: record_high, stages: []}\n", "stages: needs at least one"),
        ("rules:\n  - {name: a, kind: record_high, stages: [open]}\n", "stages.0: Input should"),
        ("rules:\n  - {name: a, kind: record_high, applies_to: etfs}\n", "applies_to.group:"),
        ("rules:\n  - {name: a, kind: record_high, applies_to: []}\n", "applies_to: needs"),
        ("rules:\n  - {name: A-1, kind: record_high}\n", "record_high.name: String should match"),
        ("rules:\n  - {name: a, kind: record_high, colour: red}\n", "colour: Extra inputs"),
        ("rule: []\n", "rules: Field required"),
    ],
)
def test_a_bad_rules_file_is_one_line_naming_file_and_field(
    tmp_path: Path, text: str, expected: str
) -> None:
    assert expected in config_error(load_rules, write(tmp_path, text, "rules.yaml"))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "instruments:\n  - {symbol: A, exchange: XHKG}\n  - {symbol: B, exchange: XNAS}\n"
            "  - {symbol: C, exchange: XNYS}\n  - {symbol: D, exchange: XHKK}\n",
            "instruments.3.exchange: unknown exchange 'XHKK' (did you mean 'XHKG'?)",
        ),
        ("default_exchange: Moon\n", "default_exchange: unknown exchange 'Moon'"),
        (
            "instruments:\n  - {symbol: BIDU, exchange: XNAS}\n"
            "  - {symbol: BIDU, exchange: XHKG}\n",
            "instruments: duplicate symbol 'BIDU' (instruments.0 and instruments.1)",
        ),
        ("instruments:\n  - {symbol: 'A{B}', exchange: XNAS}\n", "instruments.0.symbol: String"),
        ("instruments:\n  - {symbol: BIDU}\n", "instruments.0.exchange: Field required"),
        ("instruments:\n  - {symbol: X, exchange: XNAS, kind: etf}\n", "instruments.0.kind:"),
        ("open_grace_minutes: -1\n", "open_grace_minutes: Input should be greater than or equal"),
    ],
)
def test_a_bad_instruments_file_is_one_line_naming_file_and_field(
    tmp_path: Path, text: str, expected: str
) -> None:
    assert expected in config_error(load_instruments, write(tmp_path, text, "instr.yaml"))


@pytest.mark.parametrize("load", [load_rules, load_instruments])
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "empty; expected a YAML mapping such as"),
        ("# nothing yet\n", "empty; expected a YAML mapping such as"),
        ("- 1\n", "expected a YAML mapping such as"),
        ("rules: [1, 2\nother: 3\n", "line 2, column 6: did not find expected ','"),
        ("open_grace_minutes: 1\nopen_grace_minutes: 2\n", "line 2, column 1: key 'open_grace"),
    ],
)
def test_a_file_that_is_not_a_yaml_mapping(
    tmp_path: Path, load: object, text: str, expected: str
) -> None:
    assert expected in config_error(load, write(tmp_path, text))


@pytest.mark.parametrize("load", [load_rules, load_instruments])
def test_a_missing_file(tmp_path: Path, load: object) -> None:
    assert config_error(load, tmp_path / "nope.yaml").endswith(": no such file")


def test_yes_no_on_off_are_symbols_not_booleans(tmp_path: Path) -> None:
    path = write(tmp_path, "instruments:\n  - {symbol: ON, exchange: XNAS}\n")
    assert load_instruments(path).instruments[0].symbol == "ON"


def rule(applies_to: object) -> RecordRule:
    return RecordRule.model_validate({"name": "r", "kind": "record_high", "applies_to": applies_to})


@pytest.mark.parametrize(
    ("applies_to", "stock", "index", "other"),
    [
        ("all", True, True, True),
        ("stocks", True, False, True),
        ("indices", False, True, False),
        (["BIDU", "HSI"], True, True, False),
    ],
)
def test_applies(applies_to: object, stock: bool, index: bool, other: bool) -> None:
    watched = rule(applies_to)
    assert watched.applies("BIDU", "stock") is stock
    assert watched.applies("HSI", "index") is index
    assert watched.applies("BABA", "stock") is other


def test_get_falls_back_to_the_default_exchange() -> None:
    listed = InstrumentSpec(symbol="HSI", exchange="XHKG", kind="index")
    with_default = InstrumentsFile(default_exchange="24/7", instruments=[listed])
    assert with_default.get("HSI") == listed
    assert with_default.get("NEW") == InstrumentSpec(symbol="NEW", exchange="24/7")

    without = InstrumentsFile(instruments=[listed])
    assert without.get("HSI") == listed
    assert without.get("NEW") is None


def test_an_instrument_symbol_is_constrained_exactly_like_a_tick_symbol() -> None:
    tick = Tick.model_json_schema()["properties"]["symbol"]
    spec = InstrumentSpec.model_json_schema()["properties"]["symbol"]
    assert spec == tick


def test_a_one_kind_rule_needs_no_kind_in_python_but_does_in_a_file() -> None:
    assert DailyMoveRule(name="g", rungs=(4,)).kind == "daily_move"
    assert YtdRule(name="y", rungs=(20,)).kind == "ytd_change"
    schemas = RulesFile.model_json_schema()["$defs"]
    assert all("kind" in schema["required"] for schema in schemas.values())
