"""A commit refused because the state moved under us: reload and redo, a few times.

Another writer (a worker that took the partition over, a seed run) changed what a
batch was computed from; the batch is redone from what Redis holds now. Every writer
of versioned state (the ingest engine, the index engine, the seed) retries this way.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from alerts.store.errors import StaleStateError

#: Attempts at one batch before giving up: more conflicts than this in a row means
#: two writers are fighting over the same state.
MAX_ATTEMPTS = 5

T = TypeVar("T")


async def redo_until_committed(
    attempt: Callable[[], Awaitable[T]],
    gave_up: Callable[[], Exception],
    *,
    attempts: int = MAX_ATTEMPTS,
    refused: tuple[type[Exception], ...] = (StaleStateError,),
    on_refused: Callable[[Exception], Awaitable[None]] | None = None,
) -> T:
    """The result of the first attempt whose commit is not refused.

    `attempt` loads, computes and commits; when it raises one of `refused`,
    `on_refused` drops what it had cached and the attempt is made again. After
    `attempts` refusals, the exception `gave_up()` builds is raised.
    """
    for _ in range(attempts):
        try:
            return await attempt()
        except refused as error:
            if on_refused is not None:
                await on_refused(error)
    raise gave_up()
