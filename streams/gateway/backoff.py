"""How long the gateway's loops pause after the nth failure in a row (Redis or Kafka away)."""

from __future__ import annotations

from collections.abc import Sequence

#: From a short first pause to a steady 5 s.
STEPS_S = (0.2, 0.5, 1.0, 2.0, 5.0)


def pause_s(failures: int, steps: Sequence[float] = STEPS_S) -> float:
    """The pause after `failures` (>= 1) failures in a row; the last step from then on."""
    return steps[min(failures, len(steps)) - 1]
