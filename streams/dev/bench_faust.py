"""Benchmark helper: a bare Faust agent that only decodes JSON, to measure Faust's ceiling.

Run as `python -m streams.dev.bench_faust BOOTSTRAP TOPIC COUNT OUT`; it writes
{"count", "elapsed_s", "cpu_s"} to OUT once COUNT messages are decoded, then stops.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import faust

from streams.faust_waits import TablelessManager


def main(bootstrap: str, topic: str, count: int, out: Path) -> None:
    app = faust.App(
        f"bench-faust-{os.getpid()}",
        broker=";".join(f"kafka://{h}" for h in bootstrap.split(",")),
        store="memory://",
        autodiscover=False,
        topic_allow_declare=False,
        topic_disable_leader=True,
        web_enabled=False,
        broker_session_timeout=6,
        broker_heartbeat_interval=1,
        broker_rebalance_timeout=6,
        consumer_auto_offset_reset="earliest",
        # The worker's own start (no 1 s pause for tables); the clock starts at the
        # first batch either way.
        TableManager=TablelessManager,
    )
    source = app.topic(topic, key_serializer="raw", value_serializer="raw")
    seen = {"n": 0, "t0": 0.0, "cpu0": 0.0}

    @app.agent(source)
    async def bare(stream: faust.StreamT[bytes]) -> None:
        async for events in stream.take_events(1000, within=0.02):  # type: ignore[attr-defined]
            if not seen["n"]:
                seen["t0"], seen["cpu0"] = time.perf_counter(), time.process_time()
            for event in events:
                json.loads(event.message.value)
            seen["n"] += len(events)
            if seen["n"] >= count:
                result = {
                    "count": seen["n"],
                    "elapsed_s": time.perf_counter() - seen["t0"],
                    "cpu_s": time.process_time() - seen["cpu0"],
                }
                out.write_text(json.dumps(result))
                os._exit(0)  # measured; no need for a graceful shutdown

    worker = faust.Worker(app, loglevel="error", quiet=True)
    worker.execute_from_commandline()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), Path(sys.argv[4]))
