"""`tickwatch bench --quick`: the benchmark still runs end to end (speed is not checked)."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import orjson


def test_the_quick_benchmark_measures_every_figure(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    done = subprocess.run(
        [sys.executable, "-m", "streams.cli", "bench", "--quick", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=400,
        env=dict(os.environ),
    )
    assert done.returncode == 0, done.stderr[-3000:]
    figures = orjson.loads(out.read_bytes())
    for key in (
        "raw_msgs_per_s",
        "faust_bare_msgs_per_s",
        "pipeline_msgs_per_s",
        "batched_ticks_per_s",
        "redis_roundtrips_per_tick",
    ):
        assert figures[key] > 0, key
    latency = figures["latency_ms"]
    assert latency["alerts"] > 0
    assert all(math.isfinite(latency[q]) and latency[q] > 0 for q in ("p50", "p99", "p999"))
    assert figures["cpu_s_per_million_ticks"]["one_worker"] > 0
    assert figures["cpu_s_per_million_ticks"]["two_workers"] > 0
    cost = figures["metrics_cost"]
    assert cost["throughput_ratio"] > 0 and cost["batched_ticks_per_s_without"] > 0
    assert cost["alerts_with"] > 0 and cost["alerts_without"] > 0
    assert math.isfinite(cost["p99_ms_with"]) and math.isfinite(cost["p99_ms_without"])
    rows = ("(a) raw", "(b) bare Faust", "(c) pipeline, single", "(d) p50", "Redis round",
            "(e) metrics: batched", "(e) metrics: p99")  # fmt: skip
    for row in rows:
        assert row in done.stdout
