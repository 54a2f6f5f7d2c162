"""The benchmark: the pipeline measured against its own ceilings, in one run, side by side.

(a) a raw confluent-kafka consume-and-decode loop, (b) a bare Faust agent, (c) the
full tickwatch pipeline (single-tick and batched messages, one and two workers),
(d) tick-to-alert latency at a fixed offered load, (e) what the Prometheus metrics
cost: the batched stage again with metrics off, and latency with and without them at a
load one worker keeps up with (so that queueing does not drown the difference).
Everything runs on the embedded broker and a real Redis, as separate processes, like a
deployment.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from confluent_kafka import Consumer, TopicPartition
from redis import Redis

from alerts.delivery.kafka import LIVE_FEED, producer_for
from alerts.delivery.kafka_offsets import partitions_of, read_to_end
from schemas.settings import Settings
from schemas.ticks import Tick
from streams.dev.bench_market import Scale, seed, walk, write_history, write_market
from streams.dev.broker import spawn_broker
from streams.dev.children import spawn, stop_child
from streams.dev.redis_server import embedded_redis
from streams.dev.workers import (
    Settling,
    TimedOut,
    backlog,
    joined,
    running_workers,
    wait_until,
    worker_counts,
)
from streams.metrics import read_counts
from streams.replay import encode, publish_ticks
from streams.topics import TopicSpec

PARTITIONS = 4

FULL = Scale(2000, 10, 50, 200_000, 100_000, 100, 5000, 10.0)
QUICK = Scale(200, 2, 20, 3_000, 3_000, 100, 2000, 1.5)


@dataclass
class Run:
    """One pipeline run's figures."""

    ticks: int
    elapsed_s: float
    cpu_s: float
    roundtrips: int

    @property
    def rate(self) -> float:
        return self.ticks / self.elapsed_s if self.elapsed_s > 0 else 0.0


# -- processes -------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def settled(settings: Settings) -> Settling:
    """True once the workers have committed everything, and their counts cover it."""
    url, prefix = settings.redis_url, settings.key_prefix
    assert url is not None
    return Settling(lambda: backlog(settings, {}), lambda: worker_counts(url, prefix))


def wait(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    """Wait as every stage does: a RuntimeError when time is up."""
    try:
        wait_until(condition, timeout_s, what)
    except TimedOut as error:
        raise RuntimeError(f"benchmark: {error}") from None


# -- the stages ------------------------------------------------------------------------


def raw_consume(bootstrap: str, topic: str, count: int) -> float:
    """(a) confluent-kafka consume + JSON decode, messages per second."""
    # The same bounded fetch wait the workers use (see TICKWATCH_FETCH_MAX_WAIT_MS).
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"bench-raw-{os.getpid()}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False,
                         "fetch.wait.max.ms": 10})  # fmt: skip
    partitions = partitions_of(consumer, topic, 10)
    seen = 0
    # Assigned, not subscribed: the clock starts before the first fetch, with no
    # group join to wait for, so it times fetching as well as decoding.
    started = time.perf_counter()
    consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
    try:
        while seen < count:
            for msg in consumer.consume(1000, timeout=1.0):
                if msg.error():
                    continue
                orjson.loads(msg.value() or b"{}")
                seen += 1
        return seen / (time.perf_counter() - started)
    finally:
        consumer.close()


