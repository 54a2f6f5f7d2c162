"""The operator's overview dashboard (uid tickwatch-overview): is tickwatch keeping up, and
if not, where (Kafka, rules, Redis, gateway, processes)."""

from __future__ import annotations

from typing import Any

from grafana_foundation_sdk.builders.dashboard import Row

from tools.dashboards.panels import (
    TICK_TO_ALERT_BUDGET_S,
    Annotation,
    Query,
    big_number,
    finish,
    graph,
    new_dashboard,
)
from tools.dashboards.promql import increase, quantile, rate

UID = "tickwatch-overview"
JOBS = '{job=~"tickwatch-worker|tickwatch-gateway"}'
PER_SECOND = "ops"  # Grafana's "ops/s"
LATENCY = "tickwatch_tick_to_alert_seconds"
# The operator alerts of deploy/prometheus/rules/ while they fire (Prometheus's own ALERTS
# series), so a graph's bend lines up with the alert it caused.
FIRING = Annotation(
    name="Operator alerts",
    expr='ALERTS{alertstate="firing", alertname=~"Tickwatch.+"}',
    color="orange",
    title="{{alertname}}",
    text="{{severity}}: {{alertname}} firing",
    tags="alertname,severity",
    step="15s",
)


def _throughput() -> list[Any]:
    return [
        graph(
            "Kafka messages consumed",
            "Messages workers took from Kafka, per topic (a message can carry many ticks).",
            PER_SECOND,
            [Query(rate("tickwatch_messages_consumed_total", "topic"), "{{topic}}")],
        ),
        graph(
            "Ticks consumed and applied",
            "Ticks (and session ends) read from the ticks topic, those applied to market "
            "state, and the index levels the index agent published.",
            PER_SECOND,
            [
                Query(rate("tickwatch_ticks_consumed_total"), "consumed"),
                Query(rate("tickwatch_ticks_applied_total"), "applied"),
                Query(rate("tickwatch_index_ticks_total"), "index levels"),
            ],
        ),
        graph(
            "Ticks ignored, by reason",
            "Ticks not applied: duplicate (already applied), held (partition state lost), "
            "late and the other reasons of the batch outcome.",
            PER_SECOND,
            [Query(rate("tickwatch_ticks_ignored_total", "reason"), "{{reason}}")],
        ),
        graph(
            "Ticks dead-lettered, by reason",
            "Ticks sent to the dead-letter topic, by reason code (the dead letter's header).",
            PER_SECOND,
            [Query(rate("tickwatch_ticks_dead_lettered_total", "reason"), "{{reason}}")],
        ),
        graph(
            "Ticks lost to offset gaps",
            "Messages Kafka deleted before a worker read them, per window: any is data loss "
            "(alert TickwatchTicksLost).",
            "short",
            [Query(increase("tickwatch_ticks_lost_total", "topic"), "{{topic}}")],
        ),
        graph(
            "Alerts published, by kind and stage",
            "Alerts the workers published to the alerts topic.",
            PER_SECOND,
            [Query(rate("tickwatch_alerts_total", "kind, stage"), "{{kind}} {{stage}}")],
        ),
    ]


def _latency() -> list[Any]:
    return [
        graph(
            "Tick to alert, from ingest (budget 25 ms)",
            "From the moment the worker took the batch from Kafka to the alert's publish; "
            "the red line is the 25 ms budget (alert TickwatchTickToAlertSlow on the p99).",
            "s",
            [
                Query(quantile(0.5, LATENCY, selector='{since="ingest"}'), "p50"),
                Query(quantile(0.99, LATENCY, selector='{since="ingest"}'), "p99"),
            ],
            width=12,
            budget_s=TICK_TO_ALERT_BUDGET_S,
        ),
        graph(
            "Tick to alert, from event time",
            "From the tick's exchange timestamp to the alert's publish: feed delay included.",
            "s",
            [
                Query(quantile(0.5, LATENCY, selector='{since="event_time"}'), "p50"),
                Query(quantile(0.99, LATENCY, selector='{since="event_time"}'), "p99"),
            ],
            width=12,
            budget_s=TICK_TO_ALERT_BUDGET_S,
        ),
        graph(
            "Batch size",
            "Kafka messages per batch, per agent (ingest: ticks; index: constituent prices).",
            "short",
            [
                Query(quantile(0.5, "tickwatch_batch_size_ticks", "agent"), "{{agent}} p50"),
                Query(quantile(0.99, "tickwatch_batch_size_ticks", "agent"), "{{agent}} p99"),
            ],
        ),
        graph(
            "Batch duration",
            "One batch: process, commit to Redis, publish.",
            "s",
            [
                Query(quantile(0.5, "tickwatch_batch_duration_seconds", "agent"), "{{agent}} p50"),
                Query(quantile(0.99, "tickwatch_batch_duration_seconds", "agent"), "{{agent}} p99"),
            ],
        ),
        graph(
            "Redis commit latency",
            "One state-commit script round trip.",
            "s",
            [
                Query(quantile(0.5, "tickwatch_redis_commit_seconds"), "p50"),
                Query(quantile(0.99, "tickwatch_redis_commit_seconds"), "p99"),
            ],
        ),
        graph(
            "Redis round trips and commit retries",
            "Round trips of the state store, and batches redone, by reason (stale_state, "
            "state_lost, unreachable).",
            PER_SECOND,
            [
                Query(rate("tickwatch_redis_roundtrips_total"), "round trips"),
                Query(rate("tickwatch_redis_commit_retries_total", "reason"), "retry {{reason}}"),
            ],
            width=12,
        ),
        graph(
            "Outbox pending alerts",
            "Alerts committed to Redis and not yet published: a rising line is an outbox "
            "not draining (alert TickwatchOutboxNotDraining).",
            "short",
            [Query("sum (tickwatch_outbox_pending_alerts)", "pending")],
            width=12,
        ),
    ]


