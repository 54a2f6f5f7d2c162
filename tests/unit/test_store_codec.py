"""Stored states: what Redis already holds still loads, and is written back the same."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import orjson
import pytest

from alerts.core.index_agent import IndexState
from alerts.core.instrument import InstrumentState
from alerts.core.session_history import History
from tests import stored_states

STORED = Path(__file__).parent / "stored"


def stored(name: str) -> bytes:
    return (STORED / name).read_bytes().rstrip(b"\n")


def store_instrument(state: InstrumentState) -> tuple[bytes, bytes]:
    return orjson.dumps(state.hot_json()), orjson.dumps(state.history.to_json())


def load_instrument(hot: bytes, history: bytes) -> InstrumentState:
    return InstrumentState.from_json(orjson.loads(hot), History.from_json(orjson.loads(history)))


def store_index(state: IndexState) -> bytes:
    return orjson.dumps(state.to_json())


def load_index(blob: bytes) -> IndexState:
    return IndexState.from_json(orjson.loads(blob))


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