def faust_bare(bootstrap: str, topic: str, count: int, folder: Path) -> dict[str, float]:
    """(b) a Faust agent that only decodes JSON."""
    out = folder / "faust.json"
    proc = spawn(
        [sys.executable, "-m", "streams.dev.bench_faust", bootstrap, topic, str(count), str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait(out.exists, 180, "the bare Faust agent")
        time.sleep(0.1)
        result: dict[str, float] = json.loads(out.read_text())
        return result
    finally:
        stop_child(proc)


def pipeline(
    settings: Settings, redis: Redis, ticks: Sequence[Tick], batch: int | None, count: int,
    log: Path,
) -> Run:  # fmt: skip
    """(c) the whole pipeline on a burst of ticks, by `count` worker processes."""
    rng = random.Random(1)
    with running_workers(settings, count, log) as procs:
        # Warm up until every worker has joined and processed something.
        pids = {p.pid for p in procs}
        start = ticks[0].ts - timedelta(minutes=1)

        def warm() -> list[Tick]:
            return [Tick(symbol=f"B{rng.randrange(50):04d}", price=1.0, ts=start)
                    for _ in range(20)]  # fmt: skip

        wait(joined(settings, redis, pids, warm), 120, f"{count} worker(s) to join")
        wait(settled(settings), 60, "the warm-up")
        before = read_counts(redis, settings.key_prefix)
        cpu_before = sum(cpu_seconds(pid) for pid in pids)
        began = time.time()
        publish_ticks(ticks, settings.kafka_bootstrap, settings.topic_ticks, batch=batch)
        wait(settled(settings), 600, "the burst")
        cpu = sum(cpu_seconds(pid) for pid in pids) - cpu_before
        after = read_counts(redis, settings.key_prefix)
    ended = max(c["last_ms"] for c in after.values()) / 1000
    trips = sum(after[p]["redis_roundtrips"] - before.get(p, {}).get("redis_roundtrips", 0)
                for p in after)  # fmt: skip
    return Run(len(ticks), ended - began, cpu, trips)


def latency(settings: Settings, redis: Redis, scale: Scale, hot: Sequence[str], log: Path,
            rate: int, seconds: float, count: int = 1) -> list[float]:  # fmt: skip
    """(d) tick-to-alert latency, ms, at a fixed offered load with ts = now."""
    rng = random.Random(2)
    prices = {s: 100.0 for s in hot}
    seed(settings, write_history(log.parent, scale, datetime.now(UTC)))
    with running_workers(settings, count, log) as procs:

        def warm() -> list[Tick]:
            ts = datetime.now(UTC) - timedelta(minutes=1)
            return [Tick(symbol=f"B{i:04d}", price=1.0, ts=ts) for i in range(0, 40, 3)]

        pids = {p.pid for p in procs}
        wait(joined(settings, redis, pids, warm), 120, "the workers to join")
        producer = producer_for(LIVE_FEED, settings.kafka_bootstrap)
        total = int(rate * seconds)
        began = time.perf_counter()
        for n in range(total):
            due = began + n / rate
            pause = due - time.perf_counter()
            if pause > 0.002:
                time.sleep(pause)
            if n % 50 == 0:
                symbol = hot[(n // 50) % len(hot)]
                prices[symbol] *= 1.011  # each hot tick crosses the next 1% rung
                price = prices[symbol]
            else:
                symbol, price = f"B{rng.randrange(scale.instruments):04d}", rng.uniform(10, 11)
            tick = Tick(symbol=symbol, price=round(price, 4), ts=datetime.now(UTC))
            producer.produce(settings.topic_ticks, key=symbol.encode(), value=encode(tick))
            producer.poll(0)
        producer.flush(30)
        wait(settled(settings), 120, "the latency run")
    out = []
    for msg in read_to_end(settings.kafka_bootstrap, settings.topic_alerts):
        alert = orjson.loads(msg.value() or b"{}")
        if alert.get("rule") == "hot" and alert.get("stage") == "intraday":
            event_ms = datetime.fromisoformat(alert["ts"]).timestamp() * 1000
            out.append(msg.timestamp()[1] - event_ms)
    return sorted(out)


def percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return float("nan")
    return values[min(len(values) - 1, int(q * len(values)))]


def latency_figures(values: Sequence[float], offered: int) -> dict[str, float]:
    """A latency run's p50, p99 and p99.9 (ms), its number of alerts and offered load."""
    figures = {name: round(percentile(values, q), 2)
               for name, q in (("p50", 0.50), ("p99", 0.99), ("p999", 0.999))}  # fmt: skip
    return {**figures, "alerts": len(values), "offered_ticks_per_s": offered}


# -- the run ---------------------------------------------------------------------------

STAGES = ("single", "batched", "two", "latency", "light", "batched_off", "cost_on", "cost_off")


def stage_settings(
    base: Settings, name: str, files: tuple[Path, Path, Path], metrics: bool = True
) -> Settings:
    instruments, indices, rules = files
    return base.model_copy(
        update={
            "metrics_enabled": metrics,
            "app_id": f"bench-{name}",
            "key_prefix": f"bench-{name}",
            "topic_ticks": f"ticks.{name}",
            "topic_alerts": f"alerts.{name}",
            "topic_dlq": f"dlq.{name}",
            "topic_constituents": f"constituents.{name}",
            "ticks_partitions": PARTITIONS,
            "instruments_file": instruments,
            "indices_file": indices,
            "rules_file": rules,
            "log_level": "warn",
        }
    )


def run_bench(quick: bool, emit: Callable[[str], None] = print) -> dict[str, Any]:
    scale = QUICK if quick else FULL
    folder = Path(tempfile.mkdtemp(prefix="tickwatch-bench-"))
    hot = [f"B{i:04d}" for i in range(scale.instruments - 20, scale.instruments)]
    files = write_market(folder, scale, hot)
    specs = [TopicSpec("bench.raw", PARTITIONS)]
    for name in STAGES:
        specs += [TopicSpec(f"{kind}.{name}", PARTITIONS)
                  for kind in ("ticks", "alerts", "dlq", "constituents")]  # fmt: skip
    with ExitStack() as stack:
        # Two workers started together join the group as one generation within 1 s;
        # joining apart would cost a rebalance of most of a session timeout.
        broker = spawn_broker(specs, join_delay_ms=1000)
        stack.callback(broker.stop)
        url = stack.enter_context(embedded_redis())
        redis = Redis.from_url(url)
        base = Settings(kafka_bootstrap=broker.bootstrap, redis_url=url)
        log = folder / "workers.log"
        emit(f"bench: {'quick' if quick else 'full'} run; logs in {folder}")

        rng = random.Random(7)
        start = datetime(2025, 9, 18, 1, 30, tzinfo=UTC)
        raw_ticks = walk(scale, scale.raw_messages, start, rng)
        publish_ticks(raw_ticks, broker.bootstrap, "bench.raw")
        raw = raw_consume(broker.bootstrap, "bench.raw", scale.raw_messages)
        emit(f"bench: (a) raw consume+decode {raw:,.0f} msgs/s")
        bare = faust_bare(broker.bootstrap, "bench.raw", scale.raw_messages, folder)
        bare_rate = bare["count"] / bare["elapsed_s"]
        emit(f"bench: (b) bare Faust agent {bare_rate:,.0f} msgs/s")

        ticks = walk(scale, scale.pipeline_ticks, start + timedelta(hours=1), rng)
        single = pipeline(stage_settings(base, "single", files), redis, ticks, None, 1, log)
        emit(f"bench: (c) pipeline, single-tick messages: {single.rate:,.0f} ticks/s")
        batched = pipeline(stage_settings(base, "batched", files), redis, ticks, scale.batch, 1,
                           log)  # fmt: skip
        emit(f"bench: (c) pipeline, batches of {scale.batch}: {batched.rate:,.0f} ticks/s")
        # (e) The same stage with metrics off, right after it, on the same machine.
        off = pipeline(stage_settings(base, "batched_off", files, metrics=False), redis, ticks,
                       scale.batch, 1, log)  # fmt: skip
        emit(f"bench: (e) batched again, metrics off: {off.rate:,.0f} ticks/s")
        two = pipeline(stage_settings(base, "two", files), redis, ticks, None, 2, log)
        emit(f"bench: (c) pipeline, two workers: {two.rate:,.0f} ticks/s")
        lat = latency(stage_settings(base, "latency", files), redis, scale, hot, log,
                      scale.rate, scale.latency_s, count=2)  # fmt: skip
        emit(f"bench: (d) latency at {scale.rate:,}/s, two workers, over {len(lat)} alerts")
        light = latency(stage_settings(base, "light", files), redis, scale, hot, log,
                        scale.rate // 5, scale.latency_s)  # fmt: skip
        emit(f"bench: (d) latency at {scale.rate // 5:,}/s, one worker, over {len(light)} alerts")
        # (e) Latency with and without metrics, one after the other, at a quarter of the
        # light load and for twice as long: enough alerts for a p99 of a worker that
        # is not queueing.
        cost_rate, cost_s = scale.rate // 20, scale.latency_s * 2
        costs = [
            latency(stage_settings(base, f"cost_{name}", files, metrics=on), redis, scale, hot,
                    log, cost_rate, cost_s)
            for name, on in (("on", True), ("off", False))
        ]  # fmt: skip
        emit(f"bench: (e) latency at {cost_rate:,}/s with and without metrics, over "
             f"{len(costs[0])} and {len(costs[1])} alerts")  # fmt: skip
        redis.close()

    return {
        "mode": "quick" if quick else "full",
        "instruments": scale.instruments,
        "indices": scale.indices,
        "raw_msgs_per_s": round(raw),
        "faust_bare_msgs_per_s": round(bare_rate),
        "pipeline_msgs_per_s": round(single.rate),
        "batched_ticks_per_s": round(batched.rate),
        "two_workers_msgs_per_s": round(two.rate),
        "latency_ms": {**latency_figures(lat, scale.rate), "workers": 2},
        "latency_ms_light": latency_figures(light, scale.rate // 5),
        "redis_roundtrips_per_tick": round(single.roundtrips / single.ticks, 4),
        "metrics_cost": {
            "throughput_ratio": round(batched.rate / off.rate, 3) if off.rate else float("nan"),
            "batched_ticks_per_s_without": round(off.rate),
            # The worker's CPU per tick: less at the mercy of other processes on the
            # machine than its throughput.
            "cpu_s_per_million_ticks_with": round(batched.cpu_s / batched.ticks * 1e6, 1),
            "cpu_s_per_million_ticks_without": round(off.cpu_s / off.ticks * 1e6, 1),
            "offered_ticks_per_s": cost_rate,
            "p50_ms_with": latency_figures(costs[0], 0)["p50"],
            "p50_ms_without": latency_figures(costs[1], 0)["p50"],
            "p99_ms_with": latency_figures(costs[0], 0)["p99"],
            "p99_ms_without": latency_figures(costs[1], 0)["p99"],
            "alerts_with": len(costs[0]),
            "alerts_without": len(costs[1]),
        },
        "cpu_s_per_million_ticks": {
            "one_worker": round(single.cpu_s / single.ticks * 1e6, 1),
            "two_workers": round(two.cpu_s / two.ticks * 1e6, 1),
        },
    }


def table(result: dict[str, Any]) -> str:
    """Each figure beside its target, as ratios measured in this one run."""
    raw, bare = result["raw_msgs_per_s"], result["faust_bare_msgs_per_s"]
    single, batched = result["pipeline_msgs_per_s"], result["batched_ticks_per_s"]
    lat, cpu = result["latency_ms"], result["cpu_s_per_million_ticks"]
    trips = result["redis_roundtrips_per_tick"]
    cost = result["metrics_cost"]
    p99_added = cost["p99_ms_with"] - cost["p99_ms_without"]
    scaling = cpu["two_workers"] / cpu["one_worker"] - 1 if cpu["one_worker"] else float("nan")
    rows = [
        ("(a) raw consume + decode", f"{raw:,} msgs/s", "ceiling", ""),
        ("(b) bare Faust agent", f"{bare:,} msgs/s", "ceiling", ""),
        ("(c) pipeline, single ticks", f"{single:,} ticks/s", ">= 0.80 x (b)",
         _verdict(single / bare, 0.80)),
        ("(c) pipeline, batched", f"{batched:,} ticks/s", ">= 0.90 x (a)",
         _verdict(batched / raw, 0.90)),
        ("(c) two workers", f"{result['two_workers_msgs_per_s']:,} ticks/s", "reported", ""),
        (f"(d) p50 / p99 / p99.9 @ {lat['offered_ticks_per_s']:,}/s, 2 workers",
         f"{lat['p50']} / {lat['p99']} / {lat['p999']} ms", "p99 <= 25 ms",
         "ok" if lat["p99"] <= 25 else "MISSED"),
        (f"(d) the same @ {result['latency_ms_light']['offered_ticks_per_s']:,}/s, 1 worker",
         "{p50} / {p99} / {p999} ms".format(**result["latency_ms_light"]), "reported", ""),
        ("Redis round trips per tick", f"{trips}", "<= 0.1", "ok" if trips <= 0.1 else "MISSED"),
        ("(e) metrics: batched with / without", f"{cost['throughput_ratio']}",
         ">= 0.95", _verdict(cost["throughput_ratio"], 0.95)),
        ("(e) metrics: CPU s / 1M ticks with / without",
         f"{cost['cpu_s_per_million_ticks_with']} / {cost['cpu_s_per_million_ticks_without']}",
         "reported", ""),
        (f"(e) metrics: p99 with / without @ {cost['offered_ticks_per_s']:,}/s",
         f"{cost['p99_ms_with']} / {cost['p99_ms_without']} ms", "+1 ms at most",
         "ok" if p99_added <= 1.0 else "MISSED"),
        ("CPU s / 1M ticks, 1 / 2 workers", f"{cpu['one_worker']} / {cpu['two_workers']}",
         "2 within 10% of 1", f"{scaling:+.0%} " + ("ok" if scaling <= 0.10 else "MISSED")),
    ]  # fmt: skip
    width = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, width, strict=True)) for r in rows]
    return "\n".join(lines)


def _verdict(ratio: float, target: float) -> str:
    return f"{ratio:.2f} " + ("ok" if ratio >= target else "MISSED")
