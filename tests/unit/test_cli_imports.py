"""`tickwatch replay` and `tickwatch seed` read the market files without importing Faust.

Faust is the worker's concern, slow to import and heavy; a command that only publishes
ticks or loads history should not pay for it.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

# Runs the command in a fresh interpreter, Kafka and Redis replaced by stand-ins (the
# imports under test happen inside the command), then prints the Faust modules loaded.
COMMAND = """
import sys

import streams.redis_ready
import streams.replay
import streams.seed

streams.replay.publish_ticks = lambda *args, **kwargs: {}
streams.seed.run_seed = lambda *args, **kwargs: streams.seed.SeedReport(1, 1, 0, 0)
streams.redis_ready.check_redis = lambda url: None

from streams.cli import main

code = main(sys.argv[1:])
print(sorted(name for name in ("faust", "mode", "aiokafka") if name in sys.modules))
sys.exit(code)
"""


@pytest.mark.parametrize("command", ["replay", "seed"])
def test_the_command_does_not_import_faust(command: str, tmp_path: Path) -> None:
    if command == "replay":
        ticks = tmp_path / "ticks.csv"
        ticks.write_text("ts,symbol,price\n2025-09-18T02:00:00+00:00,BIDU,100\n")
        # --close-sessions: the market (instruments and calendars) is loaded.
        args = ["replay", str(ticks), "--close-sessions", "--no-pace"]
    else:
        history = tmp_path / "history.csv"
        history.write_text("date,symbol,close\n2025-09-17,BIDU,100\n")
        args = ["seed", str(history)]
    done = subprocess.run(
        [sys.executable, "-c", COMMAND, *args], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    assert lines[0].startswith("replayed 1 ticks" if command == "replay" else "seeded 1 closes")
    assert lines[-1] == "[]", f"{command} imported {lines[-1]}"
