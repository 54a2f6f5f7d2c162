"""A worker's counts: each batch outcome counted once, and several workers summed."""

from __future__ import annotations

from datetime import UTC, date, datetime

from alerts.core.decode import Incoming
from alerts.engine.ticks import BatchResult
from schemas.alerts import Alert, alert_id
from streams.gaps import Gap
from streams.metrics import WorkerCounts, summed


def alert(kind: str) -> Alert:
    return Alert(
        alert_id=alert_id("r", "BIDU", date(2025, 9, 18), 4.0, "intraday"),
        rule="r", kind=kind, stage="intraday", instrument="BIDU", session=date(2025, 9, 18),
        ts=datetime(2025, 9, 18, 2, tzinfo=UTC), price=1.0, threshold=4.0, change=4.0,
        reference_price=1.0, message="m",
    )  # fmt: skip


def test_a_batch_is_counted_by_outcome_and_partition() -> None:
    counts = WorkerCounts()
    batch = [Incoming(0, 7, b""), Incoming(2, 3, b""), Incoming(0, 8, b"")]
    result = BatchResult(applied=5, duplicates=1, held=2, ignored={"late_tick": 1},
                         rejected_by={"invalid_tick": 2}, alerts=[alert("daily_move")])  # fmt: skip
    counts.ingested("ticks", batch, result)
    counts.lost([Gap("ticks", 1, 10, 25)])
    counts.redis_roundtrips = 4
    counts.redone("stale_state")
    flat = counts.fields()
    assert {k: v for k, v in flat.items() if not k.endswith("_ms")} == {
        "messages": 3, "ticks": 11, "applied": 5, "duplicates": 1, "held": 2, "alerts": 1,
        "index_ticks": 0, "redis_roundtrips": 4, "ignored:late_tick": 1,
        "dead_letters:invalid_tick": 2, "alerts:daily_move": 1, "lost:ticks": 15,
        "consumed:ticks": 3, "retries:stale_state": 1,
        "next:ticks:0": 9, "next:ticks:2": 4,
    }  # fmt: skip


def test_positions_move_in_the_same_step_as_the_outcome() -> None:
    # Counts are written while a batch waits on Redis: a position without its batch's
    # outcome would let a reader believe the counts cover that batch (counted_to).
    counts = WorkerCounts()
    assert counts.fields().keys().isdisjoint({"next:constituents:1", "next:ticks:0"})
    counts.indexed("constituents", [Incoming(1, 4, b""), Incoming(1, 5, b"")], 2)
    counts.dead_lettered("ticks", [Incoming(0, 9, b"")], "internal_error")
    flat = counts.fields()
    assert (flat["next:constituents:1"], flat["index_ticks"]) == (6, 2)
    assert (flat["next:ticks:0"], flat["dead_letters:internal_error"]) == (10, 1)


def test_workers_are_summed_and_their_positions_taken_at_the_furthest() -> None:
    one = {"applied": 3, "next:ticks:0": 9, "first_ms": 5}
    two = {"applied": 4, "next:ticks:0": 4, "next:ticks:1": 2}
    assert summed([one, two]) == {"applied": 7, "next:ticks:0": 9, "next:ticks:1": 2}
