"""The stores' one commit script in a real Redis: all or nothing, versions, epochs, outboxes."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest
from redis.asyncio import Redis

from alerts.core.index_agent import IndexState
from alerts.core.instrument import InstrumentState
from alerts.store.errors import StaleStateError, StateLostError
from alerts.store.indices import IndexStore
from alerts.store.instruments import Change, Delivered, StateStore, Versioned
from alerts.store.versioned import Commit, VersionedScript
from streams.dev.children import stop_child
from streams.dev.redis_server import free_port, start_redis_server
from tests import stored_states

STORED = Path(__file__).parents[1] / "unit" / "stored"
TICKS = "ticks"


@pytest.fixture
def own_redis(redis_folder: str) -> Iterator[int]:
    """The port of a Redis of this test's own, whose scripts it may flush."""
    port = free_port()
    server = start_redis_server(port, redis_folder)
    yield port
    stop_child(server)


class Trips:
    """A StoreWatch that counts the round trips, and the commits among them."""

    def __init__(self) -> None:
        self.trips = self.commits = 0

    def round_trip(self, seconds: float, commit: bool) -> None:
        assert 0 <= seconds < 10
        self.trips += 1
        self.commits += commit

    def redone(self, reason: str) -> None:
        raise AssertionError("a store never redoes a batch itself")


def trips(store: StateStore | IndexStore) -> int:
    assert isinstance(store.watch, Trips)
    return store.watch.trips


@pytest.fixture
def store(redis: Redis, key_prefix: str) -> StateStore:
    return StateStore(redis, key_prefix, Trips())


def stock(symbol: str = "9888.HK", last: float = 111.8) -> InstrumentState:
    return replace(stored_states.stock(years=1), symbol=symbol, last=last)


async def test_a_commit_writes_every_change_and_moves_each_version_on(store: StateStore) -> None:
    a, b = stock("A"), stock("B")
    await store.commit([Change("A", 0, a, [b"x"]), Change("B", 0, b, [])], [])
    loaded = await store.load(["A", "B"], with_outboxes=True)
    assert loaded.states["A"].version == loaded.states["B"].version == 1
    assert (loaded.states["A"].state, loaded.states["B"].state) == (a, b)
    assert loaded.outboxes == {"A": [b"x"]}
    assert trips(store) == 2  # one commit, one load
    assert isinstance(store.watch, Trips) and store.watch.commits == 1


async def test_a_stale_version_refuses_the_whole_commit(store: StateStore) -> None:
    await store.commit([Change("A", 0, stock("A"), [])], [])
    moved = stock("A", last=120.0)
    with pytest.raises(StaleStateError) as refused:
        await store.commit(
            [Change("B", 0, stock("B"), [b"b"]), Change("A", 0, moved, [b"a"])],
            [],
        )
    assert refused.value.symbol == "A"
    loaded = await store.load(["A", "B"], with_outboxes=True)
    assert loaded.states["A"].state.last == 111.8 and loaded.states["A"].version == 1
    assert loaded.states["B"].version == 0  # not written: all or nothing
    assert loaded.outboxes == {}


async def test_a_lost_epoch_refuses_the_commit(store: StateStore, redis: Redis) -> None:
    epoch = await store.start_epoch(TICKS, 1)
    kept = await store.start_epoch(TICKS, 0)
    await redis.delete(store.epoch_key(TICKS, 1))  # as a flush or an empty replica would
    with pytest.raises(StateLostError) as refused:
        await store.commit(
            [Change("A", 0, stock("A"), [b"a"])], [], epochs={(TICKS, 0): kept, (TICKS, 1): epoch}
        )
    assert (refused.value.topic, refused.value.partition) == (TICKS, 1)
    loaded = await store.load(["A"], with_outboxes=True)
    assert loaded.states["A"].version == 0 and loaded.outboxes == {}

    await store.commit([Change("A", 0, stock("A"), [])], [], epochs={(TICKS, 0): kept})
    assert (await store.load(["A"])).states["A"].version == 1


async def test_outbox_entries_are_pushed_with_the_state_and_removed_once_delivered(
    store: StateStore,
) -> None:
    await store.commit([Change("A", 0, stock("A"), [b"1", b"2"])], [])
    await store.commit([Change("A", 1, stock("A"), [b"3"])], [Delivered("A", b"1")])
    assert (await store.load(["A"], with_outboxes=True)).outboxes == {"A": [b"2", b"3"]}
    await store.commit([], [Delivered("A", b"2"), Delivered("A", b"3")])
    loaded = await store.load(["A"], with_outboxes=True)
    assert loaded.outboxes == {} and loaded.states["A"].version == 2


