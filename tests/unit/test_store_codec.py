"""Stored states: what Redis already holds still loads, and is written back the same."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import orjson
import pytest

from alerts.core.index_agent import IndexState
from alerts.core.instrument import InstrumentState
from alerts.core.session_history import History
from alerts.store.codec import decode, encode, from_data
from tests import stored_states

STORED = Path(__file__).parent / "stored"


def stored(name: str) -> bytes:
    return (STORED / name).read_bytes().rstrip(b"\n")


def store_instrument(state: InstrumentState) -> tuple[bytes, bytes]:
    return encode(state, omit=("history",)), encode(state.history)


def load_instrument(hot: bytes, history: bytes) -> InstrumentState:
    return decode(InstrumentState, hot, history=decode(History, history))


def store_index(state: IndexState) -> bytes:
    return encode(state)


def load_index(blob: bytes) -> IndexState:
    return decode(IndexState, blob)


INSTRUMENTS: dict[str, Callable[[], InstrumentState]] = {
    "stock": stored_states.stock,
    "index_instrument": stored_states.index_instrument,
    "new_instrument": lambda: InstrumentState("NEW.HK"),
    "truncated": stored_states.truncated,
}
INDICES: dict[str, Callable[[], IndexState]] = {
    "index_state": stored_states.index_state,
    "seeded_index": stored_states.seeded_index,
}


@pytest.mark.parametrize("name", INSTRUMENTS)
def test_a_stored_instrument_loads_and_is_stored_byte_for_byte(name: str) -> None:
    state = INSTRUMENTS[name]()
    hot, history = stored(f"{name}.s.json"), stored(f"{name}.h.json")
    assert load_instrument(hot, history) == state
    assert store_instrument(state) == (hot, history)


@pytest.mark.parametrize("name", INDICES)
def test_a_stored_index_loads_and_is_stored_byte_for_byte(name: str) -> None:
    state = INDICES[name]()
    blob = stored(f"{name}.s.json")
    assert load_index(blob) == state
    assert store_index(state) == blob


def test_an_instrument_stored_without_later_fields_loads_with_their_defaults() -> None:
    empty = store_instrument(InstrumentState("NEW.HK"))[1]
    loaded = load_instrument(stored("sparse_instrument.s.json"), empty)
    assert loaded == load_instrument(stored("sparse_instrument.expected.s.json"), empty)
    assert loaded.kind == "stock" and loaded.fired == frozenset() and loaded.offsets == {}


def test_an_index_stored_without_later_fields_loads_with_their_defaults() -> None:
    loaded = load_index(stored("sparse_index.s.json"))
    assert loaded == load_index(stored("sparse_index.expected.s.json"))
    assert loaded.level is None and loaded.pending == () and loaded.watermarks == {}


# -- the codec itself ---------------------------------------------------------------


def test_a_set_is_stored_sorted_so_equal_states_are_equal_bytes() -> None:
    rungs = [f"gain:{n}" for n in range(20)]
    one = InstrumentState("A", fired=frozenset(rungs))
    other = InstrumentState("A", fired=frozenset(reversed(rungs)))
    assert encode(one) == encode(other)
    assert orjson.loads(encode(one))["fired"] == sorted(rungs)


def test_partition_keys_are_stored_as_text_and_read_back_as_ints() -> None:
    state = InstrumentState("A", offsets={0: 5, 11: 7})
    assert orjson.loads(encode(state, omit=("history",)))["offsets"] == {"0": 5, "11": 7}
    assert decode(InstrumentState, encode(state)).offsets == {0: 5, 11: 7}


def test_whole_numbers_are_read_as_floats_where_a_float_is_stored() -> None:
    loaded = from_data(IndexState, {"symbol": "I", "prices": {"A": 10, "B": 2.5}})
    assert loaded.prices == {"A": 10.0, "B": 2.5}
    assert all(type(price) is float for price in loaded.prices.values())


def test_a_field_the_stored_form_does_not_know_is_ignored() -> None:
    assert from_data(IndexState, {"symbol": "I", "a_field_from_the_future": 1}) == IndexState("I")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({}, "IndexState symbol is missing"),
        ([], "IndexState must be stored as a JSON object"),
        ({"symbol": 7}, "IndexState symbol must be a string, got 7"),
        ({"symbol": "I", "closed": 0}, "IndexState closed must be true or false, got 0"),
        ({"symbol": "I", "session": "18/09/2025"}, "IndexState session must be an ISO date"),
        ({"symbol": "I", "prices": {"A": "1"}}, "IndexState prices of A must be a number"),
        ({"symbol": "I", "watermarks": {"p1": 5}}, "IndexState watermarks must be a mapping with"),
        ({"symbol": "I", "reported": "A"}, "IndexState reported must be a list, got 'A'"),
        ({"symbol": "I", "pending": [[1, 0, 0, "A", 1.0]]}, r"IndexState pending\[0\] must be"),
        (
            {"symbol": "I", "pending": [[1, 0, 0, "A", "x", 2]]},
            r"IndexState pending\[0\]\[4\] must be a number, got 'x'",
        ),
        ({"symbol": "I", "level": {"weights": {}}}, "IndexLevel prices is missing"),
    ],
)
def test_a_bad_stored_value_is_named_with_its_type_and_field(data: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        from_data(IndexState, data)


def test_a_blob_that_is_not_json_is_refused() -> None:
    with pytest.raises(ValueError, match="IndexState is not stored as JSON"):
        decode(IndexState, b'{"symbol": ')


def test_fields_given_apart_must_be_fields() -> None:
    with pytest.raises(TypeError, match="no field"):
        decode(InstrumentState, b'{"symbol": "A"}', histroy=History())


def test_a_loaded_record_stack_is_checked_as_its_constructor_checks() -> None:
    bad = orjson.loads(encode(stored_states.stock().history))
    bad["gains"]["count"] = 0
    with pytest.raises(ValueError, match="RecordStack"):
        from_data(History, bad)


def test_an_index_state_stores_the_partitions_behind_only_when_there_are_some() -> None:
    state = stored_states.index_state()
    assert b"behind" not in store_index(state)
    behind = replace(state, behind=frozenset({2, 0}))
    assert b'"behind":[0,2]' in store_index(behind)
    assert load_index(store_index(behind)) == behind
