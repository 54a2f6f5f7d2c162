"""The demo: embedded broker and Redis, a worker and a gateway, a replayed tick file, its alerts."""

from __future__ import annotations

import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from redis import Redis

from schemas.alerts import Alert
from schemas.errors import TickwatchError
from schemas.settings import Settings
from streams.dev.broker import spawn_broker
from streams.dev.children import announced_metrics
from streams.dev.gateways import RunningGateway, add_user, port_for, running_gateway
from streams.dev.redis_server import embedded_redis
from streams.dev.workers import Settling, backlog, running_workers, worker_counts
from streams.market_files import load_market
from streams.replay import Pace, publish_ticks, read_tick_file, session_ends
from streams.seed import run_seed
from streams.tail import AlertReader, format_alert
from streams.topics import topic_specs

#: How often the demo's worker commits its offsets, unless TICKWATCH_COMMIT_INTERVAL_S
#: is set: the demo knows the worker has settled only from its commits (each round of
#: constituents and index levels waits for one), and they cost little on the
#: embedded broker. A worker's own default is 1 s.
DEMO_COMMIT_INTERVAL_S = 0.2


class DemoError(TickwatchError):
    """The demo could not finish; the message says where to look."""


@dataclass(frozen=True)
class DemoOptions:
    ticks: Path
    history: Path | None = None
    alerts_out: Path | None = None
    keep_running: bool = False
    skip_bad_lines: bool = False
    gateway: bool = True  # serve the live page too
    timeout_s: float = 180.0  # without progress: the clock restarts while ticks are applied


@dataclass(frozen=True)
class Outcome:
    """What the worker did with the replay, from its own counts."""

    published: int  # ticks of the file, plus index levels the worker computed
    counts: dict[str, int]

    @property
    def accounted(self) -> int:
        """Ticks the worker took and settled: applied, ignored, dead-lettered or held.
        (Redeliveries are not counted again.)"""
        ignored = self.labelled("ignored")
        rejected = self.labelled("dead_letters")
        return (
            self.counts.get("applied", 0)
            + sum(ignored.values())
            + sum(rejected.values())
            + self.counts.get("held", 0)
        )

    @property
    def lost(self) -> int:
        """Ticks that never reached the worker, or that it could not apply."""
        return max(0, self.published - self.accounted) + self.counts.get("held", 0)

    def labelled(self, name: str) -> dict[str, int]:
        prefix = f"{name}:"
        return {
            k.removeprefix(prefix): v
            for k, v in sorted(self.counts.items())
            if k.startswith(prefix) and v
        }

    def lines(self) -> list[str]:
        def listed(name: str) -> str:
            found = self.labelled(name)
            total = sum(found.values())
            return f"{total}" + (" (" + ", ".join(f"{k} {v}" for k, v in found.items()) + ")"
                                 if found else "")  # fmt: skip

        gaps = sum(self.labelled("lost").values())
        return [
            f"{self.published} ticks published, {self.counts.get('index_ticks', 0)} of them "
            "index levels the worker computed",
            f"worker: {self.counts.get('applied', 0)} applied, {listed('ignored')} ignored, "
            f"{listed('dead_letters')} dead-lettered, {self.counts.get('held', 0)} held "
            f"(state lost), {self.counts.get('duplicates', 0)} redeliveries ignored",
            f"lost: {self.lost} ticks; {gaps} messages skipped where Kafka had deleted them",
            f"alerts: {listed('alerts')}",
        ]


@dataclass
class DemoResult:
    alerts: list[Alert]
    outcome: Outcome


