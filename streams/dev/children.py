"""Child processes of the embedded infrastructure: the broker, Redis, workers.

Every child is started by `spawn`, which ties its life to its parent's: a command
that owns children leaves none behind, whether it ends normally, by Ctrl-C, by
SIGTERM (`unwind_on_sigterm`) or by SIGKILL.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import FrameType
from typing import IO, Any

from schemas.errors import TickwatchError
from schemas.settings import Settings

#: prctl(2) option: the signal the kernel sends a process when its parent dies.
PR_SET_PDEATHSIG = 1

Output = int | IO[Any] | None


class NotAnnounced(TickwatchError):
    """A child did not say where it serves its metrics; the message names its log."""


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived: raised in the main thread, so that every `with` block and
    `finally` clause stops its children exactly as on Ctrl-C."""


def unwind_on_sigterm() -> None:
    """From now on, SIGTERM raises Terminated in the main thread (once; see below)."""
    signal.signal(signal.SIGTERM, _raise_terminated)


def _raise_terminated(signum: int, frame: FrameType | None) -> None:
    # A second SIGTERM during the unwind ends the process at once; its children
    # still die with it (see spawn).
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    raise Terminated()


def spawn(
    args: Sequence[str],
    *,
    stdout: Output = None,
    stderr: Output = None,
    env: Mapping[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """Start a child process that the kernel kills (SIGKILL) when this process dies,
    even by SIGKILL, where no clean-up of ours can run.

    Call it from the main thread: Linux sends the signal when the thread that started
    the child ends, not the process.
    """
    return subprocess.Popen(
        args, stdout=stdout, stderr=stderr, env=env, preexec_fn=_dies_with(os.getpid())
    )


def _dies_with(parent: int) -> Callable[[], None] | None:
    if not sys.platform.startswith("linux"):
        return None
    # Looked up here, before the fork: the child only makes the call.
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    kill = int(signal.SIGKILL)

    def in_child() -> None:
        prctl(PR_SET_PDEATHSIG, kill)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os.kill(os.getpid(), kill)

    return in_child


#: Settings of ports a child serves metrics on: 0 (any free port) unless chosen, so
#: that children never collide on the defaults (they tell the port they got).
METRICS_PORTS = ("metrics_port", "gateway_metrics_port")


def settings_env(settings: Settings) -> dict[str, str]:
    """The settings as TICKWATCH_* variables, to hand to a child process."""
    env = {}
    for name, value in settings.model_dump().items():
        if value is not None:
            env[f"TICKWATCH_{name.upper()}"] = str(value)
    return env


def spawn_tickwatch(
    command: Sequence[str], settings: Settings, log: Output
) -> subprocess.Popen[bytes]:
    """`tickwatch COMMAND...` with these settings, its stdout and stderr to log; its
    metrics on any free port unless `settings` chose one (see `metrics_urls`)."""
    free = {name: 0 for name in METRICS_PORTS if name not in settings.model_fields_set}
    chosen = settings.model_copy(update=free)
    env = {**os.environ, **settings_env(chosen), "PYTHONUNBUFFERED": "1"}
    args = [sys.executable, "-m", "streams.cli", *command]
    return spawn(args, stdout=log, stderr=log, env=env)


def last_lines(path: Path, count: int = 1) -> list[str]:
    """The last non-empty lines a child wrote to its log: usually its reason to stop."""
    try:
        lines = [line.strip() for line in path.read_text(errors="replace").splitlines()]
    except OSError:
        return []
    return [line for line in lines if line][-count:]


def metrics_urls(path: Path, component: str) -> list[str]:
    """The metrics URLs that `tickwatch worker` or `gateway` processes (`component`)
    announced in this log, in the order they started."""
    announced = f"tickwatch {component}: metrics "
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return []
    return [line.split(announced, 1)[1].strip() for line in text.splitlines() if announced in line]


def announced_metrics(
    processes: Sequence[subprocess.Popen[bytes]],
    log: Path,
    component: str,
    timeout_s: float = 30.0,
) -> list[str]:
    """The metrics URLs these children (sharing `log`) announce, once each has; they
    do so as they start, before they wait for Redis or Kafka."""
    deadline = time.monotonic() + timeout_s
    while len(found := metrics_urls(log, component)) < len(processes):
        if any(process.poll() is not None for process in processes):
            raise NotAnnounced(f"a {component} exited before serving its metrics; see {log}")
        if time.monotonic() > deadline:
            raise NotAnnounced(
                f"no metrics URL from the {component} in {timeout_s:.0f}s; see {log}"
            )
        time.sleep(0.05)
    return found


def stop_child(process: subprocess.Popen[bytes], timeout_s: float = 15.0) -> int:
    """SIGTERM, then SIGKILL if it has not exited in time; return its exit code."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return int(process.returncode)
