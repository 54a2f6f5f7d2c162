"""Ticks of the 1990s through the real pipeline: placed in their sessions, not dead-lettered.

Calendars once began on 2000-01-03, so a worker dead-lettered every earlier tick as
beyond_calendar and the records and "since" dates of later years changed. Here seeded
closes from 1995 and ticks from 1997 into January 2000, on XNYS and XHKG, must raise
exactly the oracle's alerts.
"""

from __future__ import annotations

import random
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
from tests.integration.support import processed_all, read_topic
from tests.market_data import interleave, story
from tests.oracle import compare, oracle

EXCHANGES = {"NYA": "XNYS", "NYB": "XNYS", "0005.HK": "XHKG"}


def test_a_replay_of_the_1990s_gives_the_oracles_alerts(settings: Settings, tmp_path: Path) -> None:
    rng = random.Random(19971028)
    # Built from 1995 outright: the test's own view of the sessions, whatever the
    # worker does.
    calendars = {x: get_calendar(x, start=date(1995, 1, 1)) for x in set(EXCHANGES.values())}
    stories = [
        story(
            symbol,
            calendars[exchange],
            seed_until=date(1996, 12, 31),
            daily_until=date(1999, 11, 30),
            intraday_until=date(2000, 1, 14),
            rng=rng,
            start=date(1995, 1, 3),
        )
        for symbol, exchange in EXCHANGES.items()
    ]
    instruments = tmp_path / "instruments.yaml"
    instruments.write_text(
        "instruments:\n"
        + "".join(f"  - {{symbol: '{s}', exchange: {x}}}\n" for s, x in EXCHANGES.items())
    )
    history = tmp_path / "history.csv"
    rows = [f"{d.isoformat()},{s.symbol},{c}" for s in stories for d, c in s.seeded]
    history.write_text("\n".join(["date,symbol,close", *rows]) + "\n")
    settings = settings.model_copy(update={"instruments_file": instruments, "log_level": "warn"})
    market = load_market(settings)
    assert settings.redis_url is not None
    report = run_seed(settings.redis_url, settings.key_prefix, market, history)
    assert report.applied == sum(len(s.seeded) for s in stories)

    ticks = interleave(stories)
    assert ticks[0].ts.year == 1997 and len(ticks) < 3000
    log = tmp_path / "worker.log"
    worker = start_worker(settings, log)
    try:
        ends = publish_ticks(
            ticks,
            settings.kafka_bootstrap,
            settings.topic_ticks,
            ends=session_ends(ticks, market),
            batch=100,
        )
        wait_until(processed_all(settings, ends), 120, "every tick", log)
    finally:
        stop_child(worker)

    dead = read_topic(settings.kafka_bootstrap, settings.topic_dlq)
    reasons = sorted({dict(m.headers() or [])["reason"].decode() for m in dead})
    assert reasons == [], f"{len(dead)} dead letters: {reasons}"
    assert report.not_sessions == 0
    got = [Alert.model_validate_json(m.value()) for m in read_topic(
        settings.kafka_bootstrap, settings.topic_alerts)]  # fmt: skip
    expected = [
        e
        for s in stories
        for e in oracle(
            s.symbol, "stock", calendars[EXCHANGES[s.symbol]], market.rules, s.seeded, s.ticks
        )
    ]
    assert {e.rule for e in expected} >= {"daily_gain", "daily_loss", "four_year_high"}
    assert any(e.session.year < 2000 and e.since for e in expected)
    problems = compare(got, expected)
    assert problems == {"missing": [], "duplicate": [], "unexpected": [], "mismatched": []}, (
        f"{len(got)} alerts on the topic, {len(expected)} expected; "
        + "; ".join(f"{k}: {len(v)} e.g. {v[:2]}" for k, v in problems.items() if v)
    )
