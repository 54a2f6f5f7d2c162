"""The gateway's metrics (streams/gateway/metrics.py) read as Prometheus reads them: the
delivery latency histogram kept in plain ints, and the collector over stand-in parts."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, generate_latest
from starlette.datastructures import State

from alerts.delivery.stream import Entry
from streams.gateway.metrics import (
    DELIVERY_BUCKETS_S,
    GatewayCollector,
    GatewayMetrics,
    Latencies,
)
from tests.integration.gateway_support import metric_samples


def entry(position: str) -> Entry:
    return Entry(position, "id", "BIDU", "daily_move", "gain", "intraday", b"{}")


def buckets(latencies: Latencies) -> dict[str, float]:
    found, _ = latencies.cumulative()
    return dict(found)


def test_each_entry_is_one_observation_since_its_arrival_in_the_stream() -> None:
    latencies = Latencies(DELIVERY_BUCKETS_S)
    now_ms = 1_000_000.0
    # Written 1 ms, 3 ms (twice: appended in the same millisecond), 30 ms and 20 s after
    # their arrival, in two writes.
    latencies.since_arrival(now_ms, [entry("999999-0")])
    batch = ["999997-0", "999997-1", "999970-4", "980000-0"]
    latencies.since_arrival(now_ms, [entry(p) for p in batch])
    counts = buckets(latencies)
    assert counts["0.001"] == 1  # at or below the bound
    assert counts["0.0025"] == 1
    assert counts["0.005"] == 3
    assert counts["0.025"] == 3 and counts["0.05"] == 4
    assert counts["10.0"] == 4 and counts["+Inf"] == 5
    assert latencies.sum_s == pytest.approx((1 + 3 + 3 + 30 + 20_000) / 1000)


@given(
    arrivals=st.lists(st.integers(0, 30_000), min_size=1, max_size=200),
    now_ms=st.floats(0, 40_000),
)
def test_a_batch_is_counted_as_one_observation_per_entry(
    arrivals: list[int], now_ms: float
) -> None:
    # Runs of a millisecond are counted at once: the same as entry by entry.
    ordered = sorted(arrivals)
    positions = [f"{ms}-{seq}" for seq, ms in enumerate(ordered)]
    latencies = Latencies(DELIVERY_BUCKETS_S)
    latencies.since_arrival(now_ms, [entry(p) for p in positions])
    one_by_one = Latencies(DELIVERY_BUCKETS_S)
    for position in positions:
        one_by_one.since_arrival(now_ms, [entry(position)])
    assert latencies.counts == one_by_one.counts
    assert sum(latencies.counts) == len(positions)
    expected_s = sum(max(now_ms - ms, 0.0) for ms in ordered) / 1000
    assert latencies.sum_s == pytest.approx(expected_s)


def test_an_arrival_after_now_counts_as_no_delay() -> None:
    # Redis's clock a little ahead of the gateway's (two hosts).
    latencies = Latencies(DELIVERY_BUCKETS_S)
    latencies.since_arrival(1000.0, [entry("1005-0")])
    assert buckets(latencies)["0.001"] == 1 and latencies.sum_s == 0


def test_bounds_are_labelled_as_prometheus_writes_them() -> None:
    found, total = Latencies((0.025, 1)).cumulative()
    assert [le for le, _ in found] == ["0.025", "1.0", "+Inf"] and total == 0


@dataclass
class Part:
    """Stands in for the ingest, the fan-out and the bars: what the collector reads."""

    running: bool = True
    trouble: str | None = None
    added: int = 0
    duplicates: int = 0
    old: int = 0
    invalid: int = 0
    lost: int = 0
    partitions: int = 0


def scraped(metrics: GatewayMetrics, state: State, redis_ok: bool = True) -> dict[str, float]:
    """Every sample of the collector, as `name{label=value,...}` -> value."""
    registry = CollectorRegistry()
    registry.register(GatewayCollector(metrics, state, lambda: redis_ok))
    return metric_samples(generate_latest(registry).decode())


def parts(**state: Part) -> State:
    defaults = {"ingest": Part(), "bars": Part(), "fanout": Part()}
    return State({**defaults, **state})


def test_the_ingest_counts_are_read_at_scrape_time() -> None:
    ingest = Part(added=7, duplicates=2, old=1, invalid=3, lost=4, partitions=2)
    state = parts(ingest=ingest)
    metrics = GatewayMetrics()
    assert scraped(metrics, state)["tickwatch_gateway_alerts_ingested_total{outcome=added}"] == 7
    ingest.added += 5
    found = scraped(metrics, state)
    assert found["tickwatch_gateway_alerts_ingested_total{outcome=added}"] == 12
    assert found["tickwatch_gateway_alerts_ingested_total{outcome=duplicate}"] == 2
    assert found["tickwatch_gateway_alerts_ingested_total{outcome=old}"] == 1
    assert found["tickwatch_gateway_alerts_ingested_total{outcome=invalid}"] == 3
    assert found["tickwatch_gateway_alerts_lost_total{}"] == 4
    assert found["tickwatch_gateway_partitions_assigned{}"] == 2


def test_a_part_in_trouble_or_stopped_is_down_and_redis_is_asked() -> None:
    state = parts(bars=Part(trouble="Redis: refused"), fanout=Part(running=False))
    found = scraped(GatewayMetrics(), state, redis_ok=False)
    up = {part: found[f"tickwatch_gateway_part_up{{part={part}}}"]
          for part in ("ingest", "fanout", "bars", "redis")}  # fmt: skip
    assert up == {"ingest": 1, "fanout": 0, "bars": 0, "redis": 0}
    before_start = State({"ingest": Part(), "bars": Part()})  # no fan-out yet
    assert scraped(GatewayMetrics(), before_start)["tickwatch_gateway_part_up{part=fanout}"] == 0


def test_connections_deliveries_and_requests_by_their_labels() -> None:
    metrics = GatewayMetrics()
    metrics.opened("sse")
    metrics.opened("sse")
    metrics.opened("ws")
    metrics.closed("sse")
    metrics.deliveries["ws"].since_arrival(2000.0, [entry("1990-0"), entry("1990-1")])
    metrics.requested("/v1/alerts", 401)
    metrics.requested("/v1/alerts", 401)
    metrics.requested("unmatched", 404)
    found = scraped(metrics, parts())
    assert found["tickwatch_gateway_connections{transport=sse}"] == 1
    assert found["tickwatch_gateway_connections{transport=ws}"] == 1
    assert found["tickwatch_gateway_deliveries_total{transport=ws}"] == 2
    assert found["tickwatch_gateway_deliveries_total{transport=sse}"] == 0
    assert found["tickwatch_gateway_delivery_seconds_bucket{le=0.01,transport=ws}"] == 2
    assert found["tickwatch_gateway_delivery_seconds_bucket{le=0.005,transport=ws}"] == 0
    assert found["tickwatch_gateway_delivery_seconds_count{transport=ws}"] == 2
    assert found["tickwatch_gateway_delivery_seconds_sum{transport=ws}"] == pytest.approx(0.02)
    assert found["tickwatch_gateway_http_requests_total{code=401,route=/v1/alerts}"] == 2
    assert found["tickwatch_gateway_http_requests_total{code=404,route=unmatched}"] == 1


def test_registering_the_collector_does_not_ask_redis() -> None:
    asked = []

    def redis_ok() -> bool:
        asked.append(True)
        return True

    registry = CollectorRegistry(auto_describe=True)
    registry.register(GatewayCollector(GatewayMetrics(), parts(), redis_ok))
    assert asked == []
    generate_latest(registry)
    assert asked == [True]
