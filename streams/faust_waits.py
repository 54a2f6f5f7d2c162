"""The worker's Faust services without two fixed one-second waits, at start and at exit.

Each says which wait of faust-streaming 0.15 / mode 0.4 it removes and why tickwatch
does not need it, so it can go when they do. Together they took 2 s of every worker's
life: every demo, benchmark stage, restart and integration test paid them.
"""

from __future__ import annotations

import asyncio

import faust
from faust.tables import TableManager


class TablelessManager(TableManager):
    """Faust's table manager, starting without its 1 s pause.

    The pause lets tables register before the worker subscribes to its topics. A
    tickwatch worker declares no tables (its state is in Redis), and a topic added
    after the subscription is subscribed to anyway.
    """

    async def on_start(self) -> None:
        if not self.should_stop:
            await self._update_channels()
            await self.recovery.start()


class Worker(faust.Worker):
    """Faust's worker, exiting as soon as the tasks it cancelled on the way out end.

    mode sleeps a fixed second for them before closing the event loop; waiting for
    those tasks themselves, up to the same second, ends sooner and waits no less.
    """

    async def _sentinel_task(self) -> None:
        this = asyncio.current_task()
        others = [task for task in asyncio.all_tasks() if task is not this]
        if others:
            await asyncio.wait(others, timeout=1.0)
