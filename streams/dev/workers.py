"""Worker processes for development: started as children, watched until they settle, stopped."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from redis import Redis

from schemas.settings import Settings
from streams.dev.children import spawn_tickwatch, stop_child
from streams.metrics import read_counts, summed


@contextmanager
def running_worker(settings: Settings, log_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`tickwatch worker` as a child process, stopped (SIGTERM) on exit."""
    with log_path.open("wb") as log:
        worker = spawn_tickwatch(["worker"], settings, log)
        try:
            yield worker
        finally:
            stop_child(worker)


def worker_counts(url: str, prefix: str) -> dict[str, int]:
    """Every worker's counts under this prefix, summed (see streams.metrics)."""
    client = Redis.from_url(url)
    try:
        return summed(read_counts(client, prefix).values())
    finally:
        client.close()