def run_demo(
    settings: Settings, options: DemoOptions, emit: Callable[[str], None] = print
) -> DemoResult:
    """Play the tick file through the real pipeline; return the alerts it raised and
    what the worker did, by its own counts."""
    tick_file = read_tick_file(options.ticks, options.skip_bad_lines)
    ticks = tick_file.ticks
    for line in tick_file.first_bad(options.ticks):
        emit(f"demo: {line}")
    if tick_file.bad:
        emit(f"demo: {len(tick_file.bad)} bad line(s) skipped in {options.ticks}")
    market = load_market(settings)
    ends = session_ends(ticks, market)
    with ExitStack() as stack:
        broker = spawn_broker(topic_specs(settings))
        stack.callback(broker.stop)
        redis_url = settings.redis_url or stack.enter_context(embedded_redis())
        prefix = settings.key_prefix
        if settings.redis_url:
            # A shared Redis: keep to keys of our own and remove them afterwards.
            prefix = f"{settings.key_prefix}-demo-{uuid.uuid4().hex[:8]}"
            stack.callback(_delete_keys, redis_url, prefix)
        commit_interval_s = (
            settings.commit_interval_s
            if "commit_interval_s" in settings.model_fields_set
            else DEMO_COMMIT_INTERVAL_S
        )
        settings = settings.model_copy(
            update={
                "kafka_bootstrap": broker.bootstrap,
                "redis_url": redis_url,
                "key_prefix": prefix,
                "commit_interval_s": commit_interval_s,
            }
        )
        emit(f"demo: broker {broker.bootstrap}, redis {redis_url}")
        if options.history is not None:
            report = run_seed(redis_url, prefix, market, options.history)
            emit(f"demo: seeded {report.applied} daily closes of {report.instruments} instruments")
        logs = Path(tempfile.mkdtemp(prefix="tickwatch-demo-"))
        log_path = logs / "worker.log"
        (worker,) = stack.enter_context(running_workers(settings, 1, log_path))
        gateway = None
        if options.gateway:
            # Started while the worker starts: its wait costs the replay little.
            gateway = stack.enter_context(_page(settings, logs / "gateway.log", options, emit))
        if settings.metrics_enabled:
            # One line per process, valid while it runs (--keep-running: until Ctrl-C).
            for url in announced_metrics([worker], log_path, "worker"):
                emit(f"demo: worker metrics: {url}")
            if gateway is not None:
                for url in announced_metrics([gateway.process], gateway.log, "gateway"):
                    emit(f"demo: gateway metrics: {url}")
        reader = AlertReader(settings.kafka_bootstrap, settings.topic_alerts, True)
        stack.callback(reader.close)
        emit(f"demo: replaying {len(ticks)} ticks from {options.ticks}; worker log {log_path}")
        pace = Pace(settings.app_id, notice=lambda text: emit(f"demo: {text}"))
        offsets = publish_ticks(
            ticks, settings.kafka_bootstrap, settings.topic_ticks, None, ends, pace=pace
        )
        alerts, counts = _collect(settings, reader, offsets, worker, log_path, options, emit)
        outcome = Outcome(len(ticks) + counts.get("index_ticks", 0), counts)
        for line in outcome.lines():
            emit(f"demo: {line}")
        while options.keep_running and worker.poll() is None:
            if gateway is not None and gateway.process.poll() is not None:
                raise DemoError(
                    f"the gateway exited with code {gateway.process.returncode}; see {gateway.log}"
                )
            alerts += _show(reader, options, emit)
        return DemoResult(alerts, outcome)


@contextmanager
def _page(
    settings: Settings, log_path: Path, options: DemoOptions, emit: Callable[[str], None]
) -> Iterator[RunningGateway]:
    """The gateway serving the live page to a user `demo`, whose token is in the URL."""
    assert settings.redis_url is not None
    # The demo's own key prefix keeps this user apart from any in a shared Redis.
    token = add_user(settings.redis_url, settings.key_prefix, "demo")
    settings = settings.model_copy(update={"gateway_port": port_for(settings)})
    with running_gateway(settings, log_path) as gateway:
        emit(f"demo: live page {gateway.url}/#token={token}")
        if not options.keep_running:
            emit("demo: the page stops with the demo; --keep-running keeps it up")
        yield gateway


def _collect(
    settings: Settings,
    reader: AlertReader,
    ends: dict[int, int],
    worker: subprocess.Popen[bytes],
    log_path: Path,
    options: DemoOptions,
    emit: Callable[[str], None],
) -> tuple[list[Alert], dict[str, int]]:
    """The alerts, and the worker's counts, once it has settled every message."""
    url, prefix = settings.redis_url, settings.key_prefix
    assert url is not None
    settled = Settling(lambda: backlog(settings, ends), lambda: worker_counts(url, prefix))
    alerts: list[Alert] = []
    deadline = time.monotonic() + options.timeout_s
    progress: dict[str, int] = {}
    while True:
        alerts += _show(reader, options, emit)
        if worker.poll() is not None:
            raise DemoError(f"the worker exited with code {worker.returncode}; see {log_path}")
        done = settled()
        counts = settled.counts
        if counts.get("ticks") != progress.get("ticks"):
            deadline = time.monotonic() + options.timeout_s
            progress = counts
        if time.monotonic() > deadline:
            raise DemoError(
                f"no progress for {options.timeout_s:.0f}s, ticks left unprocessed; see {log_path}"
            )
        if done and reader.at_end():
            return alerts, counts


def _show(reader: AlertReader, options: DemoOptions, emit: Callable[[str], None]) -> list[Alert]:
    shown = []
    # Short: between polls, _collect looks whether the worker has settled.
    for raw, alert in reader.poll(0.1):
        if alert is None:
            continue
        shown.append(alert)
        emit(format_alert(alert))
        if options.alerts_out is not None:
            with options.alerts_out.open("ab") as out:
                out.write(raw + b"\n")
    return shown


def _delete_keys(url: str, prefix: str) -> None:
    client = Redis.from_url(url)
    try:
        keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()
