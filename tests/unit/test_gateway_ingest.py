"""Where a poll of the alerts topic skips past the offset the gateway expected."""

from __future__ import annotations

from dataclasses import dataclass

from streams.gateway.ingest import jumps


@dataclass
class Polled:
    """Stands in for a confluent-kafka Message: the three things jumps() reads."""

    at: tuple[int, int]
    failed: bool = False

    def error(self) -> object | None:
        return "EOF" if self.failed else None

    def partition(self) -> int:
        return self.at[0]

    def offset(self) -> int:
        return self.at[1]


def test_consecutive_offsets_are_no_jump() -> None:
    assert jumps({0: 5}, [Polled((0, 5)), Polled((0, 6))]) == []  # type: ignore[list-item]


def test_a_skip_is_a_jump_from_the_expected_offset_to_the_one_seen() -> None:
    polled = [Polled((0, 5)), Polled((0, 9)), Polled((1, 3))]
    assert jumps({0: 5, 1: 3}, polled) == [(0, 6, 9)]  # type: ignore[arg-type]


def test_a_partition_with_no_expectation_sets_one_and_errors_are_left_out() -> None:
    polled = [Polled((2, 40)), Polled((2, 99), failed=True), Polled((2, 42))]
    assert jumps({}, polled) == [(2, 41, 42)]  # type: ignore[arg-type]
