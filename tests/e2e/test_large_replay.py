"""A replay larger than the embedded broker's log keeps every tick, and says so.

The embedded broker keeps about 5 MB per partition and drops older messages whether
or not the workers read them. The short form (CI) puts 70,000 ticks, some 7 MB, on
one partition; `make full` runs the issue's form: 1,000,000 ticks on four partitions
(TICKWATCH_FULL=1).
"""

from __future__ import annotations

import itertools
import os
import random
import re
from pathlib import Path

import orjson
import pytest

from schemas.ticks import Tick
from streams.replay import encode
from tests.e2e.test_cli import run

FULL = os.environ.get("TICKWATCH_FULL") == "1"
TICKS = 1_000_000 if FULL else 70_000
PARTITIONS = "4" if FULL else "1"
pytestmark = pytest.mark.timeout(3600 if FULL else 600)


def write_ticks(path: Path, count: int, symbols: int = 2_000) -> None:
    """Two UTC days of ticks of `symbols` symbols that never move 4%, except EARLY:
    100 at the close of day 1, 105 in the first ticks of day 2."""
    rng = random.Random(7)
    seq = itertools.count(1_000_000)  # rising per symbol: no tick is a seq duplicate
    half = count // 2
    with path.open("w") as out:
        # Volume and seq make each message about 100 bytes: fewer ticks fill the log.
        out.write("ts,symbol,price,volume,seq\n")
        out.write("1758067200000,EARLY,100\n")  # 2025-09-17 00:00Z
        for n in range(half - 2):
            ms = 1758067200000 + n * (80_000_000 // half)
            out.write(f"{ms},S{rng.randrange(symbols):04d},{50 + rng.random():.3f},"
                      f"{rng.randrange(1, 99_999)},{next(seq)}\n")  # fmt: skip
        out.write("1758150000000,EARLY,100\n")  # 2025-09-17 23:00Z: its close
        out.write("1758153600000,EARLY,105\n")  # 2025-09-18 00:00Z: +5%
        for n in range(count - half - 1):
            ms = 1758153601000 + n * (80_000_000 // half)
            out.write(f"{ms},S{rng.randrange(symbols):04d},{50 + rng.random():.3f},"
                      f"{rng.randrange(1, 99_999)},{next(seq)}\n")  # fmt: skip


def test_a_replay_beyond_the_brokers_log_applies_every_tick(tmp_path: Path, redis_url: str) -> None:
    ticks, out = tmp_path / "large.csv", tmp_path / "alerts.jsonl"
    write_ticks(ticks, TICKS)
    sample = encode(Tick(symbol="S0001", price=50.1, ts=1758067200000, volume=54321, seq=10**6))
    # Keys and values alone go beyond the broker's log (about 5 MB a partition).
    assert TICKS * (len(sample) + len("S0001")) > 6_000_000 * int(PARTITIONS)
    done = run(
        ["demo", "--no-gateway", "--ticks", str(ticks), "--alerts-out", str(out)],
        {"TICKWATCH_REDIS_URL": redis_url, "TICKWATCH_TICKS_PARTITIONS": PARTITIONS},
        timeout=1800 if FULL else 600,
    )
    print(done.stdout[-700:])  # the summary, for `make full`
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    worker = re.search(r"worker: (\d+) applied, 0 ignored, 0 dead-lettered, 0 held", done.stdout)
    assert worker is not None, done.stdout[-2000:]
    assert int(worker.group(1)) == TICKS
    assert "lost: 0 ticks; 0 messages skipped" in done.stdout
    alerts = [orjson.loads(line) for line in out.read_text().splitlines()]
    early = sorted((a["stage"], a["threshold"]) for a in alerts if a["instrument"] == "EARLY")
    assert early == [("close", 4.0), ("close", 5.0), ("intraday", 4.0), ("intraday", 5.0)]