async def test_the_history_field_is_written_only_when_it_changed(store: StateStore) -> None:
    state = stock("A")
    await store.commit([Change("A", 0, state, [])], [])
    fresh = InstrumentState("A")  # an empty history, not to be written
    await store.commit([Change("A", 1, replace(fresh, last=1.0), [], history_changed=False)], [])
    loaded = (await store.load(["A"])).states["A"]
    assert loaded.version == 2 and loaded.state.last == 1.0
    assert loaded.state.history == state.history


async def test_new_members_are_registered_in_the_same_round_trip(store: StateStore) -> None:
    await store.commit([Change("A", 0, stock("A"), [])], [], new_members={(TICKS, 2): {"A"}})
    assert await store.members(TICKS, 2) == {"A"}
    assert trips(store) == 2  # the commit, then the members read


async def test_states_written_by_the_earlier_code_load(
    store: StateStore, redis: Redis, key_prefix: str
) -> None:
    hot, history = ((STORED / f"stock.{f}.json").read_bytes().strip() for f in "sh")
    await redis.hset(store.state_key("9888.HK"), mapping={"v": 7, "s": hot, "h": history})
    index = IndexStore(redis, key_prefix)
    blob = (STORED / "index_state.s.json").read_bytes().strip()
    await redis.hset(index.key("HSTECH"), mapping={"v": 3, "s": blob})

    loaded = (await store.load(["9888.HK"])).states["9888.HK"]
    assert (loaded.version, loaded.state) == (7, stored_states.stock())
    assert (await index.load(["HSTECH"]))["HSTECH"] == (3, stored_states.index_state())


async def test_the_index_store_commits_through_the_same_versions(
    redis: Redis, key_prefix: str
) -> None:
    index = IndexStore(redis, key_prefix, Trips())
    state = stored_states.index_state()
    other = IndexState("OTHER", prices={"A": 1.0})
    await index.commit([(0, state), (0, other)])
    assert await index.load(["HSTECH", "OTHER", "NONE"]) == {
        "HSTECH": (1, state),
        "OTHER": (1, other),
        "NONE": (0, None),
    }
    later = replace(state, seq=state.seq + 1, session=date(2025, 9, 19))
    with pytest.raises(StaleStateError) as refused:
        await index.commit([(1, later), (0, other)])
    assert refused.value.symbol == "OTHER"
    assert (await index.load(["HSTECH"]))["HSTECH"] == (1, state)
    assert trips(index) == 4


async def test_the_script_is_loaded_again_after_a_script_flush(own_redis: int) -> None:
    redis = Redis(port=own_redis)
    try:
        store, index = StateStore(redis, "tw", Trips()), IndexStore(redis, "tw")
        await store.commit([Change("A", 0, stock("A"), [])], [])
        await index.commit([(0, IndexState("I"))])
        await redis.script_flush()  # as a restart of Redis would
        before = trips(store)
        await store.commit([Change("A", 1, stock("A", last=5.0), [])], [])
        assert trips(store) == before + 2  # refused, then run again
        await index.commit([(1, IndexState("I", seq=4))])
        assert (await store.load(["A"])).states["A"] == Versioned(2, stock("A", last=5.0))
        assert (await index.load(["I"]))["I"] == (2, IndexState("I", seq=4))
    finally:
        await redis.aclose()


async def test_one_script_writes_several_fields_and_pushes_only_where_asked(
    redis: Redis, key_prefix: str
) -> None:
    script = VersionedScript(redis)
    commit = Commit()
    commit.write(f"{key_prefix}:h1", 0, [("s", b"one"), ("h", b"two")], f"{key_prefix}:l1", [b"x"])
    commit.write(f"{key_prefix}:h2", 0, [("s", b"three")])
    assert await script.run(commit) is None
    assert await redis.hgetall(f"{key_prefix}:h1") == {b"v": b"1", b"s": b"one", b"h": b"two"}
    assert await redis.hgetall(f"{key_prefix}:h2") == {b"v": b"1", b"s": b"three"}
    assert await redis.lrange(f"{key_prefix}:l1", 0, -1) == [b"x"]

    stale = Commit([(f"{key_prefix}:no-epoch", "e")])
    stale.write(f"{key_prefix}:h2", 1, [("s", b"four")])
    refused = await script.run(stale)
    assert refused is not None and (refused.epoch_lost, refused.position) == (True, 0)
