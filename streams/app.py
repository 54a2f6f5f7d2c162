"""The Faust app, built from Settings: consumes ticks, hands batches to the engine."""

from __future__ import annotations

import asyncio
import os
from typing import Any

import faust
from prometheus_client import CollectorRegistry
from redis.asyncio import Redis

from alerts.delivery.kafka import KafkaPublisher
from alerts.delivery.kafka_offsets import GroupOffsets, high_watermarks
from alerts.engine.indices import IndexEngine
from alerts.engine.ticks import Engine, Topics
from alerts.store.indices import IndexStore
from alerts.store.instruments import StateStore
from schemas.settings import Settings
from streams import agents
from streams.exporter import new_registry, serve_metrics
from streams.faust_waits import TablelessManager, Worker
from streams.gaps import GapWatch
from streams.kafka_client import bound_fetch_wait, rejoin_after_group_errors
from streams.kafka_ready import wait_for_kafka
from streams.lag import LagWatch, consumer_highwater
from streams.market_files import load_market
from streams.metrics import StatsWriter, WorkerCounts
from streams.metrics_collector import WorkerCollector, exchanges_of
from streams.metrics_timings import Untimed, WorkerTimings
from streams.redis_ready import DEFAULT_REDIS_URL, check_redis


def create_app(settings: Settings, registry: CollectorRegistry | None = None) -> faust.App:
    """A Faust app that declares no topics itself (they come from `tickwatch topics`);
    its metrics go to `registry` (None: metrics off, nothing observed)."""
    bound_fetch_wait(settings.fetch_max_wait_ms)
    rejoin_after_group_errors()
    app = faust.App(
        settings.app_id,
        broker=";".join(f"kafka://{host}" for host in settings.bootstrap_servers),
        store="memory://",
        autodiscover=False,
        topic_allow_declare=False,
        topic_disable_leader=True,
        web_enabled=settings.web_enabled,
        web_port=settings.web_port,
        broker_session_timeout=settings.session_timeout_s,
        broker_heartbeat_interval=settings.heartbeat_interval_s,
        broker_rebalance_timeout=settings.session_timeout_s,
        broker_commit_interval=settings.commit_interval_s,
        consumer_auto_offset_reset="earliest",
        TableManager=TablelessManager,
    )
    market = load_market(settings)
    counts = WorkerCounts(indices=frozenset(i.symbol for i in market.indices.indices))
    timings = Untimed(counts)
    collector = None
    if registry is not None:
        timings = WorkerTimings(counts, registry)
        calendars = {exchange: market.calendar(exchange) for exchange in exchanges_of(market)}
        topics = (settings.topic_ticks, settings.topic_constituents)
        collector = WorkerCollector(counts, topics, calendars)
        registry.register(collector)
    built: list[agents.Engines] = []
    lock = asyncio.Lock()

    async def engines() -> agents.Engines:
        """Both engines of this worker, built once on the worker's event loop."""
        async with lock:
            if not built:
                # Bounded waits: a Redis that stops answering is retried, not waited on.
                redis = Redis.from_url(
                    settings.redis_url or DEFAULT_REDIS_URL,
                    socket_connect_timeout=5,
                    socket_timeout=30,
                )
                await redis.ping()
                store = StateStore(redis, settings.key_prefix, timings)
                stats_key = f"{settings.key_prefix}:stats:{os.getpid()}"
                stats = StatsWriter(redis, stats_key, counts)
                offsets = GroupOffsets(settings.kafka_bootstrap, settings.app_id)
                client_id = f"{settings.app_id}-publisher"
                publisher = KafkaPublisher(settings.kafka_bootstrap, client_id=client_id)
                topics = Topics(
                    settings.topic_ticks,
                    settings.topic_alerts,
                    settings.topic_dlq,
                    settings.topic_constituents,
                )
                ingest = Engine(store, publisher, market, topics, offsets)
                await ingest.start()
                # The topic's real partition count: the index agent waits for each.
                ticks_partitions = len(
                    await asyncio.to_thread(
                        high_watermarks, settings.kafka_bootstrap, settings.topic_ticks
                    )
                )
                index = IndexEngine(
                    IndexStore(redis, settings.key_prefix, timings),
                    store,
                    publisher,
                    market,
                    settings.topic_ticks,
                    ticks_partitions,
                )
                ticks = settings.topic_ticks
                built.append(
                    agents.Engines(
                        ingest,
                        index,
                        GapWatch(settings.topic_ticks, offsets),
                        GapWatch(settings.topic_constituents, offsets),
                        stats,
                        timings,
                        LagWatch(settings.topic_ticks, offsets, consumer_highwater(app, ticks)),
                        metrics=collector is not None,
                    )
                )
                if collector is not None:
                    collector.watch(ingest, index)
            return built[0]

    agents.register(app, settings, engines)
    return app


def run_worker(settings: Settings) -> Any:
    """Run one worker until SIGINT/SIGTERM (Faust's own worker loop), once Redis answers
    and Kafka has the ticks topic (waiting up to TICKWATCH_KAFKA_WAIT_S for Kafka).

    Its metrics are served first (unless TICKWATCH_METRICS_ENABLED is false), so that
    a worker waiting for Redis or Kafka is seen up, and a busy port ends it at once."""
    registry = new_registry("worker") if settings.metrics_enabled else None
    app = create_app(settings, registry)
    if registry is not None:
        server = serve_metrics(
            registry, settings.metrics_host, settings.metrics_port, "TICKWATCH_METRICS_PORT"
        )
        print(f"tickwatch worker: metrics {server.url}", flush=True)
    check_redis(settings.redis_url or DEFAULT_REDIS_URL)
    wait_for_kafka(settings.kafka_bootstrap, settings.topic_ticks, settings.kafka_wait_s)
    worker = Worker(app, loglevel=settings.log_level, quiet=True)
    if not worker.stdout.isatty():
        # Faust's spinner writes terminal escape codes (hide and show the cursor)
        # even when quiet: they have no place in a log file.
        worker.spinner = None
    return worker.execute_from_commandline()
