"""The worker's timings: histograms observed once per batch, per alert, per commit.

The agents and the state stores tell a WorkerTimings what took how long; with metrics
off (TICKWATCH_METRICS_ENABLED=false) they get an Untimed, which only keeps the
counts the stats hash needs (round trips, retries) and observes nothing.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from prometheus_client import CollectorRegistry, Histogram

from schemas.alerts import Alert
from streams.metrics import WorkerCounts

# Each has a boundary at 0.025 s, the tick-to-alert budget.
# fmt: off
TICK_TO_ALERT_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5,
                         10, 30, 60, 300)
BATCH_DURATION_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
                          2.5, 5)
REDIS_COMMIT_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                        0.25, 1)
# fmt: on
BATCH_SIZE_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000)
AGENTS = ("ingest", "index")


class Untimed:
    """What the agents and stores tell, with no metrics: only the counts are kept."""

    def __init__(self, counts: WorkerCounts) -> None:
        self.counts = counts

    def round_trip(self, seconds: float, commit: bool) -> None:
        """A state store's Redis round trip (alerts.store.versioned.StoreWatch)."""
        self.counts.redis_roundtrips += 1

    def redone(self, reason: str) -> None:
        self.counts.redone(reason)

    def batch(self, agent: str, size: int, seconds: float) -> None:
        """An agent's batch of `size` messages took `seconds`, from take to publish."""

    def published(self, alerts: Sequence[Alert], taken_at: float) -> None:
        """These alerts are on Kafka; their batch was taken at `taken_at` (Unix s)."""


class WorkerTimings(Untimed):
    """The worker's histograms, in `registry`."""

    def __init__(self, counts: WorkerCounts, registry: CollectorRegistry) -> None:
        super().__init__(counts)
        tick_to_alert = Histogram(
            "tickwatch_tick_to_alert_seconds",
            "Per alert, at publish: since its tick's event time, or since its batch was "
            "taken from Kafka (ingest).",
            ["since"],
            buckets=TICK_TO_ALERT_BUCKETS,
            registry=registry,
        )
        self._since_event = tick_to_alert.labels("event_time")
        self._since_ingest = tick_to_alert.labels("ingest")
        size = Histogram(
            "tickwatch_batch_size_ticks",
            "Messages per batch, by agent.",
            ["agent"],
            buckets=BATCH_SIZE_BUCKETS,
            registry=registry,
        )
        duration = Histogram(
            "tickwatch_batch_duration_seconds",
            "One batch: process, commit and publish, by agent.",
            ["agent"],
            buckets=BATCH_DURATION_BUCKETS,
            registry=registry,
        )
        self._sizes = {agent: size.labels(agent) for agent in AGENTS}
        self._durations = {agent: duration.labels(agent) for agent in AGENTS}
        self._commit = Histogram(
            "tickwatch_redis_commit_seconds",
            "One state-commit script round trip to Redis.",
            buckets=REDIS_COMMIT_BUCKETS,
            registry=registry,
        )

    def round_trip(self, seconds: float, commit: bool) -> None:
        self.counts.redis_roundtrips += 1
        if commit:
            self._commit.observe(seconds)

    def batch(self, agent: str, size: int, seconds: float) -> None:
        self._sizes[agent].observe(size)
        self._durations[agent].observe(seconds)

    def published(self, alerts: Sequence[Alert], taken_at: float) -> None:
        if not alerts:
            return
        now = time.time()
        for alert in alerts:
            self._since_event.observe(now - alert.ts.timestamp())
            self._since_ingest.observe(now - taken_at)
