"""Stopping `tickwatch demo` leaves no process behind when SIGKILL ends it. (SIGTERM, as
Ctrl-C, is tested at the end of tests/e2e/test_demo_page.py, on the demo that test runs.)"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import pytest

from tests.e2e.test_cli import TICKWATCH

TICKS = (
    "ts,symbol,price\n"
    "2025-01-02T15:00:00-05:00,ACME,10\n"
    "2025-01-03T15:00:00-05:00,ACME,9\n"
    "2025-01-06T10:00:00-05:00,ACME,9.5\n"
)


def stat_of(pid: int) -> tuple[str, str] | None:
    """(state, start time) of a process, or None when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return fields[0], fields[19]


def alive(pid: int, started: str) -> bool:
    """The same process (not a reused pid) still exists and is not a zombie."""
    found = stat_of(pid)
    return found is not None and found[1] == started and found[0] not in "ZX"


def descendants(pid: int) -> dict[int, str]:
    """Every process below pid, with its start time."""
    found: dict[int, str] = {}
    parents = [pid]
    while parents:
        parent = parents.pop()
        for task in Path(f"/proc/{parent}/task").glob("*"):
            try:
                children = (task / "children").read_text().split()
            except OSError:
                continue
            for child in map(int, children):
                stat = stat_of(child)
                if stat is not None:
                    found[child] = stat[1]
                    parents.append(child)
    return found


def command_of(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


@contextmanager
def running_demo(
    tmp_path: Path,
) -> Iterator[tuple[subprocess.Popen[str], dict[int, str], list[str]]]:
    """`tickwatch demo --keep-running` on a small file with an embedded Redis, past its
    summary line; yields it, its worker, gateway, broker and redis-server, and the lines
    it printed. Whatever survives the test is killed afterwards, by pid."""
    ticks = tmp_path / "ticks.csv"
    ticks.write_text(TICKS)
    env = {k: v for k, v in os.environ.items() if k != "TICKWATCH_REDIS_URL"}
    env["TICKWATCH_GATEWAY_PORT"] = "0"  # any free port: tests may run side by side
    with (tmp_path / "demo.err").open("w") as err:
        demo = subprocess.Popen(
            [*TICKWATCH, "demo", "--ticks", str(ticks), "--keep-running"],
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            env=env,
        )
    children: dict[int, str] = {}
    try:
        lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=_read_into, args=(demo.stdout, lines), daemon=True).start()
        deadline = time.monotonic() + 120
        printed = [_next_line(lines)]
        while "demo: alerts:" not in printed[-1]:  # the summary's last line
            if demo.poll() is not None or time.monotonic() > deadline:
                err = (tmp_path / "demo.err").read_text()[-3000:]
                pytest.fail(f"the demo printed no summary (exit {demo.returncode}):\n{err}")
            printed.append(_next_line(lines))
        children = descendants(demo.pid)
        commands = [command_of(pid) for pid in children]
        for child in ("redis-server", "streams.cli worker", "streams.cli gateway",
                      "streams.cli broker"):  # fmt: skip
            assert any(child in c for c in commands), (child, commands)
        yield demo, children, [line for line in printed if line]
    finally:
        demo.kill()
        demo.wait()
        for pid, started in children.items():
            if alive(pid, started):
                os.kill(pid, signal.SIGKILL)


def _read_into(stream: IO[str] | None, lines: queue.Queue[str]) -> None:
    for line in stream or ():
        lines.put(line)


def _next_line(lines: queue.Queue[str]) -> str:
    try:
        return lines.get(timeout=1)
    except queue.Empty:
        return ""


def survivors(children: dict[int, str], within_s: float) -> list[str]:
    deadline = time.monotonic() + within_s
    while True:
        left = [command_of(pid) for pid, started in children.items() if alive(pid, started)]
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.1)


@pytest.mark.slow
def test_children_die_with_a_demo_killed_by_sigkill(tmp_path: Path) -> None:
    with running_demo(tmp_path) as (demo, children, _):
        demo.kill()
        demo.wait(timeout=10)
        assert survivors(children, 10) == []
