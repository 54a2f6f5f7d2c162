"""The gateway's Prometheus metrics: plain counts the event loop bumps as it serves (client
streams, deliveries and their latency, HTTP requests), read with the ingest's counts and
the parts' health only when Prometheus scrapes.

Plain ints, not prometheus_client's metric objects, on the delivery path: a burst to a
thousand clients is a hundred thousand deliveries, and a locked `observe` for each
(about 2 µs) would add half the gateway's own work per delivered alert (about 4 µs).
Only the event loop writes them; the scrape (a thread of its own) copies them.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections import Counter
from collections.abc import Callable, Iterable, Sequence

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from starlette.datastructures import State

from alerts.delivery.stream import Entry
from streams.gateway.health import PARTS, parts_up
from streams.gateway.ingest import AlertIngest

#: The client streams: Server-Sent Events and WebSocket.
TRANSPORTS = ("sse", "ws")

DELIVERY_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


def _arrival_ms(entry: Entry) -> int:
    return int(entry.position.partition("-")[0])


class Latencies:
    """A histogram in plain ints: a count per bucket (the last one past every bound) and
    the sum, in seconds."""

    def __init__(self, bounds_s: Sequence[float]) -> None:
        self.bounds_s = tuple(bounds_s)
        self._bounds_ms = [bound * 1000 for bound in bounds_s]
        self.counts = [0] * (len(bounds_s) + 1)
        self.sum_s = 0.0

    def since_arrival(self, now_ms: float, entries: Sequence[Entry]) -> None:
        """One observation per entry: now_ms minus its arrival in the Redis stream (the
        millisecond part of its position)."""
        if not entries:
            return
        counts, bounds = self.counts, self._bounds_ms
        # Entries come in stream order: when the first and the last share their
        # millisecond, so do all between, and the write is counted in one step. Else
        # a lookup only where the millisecond changes (a burst's write spans a few).
        first = _arrival_ms(entries[0])
        if first == _arrival_ms(entries[-1]):
            # Redis's clock and ours: on two hosts they may differ a little.
            latency_ms = max(now_ms - first, 0.0)
            counts[bisect_left(bounds, latency_ms)] += len(entries)
            self.sum_s += latency_ms * len(entries) / 1000
            return
        prefix = "-"  # no position starts so: the first entry is looked up
        slot, latency_ms, total_ms = 0, 0.0, 0.0
        for entry in entries:
            position = entry.position
            if not position.startswith(prefix):  # a new millisecond
                ms, _, _ = position.partition("-")
                prefix = ms + "-"
                latency_ms = max(now_ms - int(ms), 0.0)
                slot = bisect_left(bounds, latency_ms)
            counts[slot] += 1
            total_ms += latency_ms
        self.sum_s += total_ms / 1000

    def cumulative(self) -> tuple[list[tuple[str, float]], float]:
        """Prometheus's buckets (`le`, count at or below) and the sum."""
        counts, total_s = list(self.counts), self.sum_s
        buckets: list[tuple[str, float]] = []
        running = 0
        for bound, count in zip((*self.bounds_s, float("inf")), counts, strict=True):
            running += count
            buckets.append(("+Inf" if bound == float("inf") else repr(float(bound)), running))
        return buckets, total_s


class GatewayMetrics:
    """What the gateway's event loop counts as it serves clients."""

    def __init__(self) -> None:
        #: Open client streams, by transport.
        self.connections = dict.fromkeys(TRANSPORTS, 0)
        #: Alerts written to clients, by transport, by latency since their arrival.
        self.deliveries = {transport: Latencies(DELIVERY_BUCKETS_S) for transport in TRANSPORTS}
        #: HTTP requests by (route template, status code); see request_counts.py.
        self.requests: Counter[tuple[str, str]] = Counter()

    def opened(self, transport: str) -> None:
        self.connections[transport] += 1

    def closed(self, transport: str) -> None:
        self.connections[transport] -= 1

    def delivered(self, transport: str, entries: Sequence[Entry]) -> None:
        """A batch of entries was written to one client: one clock read for all of them."""
        self.deliveries[transport].since_arrival(time.time() * 1000, entries)

    def requested(self, route: str, code: int) -> None:
        self.requests[(route, str(code))] += 1


class GatewayCollector(Collector):
    """The gateway's metric families, read at scrape time. `redis_ok` asks Redis (from the
    scrape's thread) whether it answers; `state` is the app's state (its parts)."""

    def __init__(self, metrics: GatewayMetrics, state: State, redis_ok: Callable[[], bool]) -> None:
        self._metrics = metrics
        self._state = state
        self._redis_ok = redis_ok

    def describe(self) -> Iterable[Metric]:
        # The names, for the registry's check at registration: no Redis PING for it.
        return self._families(redis_ok=False)

    def collect(self) -> Iterable[Metric]:
        return self._families(self._redis_ok())

    def _families(self, redis_ok: bool) -> list[Metric]:
        metrics = self._metrics
        ingest: AlertIngest = self._state.ingest
        ingested = CounterMetricFamily(
            "tickwatch_gateway_alerts_ingested",
            "Alerts read from the alerts topic, by what became of them: added to the stream, "
            "a duplicate or an old one skipped, or not an alert.",
            labels=["outcome"],
        )
        for outcome, count in (("added", ingest.added), ("duplicate", ingest.duplicates),
                               ("old", ingest.old), ("invalid", ingest.invalid)):  # fmt: skip
            ingested.add_metric([outcome], count)
        lost = CounterMetricFamily(
            "tickwatch_gateway_alerts_lost",
            "Alerts Kafka deleted before the gateway read them.",
            value=ingest.lost,
        )
        partitions = GaugeMetricFamily(
            "tickwatch_gateway_partitions_assigned",
            "Partitions of the alerts topic this gateway ingests.",
            value=ingest.partitions,
        )
        up = GaugeMetricFamily(
            "tickwatch_gateway_part_up",
            "1 when the part works (ingest, fan-out, bars, Redis), 0 when in trouble.",
            labels=["part"],
        )
        working = parts_up(self._state, redis_ok)
        for part in PARTS:
            up.add_metric([part], 1 if working[part] else 0)
        return [ingested, lost, partitions, up, *self._serving(metrics)]

    @staticmethod
    def _serving(
        metrics: GatewayMetrics,
    ) -> list[Metric]:
        connections = GaugeMetricFamily(
            "tickwatch_gateway_connections", "Open client streams.", labels=["transport"]
        )
        deliveries = CounterMetricFamily(
            "tickwatch_gateway_deliveries", "Alerts written to clients.", labels=["transport"]
        )
        latency = HistogramMetricFamily(
            "tickwatch_gateway_delivery_seconds",
            "Per alert written to a client: the write's time minus the alert's arrival in "
            "the gateway's Redis stream.",
            labels=["transport"],
        )
        for transport in TRANSPORTS:
            connections.add_metric([transport], metrics.connections[transport])
            buckets, total_s = metrics.deliveries[transport].cumulative()
            deliveries.add_metric([transport], buckets[-1][1])
            latency.add_metric([transport], buckets, total_s)
        requests = CounterMetricFamily(
            "tickwatch_gateway_http_requests",
            "HTTP requests, by route template (`unmatched`: no route) and status code.",
            labels=["route", "code"],
        )
        for (route, code), count in sorted(dict(metrics.requests).items()):
            requests.add_metric([route, code], count)
        return [connections, deliveries, latency, requests]
