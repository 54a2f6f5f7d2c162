"""Why a commit to Redis wrote nothing: state that moved, or state that vanished."""

from __future__ import annotations


class StateLostError(Exception):
    """A partition's state epoch is no longer in Redis: its state vanished."""

    reason = "state_lost"  # the metrics' label for a batch redone for it

    def __init__(self, topic: str, partition: int) -> None:
        super().__init__(f"the state epoch of {topic}[{partition}] is gone from Redis")
        self.topic = topic
        self.partition = partition


class StaleStateError(Exception):
    """Another writer changed an instrument since we loaded it; reload and redo."""

    reason = "stale_state"

    def __init__(self, symbol: str) -> None:
        super().__init__(f"state of {symbol} changed under us")
        self.symbol = symbol
