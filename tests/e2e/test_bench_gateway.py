"""`tickwatch bench --gateway --quick`: the gateway benchmark still runs end to end, with
1 and 20 clients each receiving the whole burst, as the gateway's metrics count it too
(speed is not checked)."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import orjson

from streams.dev.bench_gateway import BURST

TICKWATCH = [sys.executable, "-m", "streams.cli"]


def test_the_quick_gateway_benchmark_measures_every_client_and_alert(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    done = subprocess.run(
        [*TICKWATCH, "bench", "--gateway", "--quick", "--json", str(out)],
        capture_output=True, text=True, timeout=180, env=dict(os.environ),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    figures = orjson.loads(out.read_bytes())
    assert figures["burst"] == BURST
    assert [r["clients"] for r in figures["rounds"]] == [1, 20]
    for measured in figures["rounds"]:
        clients = measured["clients"]
        assert measured["received_all"] == measured["connected"] == clients, measured
        assert measured["deliveries"] == clients * BURST, measured
        assert measured["failures"] == {}
        # The gateway's own metrics counted the same deliveries.
        assert measured["gateway_deliveries"] == clients * BURST, measured
        assert measured["gateway_delivery_mean_ms"] > 0, measured
        latencies = [measured[q] for q in ("p50_ms", "p99_ms", "max_ms")]
        assert all(math.isfinite(v) and v > 0 for v in latencies), measured
        assert latencies == sorted(latencies), measured
    assert figures["largest_complete"] == 20 and figures["failed_beyond"] is None
    for text in ("p50 ms", "p99 ms", "max ms", "largest number of clients"):
        assert text in done.stdout


def test_clients_without_gateway_is_one_line() -> None:
    done = subprocess.run([*TICKWATCH, "bench", "--clients", "5"], capture_output=True,
                          text=True, timeout=60)  # fmt: skip
    assert done.returncode == 2
    assert done.stderr == "tickwatch bench: error: --clients goes with --gateway\n"
