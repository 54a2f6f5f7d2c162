"""The worker's metrics as Prometheus reads them: counts, gauges and timings, exactly."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from alerts.core.decode import REJECT_REASONS, Incoming
from alerts.core.index_agent import IndexState, snapshot
from alerts.core.sessions import get_calendar
from alerts.engine.ticks import BatchResult
from schemas.indices import IndexSpec
from streams.gaps import Gap
from streams.metrics import WorkerCounts
from streams.metrics_collector import WorkerCollector, is_open
from streams.metrics_timings import Untimed, WorkerTimings
from tests.unit.test_index_agent import SPEC, START, feed, ms, price
from tests.unit.test_metrics import alert

HK = get_calendar("XHKG")
# Thursday 2025-09-18, 10:00:05 in Hong Kong: HKEX is open.
NOW_MS = ms("10:00:05")
NOW = NOW_MS / 1000


class Engines:
    """What the collector reads of the engines: plain values, as they hold them."""

    def __init__(self, pending: int, states: list[tuple[IndexSpec, IndexState]]) -> None:
        self.outbox_pending = pending
        self._states = states

    def states(self) -> list[tuple[IndexSpec, IndexState]]:
        return self._states


def exposed(registry: CollectorRegistry) -> dict[str, float]:
    """Every sample, as `name{label="value",...}`: value."""
    found = {}
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        for s in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
            found[f"{s.name}{{{labels}}}" if labels else s.name] = s.value
    return found


def worker(counts: WorkerCounts, engines: Engines | None = None) -> CollectorRegistry:
    registry = CollectorRegistry()
    collector = WorkerCollector(counts, ("ticks", "constituents"), {"XHKG": HK}, lambda: NOW)
    if engines is not None:
        collector.watch(engines, engines)
    registry.register(collector)
    return registry


def test_the_counts_are_exported_as_counters_by_bounded_labels() -> None:
    counts = WorkerCounts(indices=frozenset({"IDX"}))
    index_alert = alert("daily_move").model_copy(update={"instrument": "IDX", "stage": "close"})
    alerts = [alert("daily_move"), alert("daily_move"), index_alert]
    result = BatchResult(applied=5, duplicates=1, held=2, ignored={"late_tick": 1},
                         rejected_by={"invalid_tick": 2}, alerts=alerts)  # fmt: skip
    counts.ingested("ticks", [Incoming(0, 7, b""), Incoming(2, 3, b"")], result)
    counts.indexed("constituents", [Incoming(1, 4, b"")], 3)
    counts.lost([Gap("ticks", 1, 10, 25)])
    counts.redis_roundtrips = 9
    counts.redone("stale_state")
    counts.redone("unreachable")
    counts.redone("unreachable")
    found = exposed(worker(counts))
    assert {k: v for k, v in found.items() if "_total" in k} == {
        'tickwatch_messages_consumed_total{topic="constituents"}': 1,
        'tickwatch_messages_consumed_total{topic="ticks"}': 2,
        "tickwatch_ticks_consumed_total": 11,
        "tickwatch_ticks_applied_total": 5,
        'tickwatch_ticks_ignored_total{reason="duplicate"}': 1,
        'tickwatch_ticks_ignored_total{reason="held"}': 2,
        'tickwatch_ticks_ignored_total{reason="late_tick"}': 1,
        # Every reason from the start, so that increase() sees a first dead letter too.
        **{f'tickwatch_ticks_dead_lettered_total{{reason="{r}"}}': 0 for r in REJECT_REASONS},
        'tickwatch_ticks_dead_lettered_total{reason="invalid_tick"}': 2,
        'tickwatch_ticks_lost_total{topic="constituents"}': 0,
        'tickwatch_ticks_lost_total{topic="ticks"}': 15,
        'tickwatch_alerts_total{kind="daily_move",stage="close"}': 1,
        'tickwatch_alerts_total{kind="daily_move",stage="intraday"}': 2,
        "tickwatch_index_ticks_total": 3,
        "tickwatch_redis_roundtrips_total": 9,
        'tickwatch_redis_commit_retries_total{reason="stale_state"}': 1,
        'tickwatch_redis_commit_retries_total{reason="state_lost"}': 0,
        'tickwatch_redis_commit_retries_total{reason="unreachable"}': 2,
        'tickwatch_index_alerts_total{index="IDX"}': 1,
    }


def test_lag_freshness_outbox_and_indices_are_gauges_read_at_scrape_time() -> None:
    counts = WorkerCounts(indices=frozenset({"IDX"}))
    counts.lag = {("ticks", 0): 40, ("ticks", 2): 0}
    counts.assigned = {"ticks": 2, "constituents": 1}
    counts.seen({"XHKG": int(NOW * 1000) - 90_000, "24/7": 1_000})
    counts.seen({"XHKG": int(NOW * 1000) - 95_000})  # older: changes nothing
    level, _ = feed(START, price("A", 12.0, "10:00:00"), price("B", 10.0, "10:00:01"))
    waiting = IndexState("WAIT", prices={"A": 1.0})  # no level yet: B and C have no price
    wait_spec = SPEC.model_copy(update={"symbol": "WAIT"})
    found = exposed(worker(counts, Engines(3, [(SPEC, level), (wait_spec, waiting)])))
    gauges = {k: v for k, v in found.items() if "_total" not in k and k.startswith("tickwatch_")}
    gauges.pop("tickwatch_build_info", None)
    assert gauges == {
        'tickwatch_consumer_lag_messages{partition="0",topic="ticks"}': 40,
        'tickwatch_consumer_lag_messages{partition="2",topic="ticks"}': 0,
        'tickwatch_partitions_assigned{topic="constituents"}': 1,
        'tickwatch_partitions_assigned{topic="ticks"}': 2,
        'tickwatch_last_tick_timestamp_seconds{exchange="24/7"}': 1.0,
        'tickwatch_last_tick_timestamp_seconds{exchange="XHKG"}': NOW - 90,
        'tickwatch_event_time_lag_seconds{exchange="24/7"}': NOW - 1,
        'tickwatch_event_time_lag_seconds{exchange="XHKG"}': pytest.approx(90),
        'tickwatch_exchange_open{exchange="XHKG"}': 1,
        "tickwatch_outbox_pending_alerts": 3,
        'tickwatch_index_level{index="IDX"}': (12 * 10 + 10 * 20 + 10 * 30) / 10,
        # A and B have reported, C has not (stale): the coverage index ticks carry.
        'tickwatch_index_coverage_ratio{index="IDX"}': snapshot(level, SPEC, NOW_MS).coverage,
        'tickwatch_index_stale_constituents{index="IDX"}': 1,
        'tickwatch_index_coverage_ratio{index="WAIT"}': 0,
        'tickwatch_index_stale_constituents{index="WAIT"}': 2,
    }


def test_an_exchange_is_open_only_within_a_session() -> None:
    assert is_open(HK, ms("10:00:05"))
    assert not is_open(HK, ms("17:00:00"))  # after the close (and its auction)
    assert not is_open(HK, ms("10:00:00", day=20))  # a Saturday
    assert not is_open(HK, ms("12:30:00"))  # lunch: no tick comes, the feed is not stale
    assert is_open(HK, ms("13:00:00"))  # the afternoon session


def test_timings_are_observed_once_per_batch_alert_and_commit() -> None:
    registry = CollectorRegistry()
    counts = WorkerCounts()
    timings = WorkerTimings(counts, registry)
    timings.round_trip(0.0003, commit=True)
    timings.round_trip(0.002, commit=False)  # a load: counted, not a commit
    timings.batch("ingest", 120, 0.004)
    timings.batch("index", 3, 0.0007)
    tick_ts = datetime.now(UTC).timestamp() - 0.5
    late = alert("daily_move").model_copy(update={"ts": datetime.fromtimestamp(tick_ts, UTC)})
    timings.published([late], taken_at=datetime.now(UTC).timestamp() - 0.003)
    found = exposed(registry)
    assert counts.redis_roundtrips == 2
    assert found['tickwatch_redis_commit_seconds_bucket{le="0.0005"}'] == 1
    assert found['tickwatch_redis_commit_seconds_bucket{le="0.00025"}'] == 0
    assert found["tickwatch_redis_commit_seconds_count"] == 1
    assert found['tickwatch_batch_size_ticks_sum{agent="ingest"}'] == 120
    assert found['tickwatch_batch_size_ticks_bucket{agent="ingest",le="100.0"}'] == 0
    assert found['tickwatch_batch_size_ticks_bucket{agent="ingest",le="200.0"}'] == 1
    assert found['tickwatch_batch_duration_seconds_bucket{agent="index",le="0.001"}'] == 1
    event = 'tickwatch_tick_to_alert_seconds_bucket{le="%s",since="event_time"}'
    ingest = 'tickwatch_tick_to_alert_seconds_bucket{le="%s",since="ingest"}'
    assert (found[event % "0.25"], found[event % "0.5"], found[event % "1.0"]) == (0, 0, 1)
    assert (found[ingest % "0.0025"], found[ingest % "0.025"]) == (0, 1)


def test_without_metrics_only_the_counts_the_stats_hash_needs_are_kept() -> None:
    counts = WorkerCounts()
    untimed = Untimed(counts)
    untimed.round_trip(0.001, commit=True)
    untimed.redone("state_lost")
    untimed.batch("ingest", 10, 0.01)
    untimed.published([alert("daily_move")], taken_at=0.0)
    assert (counts.redis_roundtrips, counts.labelled) == (1, {"retries:state_lost": 1})
