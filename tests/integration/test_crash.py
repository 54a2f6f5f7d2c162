"""Years of history and ticks through the real pipeline, killing the worker (-9) mid-replay.

Afterwards the alerts topic must hold exactly the oracle's alerts, each once: the
check Kafka's streams_eos_test and Jepsen make, by id (missing, duplicate,
unexpected, mismatched).
"""

from __future__ import annotations

import random
import time
from datetime import date
from pathlib import Path

from alerts.core.sessions import get_calendar
from schemas.alerts import Alert
from schemas.settings import Settings
from streams.dev.children import stop_child
from streams.dev.workers import start_worker, wait_until
from streams.market_files import load_market
from streams.replay import publish_ticks, session_ends
from streams.seed import run_seed
from tests.integration.support import committed, processed_all, read_topic
from tests.market_data import Story, interleave, story
from tests.oracle import compare, oracle

SYMBOLS = ["0700.HK", "9988.HK", "9888.HK", "3690.HK", "1810.HK"]


def write_inputs(tmp_path: Path, stories: list[Story]) -> tuple[Path, Path]:
    instruments = tmp_path / "instruments.yaml"
    lines = ["instruments:"] + [f"  - {{symbol: '{s}', exchange: XHKG}}" for s in SYMBOLS]
    instruments.write_text("\n".join(lines) + "\n")
    history = tmp_path / "history.csv"
    rows = ["date,symbol,close"]
    rows += [f"{d.isoformat()},{s.symbol},{c}" for s in stories for d, c in s.seeded]
    history.write_text("\n".join(rows) + "\n")
    return instruments, history


def test_kill_9_during_a_replay_still_gives_exactly_the_oracles_alerts(
    base_settings: Settings,
    broker,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    rng = random.Random(20250918)
    hk = get_calendar("XHKG")
    stories = [
        story(s, hk, date(2022, 12, 30), date(2025, 6, 30), date(2025, 9, 19), rng) for s in SYMBOLS
    ]
    instruments, history = write_inputs(tmp_path, stories)
    settings = base_settings.model_copy(
        update={
            "kafka_bootstrap": broker.bootstrap,
            "instruments_file": instruments,
            "batch_max": 20,
            # A killed worker leaves the group only when its session times out; each
            # restart waits for that (the default 6 s, up to twice, made most of the
            # test's time). Short, yet many heartbeats long.
            "session_timeout_s": 3.0,
            "heartbeat_interval_s": 0.5,
            "log_level": "warn",
        }
    )
    market = load_market(settings)
    assert settings.redis_url is not None
    report = run_seed(settings.redis_url, settings.key_prefix, market, history)
    assert report.applied == sum(len(s.seeded) for s in stories)

    ticks = interleave(stories)
    ends = publish_ticks(
        ticks, settings.kafka_bootstrap, settings.topic_ticks, None, session_ends(ticks, market)
    )
    total = sum(ends.values())
    log = tmp_path / "worker.log"
    worker = start_worker(settings, log)
    kills = 0
    try:
        for fraction in (0.15, 0.35, 0.55, 0.75):

            def progressed(target: float = fraction * total) -> bool:
                return (
                    sum(max(o, 0) for o in committed(settings, settings.topic_ticks).values())
                    >= target
                )

            wait_until(progressed, 120, f"{fraction:.0%} of the ticks", log)
            time.sleep(rng.uniform(0.0, 0.3))
            if worker.poll() is None:
                worker.kill()  # SIGKILL: no shutdown hook runs
                worker.wait()
                kills += 1
            worker = start_worker(settings, log)
        wait_until(processed_all(settings, ends), 180, "every tick", log)
    finally:
        stop_child(worker)
    assert kills >= 3

    got = [Alert.model_validate_json(m.value()) for m in read_topic(
        settings.kafka_bootstrap, settings.topic_alerts)]  # fmt: skip
    expected = [
        e for s in stories for e in oracle(s.symbol, "stock", hk, market.rules, s.seeded, s.ticks)
    ]
    assert len(expected) > 500
    assert {e.rule for e in expected} >= {"daily_gain", "four_year_high", "ytd_gain"}
    problems = compare(got, expected)
    assert problems == {"missing": [], "duplicate": [], "unexpected": [], "mismatched": []}, (
        f"{len(got)} alerts on the topic, {len(expected)} expected; "
        + "; ".join(f"{k}: {len(v)} e.g. {v[:2]}" for k, v in problems.items() if v)
    )
    assert "outbox recovery" in log.read_text() or kills == 0
