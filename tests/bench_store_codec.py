"""How long the store's codec takes per realistic state: `python -m tests.bench_store_codec`.

Each figure is the best of several runs, in microseconds of CPU per state, as the store
uses the codec: the hot part of an instrument is written on every commit that changes
it, its history once a session; both are read at every load, an index's state too.
"""

from __future__ import annotations

import statistics
import time
import timeit
from collections.abc import Callable

from alerts.core.index_agent import IndexState
from alerts.core.instrument import InstrumentState
from alerts.core.session_history import History
from alerts.store.codec import decode, encode
from tests import stored_states

_APART = ("history",)


def cases() -> dict[str, Callable[[], object]]:
    stock, index = stored_states.stock(), stored_states.index_instrument()
    level = stored_states.index_state()
    hot, history = encode(stock, omit=_APART), encode(stock.history)
    index_hot, index_blob = encode(index, omit=_APART), encode(level)
    return {
        "write stock (hot)": lambda: encode(stock, omit=_APART),
        "write index instrument (hot)": lambda: encode(index, omit=_APART),
        "write history (5 years)": lambda: encode(stock.history),
        "write index state (30)": lambda: encode(level),
        "read stock (hot)": lambda: decode(InstrumentState, hot, history=stock.history),
        "read index instrument (hot)": lambda: decode(
            InstrumentState, index_hot, history=index.history
        ),
        "read history (5 years)": lambda: decode(History, history),
        "read index state (30)": lambda: decode(IndexState, index_blob),
    }


def main(runs: int = 15) -> None:
    for name, case in cases().items():
        number = max(1, int(0.02 / max(timeit.timeit(case, number=10) / 10, 1e-7)))
        times = [
            timeit.timeit(case, number=number, timer=time.process_time) / number * 1e6
            for _ in range(runs)
        ]
        print(f"{name:30s} best {min(times):8.2f} us   median {statistics.median(times):8.2f} us")


if __name__ == "__main__":
    main()