def _lag() -> list[Any]:
    return [
        graph(
            "Consumer lag, per partition",
            "Messages behind the high watermark, per owned partition (alert TickwatchLagGrowing).",
            "short",
            [
                Query(
                    "max by (topic, partition) (tickwatch_consumer_lag_messages)",
                    "{{topic}}/{{partition}}",
                )
            ],
            width=12,
        ),
        graph(
            "Event-time lag, per exchange",
            "Now minus the event time of the newest applied tick of the exchange; it grows "
            "while the market is closed (alert TickwatchFeedStale fires only when open).",
            "s",
            [Query("min by (exchange) (tickwatch_event_time_lag_seconds)", "{{exchange}}")],
            width=12,
        ),
    ]


def _gateway() -> list[Any]:
    delivery = "tickwatch_gateway_delivery_seconds"
    return [
        graph(
            "Gateway connections",
            "Open client streams, per transport.",
            "short",
            [Query("sum by (transport) (tickwatch_gateway_connections)", "{{transport}}")],
            width=6,
        ),
        graph(
            "Gateway deliveries",
            "Alerts written to clients, per transport.",
            PER_SECOND,
            [Query(rate("tickwatch_gateway_deliveries_total", "transport"), "{{transport}}")],
            width=6,
        ),
        graph(
            "Gateway delivery latency p99",
            "From the alert's arrival in the Redis stream to its write to a client.",
            "s",
            [Query(quantile(0.99, delivery, "transport"), "{{transport}} p99")],
            width=6,
        ),
        graph(
            "Gateway ingest outcomes",
            "Alerts read from Kafka into the stream, by outcome, and those Kafka deleted "
            "before the gateway read them.",
            PER_SECOND,
            [
                Query(rate("tickwatch_gateway_alerts_ingested_total", "outcome"), "{{outcome}}"),
                Query(rate("tickwatch_gateway_alerts_lost_total"), "lost"),
            ],
            width=6,
        ),
        graph(
            "Gateway HTTP requests",
            "Requests per route template and status code.",
            PER_SECOND,
            [
                Query(
                    rate("tickwatch_gateway_http_requests_total", "route, code"),
                    "{{route}} {{code}}",
                )
            ],
            width=12,
        ),
        graph(
            "Gateway parts up",
            "1 while a part works (ingest, fan-out, bars, Redis), 0 while in trouble.",
            "short",
            [Query("min by (part) (tickwatch_gateway_part_up)", "{{part}}")],
            width=12,
        ),
    ]


def _glance() -> list[Any]:
    return [
        big_number(
            "Targets up",
            "Scrape targets answering, per job; red when none does (alerts "
            "TickwatchWorkerDown, TickwatchGatewayDown).",
            "short",
            [Query(f"sum by (job) (up{JOBS})", "{{job}}")],
            colours=(("red", None), ("green", 1)),
        ),
        big_number(
            "Ticks applied per second",
            "Ticks applied to market state, all workers.",
            PER_SECOND,
            [Query(rate("tickwatch_ticks_applied_total"), "applied")],
        ),
        big_number(
            "Tick to alert p99, from ingest",
            "Red above the 25 ms budget (alert TickwatchTickToAlertSlow).",
            "s",
            [Query(quantile(0.99, LATENCY, selector='{since="ingest"}'), "p99")],
            colours=(("green", None), ("red", TICK_TO_ALERT_BUDGET_S)),
        ),
        big_number(
            "Consumer lag, all partitions",
            "Messages behind the high watermarks, summed over every owned partition.",
            "short",
            [Query("sum (tickwatch_consumer_lag_messages)", "behind")],
        ),
    ]


def _processes() -> list[Any]:
    return [
        graph(
            "Process CPU",
            "CPU time per second of each process (1 = one core).",
            "percentunit",
            [
                Query(
                    f"rate(process_cpu_seconds_total{JOBS}[$__rate_interval])",
                    "{{job}} {{instance}}",
                )
            ],
            width=12,
        ),
        graph(
            "Process memory",
            "Resident memory of each process.",
            "bytes",
            [Query(f"process_resident_memory_bytes{JOBS}", "{{job}} {{instance}}")],
            width=12,
        ),
    ]


def overview() -> dict[str, Any]:
    """The overview dashboard as Grafana JSON data."""
    dashboard = new_dashboard(
        "tickwatch overview",
        UID,
        "Throughput, tick-to-alert latency, lag, dead letters, alerts, gateway and processes.",
    )
    sections = (
        ("At a glance", _glance()),
        ("Throughput and outcomes", _throughput()),
        ("Latency, batches and Redis", _latency()),
        ("Lag", _lag()),
        ("Gateway", _gateway()),
        ("Processes", _processes()),
    )
    for title, panels in sections:
        dashboard = dashboard.with_row(Row(title))
        for panel in panels:
            dashboard = dashboard.with_panel(panel)
    return finish(dashboard, (FIRING,))
