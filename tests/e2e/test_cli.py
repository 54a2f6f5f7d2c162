"""The `tickwatch` command as a user runs it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

TICKWATCH = [sys.executable, "-m", "streams.cli"]


def run(args: list[str], env: dict[str, str] | None = None, timeout: float = 240):
    return subprocess.run(
        TICKWATCH + args,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def test_demo_tells_the_hang_seng_tech_rally(tmp_path: Path, redis_url: str) -> None:
    out = tmp_path / "alerts.jsonl"
    env = {"TICKWATCH_REDIS_URL": redis_url, "TICKWATCH_GATEWAY_PORT": "0"}
    done = run(["demo", "--alerts-out", str(out)], env)
    assert done.returncode == 0, done.stderr[-3000:]
    # The page, served while the demo runs, and stopped with it.
    assert re.search(r"^demo: live page http://127\.0\.0\.1:\d+/#token=tw_\S+\n"
                     r"demo: the page stops with the demo; --keep-running keeps it up$",
                     done.stdout, re.M), done.stdout[:2000]  # fmt: skip
    # One metrics endpoint per process, each on a port of its own.
    metrics = re.findall(r"^demo: (worker|gateway) metrics: http://127\.0\.0\.1:(\d+)/metrics$",
                         done.stdout, re.M)  # fmt: skip
    assert [process for process, _ in metrics] == ["worker", "gateway"], done.stdout[:2000]
    assert len({port for _, port in metrics}) == 2
    alerts = [orjson.loads(line) for line in out.read_text().splitlines()]
    index = {(a["rule"], a["stage"]): a for a in alerts if a["instrument"] == "HSTECH"}
    gain = index[("daily_gain", "intraday")]
    assert gain["session"] == "2025-09-18" and gain["since"].startswith("2021-11")
    assert gain["change"] >= 4.0 and gain["threshold"] == 4.0
    high = index[("four_year_high", "intraday")]
    assert high["session"] == "2025-09-18" and high["since"] < "2021-09-18"
    ytd = index[("ytd_gain", "intraday")]
    assert ytd["threshold"] == 40.0 and ytd["session"] == "2025-09-18"
    close = index[("daily_gain", "close")]
    assert 4.0 <= close["change"] < 4.5 and close["since"].startswith("2021-11")
    leaders = [c["name"] for c in close["index"]["contributors"][:2]]
    assert leaders == ["Baidu", "Alibaba"]
    assert close["index"]["reported"] == close["index"]["constituents"] == 30
    assert "led by Baidu" in done.stdout and "strongest daily gain since 2021-11" in done.stdout
    assert not [a for a in alerts if a["session"] == "2025-09-17" and a["instrument"] == "HSTECH"]


def test_demo_plays_a_file_of_the_users(tmp_path: Path, redis_url: str) -> None:
    ticks = tmp_path / "mine.jsonl"
    rows = [
        {"symbol": "ACME", "price": 10.0, "ts": "2025-01-02T15:00:00-05:00"},
        {"symbol": "ACME", "price": 9.0, "ts": "2025-01-03T15:00:00-05:00"},
        {"symbol": "ACME", "price": 9.5, "ts": "2025-01-06T10:00:00-05:00"},
    ]
    ticks.write_bytes(b"\n".join(orjson.dumps(r) for r in rows))
    rules = tmp_path / "rules.yaml"
    rules.write_text("rules:\n  - {name: gain, kind: daily_move, rungs: [4]}\n")
    out = tmp_path / "alerts.jsonl"
    args = ["demo", "--no-gateway", "--ticks", str(ticks), "--rules", str(rules)]
    done = run([*args, "--alerts-out", str(out)], {"TICKWATCH_REDIS_URL": redis_url})
    assert done.returncode == 0, done.stderr[-3000:]
    alerts = [orjson.loads(line) for line in out.read_text().splitlines()]
    assert [(a["instrument"], a["session"], a["price"]) for a in alerts] == [
        ("ACME", "2025-01-06", 9.5)
    ]


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"TICKWATCH_WEB_PORT": "http"}, "TICKWATCH_WEB_PORT: "),
        ({"TICKWATCH_KAFKA_BOOTSTRAP": "nohostport"}, "TICKWATCH_KAFKA_BOOTSTRAP: "),
    ],
)
def test_a_bad_setting_is_one_line_without_traceback(env: dict[str, str], expected: str) -> None:
    done = run(["replay", "x.csv"], env)
    assert done.returncode == 2
    assert expected in done.stderr
    assert "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_a_bad_tick_file_is_one_line_without_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("ts,symbol,price\n2025-09-18T10:00:00+08:00,BIDU,-1\n")
    done = run(["demo", "--ticks", str(bad)])
    assert done.returncode == 2
    assert f"{bad}:2: price" in done.stderr
    assert "Traceback" not in done.stderr


def test_help_lists_every_command() -> None:
    done = run(["--help"])
    for command in ("broker", "topics", "worker", "replay", "tail", "demo"):
        assert command in done.stdout


def test_demo_runs_a_users_instruments_rules_and_history(tmp_path: Path, redis_url: str) -> None:
    instruments = tmp_path / "instruments.yaml"
    instruments.write_text("instruments:\n  - {symbol: HSTECH, exchange: XHKG, kind: index}\n")
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "rules:\n"
        "  - {name: four_year_high, kind: multi_year_high, years: 4}\n"
        "  - {name: gain, kind: daily_move, rungs: [4], stages: [intraday, close]}\n"
    )
    history = tmp_path / "history.csv"
    history.write_text(
        "date,symbol,close\n"
        "2021-02-17,HSTECH,200\n2021-11-02,HSTECH,150\n2022-03-15,HSTECH,80\n"
        "2025-09-16,HSTECH,145\n2025-09-17,HSTECH,148\n"
    )
    ticks = tmp_path / "ticks.csv"
    ticks.write_text(
        "ts,symbol,price\n"
        "2025-09-18T09:30:00+08:00,HSTECH,150\n"
        "2025-09-18T11:00:00+08:00,HSTECH,154\n"
        "2025-09-18T15:59:00+08:00,HSTECH,155\n"
    )
    out = tmp_path / "alerts.jsonl"
    args = ["demo", "--no-gateway", "--ticks", str(ticks), "--alerts-out", str(out)]
    args += ["--instruments", str(instruments), "--rules", str(rules), "--history", str(history)]
    done = run(args, {"TICKWATCH_REDIS_URL": redis_url})
    assert done.returncode == 0, done.stderr[-3000:]
    alerts = [orjson.loads(line) for line in out.read_text().splitlines()]
    assert [(a["rule"], a["stage"], a["price"], a["since"]) for a in alerts] == [
        ("four_year_high", "intraday", 154.0, "2021-02-17"),
        # The latest stronger day: 2025-09-16, +81% after a gap in the history.
        ("gain", "intraday", 154.0, "2025-09-16"),
        ("gain", "close", 155.0, "2025-09-16"),
    ]
    assert alerts[2]["ts"] == "2025-09-18T08:00:00Z"  # the HKEX close, 16:00 HKT
    assert "seeded 5 daily closes" in done.stdout


def test_topics_on_a_broker_that_cannot_create_them_is_one_line(tmp_path: Path) -> None:
    from streams.dev.broker import spawn_broker
    from streams.topics import TopicSpec

    # The embedded broker has no CreateTopics API: the user gets Kafka's reason in a line.
    # It never answers the request, so the timeout is all the test waits, whatever it is.
    broker = spawn_broker([TopicSpec("other", 1)])
    try:
        done = run(["topics", "--timeout", "1"], {"TICKWATCH_KAFKA_BOOTSTRAP": broker.bootstrap})
    finally:
        broker.stop()
    assert done.returncode == 2, done.stderr
    assert "could not create topic" in done.stderr or "did not answer" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert "Traceback" not in done.stderr


def test_tail_prints_alerts_for_a_person_and_as_json(tmp_path: Path) -> None:
    from alerts.delivery.kafka import BULK_FEED, producer_for
    from streams.dev.broker import spawn_broker
    from streams.topics import TopicSpec

    alert = {
        "alert_id": "a1", "rule": "daily_gain", "kind": "daily_move", "stage": "intraday",
        "instrument": "BIDU", "session": "2025-09-18", "ts": "2025-09-18T06:18:00Z",
        "price": 104.64, "threshold": 4.0, "change": 4.14, "reference_price": 100.48,
        "message": "BIDU today +4.14% at 104.64",
    }  # fmt: skip
    broker = spawn_broker([TopicSpec("alerts", 1)])
    try:
        producer = producer_for(BULK_FEED, broker.bootstrap)
        producer.produce("alerts", key=b"BIDU", value=orjson.dumps(alert))
        producer.flush(10)
        env = {**os.environ, "TICKWATCH_KAFKA_BOOTSTRAP": broker.bootstrap}
        for flags, expected in (([], "BIDU today +4.14%"), (["--json"], '"alert_id":"a1"')):
            tail = subprocess.Popen(
                [*TICKWATCH, "tail", "--from-beginning", *flags],
                stdout=subprocess.PIPE,
                text=True,
                env=env,
            )
            try:
                line = tail.stdout.readline() if tail.stdout else ""
            finally:
                tail.terminate()
                tail.wait(timeout=10)
            assert expected in line
    finally:
        broker.stop()


def test_replay_without_kafka_is_one_line() -> None:
    # (A missing topic cannot be shown here: the embedded broker creates topics on
    # request, as Kafka does with auto.create.topics.enable.)
    ticks = str(Path(__file__).parents[2] / "streams" / "data" / "demo_ticks.csv")
    done = run(["replay", ticks], {"TICKWATCH_KAFKA_BOOTSTRAP": "127.0.0.1:1"})
    assert done.returncode == 2 and "cannot reach Kafka" in done.stderr
    assert "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_demo_replays_a_messy_capture_when_told_to_skip_bad_lines(
    tmp_path: Path, redis_url: str
) -> None:
    ticks = tmp_path / "capture.csv"
    good = [f"2025-09-17T0{h}:00:00+00:00,BIDU,{100 + h}" for h in range(1, 8)]
    bad = ["2025-09-17T09:00:00+00:00,BIDU,NaN", "garbage", "2025-09-17T10:00:00,BIDU,1"]
    ticks.write_text("\n".join([*good[:3], bad[0], *good[3:5], bad[1], bad[2], *good[5:]]))

    stopped = run(["replay", str(ticks)])
    assert stopped.returncode == 2
    assert stopped.stderr.count("\n") == 1, stopped.stderr
    assert stopped.stderr.startswith(f"tickwatch replay: error: {ticks}:4: price")

    done = run(["demo", "--no-gateway", "--ticks", str(ticks), "--skip-bad-lines"],
               {"TICKWATCH_REDIS_URL": redis_url})  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert re.findall(r"capture\.csv:(\d+): skipped: ", done.stdout) == ["4", "7", "8"]
    assert "demo: 3 bad line(s) skipped" in done.stdout
    assert "demo: worker: 7 applied, 0 ignored, 0 dead-lettered" in done.stdout


def test_a_worker_without_kafka_waits_then_stops_in_one_line(redis_url: str) -> None:
    from streams.dev.redis_server import free_port

    bootstrap = f"127.0.0.1:{free_port()}"  # nothing listens there
    env = {
        "TICKWATCH_KAFKA_BOOTSTRAP": bootstrap,
        "TICKWATCH_KAFKA_WAIT_S": "6",
        "TICKWATCH_REDIS_URL": redis_url,
        "TICKWATCH_METRICS_PORT": "0",  # the default 9108 may be another worker's
    }
    done = run(["worker"], env, timeout=60)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr and "\x1b" not in done.stdout + done.stderr
    # Its metrics were served while it waited (a worker waiting for Kafka is up).
    assert re.match(r"tickwatch worker: metrics http://127\.0\.0\.1:\d+/metrics\n$", done.stdout)
    *attempts, last = done.stderr.strip().splitlines()
    assert last.startswith(f"tickwatch worker: error: Kafka at {bootstrap} not ready after 6s")
    assert "TICKWATCH_KAFKA_WAIT_S" in last and "Connection refused" in last
    # Pauses of 1 s, then up to 2 s, between attempts of up to 2 s each.
    assert len(attempts) >= 2, done.stderr
    for number, line in enumerate(attempts, start=1):
        assert f"Kafka at {bootstrap} not ready (attempt {number}): not reachable" in line
        assert "retrying in " in line
    assert "retrying in 1 s" in attempts[0]


def test_a_worker_without_its_ticks_topic_says_run_topics(redis_url: str) -> None:
    from streams.dev.broker import spawn_broker
    from streams.topics import TopicSpec

    broker = spawn_broker([TopicSpec("other", 1)])
    try:
        env = {
            "TICKWATCH_KAFKA_BOOTSTRAP": broker.bootstrap,
            "TICKWATCH_KAFKA_WAIT_S": "2",
            "TICKWATCH_REDIS_URL": redis_url,
            "TICKWATCH_METRICS_PORT": "0",
        }
        done = run(["worker"], env, timeout=60)
    finally:
        broker.stop()
    assert done.returncode == 2, done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last == (
        f"tickwatch worker: error: Kafka at {broker.bootstrap} not ready after 2s "
        "(TICKWATCH_KAFKA_WAIT_S): no topic 'ticks' (run `tickwatch topics`)"
    )
    assert "Traceback" not in done.stderr
