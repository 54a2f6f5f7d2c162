"""The worker's counts and gauges as Prometheus metrics, read at scrape time.

Nothing here runs on the hot path: the agents keep plain counts (streams/metrics.py)
and the engines plain values; a scrape (from the metrics server's thread) turns them
into metric families. Labels are bounded sets: topics, reason codes, alert kinds and
stages, exchanges and indices of the configuration files.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Protocol

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from alerts.core.decode import REJECT_REASONS
from alerts.core.index_agent import IndexState, freshness
from alerts.core.market import Market
from alerts.core.sessions import ExchangeCalendar
from schemas.indices import IndexSpec
from streams.metrics import WorkerCounts

#: Reasons a batch is redone, always exported (0 until one happens) so that a rate
#: over them starts from the worker's start.
REDO_REASONS = ("stale_state", "state_lost", "unreachable")
P = "tickwatch_"


class Outboxes(Protocol):
    @property
    def outbox_pending(self) -> int: ...


class Indices(Protocol):
    def states(self) -> list[tuple[IndexSpec, IndexState]]: ...


def exchanges_of(market: Market) -> list[str]:
    """Every exchange the configuration names: of its instruments and its indices."""
    found = {spec.exchange for spec in market.instruments.instruments}
    found |= {spec.exchange for spec in market.indices.indices}
    return sorted(found)


class WorkerCollector(Collector):
    """One worker's metrics (see the README's table), from its counts and engines."""

    def __init__(
        self,
        counts: WorkerCounts,
        topics: Sequence[str],
        calendars: dict[str, ExchangeCalendar],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._counts = counts
        self._topics = tuple(topics)
        self._calendars = calendars
        self._clock = clock
        self._outboxes: Outboxes | None = None
        self._indices: Indices | None = None

    def watch(self, outboxes: Outboxes, indices: Indices) -> None:
        """The engines, once the worker has built them."""
        self._outboxes = outboxes
        self._indices = indices

    def collect(self) -> Iterator[Metric]:
        c = self._counts
        labelled = dict(c.labelled)  # a copy: the event loop adds to it meanwhile
        now = self._clock()
        yield _by(
            "messages_consumed", "Kafka messages taken, by topic.", "topic",
            _labels(labelled, "consumed", self._topics),
        )  # fmt: skip
        yield _counter("ticks_consumed", "Ticks and session ends in ticks-topic messages.", c.ticks)
        yield _counter("ticks_applied", "Ticks applied to market state.", c.applied)
        ignored = {"duplicate": c.duplicates, "held": c.held, **_labels(labelled, "ignored")}
        yield _by("ticks_ignored", "Ticks not applied, by reason.", "reason", ignored)
        yield _by(
            "ticks_dead_lettered", "Ticks sent to the dead-letter topic, by reason.", "reason",
            _labels(labelled, "dead_letters", REJECT_REASONS),
        )  # fmt: skip
        yield _by(
            "ticks_lost", "Messages skipped where Kafka had deleted them before they were read.",
            "topic", _labels(labelled, "lost", self._topics),
        )  # fmt: skip
        alerts = CounterMetricFamily(
            P + "alerts", "Alerts published to the alerts topic.", labels=["kind", "stage"]
        )
        for (kind, stage), count in sorted(dict(c.alert_stages).items()):
            alerts.add_metric([kind, stage], count)
        yield alerts
        yield _counter("index_ticks", "Index levels the index agent published.", c.index_ticks)
        yield _counter(
            "redis_roundtrips", "Redis round trips of the state store.", c.redis_roundtrips
        )
        yield _by(
            "redis_commit_retries", "Batches redone: commit refused, or Redis/Kafka out of reach.",
            "reason", _labels(labelled, "retries", REDO_REASONS),
        )  # fmt: skip
        yield from self._partitions()
        yield from self._freshness(now)
        pending = 0 if self._outboxes is None else self._outboxes.outbox_pending
        yield GaugeMetricFamily(
            P + "outbox_pending_alerts",
            "Alerts committed to Redis outboxes and not yet on Kafka.",
            value=pending,
        )
        yield from self._index_metrics(now)

    def _partitions(self) -> Iterator[Metric]:
        c = self._counts
        lag = GaugeMetricFamily(
            P + "consumer_lag_messages",
            "High watermark minus next offset to process, per owned partition.",
            labels=["topic", "partition"],
        )
        for (topic, partition), behind in sorted(dict(c.lag).items()):
            lag.add_metric([topic, str(partition)], behind)
        yield lag
        owned = GaugeMetricFamily(
            P + "partitions_assigned", "Partitions this worker owns.", labels=["topic"]
        )
        assigned = dict(c.assigned)
        for topic in self._topics:
            owned.add_metric([topic], assigned.get(topic, 0))
        yield owned

    def _freshness(self, now: float) -> Iterator[Metric]:
        last = GaugeMetricFamily(
            P + "last_tick_timestamp_seconds",
            "Event time of the newest tick read of the exchange's instruments.",
            labels=["exchange"],
        )
        lag = GaugeMetricFamily(
            P + "event_time_lag_seconds",
            "Now minus the event time of the exchange's newest tick.",
            labels=["exchange"],
        )
        for exchange, ts_ms in sorted(dict(self._counts.event_ms).items()):
            last.add_metric([exchange], ts_ms / 1000)
            lag.add_metric([exchange], max(0.0, now - ts_ms / 1000))
        yield last
        yield lag
        opened = GaugeMetricFamily(
            P + "exchange_open",
            "1 while the exchange's calendar has a session open, else 0.",
            labels=["exchange"],
        )
        now_ms = int(now * 1000)
        for exchange, calendar in self._calendars.items():
            opened.add_metric([exchange], 1 if is_open(calendar, now_ms) else 0)
        yield opened

    def _index_metrics(self, now: float) -> Iterator[Metric]:
        level = GaugeMetricFamily(P + "index_level", "Latest index level.", labels=["index"])
        coverage = GaugeMetricFamily(
            P + "index_coverage_ratio",
            "Share of the index (by weight) whose constituents have reported this session.",
            labels=["index"],
        )
        stale = GaugeMetricFamily(
            P + "index_stale_constituents",
            "Constituents with no price this session, or none for the index's stale_after_s "
            "before its latest price.",
            labels=["index"],
        )
        states = [] if self._indices is None else self._indices.states()
        for spec, state in sorted(states, key=lambda pair: pair[0].symbol):
            if state.level is not None:
                level.add_metric([spec.symbol], state.level.level)
            # Judged at the index's own event time, as its index ticks are: a replay of
            # an old session, or a closed market, is not stale by the wall clock.
            at_ms = max(state.last_ts.values(), default=int(now * 1000))
            covered, late = freshness(state, spec, at_ms)
            coverage.add_metric([spec.symbol], covered)
            stale.add_metric([spec.symbol], len(late))
        yield level
        yield coverage
        yield stale
        alerts = CounterMetricFamily(
            P + "index_alerts", "Alerts raised on an index.", labels=["index"]
        )
        raised = dict(self._counts.index_alerts)
        for index in sorted(self._counts.indices):
            alerts.add_metric([index], raised.get(index, 0))
        yield alerts


def is_open(calendar: ExchangeCalendar, now_ms: int) -> bool:
    """Whether a session of the calendar is open now: grace windows, auctions and a midday
    break (HKEX's lunch, when no tick comes and the feed is not stale) aside."""
    session = calendar.session_at(now_ms)
    return session is not None and session.trading_at(now_ms)


def _counter(name: str, documentation: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(P + name, documentation, value=value)


def _by(name: str, documentation: str, label: str, values: dict[str, int]) -> Metric:
    family = CounterMetricFamily(P + name, documentation, labels=[label])
    for key, value in sorted(values.items()):
        family.add_metric([key], value)
    return family


def _labels(labelled: dict[str, int], name: str, known: Iterable[str] = ()) -> dict[str, int]:
    """The `name:label` counts by label, with every `known` label (0 until counted)."""
    prefix = f"{name}:"
    found = dict.fromkeys(known, 0)
    for key, value in labelled.items():
        if key.startswith(prefix):
            found[key[len(prefix) :]] = value
    return found
